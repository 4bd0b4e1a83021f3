"""Checks and conversions of the arrays a :class:`~statsmodels_lmm_ext.MixedLM` is built from.

Each error names the column, row, group or value that is wrong and what would be right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._engine.conditioning import Conditioning, pivoted_qr, qr_rank
from ._engine.designs import CellDesign
from ._formula import row_codes
from ._lazy_exog import fe_design
from .covstruct import CovStruct

__all__ = [
    "check_duplicate_positions",
    "distinct_rows",
    "check_finite",
    "check_rank",
    "check_response",
    "drop_missing_arrays",
    "few_distinct",
    "pad_vc",
    "position_array",
]


# Fixed-effects designs with at most this many distinct rows (and this fraction of N) are
# factored through their distinct rows (categorical designs: cells of the factors).
_MAX_DISTINCT = 20_000
_DISTINCT_FRACTION = 0.25
_CHECK_ROWS = 65_536


def few_distinct(k: int, n: int, p: int) -> bool:
    """Whether an ``(n, p)`` design with ``k`` distinct rows is worked through them."""
    return n > 4 * p and k <= min(_MAX_DISTINCT, _DISTINCT_FRACTION * n)


def distinct_rows(X: np.ndarray, max_distinct: int = _MAX_DISTINCT):
    """``(U, inverse, counts)`` of the distinct rows ``U = X[first]`` of ``X`` (``U[inverse]``
    is ``X`` exactly), or ``None`` when there are more than ``max_distinct`` of them.

    Rows are hashed by two fixed random projections and factorised (pandas); equal rows may
    get two codes (harmless: a row repeated in the reduced matrix), and every row is checked
    to equal its representative exactly, so unequal rows never share one.  ``X`` may be a
    design in the engine's form (``_engine.designs.CellDesign``).
    """
    N, p = X.shape
    if N <= 4 * p:
        return None
    if N > _CHECK_ROWS:  # the distinct rows of the first rows, cheaply, bound theirs from below
        k = len(row_codes(np.asarray(X[:_CHECK_ROWS]))[0])
        if k > max_distinct or not few_distinct(k, N, p):
            return None
    first, inverse = row_codes(X)
    K = len(first)
    if K > max_distinct or not few_distinct(K, N, p):
        return None
    U = X[first]
    for a in range(0, N, _CHECK_ROWS):
        if not np.array_equal(U[inverse[a : a + _CHECK_ROWS]], X[a : a + _CHECK_ROWS]):
            return None
    return U, inverse, np.bincount(inverse, minlength=K)


def pad_vc(exog_vc, row_indices, group_labels, nobs: int) -> list[np.ndarray]:
    """Variance-component designs (statsmodels VCSpec, per group) as per-row arrays,
    zero-padded to a common width."""
    out = []
    for mats in exog_vc.mats:
        width = max((m.shape[1] for m in mats), default=0)
        Z = np.zeros((nobs, width))
        for gi, g in enumerate(group_labels):
            m = mats[gi]
            m = m.toarray() if hasattr(m, "toarray") else np.asarray(m)
            Z[row_indices[g], : m.shape[1]] = m
        out.append(Z)
    return out


def position_array(cov_struct: CovStruct, positions, n: int) -> np.ndarray:
    """Positions as an ``(n, d)`` float array with the number of columns the structure needs."""
    pos = np.zeros((n, 0)) if positions is None else np.asarray(positions, dtype=float)
    if pos.ndim == 1:
        pos = pos[:, None]
    need = len(cov_struct.position_columns)
    if pos.shape[1] != need:
        raise ValueError(f"{cov_struct!r} needs {need} position column(s); got {pos.shape[1]}")
    return pos


def drop_missing_arrays(endog, exog, groups, exog_re, pos):
    """The arrays without the rows that have a missing or non-finite value in any of them."""
    arrays = [np.asarray(endog, float), np.asarray(exog, float), pos]
    if exog_re is not None:
        arrays.append(np.asarray(exog_re, float))
    keep = np.ones(len(arrays[0]), bool)
    for a in arrays:
        keep &= np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    keep &= pd.notna(np.asarray(groups)) & ~_infinite(groups)

    def sub(a):
        return None if a is None else (a[keep] if not hasattr(a, "iloc") else a.iloc[keep])

    return sub(endog), sub(exog), sub(np.asarray(groups)), sub(exog_re), pos[keep]


def check_finite(model) -> None:
    """Raise on a missing or non-finite value, naming the array, column and row."""
    parts = {
        "endog": model.endog[:, None],
        "exog": fe_design(model),
        "exog_re": model.exog_re,
        "positions": model.positions,
    }
    for name, a in parts.items():
        where = _first_nonfinite(a)
        if where is None:
            continue
        i, j = where
        col = name
        if name == "exog":
            col = f"exog column {model.exog_names[j]!r}"
        elif name == "positions" and model.position_names:
            col = f"position column {model.position_names[j]!r}"
        raise ValueError(
            f"missing or non-finite value in {col} (row {i}); use missing='drop' to drop such rows"
        )
    groups = np.asarray(model.groups)
    bad = np.asarray(pd.isna(groups)) | _infinite(groups)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"missing or infinite group label {groups[i]} (row {i}); use missing='drop' to "
            "drop such rows"
        )


def _first_nonfinite(a) -> tuple[int, int] | None:
    """``(row, column)`` of the first non-finite value (row-major order), or ``None``; a design
    in the engine's form is checked through its numeric factors and cells' rows."""
    if not isinstance(a, CellDesign):
        bad = ~np.isfinite(a)
        return tuple(int(k) for k in np.argwhere(bad)[0]) if bad.any() else None
    rows = np.zeros(a.shape[0], bool)
    for T, v, _ in a._parts():
        rows |= ~np.isfinite(T).all(axis=1)[a.inverse]
        if v is not None:
            rows |= ~np.isfinite(v)
    if not rows.any():
        return None
    i = int(np.flatnonzero(rows)[0])
    return i, int(np.flatnonzero(~np.isfinite(a[np.array([i])][0]))[0])


def _infinite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.number):
        return np.isinf(values.astype(float))
    return np.zeros(values.shape, bool)


def check_rank(X: np.ndarray, names, qr=None) -> None:
    """Raise if the fixed-effects design has no more rows than columns or is rank deficient,
    naming the aliased columns; ``qr`` is :func:`pivoted_qr` of ``X`` when already computed."""
    N, p = X.shape
    if p == 0:
        return
    if N <= p:
        raise ValueError(
            f"{N} observation(s) cannot estimate {p} fixed effects "
            f"({', '.join(repr(a) for a in names)}) and a residual variance; the model needs "
            "more rows than fixed-effects columns: add data or drop covariates"
        )
    _, R, piv, _ = pivoted_qr(X) if qr is None else qr
    rank = qr_rank(R, X.shape)
    if rank < p:
        aliased = [names[j] for j in piv[rank:]]
        raise ValueError(
            f"the fixed-effects design is rank deficient (rank {rank} < {p} "
            f"columns): {', '.join(repr(a) for a in aliased)} "
            "is a linear combination of the other columns; drop or recode it"
        )


def check_response(cond: Conditioning, endog: np.ndarray, endog_name: str) -> None:
    """Raise if the response is constant or an exact linear function of the fixed effects:
    nothing is left to estimate a variance from (the log-likelihood is unbounded)."""
    if not cond.exact_fit:
        return
    what = "constant" if np.ptp(endog) == 0 else "an exact linear function of the covariates"
    raise ValueError(
        f"the response {endog_name!r} is {what} (its least squares residuals are all zero), "
        "so no variance can be estimated and the likelihood is unbounded; check that the "
        "response is not one of the covariates or a copy of the fitted values"
    )


def check_duplicate_positions(model) -> None:
    """Raise if a structure that needs distinct positions finds two rows of a group at one,
    or if a spatial structure without a nugget does (its correlation matrix is then singular,
    and so is every group covariance whose random-effects rows repeat too)."""
    cs = model.cov_struct
    inner = getattr(cs, "inner", cs)
    no_nugget = bool(inner.position_columns) and getattr(inner, "nugget", None) is False
    if not (cs.unique_positions or no_nugget):
        return
    # a composite's own columns (variance covariates, weights) do not make positions distinct
    d = getattr(cs, "d_inner", model.positions.shape[1])
    # the key's columns (group, positions, random-effects rows) are sorted and compared
    # one at a time: no N x k copy of them
    cols = [model._group_codes] + [model.positions[:, j] for j in range(d)]
    if no_nugget:
        cols += [model.exog_re[:, j] for j in range(model.exog_re.shape[1])]
    o = np.lexsort(cols[::-1])
    same = np.ones(max(len(o) - 1, 0), dtype=bool)
    for c in cols:
        sc = c[o]
        same &= sc[1:] == sc[:-1]
    dup = np.flatnonzero(same)
    if not dup.size:
        return
    row = o[dup[0]]
    g = model.group_labels[int(model._group_codes[row])]
    g = g.item() if isinstance(g, np.generic) else g
    v = model.positions[row, :d]
    names = model.position_names or ["time"]
    all_labels = getattr(model, "position_labels", {}) or {}

    def shown(n, x):
        labels = all_labels.get(n)
        return repr(labels[int(x)]) if labels is not None else f"{x:g}"

    where = ", ".join(f"{n}={shown(n, x)}" for n, x in zip(names, v, strict=False))
    if cs.unique_positions:
        raise ValueError(
            f"group {g!r} has two rows at the same position {where}; "
            f"{type(cs).__name__} needs distinct time points within a group"
        )
    raise ValueError(
        f"group {g!r} has two rows at the same coordinates ({where}); {cs!r} gives them "
        "correlation 1, so the group's covariance matrix is singular: use nugget=True "
        "(a measurement-error share), or average or remove the duplicated rows"
    )
