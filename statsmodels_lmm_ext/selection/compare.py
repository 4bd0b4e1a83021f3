"""The comparison table of several fits (nlme's ``anova(m1, m2, ...)`` with SAS's AICC).

One row per fit, in the order given: the structure, the method, the number of parameters,
the log-likelihood, AIC, AICC and BIC, and a likelihood-ratio test against the previous row.

Counting and criteria
---------------------
``n_params`` is nlme's ``logLik`` df: fixed effects + covariance parameters + ``sigma^2``
(parameters held fixed by ``fit(free=...)`` do not count).  With ``l`` the (REML or ML)
log-likelihood, ``k = n_params``, ``N`` the number of observations and ``p = rank(X)``::

    AIC  = -2 l + 2 k                                  (nlme, SAS with SAS's d)
    BIC  = -2 l + k log(N - p)   (REML),  log(N) (ML)  (nlme)
    AICC = -2 l + 2 d n* / (n* - d - 1)                 (SAS PROC MIXED)

where, as SAS PROC MIXED defines its "Information Criteria", ``d`` is the number of covariance
parameters (``sigma^2`` included) for REML and covariance parameters + ``p`` for ML, and
``n* = N - p`` for REML, ``N`` for ML (``n* = d + 2`` if smaller).  SAS's AICC thus uses its
own count ``d`` (for REML it leaves out the fixed effects, which nlme's AIC counts); the
differences between REML fits with the same fixed effects, the ones that may be compared, are
unaffected for AIC and BIC.  SAS also drops covariance parameters estimated on the boundary from
``d``; we count every estimated parameter.

Tests
-----
As nlme's ``anova.lme``, consecutive rows with different ``n_params`` are compared by
``LR = 2 (l_more - l_fewer)`` on ``|k_1 - k_2|`` df (``l_more``: the fit with more
parameters), and nesting of the covariance structures is left to the user (compound symmetry
and AR(1) are nested in unstructured; AR(1) and compound symmetry are not nested in each
other).  Unlike nlme, no test is given (and the ``note`` column says why) when REML fits have
different fixed effects (their REML likelihoods are not comparable) or when, for ML fits, the
fixed-effect column space of the smaller model is not contained in the larger one's.  Fits to
different data (number of rows or response), or by different methods, are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._display import NotedFrame
from .._threads import blas_threads
from ..adapters import Fitted, as_fitted
from ..bootstrap.comparison import with_method
from ..results import MixedLMResults

__all__ = ["compare", "comparison_table", "criteria", "structure_name"]

COLUMNS = [
    "structure",
    "method",
    "n_params",
    "llf",
    "aic",
    "aicc",
    "bic",
    "test",
    "lr_stat",
    "df",
    "pvalue",
    "note",
]


def structure_name(fit: Fitted) -> str:
    """A readable name of the covariance model: residual structure and random effects."""
    if fit.kind == "ols":
        return f"{type(fit.model).__name__} (independent residuals)"
    m = fit.lmm_model
    re = ", ".join(m.data.exog_re_names) if m.k_re else "none"
    vc = f"; vc: {', '.join(m.exog_vc.names)}" if m.k_vc else ""
    return f"{m.cov_struct!r}; random: {re}{vc}"


def _n_params(obj, fit: Fitted) -> int:
    res = getattr(obj, "_results", obj)
    if isinstance(res, MixedLMResults):
        return int(res.df_modelwc)  # parameters held fixed by fit(free=...) do not count
    return int(fit.npar)


def criteria(llf: float, k: int, nobs: int, rank_x: int, reml: bool) -> dict[str, float]:
    """AIC, AICC (SAS's definition) and BIC (nlme's) of one fit (module docstring)."""
    d = k - rank_x if reml else k
    nstar = max(nobs - rank_x if reml else nobs, d + 2)
    n_bic = nobs - rank_x if reml else nobs
    return {
        "aic": -2.0 * llf + 2.0 * k,
        "aicc": -2.0 * llf + 2.0 * d * nstar / (nstar - d - 1),
        "bic": -2.0 * llf + np.log(n_bic) * k,
    }


def _contains(big: np.ndarray, small: np.ndarray) -> bool:
    """Whether the columns of ``small`` lie in the column space of ``big``."""
    if small.shape[1] == 0 or (big.shape == small.shape and np.array_equal(big, small)):
        return True
    q, _ = np.linalg.qr(big)
    resid = small - q @ (q.T @ small)
    return bool(np.abs(resid).max() <= 1e-8 * max(1.0, np.abs(small).max()))


def _check_same_data(fits: list[Fitted], names: list[str]) -> None:
    first = fits[0]
    for name, f in zip(names[1:], fits[1:], strict=True):
        if f.nobs != first.nobs:
            raise ValueError(
                f"the fits use different data: {names[0]!r} has {first.nobs} rows and "
                f"{name!r} {f.nobs}; information criteria and likelihood-ratio tests compare "
                "fits to the same rows only"
            )
        diff = ~np.isclose(f.endog, first.endog, rtol=1e-10, atol=0.0)
        if diff.any():
            i = int(np.flatnonzero(diff)[0])
            raise ValueError(
                f"the fits have different responses: {names[0]!r} and {name!r} differ first "
                f"at row {i} ({first.endog[i]!r} vs {f.endog[i]!r}); compare fits of the same "
                "response, in the same row order"
            )


def _methods(fits: list[Fitted], names: list[str]) -> list[Fitted]:
    """All REML or all ML: OLS fits get their REML likelihood when the others are REML."""
    reml = {f.reml for f in fits if f.kind == "lmm"}
    if len(reml) > 1:
        pairs = zip(names, fits, strict=True)
        which = ", ".join(f"{n!r} ({'REML' if f.reml else 'ML'})" for n, f in pairs)
        raise ValueError(
            f"the fits use different methods: {which}; refit them all by REML (same fixed "
            "effects) or all by ML (reml=False)"
        )
    if reml == {True}:
        for name, f in zip(names, fits, strict=True):
            if f.kind == "ols" and type(f.model).__name__ != "OLS":
                raise ValueError(
                    f"{name!r} is a {type(f.model).__name__} fit: its REML likelihood is not "
                    "available; compare ML fits (reml=False) or fit it as a MixedLM"
                )
        return [with_method(f, True, "compare")[0] if f.kind == "ols" else f for f in fits]
    return fits


def _test_row(prev: Fitted, cur: Fitted, k_prev: int, k_cur: int, reml: bool, i: int):
    """``(test, lr_stat, df, pvalue, note)`` of row ``i`` against row ``i - 1``."""
    none = ("", np.nan, np.nan, np.nan)
    if k_prev == k_cur:
        return (*none, "same number of parameters: no test")
    (small, large) = (prev, cur) if k_prev < k_cur else (cur, prev)
    if reml:
        if not (_contains(small.exog, large.exog) and _contains(large.exog, small.exog)):
            return (*none, "REML fits with different fixed effects: no test (refit by ML)")
    elif not _contains(large.exog, small.exog):
        return (*none, "fixed effects not nested: no test")
    stat = 2.0 * (large.llf - small.llf)
    df = abs(k_cur - k_prev)
    note = ""
    if stat < 0:
        note = (
            "the fit with more parameters has the lower likelihood (not nested, or not at "
            "its maximum)"
        )
    pvalue = float(stats.chi2.sf(max(stat, 0.0), df))
    return (f"{i} vs {i + 1}", float(stat), float(df), pvalue, note)


def compare(*results, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Compare fitted models: information criteria and likelihood-ratio tests.

    Parameters
    ----------
    *results : fitted models
        Two or more fits (or one list of them) of the same response to the same rows, all by
        REML or all by ML: our :class:`~statsmodels_lmm_ext.MixedLMResults`, statsmodels
        ``MixedLMResults`` or statsmodels OLS results (an OLS fit gets its REML likelihood
        when the others are REML).
    names : sequence of str, optional
        Row labels (default ``"model 1"``, ``"model 2"``, ...).

    Returns
    -------
    DataFrame
        One row per fit, in the order given: ``structure`` (residual structure and random
        effects), ``method``, ``n_params`` (nlme's df), ``llf``, ``aic``, ``bic`` (nlme's),
        ``aicc`` (SAS's), and for each row after the first the likelihood-ratio test against
        the previous row: ``test`` (e.g. ``"1 vs 2"``), ``lr_stat``, ``df``, ``pvalue`` and a
        ``note`` when no test is given or the statistic is suspect.

    Notes
    -----
    See :mod:`statsmodels_lmm_ext.selection.compare` for the definitions.  As nlme's
    ``anova``, whether consecutive models are nested is left to the user; the chi-square
    p-value is conservative when the larger model adds a variance (a boundary value under the
    null hypothesis): see :func:`exact_rlrt` and :func:`pb_lrt`.

    Examples
    --------
    >>> cs = lmm.mixedlm("y ~ x", d, groups="id", re_formula="0",
    ...                  cov_struct=lmm.CompoundSymmetry()).fit()
    >>> un = lmm.mixedlm("y ~ x", d, groups="id", re_formula="0",
    ...                  cov_struct=lmm.Unstructured(time="visit")).fit()
    >>> lmm.compare(cs, un, names=["CS", "UN"])
    """
    if len(results) == 1 and isinstance(results[0], list | tuple):
        results = tuple(results[0])  # compare([res_a, res_b]) as well
    if len(results) < 2:
        raise ValueError(f"compare needs at least two fitted models; got {len(results)}")
    return comparison_table(results, names)


