"""Per-group quantities given the parameters: BLUP ingredients, simulation noise, BLUPs of
refits (Henderson's mixed model equations in their marginal form,
``b_i = Psi Z_i' H_i^-1 (y_i - X_i beta)``)."""

from __future__ import annotations

import numpy as np

from .layout import EngineError
from .likelihood import spd_inverse


class ConditionalMixin:
    """Group-by-group computations of an :class:`Engine`."""

    def conditional(self, lam: np.ndarray, rho: np.ndarray, beta: np.ndarray):
        """BLUP ingredients per chunk of single groups: ``(rows, H^-1 r, H^-1)`` with
        ``rows`` (U, n), ``r = y - X beta``."""
        for ch in self.group_chunks():
            H, _, _ = self.H(ch, np.asarray(lam, float)[None], np.asarray(rho, float)[None])
            M, _, bad = spd_inverse(H)
            if bad.any():
                raise EngineError("a group covariance matrix is not positive definite")
            r = self.y[ch.rows] - self.X[ch.rows] @ beta
            yield ch.rows, np.einsum("uts,us->ut", M[0], r), M[0]

    def add_noise(self, Y: np.ndarray, Z: np.ndarray, scale: float, rho, lam=None) -> np.ndarray:
        """``Y[rows_i] += chol(sigma^2 H_i) z_i`` group by group, in place (``Z`` (N, B) in row
        order); with ``lam=None`` only the residual structure, ``H_i = R_i(rho)``."""
        rho = np.asarray(rho, float)[None]
        for ch in self.chunks:
            if lam is None:
                C = self.residual_blocks(ch, rho, 0)[0][0]
            else:
                C = self.H(ch, np.asarray(lam, float)[None], rho)[0][0]
            L = np.linalg.cholesky(scale * C)
            if ch.pattern:
                rows = ch.member_rows
                L = L[np.repeat(np.arange(len(ch.weight)), np.diff(ch.member_bounds))]
            else:
                rows = ch.rows
            Y[rows] += L @ Z[rows]
        return Y

    def blups_many(self, Y, beta, psi, vc, rho, group_codes: np.ndarray) -> np.ndarray:
        """BLUPs ``b = Psi Z_g' H_g^-1 (y_g - X_g beta)`` (b, m, q) of the groups
        ``group_codes`` (m,) for ``b`` refits: responses ``Y`` (N, b) and their estimates
        ``beta`` (b, p), ``psi`` (b, q, q), ``vc`` (b, k_vc) and ``rho`` (b, k_corr)."""
        b = Y.shape[1]
        out = np.zeros((b, len(group_codes), self.k_re))
        il = np.tril_indices(self.k_re)
        lam = np.concatenate([psi[:, il[0], il[1]], vc], axis=1)
        for i, gcode in enumerate(group_codes):
            n = int(self.sizes[gcode])
            rows = self.group_rows(np.array([gcode]), n)  # (1, n)
            geom = self.geometry(rows)
            cs = self.cov_struct
            if self.k_corr:
                C = np.stack([cs.residual(r, geom).value[0] for r in rho])
            else:
                C = np.broadcast_to(cs.residual(np.zeros(0), geom).value[0], (1, n, n))
            H = C + np.einsum("bm,mts->bts", lam, self._basis(rows)[:, 0])
            r = Y[rows[0]].T - beta @ self.X[rows[0]].T  # (b, n)
            Hr = np.linalg.solve(H, r[..., None])[..., 0]
            out[:, i] = np.einsum("bac,tc,bt->ba", psi, self.Z[rows[0]], Hr)
        return out
