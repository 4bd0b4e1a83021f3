"""Single-step adjustments with closed forms: none, Tukey, Scheffe, Sidak and Bonferroni.

Each adjusts the family's p-values by one formula and gives the critical value of the
simultaneous intervals at the same level, so that an interval excludes 0 exactly when the
p-value is below ``1 - level``.  Also the Tukey quantiles for many df (:func:`_tukey_crits`),
which Satterthwaite and Kenward-Roger tables need on every row.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats

from .base import Adjustment, _join, _unadjusted, register


@register
class NoAdjustment(Adjustment):
    """``p = 2 P(T_nu > |t|)``; ``c = t_{1-alpha/2; nu}``."""

    name = "none"
    description = "no adjustment"

    def pvalues(self, t, df, family):
        return _unadjusted(t, df)

    def critical(self, df, family, level):
        return stats.t.ppf(1 - (1 - level) / 2, df)


@register
class Tukey(Adjustment):
    """Tukey-Kramer for the pairwise comparisons of ``k`` means, each row with its own df
    (as emmeans): ``p = P(Q_{k,nu} > sqrt(2) |t|)``; ``c = q_{1-alpha; k,nu} / sqrt(2)``."""

    name = "tukey"
    description = "Tukey-Kramer (studentized range), pairwise comparisons only"
    non_pairwise = "sidak"

    def pvalues(self, t, df, family):
        return stats.studentized_range.sf(np.sqrt(2) * np.abs(t), family.n_means, df)

    def critical(self, df, family, level):
        return _tukey_crits(level, family.n_means, df)

    def family_words(self, families):
        k = sorted({f.n_means for f in families})
        return f"for comparing a family of {_join(k)} estimates"


@register
class Scheffe(Adjustment):
    """``p = P(F_{r,nu} > t^2 / r)``; ``c = sqrt(r F_{1-alpha; r,nu})``, ``r`` the rank of
    the family's linear functions.  The p-value of a family of one estimate is adjusted too
    (``r`` may exceed 1); its interval is the unadjusted one."""

    name = "scheffe"
    description = "Scheffe (F on the rank of the family)"
    adjusts_single = True

    def pvalues(self, t, df, family):
        return stats.f.sf(t**2 / family.rank, family.rank, df)

    def critical(self, df, family, level):
        return np.sqrt(family.rank * stats.f.ppf(level, family.rank, df))

    def family_words(self, families):
        return f"with rank {_join(sorted({f.rank for f in families}))}"


@register
class Sidak(Adjustment):
    """``p = 1 - (1 - p_unadj)^m``; ``c = t_{(1 + (1-alpha)^(1/m))/2; nu}``."""

    name = "sidak"
    description = "Sidak"

    def pvalues(self, t, df, family):
        return 1 - (1 - _unadjusted(t, df)) ** len(family.rows)

    def critical(self, df, family, level):
        return stats.t.ppf(1 - (1 - level ** (1 / len(family.rows))) / 2, df)


@register
class Bonferroni(Adjustment):
    """``p = min(1, m p_unadj)``; ``c = t_{1 - alpha/(2m); nu}``."""

    name = "bonferroni"
    description = "Bonferroni"
    aliases = ("bonf",)

    def pvalues(self, t, df, family):
        return np.minimum(1.0, len(family.rows) * _unadjusted(t, df))

    def critical(self, df, family, level):
        return stats.t.ppf(1 - (1 - level) / (2 * len(family.rows)), df)


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
