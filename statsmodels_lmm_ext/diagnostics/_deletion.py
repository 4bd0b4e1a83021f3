"""Exact leave-one-group-out refits, batched over the deleted groups.

The likelihood of the data without group ``g`` is the full likelihood's sums over units minus
the group's own terms::

    A_(g) = sum_i X_i' H_i^-1 X_i - X_g' H_g^-1 X_g,   (the same for X'H^-1y, y'H^-1y,
    sum_i log|H_i| and the gradient's traces and quadratic forms)

with ``N - n_g`` observations.  A batch of ``B`` deleted groups is a batch of ``B`` parameter
sets for the engine (:meth:`Engine.H`, one Cholesky per unit and parameter set, as the bootstrap's
refits) whose sums lose one group each, so the refits run together through the batched BFGS of
:func:`~statsmodels_lmm_ext.optimize.bfgs_many`, warm-started at the full estimates with the full
fit's inverse Hessian.  In the "pattern" layout (groups sharing a visit pattern are one unit)
the deleted group's terms come from its own rows and its pattern's ``H^-1``; no ``N x N``
matrix and no per-group copy of the data is formed.
"""

from __future__ import annotations

import numpy as np

from .._engine.likelihood import gls_finish, spd_inverse
from ..optimize import (
    GTOL,
    bfgs_many,
    gradient_scale,
    leave_saddles_many,
    minimize_chain,
    saddle_restart,
)

__all__ = ["DeletionFits"]

# What a refit keeps of :meth:`DeletionFits.profile` at its estimates.
_KEEP = ("ok", "dev", "beta", "scale", "Ainv", "full_dev", "full_beta", "full_scale", "full_A")
# Elements (B * sum_u n_u^2 * (2 k + 3)) one batch of deleted groups may hold at once.
_BATCH_ELEMENTS = 20_000_000


