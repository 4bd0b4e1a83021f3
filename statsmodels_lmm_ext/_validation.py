"""Checks and conversions of the arrays a :class:`~statsmodels_lmm_ext.MixedLM` is built from.

Each error names the column, row, group or value that is wrong and what would be right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg

from .covstruct import CovStruct

__all__ = [
    "check_duplicate_positions",
    "check_finite",
    "check_rank",
    "drop_missing_arrays",
    "pad_vc",
    "position_array",
]


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
    keep &= pd.notna(np.asarray(groups))

    def sub(a):
        return None if a is None else (a[keep] if not hasattr(a, "iloc") else a.iloc[keep])

    return sub(endog), sub(exog), sub(np.asarray(groups)), sub(exog_re), pos[keep]


def check_finite(model) -> None:
    """Raise on a missing or non-finite value, naming the array, column and row."""
    parts = {
        "endog": model.endog[:, None],
        "exog": model.exog,
        "exog_re": model.exog_re,
        "positions": model.positions,
    }
    for name, a in parts.items():
        bad = ~np.isfinite(a)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            col = name
            if name == "exog":
                col = f"exog column {model.exog_names[j]!r}"
            elif name == "positions" and model.position_names:
                col = f"position column {model.position_names[j]!r}"
            raise ValueError(
                f"missing or non-finite value in {col} (row {i}); "
                "use missing='drop' to drop such rows"
            )
    if pd.isna(np.asarray(model.groups)).any():
        raise ValueError("missing value in groups; use missing='drop' to drop such rows")


def check_rank(X: np.ndarray, names) -> None:
    """Raise if the fixed-effects design is rank deficient, naming the aliased columns."""
    if X.shape[1] == 0:
        return
    scale = np.sqrt((X**2).sum(0))
    scale[scale == 0] = 1.0
    R, piv = scipy.linalg.qr(X / scale, mode="r", pivoting=True)
    d = np.abs(np.diag(R))
    tol = d.max() * max(X.shape) * np.finfo(float).eps * 10
    rank = int((d > tol).sum())
    if rank < X.shape[1] or X.shape[0] <= X.shape[1]:
        aliased = [names[j] for j in piv[rank:]]
        raise ValueError(
            f"the fixed-effects design is rank deficient (rank {rank} < {X.shape[1]} "
            f"columns): {', '.join(repr(a) for a in aliased)} "
            "is a linear combination of the other columns; drop or recode it"
        )


def check_duplicate_positions(model) -> None:
    """Raise if a structure that needs distinct positions finds two rows of a group at one."""
    if not model.cov_struct.unique_positions:
        return
    key = np.column_stack([model._group_codes, model.positions])
    o = np.lexsort(key.T[::-1])
    ks = key[o]
    dup = np.flatnonzero((ks[1:] == ks[:-1]).all(axis=1))
    if dup.size:
        g = model.group_labels[int(ks[dup[0], 0])]
        v = ks[dup[0], 1:]
        vs = v[0] if len(v) == 1 else tuple(v)
        col = model.position_names[0] if model.position_names else "time"
        labels = getattr(model, "position_labels", {}).get(col)
        shown = repr(labels[int(vs)]) if labels is not None else f"{vs:g}"
        raise ValueError(
            f"group {g!r} has two rows at the same position {col}={shown}; "
            f"{type(model.cov_struct).__name__} needs distinct time points within a group"
        )
