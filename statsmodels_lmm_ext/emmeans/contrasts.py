"""Contrasts of estimated marginal means: the contrast-method registry and :class:`EmmContrasts`.

Each entry of :data:`CONTRAST_METHODS` is a :class:`ContrastMethod`: it builds the
coefficients on the means of one ``by`` group and carries emmeans' default adjustment for its
family, so :meth:`EmmResults.contrast <statsmodels_lmm_ext.EmmResults.contrast>` only looks a
method up and asks it.  A new method is one more entry::

    CONTRAST_METHODS["first.vs.rest"] = ContrastMethod("first.vs.rest", build, "holm")
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..multiplicity import Family, check_adjust
from .grid import _as_list, _by_groups
from .letters import compact_letter_display
from .table import _LinearTable

__all__ = ["CONTRAST_METHODS", "ContrastMethod", "EmmContrasts", "contrast_table"]

#: builder(names of the means, ref) -> (coefficients, one row per contrast; contrast labels)
Builder = Callable[..., tuple[np.ndarray, list[str]]]


@dataclass(frozen=True)
class ContrastMethod:
    """A family of contrasts of ``k`` means and its default multiplicity adjustment.

    Parameters
    ----------
    name : str
        The name ``contrast(method=...)`` takes.
    build : callable
        ``build(names, ref) -> (K, labels)``: the ``(m, k)`` coefficients on the means named
        ``names`` (one ``by`` group) and one label per contrast.
    adjust : str
        The adjustment used when ``contrast`` gets none (emmeans' default for the method).
    pairwise : bool
        Whether every contrast is a difference of two means (Tukey applies; letter displays
        are possible).
    """

    name: str
    build: Builder
    adjust: str
    pairwise: bool = False

    def coefficients(self, names: list[str], ref: int | str = 0) -> tuple[np.ndarray, list]:
        """Coefficients ``K`` (one row per contrast, one column per mean) and labels."""
        return self.build(names, ref)


def _diff_rows(k, pairs):
    K = np.zeros((len(pairs), k))
    for r, (i, j) in enumerate(pairs):
        K[r, i], K[r, j] = 1.0, -1.0
    return K


def _pairwise(names, ref=0):
    pairs = list(itertools.combinations(range(len(names)), 2))
    return _diff_rows(len(names), pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _revpairwise(names, ref=0):
    k = len(names)
    pairs = [(j, i) for i in range(k) for j in range(i + 1, k)]
    pairs.sort(key=lambda p: (p[1], p[0]))
    return _diff_rows(k, pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _trt_vs_ctrl(names, ref=0):
    r = names.index(ref) if isinstance(ref, str) and ref in names else ref
    if isinstance(r, str) or not 0 <= int(r) < len(names):
        raise ValueError(f"ref={ref!r} is not one of the levels {names}")
    pairs = [(i, r) for i in range(len(names)) if i != r]
    return _diff_rows(len(names), pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _consec(names, ref=0):
    pairs = [(i + 1, i) for i in range(len(names) - 1)]
    return _diff_rows(len(names), pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _eff(names, ref=0):
    k = len(names)
    return np.eye(k) - 1.0 / k, [f"{n} effect" for n in names]


def _poly(names, ref=0):
    """Orthogonal polynomial contrasts scaled to integers (emmeans' ``poly.emmc``)."""
    k = len(names)
    x = np.arange(1, k + 1, dtype=float)
    V = np.vander(x - x.mean(), k, increasing=True)
    Q, _ = np.linalg.qr(V)
    out = []
    for j in range(1, k):
        con = Q[:, j] * np.sign(Q[-1, j])
        con = con / np.min(con[con > 0.01])
        z = np.max(np.abs(con - np.round(con)))
        while z > 0.05:
            con = con / z
            z = np.max(np.abs(con - np.round(con)))
        out.append(np.round(con))
    words = ["linear", "quadratic", "cubic", "quartic"]
    labels = [words[j] if j < 4 else f"degree {j + 1}" for j in range(k - 1)]
    return np.array(out), labels


def _custom(weights: Mapping[str, Sequence[float]]) -> ContrastMethod:
    """User contrasts ``{name: weights}`` (one weight per mean of a ``by`` group)."""

    def build(names, ref=0):
        K = np.array([np.asarray(w, float) for w in weights.values()])
        if K.ndim != 2 or K.shape[1] != len(names):
            raise ValueError(
                f"each contrast needs {len(names)} weights (one per mean of a by group)"
            )
        return K, [str(n) for n in weights]

    return ContrastMethod("custom", build, "none")


#: contrast methods by name, each with its default adjustment (as in emmeans)
CONTRAST_METHODS: dict[str, ContrastMethod] = {
    m.name: m
    for m in (
        ContrastMethod("pairwise", _pairwise, "tukey", pairwise=True),
        ContrastMethod("revpairwise", _revpairwise, "tukey", pairwise=True),
        ContrastMethod("trt.vs.ctrl", _trt_vs_ctrl, "dunnettx"),
        ContrastMethod("consec", _consec, "mvt"),
        ContrastMethod("poly", _poly, "none"),
        ContrastMethod("eff", _eff, "fdr"),
    )
}


def _resolve(method) -> ContrastMethod:
    if isinstance(method, Mapping):
        return _custom(method)
    if method not in CONTRAST_METHODS:
        raise ValueError(
            f"unknown contrast method {method!r}; choose one of "
            f"{list(CONTRAST_METHODS)} or give {{name: weights}}"
        )
    return CONTRAST_METHODS[method]


class EmmContrasts(_LinearTable):
    """Contrasts of estimated marginal means.  Created by :meth:`EmmResults.contrast`."""

    def __init__(self, parent, labels, L, K, by, families, notes, adjust_, method):
        self._model = parent._model
        self.parent = parent
        self.coef = K  # contrast coefficients on the parent's means
        self.method = method.name
        self._pairwise = method.pairwise
        super().__init__(
            labels,
            L,
            parent._prov,
            by=by,
            families=families,
            level=parent.level,
            notes=notes,
            default_adjust=adjust_,
        )

    def summary_frame(self, adjust: str | None = None, level: float | None = None):
        """``contrast``, the ``by`` columns, ``estimate``, ``se``, ``df``, ``t``, ``p_value``,
        ``lower``, ``upper``; notes in ``frame.attrs["notes"]``."""
        frame, notes = self._frame(adjust, level, tests=True, cis=True)
        cols = ["contrast", *self.by, "estimate", "se", "df", "t", "p_value", "lower", "upper"]
        frame = frame[cols]
        frame.attrs["notes"] = notes
        return frame

    @property
    def pvalues(self) -> np.ndarray:
        """p-values with this family's adjustment."""
        return self._inference(None, None)[1].pvalues

    def cld(self, alpha: float = 0.05, sort: bool = True, adjust: str | None = None):
        """Compact letter display (Piepho 2004): means sharing a letter are not significantly
        different at ``alpha`` with this table's adjustment.

        Returns the means frame (intervals with the same adjustment applied to the family of
        means, i.e. Sidak for Tukey, as emmeans) with a ``group`` column; sorted by the mean
        within each ``by`` group unless ``sort=False``.  Only for pairwise comparisons.
        """
        if not self._pairwise:
            raise ValueError("a compact letter display needs pairwise comparisons (pairs())")
        return compact_letter_display(self, alpha, sort, adjust)


def contrast_table(parent, method, adjust: str | None, by, ref) -> EmmContrasts:
    """The body of :meth:`EmmResults.contrast <statsmodels_lmm_ext.EmmResults.contrast>`."""
    levels = parent.levels
    by = parent.by if isinstance(by, str) and by == "same" else _as_list(by)
    unknown = [b for b in by if b not in levels.columns]
    if unknown:
        raise ValueError(f"by= names {unknown} that are not columns of the means")
    keys = [c for c in levels.columns if c not in by]
    spec = _resolve(method)
    adjust_ = check_adjust(spec.adjust if adjust is None else adjust)
    blocks, labels, fams, start = [], [], [], 0
    for rows in _by_groups(levels, by):
        sub = levels.loc[rows, keys]
        names = [" ".join(str(v) for v in r) for r in sub.itertuples(index=False)]
        K, clab = spec.coefficients(names, ref=ref)
        Kfull = np.zeros((len(clab), len(levels)))
        Kfull[:, rows] = K
        blocks.append(Kfull)
        by_vals = levels.loc[rows[0], by].to_dict() if by else {}
        labels += [{"contrast": c, **by_vals} for c in clab]
        fams.append(
            Family(
                rows=np.arange(start, start + len(clab)),
                n_means=len(rows),
                pairwise=spec.pairwise,
            )
        )
        start += len(clab)
    K = np.vstack(blocks)
    L = K @ np.nan_to_num(parent.L)
    missing = ~np.isfinite(parent.L).all(axis=1)
    L[(K[:, missing] != 0).any(axis=1)] = np.nan  # involves a non-estimable mean
    labels = pd.DataFrame(labels, columns=["contrast", *by])
    notes = [n for n in parent.notes if n.startswith(("Results are averaged", "NOTE"))]
    return EmmContrasts(parent, labels, L, K, by, fams, notes, adjust_, spec)
