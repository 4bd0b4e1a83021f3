"""The variance-model object: natural covariance parameters, their derivatives and information.

Inference works on the *natural* covariance parameters ``theta`` as SAS PROC MIXED reports
them: the distinct elements of ``G`` (lower triangle), the variance components, ``sigma^2`` and
the correlation parameters.  :class:`VarianceModel` answers, for any fitted model (ours, or a
plain statsmodels ``MixedLMResults`` with independent residuals), the sums over groups of
Kenward and Roger (1997) and the information matrix of ``theta``.

References
----------
Kenward, M. G. and Roger, J. H. (1997). Small sample inference for fixed effects from
restricted maximum likelihood. *Biometrics* 53, 983-997.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np

from ._engine import Engine
from .params import CovParams

__all__ = [
    "DDF_METHODS",
    "DDFWarning",
    "INFORMATION",
    "KRCovariance",
    "KRTestResult",
    "VarianceModel",
    "anova",
    "f_test",
    "kenward_roger",
    "kenward_roger_test",
    "t_test",
    "variance_model",
]

#: information-matrix types for ``W = Cov(theta_hat)``
INFORMATION = ("observed", "expected")


class VarianceModel:
    """Natural covariance parameters of a fitted model and the quantities built on them.

    Parameters
    ----------
    engine : Engine
        The batched likelihood engine of the model.
    spec : CovParams
        The model's covariance parameters (names, packing, boundary).
    beta : ndarray (p,)
    G : ndarray (q, q)
        Random-effects covariance on the data scale.
    vc : ndarray (k_vc,)
        Variance components on the data scale.
    scale : float
        Residual variance ``sigma^2``.
    rho : ndarray
        Residual-structure parameters (natural scale).
    reml : bool
    """

    def __init__(
        self,
        engine: Engine,
        spec: CovParams,
        beta: np.ndarray,
        G: np.ndarray,
        vc: np.ndarray,
        scale: float,
        rho: np.ndarray,
        reml: bool,
    ):
        self.engine = engine
        self.spec = spec
        self.beta = np.asarray(beta, float)
        self.G = np.atleast_2d(np.asarray(G, float)).reshape(engine.k_re, engine.k_re)
        self.vc = np.asarray(vc, float)
        self.scale = float(scale)
        self.rho = np.asarray(rho, float)
        self.reml = bool(reml)
        self.theta_names = spec.theta_names()

    @property
    def theta(self) -> np.ndarray:
        """Natural parameters ``(G lower triangle, vc, sigma^2, rho)``."""
        return self.spec.theta(self.G, self.vc, self.scale, self.rho)

    @cached_property
    def blocks(self) -> dict:
        """Sums over groups of derivative blocks (see :meth:`Engine.derivative_blocks`)."""
        return self.engine.derivative_blocks(self.G, self.vc, self.scale, self.rho, self.beta)

    @cached_property
    def Phi(self) -> np.ndarray:
        """``(X' V^-1 X)^-1``, the model-based covariance of ``beta_hat``."""
        return np.linalg.inv(self.blocks["XVX"])

    def information(self, kind: str = "observed") -> np.ndarray:
        """Information matrix of ``theta`` (REML or ML, as the fit).

        ``expected``: ``I_kl = 1/2 tr(P V_k P V_l)`` (ML: ``P`` replaced by ``V^-1``);
        ``observed``: the Hessian of ``-l`` at the estimate, profiled over ``beta``:
        ``1/2 [tr(P V_kl) - tr(P V_k P V_l) + 2 y'P V_k P V_l P y - y'P V_kl P y]``.
        """
        if kind not in INFORMATION:
            raise ValueError(f"information must be one of {INFORMATION}, not {kind!r}")
        b = self.blocks
        Phi = self.Phi
        P = b["P"]
        xr = b["xr"]
        trPVPV = b["trVV"].copy()
        if self.reml:
            PhiP = np.einsum("ab,kbc->kac", Phi, P)
            trPVPV += -2.0 * np.einsum("ab,klba->kl", Phi, b["Q"]) + np.einsum(
                "kab,lba->kl", PhiP, PhiP
            )
        if kind == "expected":
            return 0.5 * trPVPV
        trPV2 = b["trV2"] - (np.einsum("ab,klba->kl", Phi, b["R"]) if self.reml else 0.0)
        yPVPVPy = b["rVVVr"] - xr @ Phi @ xr.T
        return 0.5 * (trPV2 - trPVPV + 2.0 * yPVPVPy - b["rV2r"])

    @property
    def boundary(self) -> np.ndarray:
        """Mask of parameters on the boundary: variances estimated at zero (and the
        covariances of such random effects)."""
        return self.spec.boundary(self.G, self.vc, self.scale)

    @property
    def boundary_names(self) -> list[str]:
        return [n for n, b in zip(self.theta_names, self.boundary, strict=True) if b]

    def cov_theta(self, kind: str = "observed") -> np.ndarray:
        """``W = Cov(theta_hat)``, the inverse information.

        Parameters on the boundary (a variance estimated at zero) are treated as fixed, as SAS
        does: their rows and columns of ``W`` are zero.  A singular information of the others
        falls back to the pseudo-inverse with a warning.
        """
        info = self.information(kind)
        active = ~self.boundary
        w = np.zeros_like(info)
        try:
            wa = np.linalg.inv(info[np.ix_(active, active)])
            if np.all(np.isfinite(wa)) and np.all(np.diag(wa) >= 0):
                w[np.ix_(active, active)] = wa
                return w
        except np.linalg.LinAlgError:
            pass
        warnings.warn(
            f"the {kind} information matrix of the covariance parameters is singular or not "
            "positive definite (a boundary fit?); using its pseudo-inverse",
            RuntimeWarning,
            stacklevel=2,
        )
        return np.linalg.pinv(info)


# --------------------------------------------------------------------------------------------
# Denominator degrees of freedom
# --------------------------------------------------------------------------------------------


class DDFWarning(UserWarning):
    """Degrees of freedom that cannot be computed (reported as NaN with this warning)."""


def theta_names(model, corr_names=()) -> list[str]:
    """Names of the natural parameters ``(G lower triangle, vc, sigma^2, rho)`` of a model."""
    names = [f"G {n}" for n in model.data.exog_re_names_full] if model.k_re else []
    names += [f"{n} Var" for n in model.exog_vc.names] + ["scale"]
    return names + list(corr_names)


def _check_L(L, k_fe: int) -> np.ndarray:
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[1] != k_fe:
        raise ValueError(
            f"the contrast matrix L has {L.shape[1]} columns; the model has {k_fe} fixed effects"
        )
    if np.linalg.matrix_rank(L) < L.shape[0]:
        raise ValueError(
            f"the {L.shape[0]} rows of L are linearly dependent (rank "
            f"{np.linalg.matrix_rank(L)}); drop the redundant rows"
        )
    return L


def satterthwaite_df_1d(vm: VarianceModel, L: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each row ``l`` of ``L``: ``2 (l'Phi l)^2 / (g' W g)``.

    ``g_k = d(l'Phi l)/dtheta_k = -l'Phi P_k Phi l`` (Satterthwaite 1946; Fai and Cornelius
    1996; lmerTest, Kuznetsova et al. 2017).
    """
    Phi = vm.Phi
    LPhi = L @ Phi
    v = np.einsum("ia,ia->i", LPhi, L)
    g = -np.einsum("ia,kab,ib->ik", LPhi, vm.blocks["P"], LPhi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * v**2 / np.einsum("ik,kl,il->i", g, W, g)


def satterthwaite_df(vm: VarianceModel, L: np.ndarray, W: np.ndarray) -> float:
    """Satterthwaite denominator df of the F test of ``L beta = 0`` (q rows).

    Eigen-decompose ``L Phi L' = U D U'``; one-row df ``nu_m`` for the rows of ``U'L``;
    ``E = sum nu_m / (nu_m - 2)``; ``ddf = 2E / (E - q)`` (Fai and Cornelius 1996).
    """
    q = L.shape[0]
    if q == 1:
        return float(satterthwaite_df_1d(vm, L, W)[0])
    d, U = np.linalg.eigh(L @ vm.Phi @ L.T)
    nu = satterthwaite_df_1d(vm, U.T @ L, W)
    if np.any(nu <= 2):
        warnings.warn(
            f"Satterthwaite df undefined for this F test: a component has nu = "
            f"{nu.min():.3g} <= 2; reporting NaN",
            DDFWarning,
            stacklevel=3,
        )
        return float("nan")
    E = np.sum(nu / (nu - 2.0))
    return float(2.0 * E / (E - q)) if E > q else float("nan")


def kenward_roger_cov(vm: VarianceModel, W: np.ndarray, linear: bool = False) -> np.ndarray:
    """Kenward-Roger adjusted covariance of beta_hat (Kenward and Roger 1997, eq. 3).

    ``Phi_A = Phi + 2 Phi {sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)} Phi``; ``linear`` drops
    the second-derivative term ``R_kl`` (SAS ``ddfm=kr(linear)``).
    """
    b = vm.blocks
    Phi = vm.Phi
    P = b["P"]
    PPhiP = np.einsum("kab,bc,lcd->klad", P, Phi, P)
    inner = b["Q"] - PPhiP
    if not linear:
        inner = inner - 0.25 * b["R"]
    Lam = np.einsum("kl,klab->ab", W, inner)
    PhiA = Phi + 2.0 * Phi @ Lam @ Phi
    return (PhiA + PhiA.T) / 2.0


def kenward_roger_f(
    vm: VarianceModel, L: np.ndarray, W: np.ndarray, PhiA: np.ndarray, rhs=None
) -> dict:
    """Kenward-Roger scaled F test of ``L beta = 0``: F, numerator df q, denominator df m.

    Formulas of Kenward and Roger (1997, section 4) with ``Theta = L'(L Phi L')^-1 L``.
    Returns a dict (testing ``L beta = rhs``) with ``F`` (scaled), ``F_unscaled``, ``df_num``,
    ``df_denom`` (m), ``scaling`` (lambda), ``E``, ``V`` and ``rho``.
    """
    q = L.shape[0]
    Phi = vm.Phi
    P = vm.blocks["P"]
    beta = vm.beta
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    M = np.einsum("ab,bc,kcd,de->kae", Theta, Phi, P, Phi)  # Theta Phi P_k Phi
    tr = np.einsum("kaa->k", M)
    A1 = tr @ W @ tr
    A2 = np.einsum("kl,kab,lba->", W, M, M)
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    Estar = 1.0 / (1.0 - A2 / q)
    Vstar = (2.0 / q) * (1.0 + c1 * B) / ((1.0 - c2 * B) ** 2 * (1.0 - c3 * B))
    rho = Vstar / (2.0 * Estar**2)
    Lb = L @ beta - (0.0 if rhs is None else rhs)
    Fu = float(Lb @ np.linalg.solve(L @ PhiA @ L.T, Lb)) / q
    if q * rho <= 1.0 or not np.isfinite(rho):
        warnings.warn(
            f"Kenward-Roger df undefined (q * rho = {q * rho:.3g} <= 1); reporting NaN df and "
            "the unscaled F",
            DDFWarning,
            stacklevel=3,
        )
        return {
            "F": Fu,
            "F_unscaled": Fu,
            "df_num": q,
            "df_denom": float("nan"),
            "scaling": float("nan"),
            "E": Estar,
            "V": Vstar,
            "rho": rho,
        }
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    lam = m / (Estar * (m - 2.0))
    return {
        "F": lam * Fu,
        "F_unscaled": Fu,
        "df_num": q,
        "df_denom": float(m),
        "scaling": float(lam),
        "E": Estar,
        "V": Vstar,
        "rho": rho,
    }


# --------------------------------------------------------------------------------------------
# Public inference API (our results and plain statsmodels MixedLMResults)
# --------------------------------------------------------------------------------------------

#: denominator-df methods: name -> (description, SAS ddfm, R equivalent)
DDF_METHODS: dict[str, str] = {
    "satterthwaite": "Satterthwaite (SAS ddfm=satterthwaite; lmerTest)",
    "kenward-roger": "Kenward-Roger, adjusted covariance (SAS ddfm=kr; pbkrtest)",
    "kenward-roger-linear": "Kenward-Roger without the second-derivative term "
    "(SAS ddfm=kr(linear))",
    "residual": "residual df N - p (SAS ddfm=residual)",
    "asymptotic": "normal / chi-square (statsmodels' default; infinite df)",
}

#: default information matrix per ddf method (see :func:`resolve_information`)
DEFAULT_INFORMATION = {
    "satterthwaite": "observed",
    "kenward-roger": "expected",
    "kenward-roger-linear": "expected",
}


def check_ddf(ddf: str) -> str:
    """Validate a ddf method name (one registry, one error message)."""
    key = str(ddf).lower().replace("_", "-")
    aliases = {
        "kr": "kenward-roger",
        "kenward-roger(linear)": "kenward-roger-linear",
        "kr-linear": "kenward-roger-linear",
        "sat": "satterthwaite",
        "normal": "asymptotic",
        "wald": "asymptotic",
    }
    key = aliases.get(key, key)
    if key not in DDF_METHODS:
        raise ValueError(f"unknown ddf method {ddf!r}; choose one of {list(DDF_METHODS)}")
    return key


def resolve_information(ddf: str, information: str | None) -> str:
    """The information matrix used for ``W``.

    Default ``"observed"`` for Satterthwaite — the Hessian, as lmerTest and SAS use — and
    ``"expected"`` for Kenward-Roger, as in Kenward and Roger (1997) and pbkrtest (and so
    emmeans for lme4 models).  SAS PROC MIXED's ``ddfm=kr`` uses the observed information:
    pass ``information="observed"`` to reproduce SAS.
    """
    if information is None:
        return DEFAULT_INFORMATION.get(ddf, "observed")
    if information not in INFORMATION:
        raise ValueError(f"information must be one of {INFORMATION}, not {information!r}")
    return information


def _fitted(results):
    """The adapter's view of ``results`` (:func:`statsmodels_lmm_ext.adapters.as_fitted`).

    A function-level import: ``adapters`` sits above this module (it imports
    :class:`VarianceModel` from here and builds our model, whose results import this module),
    so a module-level import would be a cycle.  It goes away when the public wrappers below move
    above ``adapters`` (``inference/api.py``, DESIGN.md section 7).
    """
    from .adapters import as_fitted

    return as_fitted(results)


def __getattr__(name: str):
    # Temporary: emmeans.py (being split into a package in parallel) still imports ``_unwrap``
    # from this module; it now lives in ``adapters`` alone.  Remove once emmeans uses as_fitted.
    if name == "_unwrap":
        from .adapters import _unwrap

        return _unwrap
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _variance_model_of(results) -> VarianceModel:
    return _fitted(results).variance_model


def variance_model(results) -> VarianceModel:
    """The :class:`VarianceModel` of a fitted model (ours or a statsmodels MixedLM result)."""
    return _variance_model_of(results)


def _fe_names(results) -> list[str]:
    return _fitted(results).fe_names


def _parse_L(results, r_matrix):
    """(L, rhs) from an array with k_fe columns, a constraint string, or (L, rhs)."""
    names = _fe_names(results)
    if isinstance(r_matrix, str):
        from patsy import DesignInfo

        lc = DesignInfo(names).linear_constraint(r_matrix)
        return _check_L(lc.coefs, len(names)), lc.constants.ravel()
    if isinstance(r_matrix, tuple):
        L = _check_L(r_matrix[0], len(names))
        return L, np.broadcast_to(np.asarray(r_matrix[1], float).ravel(), (L.shape[0],))
    L = _check_L(r_matrix, len(names))
    return L, np.zeros(L.shape[0])


def _check_reml_for_kr(vm: VarianceModel, ddf: str) -> None:
    if ddf.startswith("kenward-roger") and not vm.reml:
        raise ValueError(
            "Kenward-Roger inference is defined for REML fits (Kenward and Roger 1997); this "
            "model was fitted by ML: refit it with reml=True, or use ddf='satterthwaite'"
        )


def _boundary_warning(vm: VarianceModel) -> None:
    if vm.boundary.any():
        warnings.warn(
            f"{', '.join(vm.boundary_names)} estimated at zero (a boundary fit): treated as "
            "fixed in the "
            "small-sample df, as SAS does",
            DDFWarning,
            stacklevel=4,
        )


class _Inference:
    """Everything one ddf method needs for one fitted model (cached per call)."""

    def __init__(self, results, ddf: str, information: str | None):
        self.ddf = check_ddf(ddf)
        self.vm = _variance_model_of(results)
        _check_reml_for_kr(self.vm, self.ddf)
        self.information = resolve_information(self.ddf, information)
        self.kr = self.ddf.startswith("kenward-roger")
        if self.ddf in ("satterthwaite", "kenward-roger", "kenward-roger-linear"):
            _boundary_warning(self.vm)
            self.W = self.vm.cov_theta(self.information)
        eng = self.vm.engine
        self.df_resid = eng.nobs - eng.k_fe

    @cached_property
    def cov(self) -> np.ndarray:
        """Covariance of beta_hat used: Phi, or Phi_A for Kenward-Roger."""
        if self.kr:
            return kenward_roger_cov(self.vm, self.W, linear=self.ddf == "kenward-roger-linear")
        return self.vm.Phi

    def t(self, L: np.ndarray, rhs: np.ndarray):
        est = L @ self.vm.beta - rhs
        se = np.sqrt(np.einsum("ia,ab,ib->i", L, self.cov, L))
        if self.ddf == "asymptotic":
            df = np.full(len(est), np.inf)
        elif self.ddf == "residual":
            df = np.full(len(est), float(self.df_resid))
        else:
            df = satterthwaite_df_1d(self.vm, L, self.W)  # KR: m equals this for one row
        bad = ~(df > 0)
        if bad.any():
            warnings.warn(
                f"df could not be computed for {bad.sum()} contrast(s); NaN reported",
                DDFWarning,
                stacklevel=3,
            )
            df = np.where(bad, np.nan, df)
        return est, se, df

    def f(self, L: np.ndarray, rhs: np.ndarray) -> dict:
        q = L.shape[0]
        if self.kr:
            return kenward_roger_f(self.vm, L, self.W, self.cov, rhs=rhs)
        d = L @ self.vm.beta - rhs
        F = float(d @ np.linalg.solve(L @ self.cov @ L.T, d)) / q
        if self.ddf == "asymptotic":
            ddf = np.inf
        elif self.ddf == "residual":
            ddf = float(self.df_resid)
        else:
            ddf = satterthwaite_df(self.vm, L, self.W)
        return {"F": F, "F_unscaled": F, "df_num": q, "df_denom": ddf, "scaling": 1.0}


def _f_pvalue(F: float, q: int, ddf: float) -> float:
    """p-value of F on (q, ddf) df; chi-square(q) of q F when ddf is infinite."""
    from scipy import stats

    if np.isinf(ddf):
        return float(stats.chi2.sf(q * F, q))
    return float(stats.f.sf(F, q, ddf))


def t_test(results, r_matrix, ddf: str = "satterthwaite", information: str | None = None):
    """t tests of ``L beta = q`` with small-sample df, one per row of ``L``.

    Parameters
    ----------
    results : MixedLMResults (ours or statsmodels')
    r_matrix : array_like (q, k_fe), str or tuple
        Contrast rows on the fixed effects, a constraint string such as ``"age = 0"``, or
        ``(L, q)``.
    ddf : str
        One of :data:`DDF_METHODS`.  With Kenward-Roger the SEs come from the adjusted
        covariance ``Phi_A``.
    information : {"observed", "expected"}, optional
        For ``W = Cov(theta_hat)``; default per :func:`resolve_information`.

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
        With per-row ``df_denom``.
    """
    from statsmodels.stats.contrast import ContrastResults

    inf = _Inference(results, ddf, information)
    L, rhs = _parse_L(results, r_matrix)
    est, se, df = inf.t(L, rhs)
    if inf.ddf == "asymptotic":
        cr = ContrastResults(effect=est + rhs, sd=se, statistic=est / se, distribution="norm")
        cr.df_denom = df
        cr.ddf_method = inf.ddf
        return cr
    cr = ContrastResults(t=est / se, sd=se, effect=est + rhs, df_denom=df)
    cr.ddf_method = inf.ddf
    return cr


def f_test(results, r_matrix, ddf: str = "satterthwaite", information: str | None = None):
    """F test of ``L beta = q`` with small-sample denominator df.

    Satterthwaite: ``F = (L b)'(L Phi L')^-1 (L b) / q`` with the ddf of Fai and Cornelius
    (1996).  Kenward-Roger: the scaled statistic ``lambda F`` with ``Phi_A`` and ``m`` df
    (Kenward and Roger 1997); the unscaled F is ``result.fvalue_unscaled``.

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
    """
    from statsmodels.stats.contrast import ContrastResults

    inf = _Inference(results, ddf, information)
    L, rhs = _parse_L(results, r_matrix)
    out = inf.f(L, rhs)
    cr = ContrastResults(F=out["F"], df_num=out["df_num"], df_denom=out["df_denom"])
    cr.pvalue = _f_pvalue(out["F"], out["df_num"], out["df_denom"])
    cr.fvalue_unscaled = out["F_unscaled"]
    cr.scaling = out["scaling"]
    cr.ddf_method = inf.ddf
    return cr


def anova(results, ddf: str = "satterthwaite", information: str | None = None):
    """Type III ANOVA table: one F test per model term (the intercept excepted).

    Hypotheses as lmerTest's ``anova(type = 3)`` and SAS's Type III tests; they do not depend
    on the contrast coding of the factors.

    Returns
    -------
    DataFrame
        Indexed by term, with columns ``num_df``, ``den_df``, ``F``, ``PR(>F)``.
    """
    import pandas as pd

    from ._design import type3_contrasts

    inf = _Inference(results, ddf, information)
    rows = {}
    for term, L in type3_contrasts(_fitted(results).model).items():
        out = inf.f(L, np.zeros(L.shape[0]))
        p = _f_pvalue(out["F"], out["df_num"], out["df_denom"])
        rows[term] = [out["df_num"], out["df_denom"], out["F"], p]
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["num_df", "den_df", "F", "PR(>F)"]
    )
    table.attrs["ddf"] = inf.ddf
    table.attrs["title"] = f"Type III tests of fixed effects ({DDF_METHODS[inf.ddf]})"
    return table


class KRCovariance:
    """Kenward-Roger adjusted covariance of the fixed effects (``pbkrtest::vcovAdj``)."""

    def __init__(self, results, information: str | None = None, linear: bool = False):
        inf = _Inference(
            results, "kenward-roger-linear" if linear else "kenward-roger", information
        )
        self.information = inf.information
        self.names = _fe_names(results)
        self._cov = inf.cov
        self.unadjusted = inf.vm.Phi

    def cov_params(self):
        """The adjusted covariance ``Phi_A`` as a labelled DataFrame."""
        import pandas as pd

        return pd.DataFrame(self._cov, index=self.names, columns=self.names)

    @property
    def bse(self):
        import pandas as pd

        return pd.Series(np.sqrt(np.diag(self._cov)), index=self.names)


def kenward_roger(results, information: str | None = None, linear: bool = False):
    """The Kenward-Roger adjusted covariance of beta (``.cov_params()``, ``.bse``)."""
    return KRCovariance(results, information=information, linear=linear)


class KRTestResult:
    """Kenward-Roger F test of nested fixed effects (``pbkrtest::KRmodcomp``).

    Attributes
    ----------
    fvalue : float
        Scaled F statistic ``lambda * F``.
    fvalue_unscaled : float
    df_num, df_denom : float
    scaling : float
        ``lambda``.
    pvalue, pvalue_unscaled : float
    """

    def __init__(self, out: dict, information: str):
        self.fvalue = out["F"]
        self.fvalue_unscaled = out["F_unscaled"]
        self.df_num = out["df_num"]
        self.df_denom = out["df_denom"]
        self.scaling = out["scaling"]
        self.information = information
        self.pvalue = _f_pvalue(self.fvalue, self.df_num, self.df_denom)
        self.pvalue_unscaled = _f_pvalue(self.fvalue_unscaled, self.df_num, self.df_denom)

    def summary_frame(self):
        import pandas as pd

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
        return "Kenward-Roger F test of nested fixed effects\n" + self.summary_frame().to_string(
            float_format=lambda x: f"{x:.6g}"
        )

    __repr__ = __str__


def restriction_matrix(X: np.ndarray, X0: np.ndarray) -> np.ndarray:
    """``L`` with ``{beta : L beta = 0} = {beta : X beta in span(X0)}`` (small model nested)."""
    c0, *_ = np.linalg.lstsq(X, X0, rcond=None)
    if not np.allclose(X @ c0, X0, atol=1e-8 * max(1.0, np.abs(X0).max())):
        raise ValueError("the small model's fixed effects are not nested in the large model's")
    b, *_ = np.linalg.lstsq(X0, X, rcond=None)
    M = X - X0 @ b  # the part of X outside span(X0)
    _, s, Vt = np.linalg.svd(M, full_matrices=False)
    q = int((s > 1e-9 * np.linalg.norm(X, 2)).sum())
    if q == 0:
        raise ValueError("the two models have the same fixed effects; nothing to test")
    return Vt[:q]


def kenward_roger_test(large, small, information: str | None = None) -> KRTestResult:
    """Kenward-Roger F test of the fixed effects of ``large`` absent from ``small``.

    As ``pbkrtest::KRmodcomp(large, small)``: the restriction ``L beta = 0`` that turns the
    large model's mean into the small one's is tested with the large model's REML fit;
    ``small`` may be a fitted model with the same data or an ``L`` matrix.  ML fits are refused
    (Kenward-Roger is defined for REML): refit with ``reml=True``.
    """
    big = _fitted(large)
    if isinstance(small, np.ndarray | list):
        L = _check_L(small, big.k_fe)
    else:
        sm = _fitted(small)
        if sm.nobs != big.nobs:
            raise ValueError(f"the models use different data ({big.nobs} vs {sm.nobs} rows)")
        L = restriction_matrix(big.exog, sm.exog)
    inf = _Inference(large, "kenward-roger", information)
    return KRTestResult(inf.f(L, np.zeros(L.shape[0])), inf.information)
