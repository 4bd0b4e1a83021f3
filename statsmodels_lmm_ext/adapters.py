"""One internal view of every fitted model the public functions accept.

:func:`as_fitted` turns

* our :class:`~statsmodels_lmm_ext.MixedLMResults` (or its wrapper),
* a statsmodels ``MixedLMResults`` (independent residuals: our :class:`MixedLM` is rebuilt from
  the statsmodels model once, and its engine answers every question about it),
* a statsmodels ``RegressionResults`` of OLS, WLS or GLS

into a :class:`Fitted`: estimates, designs, the likelihood engine, the covariance parameters and
the :class:`~statsmodels_lmm_ext.inference.VarianceModel`, whatever the source.  Fitted views
are memoised in a :class:`weakref.WeakKeyDictionary` keyed by the results object: nothing is
written onto the user's objects, and a view lives no longer than its results.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.regression import mixed_linear_model as sm_mlm
from statsmodels.regression.linear_model import GLS, WLS, RegressionResults

from ._engine import Engine
from ._lazy_exog import fe_design
from .covstruct import CovStruct, Independence
from .inference import VarianceModel
from .model import MixedLM
from .params import CovParams
from .results import MixedLMResults

__all__ = ["Fitted", "as_fitted"]

#: fitted views by results object (the unwrapped one); entries vanish with their results
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_ACCEPTED = (
    "a fitted MixedLM (statsmodels_lmm_ext or statsmodels) or a statsmodels OLS, WLS or GLS "
    "regression result"
)


def _unwrap(results):
    """The results object inside a statsmodels ``ResultsWrapper`` (or ``results`` itself)."""
    return getattr(results, "_results", results)


def _no_results():
    return None


@dataclass(eq=False)
class Fitted:
    """A fitted linear (mixed) model as the inference, emmeans and bootstrap code see it.

    ``kind`` is ``"lmm"`` (a mixed model; ``lmm_model``, ``engine`` and ``params`` are set) or
    ``"ols"`` (a statsmodels linear regression: OLS, WLS or GLS; ``ols_cov`` and ``df_resid``
    are set).  Covariance parameters follow :mod:`statsmodels_lmm_ext.params`: ``psi = G /
    scale``, ``vc`` = variance components / scale, ``rho`` the residual structure's parameters.

    Attributes
    ----------
    kind : {"lmm", "ols"}
    model : object
        The user's model (ours, statsmodels' MixedLM or regression model): formula spec, data
        frame and exog names come from it.
    label : str
        One line naming the model (formula, random effects, residual structure).
    endog, exog : ndarray
        Response (N,) and fixed-effects design (N, p); a formula design of few distinct rows
        stays a ``_lazy_exog.DesignCells`` (``np.asarray`` expands it).
    fe_names : list of str
    beta : ndarray (p,)
    scale : float
        Residual variance ``sigma^2``.
    llf : float
        REML or ML log-likelihood, as ``reml`` says.
    reml, converged : bool
    npar : int
        Estimated parameters, ``sigma^2`` included (R's ``logLik`` df).
    lmm_model : MixedLM or None
        Our model: ``results.model`` for our fits, rebuilt once for a statsmodels MixedLM.
    engine : Engine or None
    params : CovParams or None
    psi, vc, rho : ndarray
    ols_cov : ndarray or None
        ``cov_params()`` of a regression result.
    df_resid : float or None
        Residual df of a regression result.
    """

    kind: str
    model: object
    label: str
    endog: np.ndarray
    exog: np.ndarray
    fe_names: list[str]
    beta: np.ndarray
    scale: float
    llf: float
    reml: bool
    converged: bool
    npar: int
    lmm_model: MixedLM | None = None
    engine: Engine | None = None
    params: CovParams | None = None
    psi: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    vc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rho: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ols_cov: np.ndarray | None = None
    df_resid: float | None = None
    _ref: Callable[[], object] = field(default=_no_results, repr=False)
    _variance_model: VarianceModel | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ sizes
    @property
    def results(self):
        """The results object this view was made from (None once it has been deleted)."""
        return self._ref()

    @property
    def nobs(self) -> int:
        return len(self.endog)

    @property
    def k_fe(self) -> int:
        return self.exog.shape[1]

    @property
    def k_re(self) -> int:
        return self.lmm_model.k_re if self.kind == "lmm" else 0

    # ------------------------------------------------------------------ covariance
    @property
    def G(self) -> np.ndarray:
        """Random-effects covariance on the data scale."""
        return self.scale * self.psi

    @property
    def vcomp(self) -> np.ndarray:
        """Variance components on the data scale."""
        return self.scale * self.vc

    @property
    def lam(self) -> np.ndarray:
        """Packed linear covariance parameters ``(Psi lower triangle, vc)`` of the engine."""
        return self.params.lin(self.psi, self.vc)

    @property
    def variance_model(self) -> VarianceModel:
        """The :class:`VarianceModel` (natural parameters, derivatives, information)."""
        if self.kind != "lmm":
            raise TypeError(
                "a variance model needs a fitted MixedLM (statsmodels_lmm_ext or statsmodels); "
                f"got a {type(self.model).__name__} regression result"
            )
        if self._variance_model is None:
            self._variance_model = VarianceModel(
                self.engine, self.params, self.beta, self.G, self.vcomp, self.scale, self.rho,
                self.reml,
            )  # fmt: skip
        return self._variance_model

    # ------------------------------------------------------------------ design of the model
    @property
    def groups(self) -> np.ndarray | None:
        return np.asarray(self.lmm_model.groups) if self.kind == "lmm" else None

    @property
    def exog_re(self) -> np.ndarray | None:
        if self.kind != "lmm" or not self.k_re:
            return None
        return np.asarray(self.lmm_model.exog_re, float)

    @property
    def vc_names(self) -> tuple[str, ...]:
        return tuple(self.lmm_model.exog_vc.names) if self.kind == "lmm" else ()

    @property
    def cov_struct(self) -> CovStruct | None:
        return self.lmm_model.cov_struct if self.kind == "lmm" else None

    @property
    def uses_groups(self) -> bool:
        """Whether the grouping matters: random effects, variance components or a residual
        structure other than independence."""
        return self.kind == "lmm" and (
            self.k_re > 0
            or len(self.vc_names) > 0
            or not isinstance(self.cov_struct, Independence)
        )

    def criteria(self) -> tuple[float, float]:
        """AIC and BIC (BIC with ``N - p`` observations for REML, the nlme convention)."""
        n = self.nobs - (np.linalg.matrix_rank(self.exog) if self.reml else 0)
        return -2 * self.llf + 2 * self.npar, -2 * self.llf + np.log(n) * self.npar


# ---------------------------------------------------------------------------------------------
# Building the views
# ---------------------------------------------------------------------------------------------


def _label(model, kind: str) -> str:
    formula = getattr(model, "formula", None) or "(arrays)"
    if kind == "ols":
        return f"{type(model).__name__} {formula}"
    re = ", ".join(model.data.exog_re_names) if model.k_re else "none"
    vc = f", vc: {', '.join(model.exog_vc.names)}" if model.k_vc else ""
    return f"MixedLM {formula} (re: {re}{vc}; residuals: {model.cov_struct!r})"


def _model_from_statsmodels(m) -> MixedLM:
    """Our MixedLM (independent residuals) equivalent to a statsmodels MixedLM."""
    endog = pd.Series(np.asarray(m.endog, float), name=m.endog_names)
    exog = pd.DataFrame(np.asarray(m.exog, float), columns=list(m.exog_names))
    exog_re = None
    if m.k_re:
        exog_re = pd.DataFrame(np.asarray(m.exog_re, float), columns=list(m.data.exog_re_names))
    out = MixedLM(endog, exog, np.asarray(m.groups), exog_re=exog_re, exog_vc=m.exog_vc)
    out.formula = getattr(m, "formula", None)
    return out


def _lmm(res, user_model, ours: MixedLM, psi, vc, rho, **kw) -> Fitted:
    return Fitted(
        kind="lmm",
        model=user_model,
        label=_label(ours, "lmm"),
        endog=np.asarray(ours.endog, float),
        exog=fe_design(ours),
        fe_names=list(user_model.exog_names),
        beta=np.asarray(res.fe_params, float),
        scale=float(res.scale),
        llf=float(res.llf),
        reml=bool(res.reml),
        converged=bool(getattr(res, "converged", True)),
        npar=ours.k_fe + ours.k_re2 + ours.k_vc + ours.cov_struct.k_params + 1,
        lmm_model=ours,
        engine=ours.engine,
        params=ours.cov_params_spec,
        psi=np.asarray(psi, float).reshape(ours.k_re, ours.k_re),
        vc=np.asarray(vc, float),
        rho=np.asarray(rho, float),
        _ref=weakref.ref(res),
        **kw,
    )


def _from_ours(res: MixedLMResults) -> Fitted:
    m = res.model
    vc = np.asarray(res.vcomp) / res.scale
    return _lmm(res, m, m, res.cov_re_unscaled, vc, res._rho, _variance_model=res.variance_model)


def _from_statsmodels(res: sm_mlm.MixedLMResults) -> Fitted:
    ours = _model_from_statsmodels(res.model)
    psi = np.asarray(res.cov_re) / res.scale
    return _lmm(res, res.model, ours, psi, np.asarray(res.vcomp) / res.scale, np.zeros(0))


def _from_regression(res: RegressionResults) -> Fitted:
    m = res.model
    X = np.asarray(m.exog, float)
    return Fitted(
        kind="ols",
        model=m,
        label=_label(m, "ols"),
        endog=np.asarray(m.endog, float),
        exog=X,
        fe_names=list(m.exog_names),
        beta=np.asarray(res.params, float),
        scale=float(res.scale),
        llf=float(res.llf),
        reml=False,
        converged=True,
        npar=X.shape[1] + 1,
        ols_cov=np.asarray(res.cov_params(), float),
        df_resid=float(res.df_resid),
        _ref=weakref.ref(res),
    )


def as_fitted(obj) -> Fitted:
    """The :class:`Fitted` view of a results object (memoised while the results live).

    Parameters
    ----------
    obj : results
        Our ``MixedLMResults`` (or its wrapper), a statsmodels ``MixedLMResults`` or a
        statsmodels OLS / WLS / GLS ``RegressionResults`` (or their wrappers).

    Raises
    ------
    TypeError
        For anything else, naming the type received and what is accepted.
    """
    res = _unwrap(obj)
    try:
        return _CACHE[res]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable (and not accepted)
        pass
    if isinstance(res, MixedLMResults):
        fit = _from_ours(res)
    elif isinstance(res, sm_mlm.MixedLMResults):
        fit = _from_statsmodels(res)
    elif isinstance(res, RegressionResults) and isinstance(res.model, WLS | GLS):
        fit = _from_regression(res)
    else:
        raise TypeError(f"expected {_ACCEPTED}; got {type(res).__name__}")
    _CACHE[res] = fit
    return fit
