"""Build our structure objects from the structure specs stored in the reference JSON files.

A spec names the structure class (``"AR1"``) and gives ``time``, ``coords`` and ``nugget``; the
class comes from the registry and receives the ones its constructor takes (a spatial structure
given only a ``time`` uses it as its one coordinate).
"""

import inspect

import statsmodels_lmm_ext as lmm

_BY_CLASS_NAME = {cls.__name__: cls for cls in lmm.COV_STRUCTS.values()}


def structure_from_spec(spec: dict | None) -> lmm.CovStruct:
    if spec is None:
        return lmm.Independence()
    cls = _BY_CLASS_NAME[spec["name"]]
    values = {
        "time": spec.get("time"),
        "coords": spec.get("coords") or [spec.get("time")],
        "nugget": bool(spec.get("nugget")),
    }
    return cls(**{k: values[k] for k in inspect.signature(cls).parameters if k in values})
