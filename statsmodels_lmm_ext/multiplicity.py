"""Multiplicity adjustments of t tests and confidence intervals for families of estimates.

One registry, :data:`ADJUSTMENTS`, owns the methods.  Each adjusts the two-sided p-values of a
family of ``m`` t statistics and gives the critical value ``c`` of the simultaneous confidence
intervals ``estimate +- c * se`` at the same level, following R's emmeans (Lenth 2024) so that
tables agree with it:

==============  =============================================================================
``none``        ``p = 2 P(T_nu > |t|)``; ``c = t_{1-alpha/2; nu}``
``tukey``       pairwise comparisons of ``k`` means (Tukey-Kramer):
                ``p = P(Q_{k,nu} > sqrt(2) |t|)``; ``c = q_{1-alpha; k,nu} / sqrt(2)``
``scheffe``     ``p = P(F_{r,nu} > t^2 / r)``; ``c = sqrt(r F_{1-alpha; r,nu})``, ``r`` = rank
                of the family's linear functions
``sidak``       ``p = 1 - (1 - p_unadj)^m``; ``c = t_{(1 + (1-alpha)^(1/m))/2; nu}``
``bonferroni``  ``p = min(1, m p_unadj)``; ``c = t_{1 - alpha/(2m); nu}``
``holm``        step-down Bonferroni p-values; Bonferroni intervals (as emmeans)
``fdr``         Benjamini-Hochberg p-values; Bonferroni intervals (as emmeans)
``mvt``         exact simultaneous inference from the multivariate t distribution of the
                family's t statistics (their correlation from the estimates' covariance):
                ``p = 1 - P(max_i |T_i| < |t|)`` and ``c`` with ``P(max_i |T_i| < c) = 1-alpha``
``dunnett``     alias of ``mvt`` (exact for comparisons with a control)
``dunnettx``    emmeans' closed-form approximation to Dunnett's distribution
==============  =============================================================================

Tukey's method applies only to one family of pairwise comparisons: asked of anything else it
switches to Sidak and says so, as emmeans does.  A family of one estimate is never adjusted
(except by Scheffe).

References
----------
Lenth, R. V. (2024). emmeans: Estimated Marginal Means, aka Least-Squares Means. R package.
Hothorn, T., Bretz, F. and Westfall, P. (2008). Simultaneous inference in general parametric
models. Biometrical Journal 50, 346-363.
Genz, A. and Bretz, F. (2009). Computation of Multivariate Normal and t Probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

__all__ = ["ADJUSTMENTS", "Family", "AdjustedInference", "adjust", "check_adjust"]

#: adjustment methods: name -> description (the one registry of adjustments)
ADJUSTMENTS: dict[str, str] = {
    "none": "no adjustment",
    "tukey": "Tukey-Kramer (studentized range), pairwise comparisons only",
    "scheffe": "Scheffe (F on the rank of the family)",
    "sidak": "Sidak",
    "bonferroni": "Bonferroni",
    "holm": "Holm step-down p-values, Bonferroni intervals",
    "fdr": "Benjamini-Hochberg false discovery rate p-values, Bonferroni intervals",
    "mvt": "multivariate t (exact simultaneous inference; quasi-Monte Carlo integration)",
    "dunnett": "multivariate t (exact Dunnett for comparisons with a control)",
    "dunnettx": "emmeans' approximation to Dunnett's distribution",
}

_ALIASES = {"bonf": "bonferroni", "fdr_bh": "fdr", "bh": "fdr", "dunnett": "mvt"}
# p-value methods whose intervals are Bonferroni intervals (emmeans' convention)
_STEPWISE = {"holm": "holm", "fdr": "fdr_bh"}


def check_adjust(adjust: str | None) -> str:
    """Validate an adjustment name; ``None`` means ``"none"``."""
    if adjust is None:
        return "none"
    key = str(adjust).lower()
    if key not in ADJUSTMENTS and key not in _ALIASES:
        raise ValueError(f"unknown adjustment {adjust!r}; choose one of {list(ADJUSTMENTS)}")
    return key


@dataclass
class Family:
    """One family of simultaneous inferences.

    Parameters
    ----------
    rows : ndarray of int
        Positions of the family's estimates in the table.
    n_means : int, optional
        Number of means compared, for a family of pairwise comparisons (Tukey).
    pairwise : bool
        True for the set of all pairwise comparisons of ``n_means`` means.
    rank : int
        Rank of the family's linear functions (Scheffe).
    corr : ndarray, optional
        Correlation matrix of the family's estimates (multivariate t).
    """

    rows: np.ndarray
    n_means: int | None = None
    pairwise: bool = False
    rank: int = 1
    corr: np.ndarray | None = None


@dataclass
class AdjustedInference:
    """p-values and critical values of a table, with the methods actually used."""

    pvalues: np.ndarray
    crit: np.ndarray
    method: str
    ci_method: str
    notes: list[str] = field(default_factory=list)


def _unadjusted(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    return 2 * stats.t.sf(np.abs(t), df)


@lru_cache(maxsize=512)
def _tukey_crit(level: float, k: float, df: float) -> float:
    return float(stats.studentized_range.ppf(level, k, df)) / np.sqrt(2)


def _tukey_crits(level: float, k: float, df: np.ndarray, n_nodes: int = 7) -> np.ndarray:
    """Tukey critical values for many df at once.

    Each ``studentized_range.ppf`` costs ~0.15 s, and Satterthwaite/KR tables can have a
    different df on every row.  The quantile is smooth in ``1/df``: with more distinct df than
    nodes, it is interpolated by a polynomial through ``n_nodes`` Chebyshev nodes in ``1/df``
    and checked at two extra exact points; if either is off by more than 1e-9 (relative),
    every row is computed exactly.  scipy uses the infinite-df distribution from df = 1e5 on,
    so those rows get that value directly.
    """
    out = np.full(len(df), np.nan)
    big = df >= 1e5
    out[big] = _tukey_crit(level, k, np.inf)
    ok = (df > 0) & ~big
    u = np.unique(np.round(df[ok], 9))
    if len(u) <= n_nodes + 2:
        out[ok] = [_tukey_crit(level, k, float(round(d, 9))) for d in df[ok]]
        return out
    lo, hi = 1 / u.max(), 1 / u.min()
    cheb = np.cos((2 * np.arange(n_nodes) + 1) * np.pi / (2 * n_nodes))
    x = (lo + hi) / 2 + (hi - lo) / 2 * cheb
    coef = np.polyfit(x - x.mean(), [_tukey_crit(level, k, 1 / xi) for xi in x], n_nodes - 1)
    checks = [(x[0] + x[1]) / 2, (x[n_nodes // 2] + x[n_nodes // 2 + 1]) / 2]
    err = max(
        abs(np.polyval(coef, c - x.mean()) / _tukey_crit(level, k, 1 / c) - 1) for c in checks
    )
    if err > 1e-9:
        out[ok] = [_tukey_crit(level, k, float(d)) for d in df[ok]]
    else:
        out[ok] = np.polyval(coef, 1 / df[ok] - x.mean())
    return out


def _pdunnx(x: np.ndarray, k: int, df: np.ndarray) -> np.ndarray:
    """emmeans' ``.pdunnx``: a weighted mix of a Tukey and a Sidak bound for ``k`` contrasts."""
    twt = (k - 1) / k
    tukey = stats.studentized_range.cdf(np.sqrt(2) * x, (1 + np.sqrt(1 + 8 * k)) / 2, df)
    sidak = stats.f.cdf(x**2, 1, df) ** k
    return twt * tukey + (1 - twt) * sidak


