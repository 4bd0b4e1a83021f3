"""Estimates, covariance and df for rows of ``L``: one provider per kind of fitted model.

This is the only module of :mod:`statsmodels_lmm_ext.emmeans` that knows how a fitted model
is stored (our results, plain statsmodels ``MixedLMResults``, OLS/WLS/GLS results); the rest
of the package asks it for the statsmodels model (:func:`_model_of`) and for a
:class:`_Provider`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from statsmodels.regression.linear_model import RegressionResults

from ..adapters import _unwrap, as_fitted
from ..inference import Inference, check_ddf

__all__ = ["_Provider", "_model_of", "_provider"]


class _Provider:
    """``L beta``, its covariance and df, for one fitted model and one ddf method."""

    def __init__(
        self,
        beta,
        cov,
        df: Callable[[np.ndarray], np.ndarray],
        label: str | None,
        information_note: str = "",
    ):
        self.beta = np.asarray(beta, dtype=float)
        self.cov = np.asarray(cov, dtype=float)
        self._df = df
        self.label = label
        #: the notes' line on the information matrix behind the df ("" if none)
        self.information_note = information_note

    def estimate(self, L: np.ndarray):
        est = L @ self.beta
        se = np.sqrt(np.einsum("ia,ab,ib->i", L, self.cov, L))
        return est, se, self._df(L)


def _model_of(results):
    """The statsmodels model behind a fitted result (formula spec, data, design)."""
    return _unwrap(results).model


def _provider(results, ddf, information) -> _Provider:
    """The provider for ``results`` with ``ddf`` (a method name, a number or None: the
    default, Kenward-Roger for REML fits, Satterthwaite for ML fits, residual df for
    regressions)."""
    res = _unwrap(results)
    fixed_df = None
    if ddf is not None and not isinstance(ddf, str):
        fixed_df = float(ddf)
        if not fixed_df > 0:
            raise ValueError(f"ddf must be a method name or a positive number, not {ddf!r}")
    if isinstance(res, RegressionResults):
        return _regression_provider(res, ddf, fixed_df)
    try:
        vm = as_fitted(results).variance_model
    except TypeError:
        raise TypeError(
            "emmeans needs a fitted MixedLM (statsmodels_lmm_ext or statsmodels) or a "
            f"statsmodels OLS/WLS/GLS result, got {type(res).__name__}"
        ) from None
    if fixed_df is not None:
        inf = Inference(vm, "residual", None)
        return _Provider(vm.beta, inf.cov, lambda L: np.full(len(L), fixed_df), f"fixed ({ddf:g})")
    if ddf is None:
        ddf = "kenward-roger" if vm.reml else "satterthwaite"
    inf = Inference(vm, ddf, information)
    return _Provider(
        vm.beta, inf.cov, lambda L: inf.t(L, np.zeros(len(L)))[2], inf.ddf, inf.information_note
    )


def _regression_provider(res, ddf, fixed_df) -> _Provider:
    """OLS/WLS/GLS: residual df (or asymptotic, or a fixed number)."""
    name = None if ddf is None or fixed_df is not None else check_ddf(ddf).name
    if name not in (None, "residual", "asymptotic"):
        raise ValueError(
            f"ddf={ddf!r} applies to mixed models; a linear regression has residual df "
            "(ddf='residual', the default) or 'asymptotic'"
        )
    if fixed_df is None:
        asym = name == "asymptotic"
        fixed_df = np.inf if asym else float(res.df_resid)
        label = "asymptotic" if asym else None
    else:
        label = f"fixed ({ddf:g})"
    return _Provider(res.params, res.cov_params(), lambda L: np.full(len(L), fixed_df), label)
