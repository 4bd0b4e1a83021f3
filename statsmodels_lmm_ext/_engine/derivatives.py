"""Derivatives of ``V`` in the natural parameters and the sums over groups built on them.

Natural parameters ``theta = (G lower triangle, vc, sigma^2, rho)`` with
``V_i = Z_i G Z_i' + sum_j vc_j K_ji + sigma^2 R_i(rho)`` (DESIGN.md section 3): ``G`` and
``vc`` enter linearly, ``sigma^2`` multiplies the residual structure, and the structure's own
parameters enter through its derivatives.
"""

from __future__ import annotations

import numpy as np

from .._threads import blas_threads
from .conditioning import blocks_to_user
from .layout import Chunk
from .likelihood import spd_inverse

_BLOCKS = ("XVX", "P", "Q", "R", "trVV", "trV2", "rVVVr", "rV2r", "xr", "rVr", "trV")


class DerivativesMixin:
    """``dV``, ``d2V`` and the information / Kenward-Roger blocks of an :class:`Engine`."""

    @property
    def k_theta(self) -> int:
        return self.k_lin + 1 + self.k_corr

    def _lam(self, G: np.ndarray, vc: np.ndarray, scale: float) -> np.ndarray:
        G = np.asarray(G, float).reshape(self.k_re, self.k_re)
        return np.concatenate([G[np.tril_indices(self.k_re)], np.asarray(vc, float)]) / scale

    def _natural_derivatives(self, ch: Chunk, lam, scale: float, rho):
        """``H`` (U, n, n), ``dV`` (K, U, n, n) and ``d2V`` (K, K, U, n, n) of one chunk;
        ``d2V`` is None without structure parameters (V is then linear in theta)."""
        K, s2 = self.k_theta, self.k_lin  # s2: the index of sigma^2
        H, dR, d2R = self.H(ch, lam[None], np.asarray(rho, float)[None], order=2)
        H, dR, d2R = H[0], dR[0], d2R[0]
        dV = np.empty((K,) + ch.shape)
        dV[:s2] = ch.K
        dV[s2] = H - np.einsum("m,muts->uts", lam, ch.K) if self.k_lin else H  # R
        dV[s2 + 1 :] = scale * dR
        d2V = None
        if self.k_corr:
            d2V = np.zeros((K, K) + ch.shape)
            d2V[s2, s2 + 1 :] = dR
            d2V[s2 + 1 :, s2] = dR
            d2V[s2 + 1 :, s2 + 1 :] = scale * d2R
        return H, dV, d2V

    @blas_threads()
    def derivative_blocks(self, G, vc, scale: float, rho, beta) -> dict:
        """Sums over groups needed for information matrices, Satterthwaite and Kenward-Roger.

        With ``Vi = V^-1``, ``V_k = dV/dtheta_k``, ``V_kl`` the second derivatives and
        ``r = y - X beta``: ``XVX`` = X'Vi X; ``P[k]`` = -X'Vi V_k Vi X; ``Q[k, l]`` =
        X'Vi V_k Vi V_l Vi X; ``R[k, l]`` = X'Vi V_kl Vi X; ``trVV[k, l]`` = tr(Vi V_k Vi V_l);
        ``trV2[k, l]`` = tr(Vi V_kl); ``rVVVr[k, l]`` = r'Vi V_k Vi V_l Vi r; ``rV2r[k, l]`` =
        r'Vi V_kl Vi r; ``xr[k]`` = X'Vi V_k Vi r; ``rVr[k]`` = r'Vi V_k Vi r; ``trV[k]`` =
        tr(Vi V_k); ``XVXinv`` = (X'Vi X)^-1 (from the conditioned problem).
        """
        # computed on the conditioned problem (scale s^2 smaller, X = Xc T) and mapped back
        cond = self.cond
        scale = scale / cond.s**2
        lam = self._lam(G, vc, scale * cond.s**2)
        beta = cond.beta_to_cond(np.asarray(beta, float))
        out = self._derivative_sums(lam, scale, rho, beta)
        return blocks_to_user(out, cond, self.k_lin)

    def _derivative_sums(self, lam, scale: float, rho, beta) -> dict:
        """:meth:`derivative_blocks` of the conditioned problem."""
        K, p = self.k_theta, self.k_fe
        b1 = beta[None]
        shapes = {"XVX": (p, p), "P": (K, p, p), "Q": (K, K, p, p), "R": (K, K, p, p)}
        shapes.update(trVV=(K, K), trV2=(K, K), rVVVr=(K, K), rV2r=(K, K), xr=(K, p))
        shapes.update(rVr=(K,), trV=(K,))
        out = {name: np.zeros(shapes[name]) for name in _BLOCKS}
        for ch, ys in zip(self.chunks, self.own_stats, strict=True):
            H, D, D2 = self._natural_derivatives(ch, lam, scale, rho)
            Vi = spd_inverse(H[None])[0][0] / scale
            E = Vi @ D @ Vi  # Vi V_k Vi
            XE = ch.xx(E)
            out["XVX"] += ch.xx(Vi)
            out["P"] -= XE
            F = E[:, None] @ D[None] @ Vi  # Vi V_k Vi V_l Vi
            XF = ch.xx(F)
            out["Q"] += XF
            out["trVV"] += ch.wtrace(E[:, None], D[None])
            out["rVVVr"] += ch.rr(F[None], ys, b1, xx=XF[None], symmetric=False)[0]
            out["xr"] += ch.xy(E[None], ys)[0] - XE @ beta
            out["rVr"] += ch.rr(E[None], ys, b1, xx=XE[None])[0]
            out["trV"] += ch.wtrace(Vi[None], D)
            if D2 is not None:
                E2 = Vi @ D2 @ Vi
                XE2 = ch.xx(E2)
                out["R"] += XE2
                out["trV2"] += ch.wtrace(Vi[None, None], D2)
                out["rV2r"] += ch.rr(E2[None], ys, b1, xx=XE2[None])[0]
        return out

    def V_and_derivatives(self, G, vc, scale: float, rho):
        """Per-group ``V``, ``dV`` and ``d2V`` in natural parameters (for checks and tests).

        Returns a list of ``(rows, V, dV, d2V)`` with ``V`` (U, n, n), ``dV`` (K, U, n, n) and
        ``d2V`` (K, K, U, n, n), one entry per chunk of single groups.
        """
        lam = self._lam(G, vc, scale)
        res = []
        for ch in self.group_chunks():
            H, dV, d2V = self._natural_derivatives(ch, lam, scale, rho)
            if d2V is None:
                d2V = np.zeros(dV.shape[:1] + dV.shape)
            res.append((ch.rows, scale * H, dV, d2V))
        return res
