"""Estimated marginal means: :func:`emmeans` and :class:`EmmResults`.

A marginal mean averages reference-grid rows (:mod:`.grid`) over the factors it does not
name; estimates, standard errors and degrees of freedom come from the chosen ddf method
(:mod:`.provider`), simultaneous inference from :mod:`statsmodels_lmm_ext.multiplicity`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from ..multiplicity import Family
from .contrasts import EmmContrasts, contrast_table
from .grid import _as_list, _by_groups, _cell_weights, _reference_grid
from .plot import plot_means
from .provider import _model_of, _provider
from .table import _LinearTable

__all__ = ["EmmResults", "emmeans"]


class EmmResults(_LinearTable):
    """Estimated marginal means.  Created by :func:`emmeans`.

    Attributes
    ----------
    estimate, se, df : ndarray
        The means, their standard errors and degrees of freedom.
    L : ndarray
        The linear functions of the fixed effects (one row per mean).
    levels : DataFrame
        The spec (and ``by``) levels of each row.
    """

    _est_name = "emmean"

    def __init__(self, results, levels, L, prov, specs, by, level, notes):
        self._model = _model_of(results)
        self.specs = list(specs)
        groups = _by_groups(levels, by)
        fams = [Family(rows=r, n_means=len(r)) for r in groups]
        super().__init__(
            levels, L, prov, by=by, families=fams, level=level, notes=notes, default_adjust="none"
        )
        self.levels = self.labels

    def summary_frame(
        self, adjust: str | None = None, level: float | None = None, infer=(True, False)
    ) -> pd.DataFrame:
        """The means: spec (and ``by``) columns, ``emmean``, ``se``, ``df``, ``lower``,
        ``upper``; with ``infer=(True, True)`` also ``t`` and ``p_value`` (of mean = 0).

        ``adjust`` makes the intervals (and tests) simultaneous within each ``by`` group.
        The notes printed with the table are in ``frame.attrs["notes"]``.
        """
        frame, notes = self._frame(adjust, level, tests=infer[1], cis=infer[0])
        frame.attrs["notes"] = notes
        return frame

    def contrast(
        self,
        method: str | Mapping[str, Sequence[float]] = "pairwise",
        adjust: str | None = None,
        *,
        by: str | Sequence[str] | None | object = "same",
        ref: int | str = 0,
    ) -> EmmContrasts:
        """Contrasts of the means within each ``by`` group.

        Parameters
        ----------
        method : str or dict
            ``"pairwise"`` (``a - b`` for every pair, in level order), ``"revpairwise"``,
            ``"trt.vs.ctrl"`` (each level minus the level ``ref``), ``"consec"`` (each level
            minus the previous), ``"poly"`` (orthogonal polynomials, integer coefficients as
            emmeans), ``"eff"`` (each mean minus the average of the means), or
            ``{name: weights}`` with one weight per mean of a ``by`` group.
        adjust : str, optional
            One of :data:`~statsmodels_lmm_ext.multiplicity.ADJUSTMENTS`; default per method
            as emmeans (:data:`CONTRAST_METHODS`).
        by : str or list, optional
            Grouping for the contrasts; default the grouping of the means.
        ref : int or str
            Control level (position or name) for ``"trt.vs.ctrl"``.
        """
        return contrast_table(self, method, adjust, by, ref)

    def pairs(self, adjust: str | None = None, *, reverse: bool = False, by="same"):
        """All pairwise differences within each ``by`` group (Tukey-adjusted by default)."""
        return self.contrast("revpairwise" if reverse else "pairwise", adjust, by=by)

    def cld(self, adjust: str = "tukey", alpha: float = 0.05, sort: bool = True):
        """Compact letter display of the pairwise comparisons: see :meth:`EmmContrasts.cld`."""
        return self.pairs(adjust).cld(alpha=alpha, sort=sort)

    def plot(self, ax=None, adjust: str | None = None, level: float | None = None):
        """Means with confidence intervals (matplotlib, an optional dependency)."""
        return plot_means(self, ax=ax, adjust=adjust, level=level)


def _parse_specs(specs, by) -> tuple[list[str], list[str]]:
    if isinstance(specs, str):
        s = specs.strip().lstrip("~").strip()
        if "|" in s:
            left, right = s.split("|", 1)
            specs = [v.strip() for v in re.split(r"[*+:]", left) if v.strip()]
            by = _as_list(by) + [v.strip() for v in re.split(r"[*+:]", right) if v.strip()]
        else:
            specs = [v.strip() for v in re.split(r"[*+:]", s) if v.strip()]
    specs, by = list(specs), _as_list(by)
    if not specs:
        raise ValueError("specs must name at least one variable")
    dup = set(specs) & set(by)
    if dup:
        raise ValueError(f"{sorted(dup)} appear in both specs and by")
    return specs, by


def emmeans(
    results,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    at: Mapping | None = None,
    weights: str = "equal",
    ddf: str | float | None = None,
    information: str | None = None,
    level: float = 0.95,
) -> EmmResults:
    """Estimated marginal means (least-squares means) of a fitted model.

    Parameters
    ----------
    results : fitted model
        Our MixedLM results, a plain ``smf.mixedlm`` result, or a statsmodels OLS/WLS/GLS
        result from a formula.
    specs : str or list of str
        The variables whose levels the means are for: ``"A"``, ``["A", "B"]``, or
        emmeans-style ``"A | B"`` / ``"~ A * B | C"``.
    by : str or list of str, optional
        Variables to group by: means (and their contrasts and adjustments) per ``by`` level.
    at : dict, optional
        Values for covariates (a number or a list: several values become a grid dimension)
        or a subset of a factor's levels.  Covariates default to their means.
    weights : {"equal", "proportional", "outer", "cells", "flat"}
        How grid cells are averaged over the factors not in ``specs``/``by``: equally
        (default, the lsmeans of SAS), in proportion to the observed marginal frequencies
        of the averaged-over factors, to the product of their one-way frequencies, to the
        cell counts, or equally over non-empty cells.
    ddf : str or float, optional
        Degrees of freedom: a method of :data:`~statsmodels_lmm_ext.DDF_METHODS` (default
        ``"kenward-roger"`` for REML fits, whose SEs then come from the adjusted covariance,
        and ``"satterthwaite"`` for ML fits; residual df for linear regressions), or a number.
    information : {"observed", "expected"}, optional
        Information matrix for Satterthwaite/Kenward-Roger (see :func:`~statsmodels_lmm_ext.
        t_test`).
    level : float
        Confidence level.

    Returns
    -------
    EmmResults

    Notes
    -----
    For grid rows ``x_g'`` (design rows of the reference grid) and weights ``w`` over the
    cells being averaged, a mean is ``l' beta`` with ``l = sum_g w_g x_g``; its standard error
    is ``sqrt(l' C l)`` with ``C`` the (Kenward-Roger adjusted) covariance of ``beta``.
    A mean whose ``l`` is not in the row space of ``X`` is not estimable and is NaN.

    References
    ----------
    Searle, S. R., Speed, F. M. and Milliken, G. A. (1980). Population marginal means in the
    linear model: an alternative to least squares means. The American Statistician 34,
    216-221.
    Lenth, R. V. (2016). Least-squares means: the R package lsmeans. Journal of Statistical
    Software 69(1).
    """
    specs, by = _parse_specs(specs, by)
    prov = _provider(results, ddf, information)
    g = _reference_grid(_model_of(results), at)
    keys = specs + by
    unknown = [v for v in keys if v not in g.levels]
    if unknown:
        raise ValueError(
            f"{unknown} are not factors of the model (nor covariates given several at= values); "
            f"grid variables: {list(g.levels)}"
        )
    means, W = _cell_weights(g, keys, weights)
    L = W @ g.X
    other = [v for v in g.factors if v not in keys]
    notes = []
    if other:
        notes.append(f"Results are averaged over the levels of: {', '.join(other)}")
        if any(c & set(keys) and c & set(other) for c in g.column_vars):
            notes.append("NOTE: Results may be misleading due to involvement in interactions")
    return EmmResults(results, means, L, prov, specs, by, level, notes)
