"""The covariance parameters on the standard-deviation / correlation scale, and the deviance
as a function of them (what profile-likelihood intervals are computed on).

The scale is lme4's: for the random effects their standard deviations ``sqrt(G_ii)`` and
correlations ``G_ij / sqrt(G_ii G_jj)``, the standard deviation of each variance component,
the residual standard deviation ``sigma``, and the residual structure's natural parameters
unchanged (AR(1) ``rho``, correlations and standard-deviation ratios of an unstructured
matrix, ranges and nuggets, variance-function parameters).  The order is that of the natural
parameters ``theta = (G lower triangle, vc, sigma^2, rho)``
(:class:`~statsmodels_lmm_ext.params.CovParams`).

The deviance here is ``-2 l`` (REML or ML) with ``sigma^2`` *not* profiled out: from one call
of the engine's profiled deviance at ``Psi = G / sigma^2``, ``vc / sigma^2`` and ``rho``,

    dev(sigma^2) = dev_prof + n_r (log(sigma^2 / s2_hat) + s2_hat / sigma^2 - 1),

with ``s2_hat`` the profiled scale and ``n_r = N - p`` (REML) or ``N`` (ML).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["SdScale", "to_line", "from_line"]

#: kinds of parameters on the sd / correlation scale
SD, COR, VCSD, SIGMA, STRUCT = "sd", "cor", "vcsd", "sigma", "struct"


def to_line(x: np.ndarray, bounds) -> np.ndarray:
    """Map each column of ``x`` (B, k) from its open interval to the real line (identity,
    ``log(x - lo)``, ``-log(hi - x)`` or the logit of ``(x - lo) / (hi - lo)``); the scale of
    Wald intervals (:func:`statsmodels_lmm_ext.params.bounded_interval`)."""
    x = np.asarray(x, float)
    out = np.empty_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, (lo, hi) in enumerate(bounds):
            v = x[..., j]
            if np.isinf(lo) and np.isinf(hi):
                out[..., j] = v
            elif np.isinf(hi):
                out[..., j] = np.log(v - lo)
            elif np.isinf(lo):
                out[..., j] = -np.log(hi - v)
            else:
                out[..., j] = np.log((v - lo) / (hi - v))
    return out


def from_line(t: np.ndarray, bounds) -> np.ndarray:
    """Inverse of :func:`to_line`."""
    t = np.asarray(t, float)
    out = np.empty_like(t)
    with np.errstate(over="ignore"):  # far out on the line: inf, where the deviance is inf
        for j, (lo, hi) in enumerate(bounds):
            v = t[..., j]
            if np.isinf(lo) and np.isinf(hi):
                out[..., j] = v
            elif np.isinf(hi):
                out[..., j] = lo + np.exp(v)
            elif np.isinf(lo):
                out[..., j] = hi - np.exp(-v)
            else:
                out[..., j] = lo + (hi - lo) * expit(v)
    return out


class SdScale:
    """The parameters ``phi`` on the sd / correlation scale of one model.

    Parameters
    ----------
    spec : CovParams
        The model's covariance parameters.
    engine : Engine
        The model's likelihood engine (``profile`` batched over parameter sets).
    reml : bool
        Which deviance :meth:`deviance` computes.
    """

    def __init__(self, spec, engine, reml: bool):
        self.spec = spec
        self.engine = engine
        self.reml = bool(reml)
        il = spec.il
        self.diag = np.flatnonzero(il[0] == il[1])
        self.off = np.flatnonzero(il[0] != il[1])
        kinds = [SD if a == b else COR for a, b in zip(*il, strict=True)]
        kinds += [VCSD] * spec.k_vc + [SIGMA] + [STRUCT] * spec.k_corr
        self.kinds = kinds
        self.k = len(kinds)
        self.k_lin = spec.k_lin
        # position in the lower triangle of each random effect's variance
        self._var_pos = {int(a): int(m) for m, (a, b) in enumerate(zip(*il, strict=True))
                         if a == b}  # fmt: skip
        self.nr = engine.nobs - (engine.k_fe if self.reml else 0)

    # ------------------------------------------------------------------ names and bounds
    @property
    def names(self) -> list[str]:
        """Row names: the ``covariance_parameters()`` names with ``Var`` -> ``SD``, ``Cov`` ->
        ``Corr`` and ``Residual`` -> ``Residual SD``."""
        out = []
        for name, kind in zip(self.spec.theta_names("table"), self.kinds, strict=True):
            if kind in (SD, VCSD):
                out.append(name[:-4] + " SD" if name.endswith(" Var") else name + " SD")
            elif kind == COR:
                out.append(name[:-4] + " Corr" if name.endswith(" Cov") else name + " Corr")
            elif kind == SIGMA:
                out.append("Residual SD")
            else:
                out.append(name)
        return out

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """Open interval of each parameter."""
        out = []
        struct = iter(self.spec.bounds)
        for kind in self.kinds:
            if kind == COR:
                out.append((-1.0, 1.0))
            elif kind == STRUCT:
                out.append(tuple(next(struct)))
            else:
                out.append((0.0, np.inf))
        return out

    # ------------------------------------------------------------------ theta <-> phi
    def from_theta(self, theta: np.ndarray) -> np.ndarray:
        """``phi`` of natural parameters ``theta``."""
        theta = np.asarray(theta, float)
        phi = theta.copy()
        il = self.spec.il
        sd = np.sqrt(np.clip(theta[self.diag], 0.0, None))
        phi[self.diag] = sd
        for m in self.off:
            a, b = il[0][m], il[1][m]
            den = sd[a] * sd[b]
            phi[m] = theta[m] / den if den > 0 else 0.0
        kv = slice(self.spec.k_re2, self.k_lin)
        phi[kv] = np.sqrt(np.clip(theta[kv], 0.0, None))
        phi[self.k_lin] = np.sqrt(theta[self.k_lin])
        return phi

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d phi / d theta`` (k, k) at ``theta`` (rows of zero standard deviations, whose
        interval is undefined, are NaN)."""
        theta = np.asarray(theta, float)
        J = np.eye(self.k)
        il = self.spec.il
        var = theta[self.diag]
        with np.errstate(divide="ignore", invalid="ignore"):
            for m in self.diag:
                J[m, m] = 0.5 / np.sqrt(theta[m])
            for m in self.off:
                a, b = il[0][m], il[1][m]
                pa, pb = self._var_pos[a], self._var_pos[b]
                r = theta[m] / np.sqrt(var[a] * var[b])
                J[m, m] = 1.0 / np.sqrt(var[a] * var[b])
                J[m, pa] = -0.5 * r / var[a]
                J[m, pb] = -0.5 * r / var[b]
            for m in range(self.spec.k_re2, self.k_lin + 1):
                J[m, m] = 0.5 / np.sqrt(theta[m])
        return J

    def to_theta_lin(self, PHI: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(G lower triangle and vc (B, k_lin), sigma^2 (B,), rho (B, k_corr))`` of ``PHI``
        (B, k); standard deviations enter through their absolute values."""
        PHI = np.asarray(PHI, float)
        il = self.spec.il
        lin = np.empty((PHI.shape[0], self.k_lin))
        sd = np.abs(PHI[:, self.diag])
        lin[:, self.diag] = sd**2
        for m in self.off:
            a, b = il[0][m], il[1][m]
            lin[:, m] = PHI[:, m] * sd[:, a] * sd[:, b]
        kv = slice(self.spec.k_re2, self.k_lin)
        lin[:, kv] = PHI[:, kv] ** 2
        return lin, PHI[:, self.k_lin] ** 2, PHI[:, self.k_lin + 1 :]

    def _corr_ok(self, PHI: np.ndarray) -> np.ndarray:
        """Mask of rows whose random-effects correlations form a positive semi-definite
        matrix."""
        q = self.spec.k_re
        if q < 2:
            return np.ones(PHI.shape[0], bool)
        C = np.zeros((PHI.shape[0], q, q))
        il = self.spec.il
        C[:, il[0], il[1]] = PHI[:, : self.spec.k_re2]
        C = C + np.swapaxes(np.tril(C, -1), 1, 2)
        C[:, np.arange(q), np.arange(q)] = 1.0
        # a singular fitted G (a correlation of +-1) is on the boundary, not outside
        return np.linalg.eigvalsh(C)[:, 0] > -1e-9

    # ------------------------------------------------------------------ deviance
    def deviance(self, PHI: np.ndarray) -> np.ndarray:
        """``-2 l`` (B,) at each row of ``PHI`` (B, k); ``inf`` where the covariance is not
        positive definite or a parameter is outside its range."""
        PHI = np.atleast_2d(np.asarray(PHI, float))
        lin, s2, rho = self.to_theta_lin(PHI)
        ok = self._corr_ok(PHI) & (s2 > 0) & np.all(np.isfinite(PHI), axis=1)
        for j, (lo, hi) in enumerate(self.spec.bounds):
            v = rho[:, j]
            ok &= (v > lo) & (v < hi)
        dev = np.full(PHI.shape[0], np.inf)
        if not ok.any():
            return dev
        s2k = s2[ok]
        out = self.engine.profile(lin[ok] / s2k[:, None], rho[ok], self.reml)
        sc = out["scale"]
        d = out["dev"] + self.nr * (np.log(s2k / sc) + sc / s2k - 1.0)
        dev[ok] = np.where(out["ok"], d, np.inf)
        return dev
