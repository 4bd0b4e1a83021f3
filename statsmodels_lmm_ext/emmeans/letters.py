"""Compact letter displays of pairwise comparisons (Piepho 2004).

References
----------
Piepho, H.-P. (2004). An algorithm for a letter-based representation of all-pairwise
comparisons. Journal of Computational and Graphical Statistics 13, 456-466.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grid import _by_groups

__all__ = ["_letters", "compact_letter_display"]

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _letters(sig: np.ndarray) -> list[set]:
    """Insert-absorb letters for means in ascending order (Piepho 2004), then sweep.

    ``sig`` is the symmetric boolean matrix of significant differences; the result is one set
    of mean positions per letter.
    """
    k = sig.shape[0]
    cols = [set(range(k))]
    for i, j in zip(*np.nonzero(np.triu(sig)), strict=True):
        new = []
        for c in cols:
            if i in c and j in c:
                new += [c - {i}, c - {j}]
            else:
                new.append(c)
        cols = [
            c
            for n, c in enumerate(new)
            if not any(c < d or (c == d and m < n) for m, d in enumerate(new) if m != n)
        ]
    # sweep: drop a mean from a letter if every non-significant partner shares another letter
    for c in cols:
        for i in sorted(c):
            others = [d for d in cols if d is not c and i in d]
            if all(any(j in d for d in others) for j in c if j != i) and len(c) > 1:
                covered = {j for d in others for j in d}
                if all(j in covered for j in c - {i}):
                    c.discard(i)
    cols = [c for c in cols if c]
    cols.sort(key=lambda c: (min(c), max(c)))
    if len(cols) > len(_LETTERS):
        raise ValueError("too many letters needed for a compact letter display")
    return cols


def compact_letter_display(con, alpha: float, sort: bool, adjust: str | None) -> pd.DataFrame:
    """The body of :meth:`EmmContrasts.cld <statsmodels_lmm_ext.EmmContrasts.cld>`.

    ``con`` is an :class:`~statsmodels_lmm_ext.EmmContrasts` of pairwise comparisons: each of
    its rows is +1 on one mean of its ``by`` group and -1 on another.
    """
    adjust_ = con.adjust if adjust is None else adjust
    inference = con._inference(adjust_, None)[1]
    p = inference.pvalues
    means = con.parent.summary_frame(adjust=adjust_)
    est = con.parent.estimate
    groups = _by_groups(con.parent.levels, con.by)
    letters = pd.Series("", index=means.index)
    for fam, rows in zip(con.families, groups, strict=True):
        k = len(rows)
        sig = np.zeros((k, k), bool)
        for r in fam.rows:
            i, j = np.flatnonzero(con.coef[r][rows])
            sig[i, j] = sig[j, i] = p[r] < alpha
        order = np.argsort(est[rows], kind="stable")
        cols = _letters(sig[np.ix_(order, order)])
        for pos, idx in enumerate(order):
            letters[rows[idx]] = "".join(_LETTERS[c] for c, col in enumerate(cols) if pos in col)
    means["group"] = letters
    if sort:
        grp = pd.Series(0, index=means.index)
        for g, rows in enumerate(groups):
            grp[rows] = g
        means = means.assign(_g=grp, _k=means["emmean"]).sort_values(["_g", "_k"], kind="stable")
        means = means.drop(columns=["_g", "_k"])
    means.attrs["notes"] = means.attrs.get("notes", []) + [
        f"P value adjustment: {inference.method} (significance level used: alpha = {alpha:g})",
        "Means sharing a letter are not shown to be different (which does not show them "
        "to be equal).",
    ]
    return means
