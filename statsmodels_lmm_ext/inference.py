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

__all__ = ["VarianceModel", "variance_model", "INFORMATION"]

#: information-matrix types for ``W = Cov(theta_hat)``
INFORMATION = ("observed", "expected")


class VarianceModel:
    """Natural covariance parameters of a fitted model and the quantities built on them.

    Parameters
    ----------
    engine : Engine
        The batched likelihood engine of the model.
    beta : ndarray (p,)
    G : ndarray (q, q)
        Random-effects covariance on the data scale.
    vc : ndarray (k_vc,)
        Variance components on the data scale.
    scale : float
        Residual variance ``sigma^2``.
    rho : ndarray
        Correlation parameters (natural scale).
    reml : bool
    theta_names : list of str
    """

    def __init__(
        self,
        engine: Engine,
        beta: np.ndarray,
        G: np.ndarray,
        vc: np.ndarray,
        scale: float,
        rho: np.ndarray,
        reml: bool,
        theta_names: list[str],
    ):
        self.engine = engine
        self.beta = np.asarray(beta, float)
        self.G = np.atleast_2d(np.asarray(G, float)).reshape(engine.k_re, engine.k_re)
        self.vc = np.asarray(vc, float)
        self.scale = float(scale)
        self.rho = np.asarray(rho, float)
        self.reml = bool(reml)
        self.theta_names = list(theta_names)

    @property
    def theta(self) -> np.ndarray:
        """Natural parameters ``(G lower triangle, vc, sigma^2, rho)``."""
        il = np.tril_indices(self.engine.k_re)
        return np.concatenate([self.G[il], self.vc, [self.scale], self.rho])

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

    def cov_theta(self, kind: str = "observed") -> np.ndarray:
        """``W = Cov(theta_hat)``, the inverse information (pseudo-inverse if singular)."""
        info = self.information(kind)
        try:
            w = np.linalg.inv(info)
            if np.all(np.isfinite(w)) and np.all(np.diag(w) >= 0):
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


def variance_model(results) -> VarianceModel:
    """The :class:`VarianceModel` of a fitted model (ours or a statsmodels MixedLM result)."""
    res = getattr(results, "_results", results)
    if hasattr(res, "variance_model"):
        return res.variance_model
    raise TypeError(f"cannot build a variance model for {type(res).__name__}")


# --------------------------------------------------------------------------------------------
# Denominator degrees of freedom
# --------------------------------------------------------------------------------------------


class DDFWarning(UserWarning):
    """Degrees of freedom that cannot be computed (reported as NaN with this warning)."""


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


def kenward_roger_f(vm: VarianceModel, L: np.ndarray, W: np.ndarray, PhiA: np.ndarray) -> dict:
    """Kenward-Roger scaled F test of ``L beta = 0``: F, numerator df q, denominator df m.

    Formulas of Kenward and Roger (1997, section 4) with ``Theta = L'(L Phi L')^-1 L``.  Returns
    a dict with ``F`` (scaled), ``F_unscaled``, ``df_num``, ``df_denom`` (m), ``scaling``
    (lambda), ``E``, ``V`` and ``rho``.
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
    Lb = L @ beta
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
