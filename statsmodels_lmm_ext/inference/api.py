"""Public small-sample inference for any fitted model: ours, or statsmodels' MixedLM results
(adapted by :func:`statsmodels_lmm_ext.adapters.as_fitted`).

Denominator-df methods are the objects of :data:`~statsmodels_lmm_ext.inference.ddf.DDF_METHODS`
(``"satterthwaite"``, ``"kenward-roger"``, ``"kenward-roger-linear"``, ``"residual"``,
``"asymptotic"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._display import with_notes
from ..adapters import as_fitted
from . import contrasts
from .contrasts import FTest, Inference, check_L, restriction_matrix

__all__ = [
    "KRCovariance",
    "KRTestResult",
    "anova",
    "f_test",
    "kenward_roger",
    "kenward_roger_test",
    "t_test",
    "variance_model",
]


def variance_model(results):
    """The :class:`VarianceModel` of a fitted model (ours or a statsmodels MixedLM result)."""
    return as_fitted(results).variance_model


def t_test(results, r_matrix, ddf: str = "satterthwaite", information: str | None = None):
    """t tests of ``L beta = q`` with small-sample df, one per row of ``L``.

    Parameters
    ----------
    results : MixedLMResults (ours or statsmodels')
    r_matrix : array_like (q, k_fe), str or tuple
        Contrast rows on the fixed effects, a constraint string such as ``"age = 0"``, or
        ``(L, q)``.
    ddf : str
        One of :data:`~statsmodels_lmm_ext.DDF_METHODS`.  With Kenward-Roger the SEs come
        from the adjusted covariance ``Phi_A``.
    information : {"observed", "expected"}, optional
        For ``W = Cov(theta_hat)``; the default follows the reference software of the method
        and the model's class (``DDF_METHODS[ddf].information(None, vm)``): observed for
        Satterthwaite (lmerTest, SAS); for Kenward-Roger expected on models with independent
        residuals (pbkrtest, lmerTest) and observed on models with a residual structure
        (SAS PROC MIXED, mmrm).

    Returns
    -------
    ContrastTest
        statsmodels ``ContrastResults`` with per-row ``df_denom``, ``valid`` and ``reason``.
    """
    f = as_fitted(results)
    return contrasts.t_test(f.variance_model, f.fe_names, r_matrix, ddf, information)


def f_test(results, r_matrix, ddf: str = "satterthwaite", information: str | None = None):
    """F test of ``L beta = q`` with small-sample denominator df.

    Satterthwaite: ``F = (L b)'(L Phi L')^-1 (L b) / q`` with the ddf of Fai and Cornelius
    (1996).  Kenward-Roger: the scaled statistic ``lambda F`` with ``Phi_A`` and ``m`` df
    (Kenward and Roger 1997); the unscaled F is ``result.fvalue_unscaled``.  Undefined df give
    an invalid result (``valid`` False, ``reason``) with NaN df and a ``DDFWarning``.
    """
    f = as_fitted(results)
    return contrasts.f_test(f.variance_model, f.fe_names, r_matrix, ddf, information)


def anova(results, ddf: str = "satterthwaite", information: str | None = None):
    """Type III ANOVA table: one F test per model term (the intercept excepted).

    Hypotheses as lmerTest's ``anova(type = 3)`` and SAS's Type III tests; they do not depend
    on the contrast coding of the factors.

    Returns
    -------
    AnovaTable
        A DataFrame indexed by term, with columns ``num_df``, ``den_df``, ``F``, ``PR(>F)``;
        ``table.tests[term]`` is the row's :class:`FTest`.
    """
    f = as_fitted(results)
    return contrasts.anova(f.variance_model, f.model, ddf, information)


class KRCovariance:
    """Kenward-Roger adjusted covariance of the fixed effects (``pbkrtest::vcovAdj``)."""

    def __init__(self, results, information: str | None = None, linear: bool = False):
        f = as_fitted(results)
        inf = Inference(
            f.variance_model, "kenward-roger-linear" if linear else "kenward-roger", information
        )
        self.information = inf.information
        self.names = list(f.fe_names)
        self._cov = inf.cov
        self.unadjusted = inf.vm.Phi

    def cov_params(self) -> pd.DataFrame:
        """The adjusted covariance ``Phi_A`` as a labelled DataFrame."""
        return pd.DataFrame(self._cov, index=self.names, columns=self.names)

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self.names)


def kenward_roger(results, information: str | None = None, linear: bool = False):
    """The Kenward-Roger adjusted covariance of beta (``.cov_params()``, ``.bse``)."""
    return KRCovariance(results, information=information, linear=linear)


class KRTestResult(FTest):
    """Kenward-Roger F test of nested fixed effects (``pbkrtest::KRmodcomp``).

    Attributes
    ----------
    fvalue : float
        Scaled F statistic ``lambda * F`` (also ``statistic``).
    fvalue_unscaled : float
    df_num, df_denom : float
    scaling : float
        ``lambda``.
    pvalue, pvalue_unscaled : float
    valid, reason
        Whether the df are defined, and why not.
    """

    title = "Kenward-Roger F test of nested fixed effects"

    def summary_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "F": [self.fvalue, self.fvalue_unscaled],
                "num_df": [self.df_num] * 2,
                "den_df": [self.df_denom] * 2,
                "scaling": [self.scaling, np.nan],
                "PR(>F)": [self.pvalue, self.pvalue_unscaled],
            },
            index=["Ftest", "FtestU"],
        )

    def __str__(self):
        out = f"{self.title}\n" + self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}")
        return with_notes(out, None, self._notes())

    __repr__ = __str__


def kenward_roger_test(large, small, information: str | None = None) -> KRTestResult:
    """Kenward-Roger F test of the fixed effects of ``large`` absent from ``small``.

    As ``pbkrtest::KRmodcomp(large, small)``: the restriction ``L beta = 0`` that turns the
    large model's mean into the small one's is tested with the large model's REML fit;
    ``small`` may be a fitted model with the same data or an ``L`` matrix.  ML fits are refused
    (Kenward-Roger is defined for REML): refit with ``reml=True``.
    """
    big = as_fitted(large)
    if isinstance(small, np.ndarray | list):
        L = check_L(small, big.k_fe)
    else:
        sm = as_fitted(small)
        if not (getattr(big.model, "keeps_rows", True) and getattr(sm.model, "keeps_rows", True)):
            raise NotImplementedError(
                "a small model fitted without its rows (a Dask DataFrame) cannot give the "
                "restriction; pass the restriction matrix L instead: kenward_roger_test(large, L)"
            )
        if sm.nobs != big.nobs:
            raise ValueError(f"the models use different data ({big.nobs} vs {sm.nobs} rows)")
        L = restriction_matrix(np.asarray(big.model.exog), np.asarray(sm.model.exog))
    inf = Inference(big.variance_model, "kenward-roger", information)
    return KRTestResult(
        inf.f(L, np.zeros(L.shape[0])), inf.ddf, inf.information, inf.information_note
    )
