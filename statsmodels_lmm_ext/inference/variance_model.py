"""The variance-model object: natural covariance parameters, their derivatives and information.

Inference works on the *natural* covariance parameters ``theta`` as SAS PROC MIXED reports
them: the distinct elements of ``G`` (lower triangle), the variance components, ``sigma^2`` and
the residual structure's parameters.  :class:`VarianceModel` answers, for any fitted model
(ours, or a plain statsmodels ``MixedLMResults`` adapted by
:func:`statsmodels_lmm_ext.adapters.as_fitted`), the sums over groups of Kenward and Roger
(1997) and the information matrix of ``theta``.

References
----------
Kenward, M. G. and Roger, J. H. (1997). Small sample inference for fixed effects from
restricted maximum likelihood. *Biometrics* 53, 983-997.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np

from .._engine import Engine
from ..params import CovParams

__all__ = ["INFORMATION", "VarianceModel"]

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
        self._reported = None
        rep = spec.cov_struct.reported(self.scale, self.rho)
        if rep is not None:
            # inference in SAS's parameters phi of the residual part (e.g. UN(i,j))
            s2 = spec.k_lin
            phi = np.real(rep.phi_of_theta(np.concatenate([[self.scale], self.rho])))
            self._reported = (s2, phi, rep)
        #: names of the parameters inference works in (:meth:`cov_reported`): ``theta``'s,
        #: with the residual part as SAS prints it if the structure says so
        self.reported_names = list(self.theta_names)
        if rep is not None:
            self.reported_names = list(self.theta_names[:s2]) + list(rep[0])

    @property
    def theta(self) -> np.ndarray:
        """Natural parameters ``(G lower triangle, vc, sigma^2, rho)``."""
        return self.spec.theta(self.G, self.vc, self.scale, self.rho)

    @property
    def has_residual_structure(self) -> bool:
        """True if the model has residual-structure (R-side) parameters (correlations,
        ranges, nuggets, variance ratios): the class of models whose reference software for
        Kenward-Roger (SAS PROC MIXED, mmrm) uses the observed information."""
        return self.spec.k_corr > 0

    @cached_property
    def _jacobian(self):
        """``d theta / d phi`` (K, K) and its second derivatives (K, K, K), or None."""
        if self._reported is None:
            return None
        s2, phi, rep = self._reported
        J, Hm = _jacobian_hessian(rep.theta_of_phi, phi, rep.linear)
        K = s2 + len(phi)
        Jf = np.eye(K)
        Jf[s2:, s2:] = J
        Hf = None
        if Hm is not None:
            Hf = np.zeros((K, K, K))
            Hf[s2:, s2:, s2:] = Hm
        return Jf, Hf

    @cached_property
    def theta_blocks(self) -> dict:
        """Sums over groups of derivative blocks in ``theta`` (see
        :meth:`Engine.derivative_blocks`)."""
        return self.engine.derivative_blocks(self.G, self.vc, self.scale, self.rho, self.beta)

    @cached_property
    def blocks(self) -> dict:
        """The derivative blocks inference uses: :attr:`theta_blocks`, or those in the
        structure's reported parameters if it has them (:meth:`CovStruct.reported`)."""
        if self._jacobian is None:
            return self.theta_blocks
        return reparameterise(self.theta_blocks, *self._jacobian)

    @cached_property
    def Phi(self) -> np.ndarray:
        """``(X' V^-1 X)^-1``, the model-based covariance of ``beta_hat``."""
        if "XVXinv" in self.blocks:  # computed from the engine's conditioned design
            return self.blocks["XVXinv"]
        return np.linalg.inv(self.blocks["XVX"])

    def information(self, kind: str = "observed") -> np.ndarray:
        """Information matrix of ``theta`` (REML or ML, as the fit).

        ``reported_information`` is the same in the parameters inference works in.
        ``expected``: ``I_kl = 1/2 tr(P V_k P V_l)`` (ML: ``P`` replaced by ``V^-1``);
        ``observed``: the Hessian of ``-l`` at the estimate, profiled over ``beta``:
        ``1/2 [tr(P V_kl) - tr(P V_k P V_l) + 2 y'P V_k P V_l P y - y'P V_kl P y]``.
        """
        return self._information(self.theta_blocks, kind)

    def reported_information(self, kind: str = "observed") -> np.ndarray:
        """:meth:`information` in the parameters of :attr:`reported_names`."""
        return self._information(self.blocks, kind)

    def _information(self, b: dict, kind: str) -> np.ndarray:
        if kind not in INFORMATION:
            raise ValueError(f"information must be one of {INFORMATION}, not {kind!r}")
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

    def cov_reported(self, kind: str = "observed") -> np.ndarray:
        """``W = Cov(phi_hat)`` in the parameters inference works in (:attr:`reported_names`:
        ``theta``, or with the residual structure's part as SAS prints it)."""
        if self._jacobian is None:
            return self.cov_theta(kind)
        return self._inverse(self.reported_information(kind), kind)

    def cov_theta(self, kind: str = "observed") -> np.ndarray:
        """``W = Cov(theta_hat)``, the inverse information.

        Parameters on the boundary (a variance estimated at zero) are treated as fixed, as SAS
        does: their rows and columns of ``W`` are zero.  A fit with ``free=...`` (parameters
        held fixed) gives ``J (J' I J)^-1 J'`` with ``J`` the estimated directions
        (:meth:`CovParams.estimated_basis`).  A singular information of the others
        falls back to the pseudo-inverse with a warning.
        """
        return self._inverse(self.information(kind), kind)

    def _inverse(self, info: np.ndarray, kind: str) -> np.ndarray:
        basis = self.spec.estimated_basis(self.G, self.vc, self.scale)
        if basis is not None:  # fit(free=...): the directions the estimate could move in
            return basis @ np.linalg.pinv(basis.T @ info @ basis) @ basis.T
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