class DeletionFits:
    """Leave-one-group-out likelihoods and refits of one engine.

    Parameters
    ----------
    engine : Engine
        The fitted model's engine (its chunks, conditioned design and response).
    spec : CovParams
        The covariance parameters (optimiser coordinates <-> natural parameters).
    reml : bool
    """

    def __init__(self, engine, spec, reml: bool):
        self.eng, self.spec, self.reml = engine, spec, bool(reml)
        G = engine.n_groups
        self.chunk_of = np.full(G, -1, dtype=np.intp)
        self.unit_of = np.full(G, -1, dtype=np.intp)
        for ci, ch in enumerate(engine.chunks):
            if ch.pattern:
                gids = engine.groups[ch.member_rows[:, 0]]
                members = np.arange(len(gids))
                units = np.searchsorted(ch.member_bounds, members, side="right") - 1
            else:
                gids = engine.groups[ch.rows[:, 0]]
                units = np.arange(len(gids))
            self.chunk_of[gids] = ci
            self.unit_of[gids] = units
        self.gscale = gradient_scale(engine.nobs)

    # ------------------------------------------------------------------ likelihood
    def batch_size(self) -> int:
        """Deleted groups per batch (bounded memory: every batch item holds all units)."""
        eng = self.eng
        per = sum(len(ch.weight) * ch.n * ch.n for ch in eng.chunks)
        k = eng.k_lin + eng.k_corr
        return int(max(1, min(eng.n_groups, _BATCH_ELEMENTS // max(per * (2 * k + 3), 1))))

    def _own_terms(self, ch, ci, gids, M, ld, dR, gradient):
        """The deleted groups of chunk ``ci``: their batch positions and ``(M_g, D_g, X_g,
        y_g, log|H_g|)`` (conditioned), or None."""
        idx = np.flatnonzero(self.chunk_of[gids] == ci)
        if not idx.size:
            return None
        u = self.unit_of[gids[idx]]
        rows = self.eng.group_rows(gids[idx], ch.n)
        D = None
        if gradient:
            K = np.moveaxis(ch.K[:, u], 1, 0)  # (m, k_lin, n, n)
            D = np.concatenate([K, dR[idx, :, u]], axis=1) if self.eng.k_corr else K
        return idx, u, M[idx, u], D, self.eng.Xc[rows], self.eng.yc[rows], ld[idx, u]

    def _inverses(self, ch, lam, rho, gradient: bool):
        """``H^-1``, ``log|H|``, the not-positive-definite mask and ``dR`` of a chunk, computed
        once per distinct parameter set (a batch's first evaluation is at one start)."""
        order = 1 if gradient else 0
        P = np.concatenate([lam, rho], axis=1)
        _, first, inv = np.unique(P, axis=0, return_index=True, return_inverse=True)
        if len(first) == len(P):
            H, dR, _ = self.eng.H(ch, lam, rho, order=order)
            return (*spd_inverse(H), dR)
        inv = inv.ravel()
        H, dR, _ = self.eng.H(ch, lam[first], rho[first], order=order)
        M, ld, bad = spd_inverse(H)
        return M[inv], ld[inv], bad[inv], None if dR is None else dR[inv]

    def profile(self, lam, rho, gids, gradient: bool = False, full: bool = False) -> dict:
        """Profiled deviance ``-2 l`` of the data without group ``gids[b]`` at the parameters
        ``(lam[b], rho[b])``, for each ``b``.

        Returns ``dev``, ``beta`` (B, p), ``scale``, ``Ainv`` (``(X'H^-1X)^-1`` of the reduced
        data), ``ok`` on the user's scale, with ``gradient`` ``grad_lin`` and ``grad_rho`` (as
        :meth:`Engine.profile`), and with ``full`` the full data's ``full_dev``,
        ``full_beta``, ``full_scale`` and ``full_A`` (``X'H^-1X``) at the same parameters (the
        sums before the groups' terms are taken out).
        """
        eng = self.eng
        gids = np.asarray(gids, dtype=np.intp)
        B = len(gids)
        lam = np.asarray(lam, float).reshape(B, eng.k_lin)
        rho = np.asarray(rho, float).reshape(B, eng.k_corr)
        A, b, c, logdet, bad, kept = eng.accumulate(
            lam, rho, eng.own_stats, order=int(gradient), keep=True,
            inverses=lambda ch: self._inverses(ch, lam, rho, gradient),
        )  # fmt: skip
        keep = [(M, dR) for M, _, dR in kept] if gradient else []
        own = [
            self._own_terms(ch, ci, gids, M, ld, dR, gradient)
            for ci, (ch, (M, ld, dR)) in enumerate(zip(eng.chunks, kept, strict=True))
        ]
        sums = None
        if full:
            sums = (A.copy(), b.copy(), c.copy(), logdet.copy(), bad.copy())
        for terms in own:
            if terms is not None:
                idx, u, Mg, Dg, Xg, yg, ldg = terms
                MX, My = Mg @ Xg, np.einsum("mts,ms->mt", Mg, yg)
                A[idx] -= np.einsum("mta,mtb->mab", Xg, MX)
                b[idx] -= np.einsum("mta,mt->ma", Xg, My)
                c[idx] -= np.einsum("mt,mt->m", yg, My)
                logdet[idx] -= ldg
        n_left = eng.nobs - eng.sizes[gids]
        out = self._finish(A, b, c, logdet, bad, n_left)
        if gradient:
            with np.errstate(all="ignore"):
                grad = self._gradient(keep, [t for t in own if t is not None], out, A)
            grad[~out["ok"]] = 0.0
            out["grad_lin"], out["grad_rho"] = grad[:, : eng.k_lin], grad[:, eng.k_lin :]
        self._to_user(out, A)
        if sums is not None:
            whole = self._finish(*sums, np.full(B, eng.nobs))
            self._to_user(whole, sums[0])
            out.update({f"full_{k}": whole[k] for k in ("dev", "beta", "scale")})
            out["full_A"] = eng.cond.sandwich(sums[0])
        return out

    def _finish(self, A, b, c, logdet, bad, nobs) -> dict:
        """GLS ``beta``, ``scale`` and the deviance from the sums (conditioned scale)."""
        p = self.eng.k_fe
        dfr = nobs - p if self.reml else nobs
        bad = bad | (dfr <= 0)
        dfr = np.maximum(dfr, 1)
        beta, scale, dev, bad, _ = gls_finish(A, b, c, logdet, bad, dfr, self.reml)
        return {"ok": ~bad & np.isfinite(dev), "dev": dev, "beta": beta, "scale": scale,
                "dfr": dfr}  # fmt: skip

    def _gradient(self, keep, own, out, A) -> np.ndarray:
        """The full data's gradient terms (at the reduced fits' ``beta``, ``scale``,
        ``A^-1``) minus the deleted groups' own."""
        eng = self.eng
        beta, scale = out["beta"], out["scale"]
        grad = eng._gradient(keep, eng.own_stats, beta, scale, A if self.reml else None)
        Ainv = np.linalg.inv(A)
        for idx, _, Mg, Dg, Xg, yg, _ in own:
            r = yg - np.einsum("mta,ma->mt", Xg, beta[idx])
            Mr = np.einsum("mts,ms->mt", Mg, r)
            g = np.einsum("mts,mkst->mk", Mg, Dg)
            g -= np.einsum("mt,mkts,ms->mk", Mr, Dg, Mr) / scale[idx, None]
            if self.reml:
                MX = Mg @ Xg
                XDX = np.einsum("mta,mkts,msb->mkab", MX, Dg, MX)
                g -= np.einsum("mkab,mba->mk", XDX, Ainv[idx])
            grad[idx] -= g
        return grad

    def _to_user(self, out: dict, A: np.ndarray) -> None:
        """Map :meth:`_finish`'s outputs to the user's scale in place
        (:meth:`Conditioning.profile_to_user` with the data's own residual df)."""
        cond = self.eng.cond
        ok = out["ok"]
        s2 = cond.s**2
        shift = out.pop("dfr") * np.log(s2) + (2.0 * cond.logdet_T if self.reml else 0.0)
        out["dev"] = np.where(ok, out["dev"] + shift, np.inf)
        Ainv = np.full_like(A, np.nan)
        if ok.any():
            Ainv[ok] = cond.inverse_sandwich(np.linalg.inv(A[ok]))
        out["Ainv"] = Ainv
        out["beta"] = cond.beta_to_user(out["beta"])
        out["scale"] = out["scale"] * s2

    # ------------------------------------------------------------------ refits
    def start(self, psi, vc, rho) -> np.ndarray:
        """Warm start: the full fit in optimiser coordinates, variances at zero moved off the
        square-root map's stationary point (as the bootstrap's refits)."""
        u = self.spec.unconstrained(psi, vc, rho)
        zero = self.spec.at_zero(u)
        u[zero] = saddle_restart(u[zero])
        return u

    def full_inverse_hessian(self, u0: np.ndarray) -> np.ndarray | None:
        """Inverse Hessian of the full data's deviance at ``u0`` (central differences of the
        analytic gradient), None if not positive definite: the deleted fits' curvature is
        close to it, so BFGS starts with the right metric."""
        eng, spec = self.eng, self.spec
        k = len(u0)
        h = 1e-5 * np.maximum(1.0, np.abs(u0))
        U = np.concatenate([u0 + np.diag(h), u0 - np.diag(h)])
        lam, rho, _, _ = spec.natural_many(U)
        with np.errstate(all="ignore"):  # the own response's statistics broadcast over U
            out = eng.profile(lam, rho, self.reml, gradient=True)
        Gr = spec.chain_many(U, out["grad_lin"], out["grad_rho"])
        Hm = (Gr[:k] - Gr[k:]) / (2.0 * h[:, None])
        Hm = (Hm + Hm.T) / 2.0
        if not (np.all(out["ok"]) and np.all(np.isfinite(Hm))):
            return None
        w, V = np.linalg.eigh(Hm)
        if w.min() <= 1e-8 * max(w.max(), 1e-300):
            return None
        return (V / w) @ V.T

    def _functions(self, gids, memo: dict):
        """The batch's ``fg`` and saddle detector; ``fg`` keeps each row's latest estimates
        in ``memo`` (row -> (point, outputs)), so that the final ones need no evaluation."""
        spec = self.spec

        def fg(U, idx):
            lam, rho, _, _ = spec.natural_many(U)
            out = self.profile(lam, rho, gids[idx], gradient=True, full=True)
            for r, j in enumerate(idx):
                memo[j] = (U[r].copy(), {k: out[k][r] for k in _KEEP})
            return out["dev"], spec.chain_many(U, out["grad_lin"], out["grad_rho"])

        def saddles(U, idx):
            lam, rho, _, _ = spec.natural_many(U)
            # only a variance at zero can be a saddle (the policy's own test, any gradient)
            maybe = spec.saddles_many(U, np.full(lam.shape, -np.inf), self.gscale).any(axis=1)
            out = np.zeros(U.shape, bool)
            if maybe.any():
                r = np.flatnonzero(maybe)
                prof = self.profile(lam[r], rho[r], gids[idx[r]], gradient=True)
                out[r] = spec.saddles_many(U[r], prof["grad_lin"], self.gscale)
            return out

        return fg, saddles

    def refit(self, gids, u0: np.ndarray, hinv0=None, gtol: float = GTOL * 1e-2):
        """Refit without each group of ``gids`` (one batch): ``(U, dev, converged, est)``,
        ``est`` the outputs of :meth:`profile` (``full=True``) at the estimates.

        Batched BFGS from ``u0`` to ``gtol`` (tighter than a fit's default, so that the refits
        agree with direct fits of the reduced data), the saddle policy, and the optimiser
        chain of ``fit()`` for the refits the batch leaves unconverged.
        """
        gids = np.asarray(gids, dtype=np.intp)
        B = len(gids)
        U = np.tile(u0, (B, 1))
        memo: dict = {}
        if not self.spec.k:
            conv = np.ones(B, bool)
        else:
            fg, saddles = self._functions(gids, memo)
            with np.errstate(all="ignore"):
                U, _, conv = bfgs_many(fg, U, self.gscale, gtol, Hinv0=hinv0)
                U, _, conv = leave_saddles_many(fg, saddles, U, _, conv, u0, self.gscale, gtol)
            for j in np.flatnonzero(~conv):
                U[j], _, conv[j] = self._refit_one(fg, saddles, j, u0)
        miss = [j for j in range(B) if j not in memo or not np.array_equal(memo[j][0], U[j])]
        if miss:
            lam, rho, _, _ = self.spec.natural_many(U[miss])
            with np.errstate(all="ignore"):
                out = self.profile(lam, rho, gids[miss], full=True)
            for r, j in enumerate(miss):
                memo[j] = (U[j], {k: out[k][r] for k in _KEEP})
        est = {k: np.stack([memo[j][1][k] for j in range(B)]) for k in _KEEP}
        return U, est["dev"], conv & est["ok"], est

    def _refit_one(self, fg_many, saddles_many, j: int, u0: np.ndarray):
        """One deleted fit by the optimiser chain (the batch's fallback)."""
        at = np.array([j])

        def fg(u):
            val, grad = fg_many(np.asarray(u, float)[None], at)
            return float(val[0]), grad[0]

        def saddles(u):
            return saddles_many(np.asarray(u, float)[None], at)[0]

        with np.errstate(all="ignore"):
            u, dev, ok, _, _ = minimize_chain(fg, u0.copy(), saddles=saddles, gscale=self.gscale)
        return u, dev, ok
