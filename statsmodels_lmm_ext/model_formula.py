"""The formula front end of :class:`~statsmodels_lmm_ext.MixedLM`.

Before statsmodels builds the designs, :func:`prepare` checks every name the formulas use
against the data and the caller's namespace (``y ~ ctr(x)``, ``I(x - ref)``,
``Q("yield") ~ ...``), drops or refuses rows with missing values in the columns the model uses
(response, covariates, groups, positions, quoted columns included), and takes the residual
structure's position columns.  The names of the caller's namespace that the formulas need are
handed to patsy/formulaic as ``eval_env`` (a dict), so they resolve exactly as with
``smf.mixedlm``.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from patsy.eval import EvalEnvironment
from statsmodels.regression.mixed_linear_model import VCSpec

from ._design import fast_design, fast_re_design
from ._formula import check_columns, formula_names, namespace_for
from ._residual_terms import bind_positions, check_weights, compose
from .covstruct import CovStruct, Independence

__all__ = [
    "MISSING",
    "FormulaInputs",
    "caller_namespace",
    "check_cov_struct",
    "fast_model",
    "prepare",
]

MISSING = ("drop", "raise", "none")
_NO_RE = ("0", "-1", "0+1", "~0", "~-1")


def check_cov_struct(cov_struct) -> CovStruct:
    """The residual structure (Independence by default), or a TypeError for anything else."""
    if cov_struct is None:
        return Independence()
    if not isinstance(cov_struct, CovStruct):
        raise TypeError(
            f"cov_struct must be a CovStruct instance (e.g. AR1(time='visit')), "
            f"not {type(cov_struct).__name__}"
        )
    return cov_struct


def caller_namespace(eval_env, depth: int) -> Mapping:
    """The namespace formulas are evaluated in (statsmodels' ``eval_env`` conventions).

    ``None`` or ``0``: the namespace of the frame ``depth`` levels above this function's caller
    (the user's call); an int ``k > 0``: ``k`` frames further up; ``-1``: an empty namespace; a
    mapping or a patsy ``EvalEnvironment``: that namespace.
    """
    if isinstance(eval_env, EvalEnvironment):
        return collections.ChainMap(*eval_env._namespaces)
    if isinstance(eval_env, Mapping):
        return eval_env
    if eval_env is None:
        eval_env = 0
    if not isinstance(eval_env, int | np.integer) or eval_env < -1:
        raise TypeError(
            f"eval_env must be None, an int >= -1, a dict or a patsy EvalEnvironment; "
            f"got {eval_env!r}"
        )
    if eval_env == -1:
        return {}
    frame = sys._getframe(depth + 1 + int(eval_env))
    return collections.ChainMap(frame.f_locals, frame.f_globals)


def _infinite(values: np.ndarray) -> np.ndarray:
    """Infinite entries of an array of any dtype (none unless numeric)."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.number):
        return np.isinf(values.astype(float))
    return np.zeros(values.shape, bool)


def _is_number(col: pd.Series) -> bool:
    return isinstance(col.dtype, np.dtype) and col.dtype.kind in "iufc"


def _no(col: pd.Series) -> np.ndarray:
    return np.zeros(len(col), bool)


def _handle_missing(data: pd.DataFrame, groups, used, missing: str, group_name):
    """Drop the rows with a missing or infinite value in a used column or the groups
    (``missing="drop"``) or raise an error naming the columns and the first row."""
    # each column's own (vectorised) missing test: no object copy of string columns
    cols = [data[c] for c in used] + [pd.Series(np.asarray(groups), copy=False)]
    inf = np.column_stack([_infinite(c.to_numpy()) if _is_number(c) else _no(c) for c in cols])
    na = np.column_stack([c.isna().to_numpy() for c in cols]) | inf
    if not na.any():
        return data, groups
    if missing == "drop":
        keep = ~na.any(axis=1)
        return data.loc[keep], groups[keep]
    names = [repr(c) for c in used] + [f"groups ({group_name or 'array'})"]
    cols = [c for c, bad in zip(names, na.any(axis=0), strict=True) if bad]
    first = int(np.flatnonzero(na.any(axis=1))[0])
    raise ValueError(
        f"{'missing or infinite' if inf.any() else 'missing'} values in column(s) "
        f"{', '.join(cols)} "
        f"(first at row {data.index[first]!r}); pass missing='drop' to drop those rows"
    )


@dataclass
class FormulaInputs:
    """What :func:`prepare` hands to statsmodels' ``from_formula``."""

    data: pd.DataFrame
    groups: object  # a column name of ``data`` or an array of labels
    group_name: str | None
    no_re: bool
    kwargs: dict


def _groups(data: pd.DataFrame, groups):
    if groups is None:
        return np.zeros(len(data), dtype=int), "Group"
    if isinstance(groups, str):
        check_columns(data, {"groups": [groups]})
        return data[groups].to_numpy(), groups
    groups = np.asarray(groups)
    if len(groups) != len(data):
        raise ValueError(f"groups has {len(groups)} values but data has {len(data)} rows")
    return groups, None


def _visit_column_ok(cov_struct, col: pd.Series) -> bool:
    """A non-numeric time column is allowed for structures on visit levels; AR(1) (whose
    positions are lags) takes a categorical one (its codes), not strings, unless
    heterogeneous."""
    if not hasattr(type(cov_struct), "n_visits"):
        return False
    return isinstance(col.dtype, pd.CategoricalDtype) or getattr(cov_struct, "string_visits", True)


def _visit_codes(data: pd.DataFrame, column: str):
    """Levels and codes of a categorical (category order) or string (sorted) visit column;
    a category that no row has is an error."""
    col = data[column]
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    levels = list(cat.cat.categories)
    codes = cat.cat.codes.to_numpy()
    unused = [lev for i, lev in enumerate(levels) if not np.any(codes == i)]
    if unused:
        raise ValueError(
            f"visit column {column!r}: level(s) {unused} occur in no row (no subject has that "
            "visit); remove them (e.g. cat.remove_unused_categories())"
        )
    return levels, codes.astype(float)


def prepare(formula, data, re_formula, vc_formula, subset, missing, kwargs, namespace):
    """Check names, handle missing values and take positions; returns :class:`FormulaInputs`.

    ``kwargs`` are the remaining keywords of ``from_formula`` (``groups``, ``cov_struct``
    and those for the model); ``namespace`` is the caller's (:func:`caller_namespace`).
    """
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, not {missing!r}")
    if subset is not None:
        data = data.loc[subset]
    cov_struct = compose(
        check_cov_struct(kwargs.get("cov_struct")),
        kwargs.pop("variance", None),
        kwargs.pop("weights", None),
    )
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    groups, group_name = _groups(data, kwargs.pop("groups", None))
    pos_cols = cov_struct.position_columns
    needed = {"cov_struct": list(pos_cols)}
    formulas = {"formula": formula, "re_formula": re_formula}
    formulas.update({f"vc_formula[{k!r}]": f for k, f in (vc_formula or {}).items()})
    for where, f in formulas.items():
        if isinstance(f, str):
            needed[where] = sorted(formula_names(f))
    check_columns(data, needed, namespace)
    check_weights(cov_struct, data, groups)
    names = {n for v in needed.values() for n in v}
    used = sorted(n for n in names if n in data.columns)
    data, groups = _handle_missing(data, groups, used, missing, group_name)
    if not data.index.is_unique:
        data = data.reset_index(drop=True)
    inner = getattr(cov_struct, "inner", cov_struct)  # a composite's own columns are its own
    labels = {}
    for c in inner.position_columns:
        if not pd.api.types.is_numeric_dtype(data[c]):
            if not _visit_column_ok(inner, data[c]):
                raise ValueError(
                    f"position column {c!r} for {type(inner).__name__} must be numeric; "
                    f"it has dtype {data[c].dtype}"
                )
            labels[c] = _visit_codes(data, c)
    # visit labels become their codes for the structure only (the formula keeps the labels)
    coded = data.assign(**{c: v[1] for c, v in labels.items()}) if labels else data
    kwargs["cov_struct"], kwargs["positions"] = bind_positions(cov_struct, coded, groups)
    kwargs["position_labels"] = {c: list(v[0]) for c, v in labels.items()}
    kwargs["position_names"] = pos_cols
    kwargs["eval_env"] = namespace_for(names, data.columns, namespace)
    no_re = isinstance(re_formula, str) and re_formula.replace(" ", "") in _NO_RE
    return FormulaInputs(
        data=data,
        groups=group_name if group_name in data.columns else groups,
        group_name=group_name,
        no_re=no_re,
        kwargs=kwargs,
    )


def name_random_effects(mod, inputs: FormulaInputs, re_formula, vc_formula) -> None:
    """statsmodels' names for the default random intercept (``<groups> Var``)."""
    if inputs.no_re:
        mod._drop_random_effects()
    elif re_formula is None and vc_formula is None:
        name = inputs.group_name or "Group"
        mod.data.exog_re_names = [name]
        mod.data.exog_re_names_full = [f"{name} Var"]
        mod.data.param_names = list(mod.exog_names) + [f"{name} Var"]


def _fast_re(inputs: FormulaInputs, re_formula, group_name: str):
    """``(exog_re, names)`` as statsmodels' ``from_formula`` makes them; ``False`` when the
    random-effects formula needs patsy."""
    if inputs.no_re or re_formula is None:
        return None, [group_name]
    if re_formula.strip() == "1":
        return np.ones((len(inputs.data), 1)), [group_name]
    built = fast_re_design(re_formula, inputs.data, inputs.kwargs.get("eval_env"))
    if built is None:
        return False
    Z, names = built
    return Z, [n.replace("Intercept", group_name) for n in names]


def fast_model(cls, formula, inputs: FormulaInputs, re_formula, vc_formula, args):
    """The model ``from_formula`` builds, from the fast designs (:mod:`._design`) and the steps
    of statsmodels' ``MixedLM.from_formula``; ``None`` when patsy must build the designs
    (variance components, functions of columns, other dtypes ...)."""
    if vc_formula is not None or args:
        return None
    data = inputs.data
    design = fast_design(formula, data, inputs.kwargs.get("eval_env"))
    if design is None:
        return None
    groups, group_name = inputs.groups, "Group"
    if isinstance(groups, str):
        groups, group_name = np.asarray(data[groups]), groups
    re = _fast_re(inputs, re_formula, group_name)
    if re is False:
        return None
    kwargs = {k: v for k, v in inputs.kwargs.items() if k != "eval_env"}
    mod = cls(
        design.endog,
        design.exog,
        groups=np.asarray(groups),
        exog_re=re[0],
        exog_vc=VCSpec([], [], []),
        missing="raise",
        missing_idx=None,
        formula=formula,
        model_spec=design.spec,
        **kwargs,
    )
    mod.formula = formula
    mod.data.frame = data
    names = mod._make_param_names(re[1])
    mod.data.param_names, mod.data.exog_re_names, mod.data.exog_re_names_full = names
    return mod