def _qdunnx(level: float, k: int, df: float) -> float:
    if k < 1.005:
        return float(stats.t.ppf(1 - (1 - level) / 2, df))
    lo = _tukey_crit(level, (1 + np.sqrt(1 + 8 * k)) / 2, df)
    hi = float(np.sqrt(stats.f.ppf(level ** (1 / k), 1, df)))
    if abs(hi - lo) < 1e-12:
        return lo
    a, b = min(lo, hi), max(lo, hi)
    return float(optimize.brentq(lambda x: _pdunnx(x, k, df) - level, a * 0.999, b * 1.001))


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
    from scipy.stats import qmc

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
    from scipy.special import ndtr, ndtri

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


def _mvt_family(t, df, corr, level):
    """p-values and critical values for one family, each row with its own df (as emmeans)."""
    C = _mvt_factor(corr)
    p = np.full(len(t), np.nan)
    crit = np.full(len(t), np.nan)
    for nu in np.unique(df[df > 0]):
        rows = df == nu
        p[rows] = [1 - _mvt_cdf(abs(x), C, nu) for x in t[rows]]
        lo = float(stats.t.ppf(1 - (1 - level) / 2, nu))
        hi = float(stats.t.ppf(1 - (1 - level) / (2 * len(t)), nu)) * 1.05
        crit[rows] = optimize.brentq(
            lambda c, nu=nu: _mvt_cdf(c, C, nu) - level, lo, hi, xtol=1e-8
        )
    return p, crit


