"""Adjustments from the multivariate t distribution of a family's t statistics.

``mvt`` (listed also as ``dunnett``) integrates that distribution, with the correlation of
the family's estimates, by Genz's separation of variables over fixed scrambled Sobol points:
``p = 1 - P(max_i |T_i| < |t|)`` and ``c`` with ``P(max_i |T_i| < c) = 1 - alpha``, each row
with its own df (as emmeans).  ``dunnettx`` is emmeans' closed-form approximation to
Dunnett's distribution.

References
----------
Genz, A. and Bretz, F. (2009). Computation of Multivariate Normal and t Probabilities.
Lecture Notes in Statistics 195. Springer.
Hothorn, T., Bretz, F. and Westfall, P. (2008). Simultaneous inference in general parametric
models. Biometrical Journal 50, 346-363.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import optimize, stats
from scipy.special import ndtr, ndtri
from scipy.stats import qmc

from .base import Adjustment, register
from .single_step import _tukey_crit


def _pivotless_cholesky(corr: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Lower factor ``C`` with ``C C' = corr`` for a PSD ``corr``; a row that depends on the
    earlier ones gets a zero diagonal (its variable is a function of the earlier ones)."""
    m = corr.shape[0]
    C = np.zeros((m, m))
    for i in range(m):
        r = corr[i, i] - C[i, :i] @ C[i, :i]
        if r > tol:
            C[i, i] = np.sqrt(r)
            C[i + 1 :, i] = (corr[i + 1 :, i] - C[i + 1 :, :i] @ C[i, :i]) / C[i, i]
    return C


@lru_cache(maxsize=64)
def _qmc_points(d: int, n: int, seed: int) -> np.ndarray:
    return qmc.Sobol(d, scramble=True, seed=seed).random(n)


def _mvt_factor(corr: np.ndarray) -> tuple[np.ndarray, int]:
    """Cholesky factor of ``corr`` with its linearly independent variables first: returns
    ``(C, r)``, the first ``r`` rows having positive diagonals, the others depending on them."""
    C = _pivotless_cholesky(corr)
    basis = np.flatnonzero(np.diag(C) > 0)
    order = np.r_[basis, np.setdiff1d(np.arange(len(corr)), basis)]
    return _pivotless_cholesky(corr[np.ix_(order, order)]), len(basis)


def _mvt_cdf(c: float, factor, df: float, n: int = 2**15, seed: int = 0) -> float:
    """``P(max_i |T_i| < c)`` for a central multivariate t with correlation ``C C'``.

    Genz's separation of variables (Genz and Bretz 2009, ch. 4) over scrambled Sobol points.
    Families of comparisons are often singular (all pairwise differences of k means have rank
    k - 1): the dependent variables are linear in the independent ones, so their constraints
    are intersected with the last independent variable's interval and integrated exactly,
    which keeps the integrand smooth.  The points are fixed by ``seed``, so the probability is
    a smooth, deterministic function of ``c``.
    """
    C, r = factor
    m = C.shape[0]
    u = _qmc_points(r + 1, n, seed)
    # T = Z / s with s = sqrt(W / df): the box for Z is (-c s, c s)
    s = np.sqrt(stats.chi2.ppf(u[:, 0], df) / df) if np.isfinite(df) else np.ones(n)
    lim = c * np.maximum(s, 1e-300)
    y = np.zeros((n, r))
    f = np.ones(n)
    for i in range(r):
        shift = y[:, :i] @ C[i, :i]
        lo = (-lim - shift) / C[i, i]
        hi = (lim - shift) / C[i, i]
        if i == r - 1:
            for k in range(r, m):
                sk = y[:, :i] @ C[k, :i]
                ck = C[k, i]
                if abs(ck) > 1e-12:
                    a, b = (-lim - sk) / ck, (lim - sk) / ck
                    lo = np.maximum(lo, np.minimum(a, b))
                    hi = np.minimum(hi, np.maximum(a, b))
                else:
                    f *= np.abs(sk) < lim
            hi = np.maximum(hi, lo)
        plo, phi = ndtr(lo), ndtr(hi)
        f *= phi - plo
        if i < r - 1:
            y[:, i] = ndtri(np.clip(plo + u[:, i + 1] * (phi - plo), 1e-16, 1 - 1e-16))
    return float(np.clip(f.mean(), 0.0, 1.0))