def _jacobian_hessian(f, x: np.ndarray, linear: bool):
    """Jacobian ``J[m, a] = d f_m / d x_a`` (complex step) and ``H[m, a, b]`` (central
    differences of complex-step Jacobians; None if ``V`` is linear in ``x``, where the
    second-derivative blocks in ``x`` vanish whatever ``H`` is)."""
    from ..covstruct._visits import complex_step_jacobian  # noqa: PLC0415 (covstruct helper)

    J = complex_step_jacobian(f, x)
    if linear:
        return J, None
    k = len(x)
    H = np.zeros((J.shape[0], k, k))
    for b in range(k):
        h = 1e-5 * max(1.0, abs(x[b]))
        e = np.zeros(k)
        e[b] = h
        H[:, :, b] = (complex_step_jacobian(f, x + e) - complex_step_jacobian(f, x - e)) / (2 * h)
    H = 0.5 * (H + np.swapaxes(H, 1, 2))
    return J, H


def reparameterise(b: dict, J: np.ndarray, H: np.ndarray | None) -> dict:
    """Derivative blocks in new parameters ``phi`` from those in ``theta = g(phi)``.

    ``dV/dphi_a = sum_m J_ma V_m`` and ``d2V/dphi_a dphi_b = sum_mn J_ma J_nb V_mn +
    sum_m H_mab V_m``; every block is linear or bilinear in these, and the second-derivative
    blocks gain ``H`` times the first-derivative ones (``R`` uses ``-P``).  ``H=None`` means
    ``V`` is linear in ``phi``: the second-derivative blocks are zero.
    """
    out = dict(b)
    for name in ("trV", "rVr"):
        out[name] = J.T @ b[name]
    out["xr"] = J.T @ b["xr"]
    out["P"] = np.tensordot(J, b["P"], axes=(0, 0))
    for name in ("trVV", "rVVVr"):
        out[name] = J.T @ b[name] @ J
    out["Q"] = _both(J, b["Q"])
    if H is None:
        for name in ("R", "trV2", "rV2r"):
            out[name] = np.zeros_like(b[name])
        return out
    out["R"] = _both(J, b["R"]) - np.tensordot(H, b["P"], axes=(0, 0))
    out["trV2"] = J.T @ b["trV2"] @ J + np.tensordot(H, b["trV"], axes=(0, 0))
    out["rV2r"] = J.T @ b["rV2r"] @ J + np.tensordot(H, b["rVr"], axes=(0, 0))
    return out


def _both(J: np.ndarray, A: np.ndarray) -> np.ndarray:
    """``sum_mn J_ma J_nb A[m, n]`` for ``A`` (K, K, ...), in two contractions."""
    tmp = np.tensordot(J, A, axes=(0, 0))  # (a, n, ...)
    return np.moveaxis(np.tensordot(J, tmp, axes=(0, 1)), 0, 1)  # (a, b, ...)
