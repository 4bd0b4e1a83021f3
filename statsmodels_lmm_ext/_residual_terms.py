"""Where the residual structure meets the data: ``group=``, variance functions and weights.

:func:`compose` turns a user's structure (perhaps with ``group="ARMCD"``), ``variance=`` and
``weights=`` into one :class:`~statsmodels_lmm_ext.covstruct.CovStruct` whose position columns
name every column it reads; :func:`bind_positions` checks those columns (a group factor
constant within each subject, positive finite weights, numeric positions), encodes factors as
codes ``0 .. L-1`` (sorted levels, or a categorical's order) and returns the structure that
knows its levels with the position array the engine receives.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .covstruct import CovStruct, FixedWeights, GroupSpecific, Heteroscedastic, VarFunc

__all__ = ["compose", "bind_positions", "check_unbound", "check_weights", "encode_positions"]


class _Pending(Heteroscedastic, register=False):
    """A structure with its group factor and variance functions named but not yet bound to
    data (levels unknown); :func:`bind_positions` replaces it."""

    def __init__(self, base: CovStruct, group: str | None, varfuncs: Sequence[VarFunc]):
        self.inner = base
        self.group_column = group
        self.varfuncs = list(varfuncs)

    @property
    def extra_columns(self):
        extra = [self.group_column] if self.group_column else []
        return extra + [vf.column for vf in self.varfuncs]


def _varfuncs(variance, weights) -> list[VarFunc]:
    if variance is None:
        out = []
    elif isinstance(variance, VarFunc):
        out = [variance]
    elif isinstance(variance, Sequence) and all(isinstance(v, VarFunc) for v in variance):
        out = list(variance)
    else:
        raise TypeError(
            "variance= takes a variance function (lmm.VarIdent('f'), lmm.VarPower('x'), "
            f"lmm.VarExp('x')) or a list of them, not {variance!r}"
        )
    if weights is not None:
        if not isinstance(weights, str):
            raise TypeError(f"weights= takes a column name, not {type(weights).__name__}")
        out.append(FixedWeights(weights))
    return out


def compose(cov_struct: CovStruct, variance=None, weights=None) -> CovStruct:
    """``cov_struct`` itself, or a pending composite naming the group, variance and weight
    columns (bound to the data by :func:`bind_positions`)."""
    vfs = _varfuncs(variance, weights)
    if cov_struct.group is None and not vfs:
        return cov_struct
    return _Pending(cov_struct, cov_struct.group, vfs)


def check_unbound(cov_struct: CovStruct) -> None:
    """Refuse ``group=`` and pending composites in the array interface (no data columns)."""
    if isinstance(cov_struct, _Pending) or (
        cov_struct.group is not None and not isinstance(cov_struct, GroupSpecific)
    ):
        raise ValueError(
            f"{cov_struct!r} reads data columns (group=, variance=, weights=); build the model "
            "with the formula interface (lmm.mixedlm / MixedLM.from_formula)"
        )


def _numeric(data: pd.DataFrame, cols: list[str], who: str) -> np.ndarray:
    for c in cols:
        if not pd.api.types.is_numeric_dtype(data[c]):
            raise ValueError(
                f"position column {c!r} for {who} must be numeric; it has dtype "
                f"{data[c].dtype}. Give numeric positions (e.g. a visit number), or make "
                f"{c!r} a pandas Categorical with the visits in time order (its codes are then "
                "the positions): sorting labels such as 'VIS10' < 'VIS2' would put the visits "
                "out of order"
            )
    return data[cols].to_numpy(dtype=float).reshape(len(data), len(cols))


def _codes(series: pd.Series) -> tuple[np.ndarray, list]:
    codes, levels = pd.factorize(series, sort=True)
    if isinstance(series.dtype, pd.CategoricalDtype):
        levels = [lv for lv in series.cat.categories if lv in set(levels)]
        codes = pd.Categorical(series, categories=levels).codes
    return np.asarray(codes, dtype=float), list(levels)


def _group_codes(data: pd.DataFrame, column: str, groups) -> tuple[np.ndarray, list]:
    """Codes of a subject-level factor; an error naming the subject if it varies within one."""
    codes, levels = _codes(data[column])
    g = pd.Series(np.asarray(groups)).reset_index(drop=True)
    per = pd.Series(codes).groupby(g.to_numpy()).nunique()
    if (per > 1).any():
        subject = per.index[np.flatnonzero(per.to_numpy() > 1)[0]]
        seen = sorted({levels[int(c)] for c in codes[(g == subject).to_numpy()]}, key=str)
        raise ValueError(
            f"group factor {column!r} must be constant within each subject; subject "
            f"{subject!r} has the levels {', '.join(repr(s) for s in seen)}"
        )
    return codes, levels


def _weights(data: pd.DataFrame, column: str, groups) -> np.ndarray:
    w = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(w) & (w > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        subject = np.asarray(groups)[i]
        raise ValueError(
            f"weights column {column!r} must hold positive finite numbers; row "
            f"{data.index[i]} (subject {subject!r}) has {data[column].iloc[i]!r}"
        )
    return w


def check_weights(cov_struct: CovStruct, data: pd.DataFrame, groups) -> None:
    """Refuse missing, zero or negative weights before rows with missing values are dropped
    (a missing weight is an error, never a reason to drop a row)."""
    for vf in getattr(cov_struct, "varfuncs", ()):
        if isinstance(vf, FixedWeights):
            _weights(data, vf.column, groups)


def _varfunc_values(vf: VarFunc, data: pd.DataFrame, groups) -> tuple[VarFunc, np.ndarray]:
    if isinstance(vf, FixedWeights):
        return vf, _weights(data, vf.column, groups)
    if vf.categorical:
        codes, levels = _codes(data[vf.column])
        return vf.bound(levels), codes
    x = _numeric(data, [vf.column], type(vf).__name__)[:, 0]
    if type(vf).__name__ == "VarPower" and np.any(x == 0):
        i = int(np.flatnonzero(x == 0)[0])
        raise ValueError(
            f"VarPower({vf.column!r}): |x| ** power needs x != 0; row {data.index[i]} has 0"
        )
    return vf, x


def bind_positions(cov_struct: CovStruct, data: pd.DataFrame, groups) -> tuple[CovStruct, object]:
    """The structure bound to ``data`` and the positions ``(N, d)`` it reads (None if none)."""
    if not isinstance(cov_struct, _Pending):
        cols = cov_struct.position_columns
        pos = _numeric(data, list(cols), type(cov_struct).__name__) if cols else None
        return cov_struct, pos
    base = cov_struct.inner
    inner_cols = list(base.position_columns)
    parts = [_numeric(data, inner_cols, type(base).__name__)]
    if cov_struct.group_column is not None:
        codes, levels = _group_codes(data, cov_struct.group_column, groups)
        base = GroupSpecific(_without_group(base), cov_struct.group_column, levels)
        parts.append(codes[:, None])
    bound = []
    for vf in cov_struct.varfuncs:
        vf, values = _varfunc_values(vf, data, groups)
        bound.append(vf)
        parts.append(values[:, None])
    out = Heteroscedastic(base, bound) if bound else base
    return out, np.concatenate(parts, axis=1)


def _without_group(cs: CovStruct) -> CovStruct:
    """A shallow copy of ``cs`` with ``group`` cleared (the inner structure of each level)."""
    new = copy.copy(cs)
    new.group = None
    return new


def known_codes(data: pd.DataFrame, column: str, levels: Sequence) -> np.ndarray:
    """Codes of ``data[column]`` in the fitted ``levels``; an error naming an unknown level."""
    lookup = {lv: i for i, lv in enumerate(levels)}
    values = data[column].to_numpy()
    unknown = [v for v in pd.unique(values) if v not in lookup]
    if unknown:
        raise ValueError(
            f"column {column!r} has the level {unknown[0]!r}, unknown to the fitted model "
            f"(levels {', '.join(repr(lv) for lv in levels)})"
        )
    return np.array([lookup[v] for v in values], dtype=float)


def encode_positions(cov_struct: CovStruct, data: pd.DataFrame, groups) -> np.ndarray:
    """Positions ``(N, d)`` of new rows for a fitted (bound) structure: the same columns and
    factor codes as at the fit (prediction)."""
    base, varfuncs = cov_struct, []
    if isinstance(cov_struct, Heteroscedastic):
        base, varfuncs = cov_struct.inner, cov_struct.varfuncs
    inner = base.inner if isinstance(base, GroupSpecific) else base
    parts = [_numeric(data, list(inner.position_columns), type(inner).__name__)]
    if isinstance(base, GroupSpecific):
        parts.append(known_codes(data, base.column, base.levels)[:, None])
    for vf in varfuncs:
        if isinstance(vf, FixedWeights):
            values = _weights(data, vf.column, groups)
        elif vf.categorical:
            values = known_codes(data, vf.column, vf.levels)
        else:
            values = _numeric(data, [vf.column], type(vf).__name__)[:, 0]
        parts.append(values[:, None])
    return np.concatenate(parts, axis=1)