@register
class MultivariateT(Adjustment):
    """Exact simultaneous inference from the multivariate t distribution of the family's t
    statistics (correlation ``family.corr``), by quasi-Monte Carlo integration."""

    name = "mvt"
    description = "multivariate t (exact simultaneous inference; quasi-Monte Carlo integration)"

    def pvalues(self, t, df, family):
        factor = _mvt_factor(family.corr)
        p = np.full(len(t), np.nan)
        for nu in np.unique(df[df > 0]):
            rows = df == nu
            p[rows] = [1 - _mvt_cdf(abs(x), factor, nu) for x in t[rows]]
        return p

    def critical(self, df, family, level):
        factor = _mvt_factor(family.corr)
        m = len(family.rows)
        crit = np.full(len(df), np.nan)
        for nu in np.unique(df[df > 0]):
            # bracketed by the unadjusted and (a little beyond) the Bonferroni quantile
            lo = float(stats.t.ppf(1 - (1 - level) / 2, nu))
            hi = float(stats.t.ppf(1 - (1 - level) / (2 * m), nu)) * 1.05
            crit[df == nu] = optimize.brentq(
                lambda c, nu=nu: _mvt_cdf(c, factor, nu) - level, lo, hi, xtol=1e-8
            )
        return crit


@register
class Dunnett(MultivariateT):
    """The ``mvt`` method under Dunnett's name: exact for comparisons with a control.  Tables
    report it as ``mvt``."""

    name = "dunnett"
    description = "multivariate t (exact Dunnett for comparisons with a control)"
    alias_of = "mvt"


def _pdunnx(x: np.ndarray, k: int, df: np.ndarray) -> np.ndarray:
    """emmeans' ``.pdunnx``: a weighted mix of a Tukey and a Sidak bound for ``k`` contrasts."""
    twt = (k - 1) / k
    tukey = stats.studentized_range.cdf(np.sqrt(2) * x, (1 + np.sqrt(1 + 8 * k)) / 2, df)
    sidak = stats.f.cdf(x**2, 1, df) ** k
    return twt * tukey + (1 - twt) * sidak


def _qdunnx(level: float, k: int, df: float) -> float:
    """emmeans' ``.qdunnx``: the quantile of :func:`_pdunnx`, bracketed by its two bounds."""
    if k < 1.005:
        return float(stats.t.ppf(1 - (1 - level) / 2, df))
    lo = _tukey_crit(level, (1 + np.sqrt(1 + 8 * k)) / 2, df)
    hi = float(np.sqrt(stats.f.ppf(level ** (1 / k), 1, df)))
    if abs(hi - lo) < 1e-12:
        return lo
    a, b = min(lo, hi), max(lo, hi)
    return float(optimize.brentq(lambda x: _pdunnx(x, k, df) - level, a * 0.999, b * 1.001))


@register
class DunnettX(Adjustment):
    """emmeans' ``dunnettx``: for ``m`` comparisons with a control, a mix of Tukey's
    distribution for ``(1 + sqrt(1 + 8m)) / 2`` means and the Sidak bound, weighted
    ``(m - 1) / m`` and ``1 / m``."""

    name = "dunnettx"
    description = "emmeans' approximation to Dunnett's distribution"

    def pvalues(self, t, df, family):
        return 1 - _pdunnx(np.abs(t), len(family.rows), df)

    def critical(self, df, family, level):
        m = len(family.rows)
        return np.array([_qdunnx(level, m, float(nu)) if nu > 0 else np.nan for nu in df])