def adjust(
    t,
    df,
    families: list[Family],
    method: str | None = "none",
    level: float = 0.95,
) -> AdjustedInference:
    """Adjust two-sided t tests and confidence intervals for multiplicity.

    Parameters
    ----------
    t, df : array_like
        t statistics and their (per-row) degrees of freedom; ``inf`` for normal inference.
    families : list of Family
        The families within which the adjustment applies (emmeans: one per ``by`` group).
    method : str
        One of :data:`ADJUSTMENTS`.
    level : float
        Confidence level of the intervals.
    Returns
    -------
    AdjustedInference
        ``pvalues`` and per-row critical values ``crit`` (interval = estimate +- crit * se),
        the methods used for p-values and intervals and the notes to print with the table.
    """
    t = np.asarray(t, dtype=float)
    df = np.asarray(df, dtype=float)
    method = check_adjust(method)
    method = _ALIASES.get(method, method)
    notes: list[str] = []
    sizes = [len(f.rows) for f in families]
    if method == "tukey" and not all(f.pairwise for f in families):
        notes.append(
            'Note: adjust = "tukey" was changed to "sidak" because "tukey" is only appropriate '
            "for one set of pairwise comparisons"
        )
        method = "sidak"
    if method != "scheffe" and max(sizes, default=0) <= 1:
        method = "none"
    ci_method = "bonferroni" if method in _STEPWISE else method
    p_raw = _unadjusted(t, df)
    p = np.full(len(t), np.nan)
    crit = np.full(len(t), np.nan)
    for fam in families:
        r = np.asarray(fam.rows, dtype=int)
        m = len(r)
        tt, nu, pr = t[r], df[r], p_raw[r]
        if method == "none" or m == 1 and method != "scheffe":
            p[r] = pr
        elif method == "tukey":
            p[r] = stats.studentized_range.sf(np.sqrt(2) * np.abs(tt), fam.n_means, nu)
        elif method == "scheffe":
            p[r] = stats.f.sf(tt**2 / fam.rank, fam.rank, nu)
        elif method == "sidak":
            p[r] = 1 - (1 - pr) ** m
        elif method == "bonferroni":
            p[r] = np.minimum(1.0, m * pr)
        elif method in _STEPWISE:
            from statsmodels.stats.multitest import multipletests

            ok = np.isfinite(pr)
            out = np.full(m, np.nan)
            if ok.any():
                out[ok] = multipletests(pr[ok], method=_STEPWISE[method])[1]
            p[r] = out
        elif method == "dunnettx":
            p[r] = 1 - _pdunnx(np.abs(tt), m, nu)
        elif method == "mvt":
            p[r], crit[r] = _mvt_family(tt, nu, fam.corr, level)
        # critical values
        if method == "mvt" and m > 1:
            continue
        if ci_method == "tukey" and m > 1:
            crit[r] = _tukey_crits(level, fam.n_means, nu)
            continue
        for i, row in enumerate(r):
            crit[row] = _critical(ci_method if m > 1 else "none", level, m, nu[i], fam)
    p = np.clip(p, 0.0, 1.0)
    if method != "none":
        what = _family_words(method, families)
        notes.append(f"P value adjustment: {method} method {what}")
    if ci_method != "none":
        what = _family_words(ci_method, families).replace("tests", "estimates")
        notes.append(f"Conf-level adjustment: {ci_method} method {what}")
    return AdjustedInference(p, crit, method, ci_method, notes)


def _critical(method: str, level: float, m: int, nu: float, fam: Family) -> float:
    if not nu > 0:
        return np.nan
    if method == "none":
        return float(stats.t.ppf(1 - (1 - level) / 2, nu))
    if method == "tukey":
        return _tukey_crit(level, fam.n_means, float(nu))
    if method == "scheffe":
        return float(np.sqrt(fam.rank * stats.f.ppf(level, fam.rank, nu)))
    if method == "sidak":
        return float(stats.t.ppf(1 - (1 - level ** (1 / m)) / 2, nu))
    if method == "bonferroni":
        return float(stats.t.ppf(1 - (1 - level) / (2 * m), nu))
    if method == "dunnettx":
        return _qdunnx(level, m, float(nu))
    raise AssertionError(method)


def _family_words(method: str, families: list[Family]) -> str:
    sizes = sorted({len(f.rows) for f in families})
    if method == "tukey":
        k = sorted({f.n_means for f in families})
        return f"for comparing a family of {_join(k)} estimates"
    if method == "scheffe":
        return f"with rank {_join(sorted({f.rank for f in families}))}"
    return f"for {_join(sizes)} tests"


def _join(values) -> str:
    return " / ".join(str(v) for v in values)
