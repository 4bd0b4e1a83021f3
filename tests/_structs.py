"""Build our structure objects from the structure specs stored in the reference JSON files."""

import statsmodels_lmm_ext as lmm


def structure_from_spec(spec: dict | None) -> lmm.CovStruct:
    if spec is None:
        return lmm.Independence()
    name = spec["name"]
    if name == "Independence":
        return lmm.Independence()
    if name == "CompoundSymmetry":
        return lmm.CompoundSymmetry()
    if name in ("AR1", "Power"):
        return getattr(lmm, name)(time=spec["time"])
    coords = spec.get("coords") or [spec["time"]]
    return getattr(lmm, name)(coords=coords, nugget=bool(spec.get("nugget")))