@blas_threads()
def comparison_table(results: Sequence, names: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`compare`'s table of one or more fits."""
    names = [f"model {i + 1}" for i in range(len(results))] if names is None else list(names)
    if len(names) != len(results) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(results)} distinct labels; got {names!r}")
    fits = [as_fitted(r) for r in results]
    _check_same_data(fits, names)
    fits = _methods(fits, names)
    reml = fits[0].reml
    ks = [_n_params(r, f) for r, f in zip(results, fits, strict=True)]
    rows = []
    for i, (f, k) in enumerate(zip(fits, ks, strict=True)):
        rank_x = int(np.linalg.matrix_rank(f.exog))
        row = {"structure": structure_name(f), "method": "REML" if reml else "ML", "n_params": k}
        row["llf"] = float(f.llf)
        row.update(criteria(f.llf, k, f.nobs, rank_x, reml))
        test = ("", np.nan, np.nan, np.nan, "")
        if i:
            test = _test_row(fits[i - 1], f, ks[i - 1], k, reml, i)
        row.update(dict(zip(("test", "lr_stat", "df", "pvalue", "note"), test, strict=True)))
        rows.append(row)
    out = NotedFrame(pd.DataFrame(rows, index=names, columns=COLUMNS))
    out.attrs["title"] = f"Model comparison ({'REML' if reml else 'ML'})"
    out.attrs["notes"] = [
        "aic, bic: nlme's (n_params counts fixed effects, covariance parameters and sigma^2; "
        "REML bic uses N - rank(X)); aicc: SAS PROC MIXED's",
        "likelihood-ratio tests against the previous row assume the models are nested",
    ]
    return out
