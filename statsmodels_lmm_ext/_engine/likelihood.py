"""The profiled likelihood, batched over parameter sets and responses (DESIGN.md section 2).

For ``B`` parameter sets ``(lam_b, rho_b)`` and responses ``y_b`` (a single fit is a batch of
one), with ``H_i = sum_m lam_m K_mi + R_i(rho)``::

    A = sum_i X_i' H_i^-1 X_i,  beta = A^-1 sum_i X_i' H_i^-1 y_i,  Q = sum_i r_i' H_i^-1 r_i
    ML:   -2 l = N log(2 pi Q / N) + sum_i log|H_i| + N
    REML: -2 l = (N-p) log(2 pi Q / (N-p)) + sum_i log|H_i| + log|A| + (N-p)

and the gradient of ``-2 l`` in ``(lam, rho)``:
``tr(H^-1 D) - r'H^-1 D H^-1 r / sigma^2 [- tr(A^-1 X'H^-1 D H^-1 X)]`` for each derivative
``D`` of ``H``.
"""

from __future__ import annotations

import numpy as np

from .layout import Chunk, EngineError


def spd_inverse(H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse and log-determinant of SPD stacks ``H`` (B, ..., n, n) via Cholesky.

    Returns ``(Hinv, logdet, bad)``; ``bad`` (B,) marks the items of the leading axis with a
    matrix that is not positive definite (their inverse and log-determinant are garbage).
    """
    B = H.shape[0]
    bad = np.zeros(B, bool)
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        L = np.empty_like(H)
        eye = np.broadcast_to(np.eye(H.shape[-1]), H.shape[1:])
        for b in range(B):
            try:
                L[b] = np.linalg.cholesky(H[b])
            except np.linalg.LinAlgError:
                bad[b] = True
                L[b] = eye
    diag = np.diagonal(L, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logdet = 2.0 * np.log(diag).sum(axis=-1)
    Linv = np.linalg.inv(L)
    return np.swapaxes(Linv, -1, -2) @ Linv, logdet, bad


def _solve_spd_batch(A: np.ndarray, b: np.ndarray, bad: np.ndarray):
    """Cholesky of the ``A`` (B, p, p) not marked ``bad`` (marking the singular ones) and the
    solutions of ``A x = b``; returns ``(x, logdet_A)``."""
    eye = np.eye(A.shape[-1])
    A[bad] = eye
    try:
        cf = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        cf = np.empty_like(A)
        for i in range(A.shape[0]):
            try:
                cf[i] = np.linalg.cholesky(A[i])
            except np.linalg.LinAlgError:
                bad[i] = True
                cf[i] = eye
                A[i] = eye
    x = np.linalg.solve(A, b[..., None])[..., 0]
    return x, 2.0 * np.log(np.diagonal(cf, axis1=-2, axis2=-1)).sum(axis=-1)


def gls_finish(A, b, c, logdet, bad, dfr, reml: bool):
    """GLS ``beta``, ``scale`` and ``-2 l`` from the likelihood's sums (DESIGN.md section 2).

    ``dfr`` is ``N - p`` (REML) or ``N`` (ML), a number or one per batch item.  Returns
    ``(beta, scale, dev, bad, logdet_A)``; ``bad`` adds a residual sum of squares that is not
    positive (``dev`` there is not meaningful).
    """
    beta, logdet_A = _solve_spd_batch(A, b, bad)
    Q = c - np.einsum("ba,ba->b", b, beta)
    bad = bad | ~(Q > 0)
    scale = np.where(bad, 1.0, Q) / dfr
    with np.errstate(all="ignore"):
        dev = dfr * (np.log(2 * np.pi * scale) + 1.0) + logdet
        if reml:
            dev = dev + logdet_A
    return beta, scale, dev, bad, logdet_A


class LikelihoodMixin:
    """The one profiled likelihood of an :class:`Engine`."""

    def residual_blocks(self, ch: Chunk, rho: np.ndarray, order: int):
        """Residual structure ``R`` (B, U, n, n) of a chunk at ``B`` parameter sets ``rho``
        (B, k_corr), and its derivatives (B, k, U, n, n), (B, k, k, U, n, n) up to ``order``."""
        B = rho.shape[0]
        cs = self.cov_struct
        if self.k_corr == 0:
            if "C0" not in ch.cache:
                ch.cache["C0"] = cs.residual(np.zeros(0), ch.geom).value
            R = np.broadcast_to(ch.cache["C0"], (B,) + ch.shape)
            d1 = np.zeros((B, 0) + ch.shape) if order >= 1 else None
            d2 = np.zeros((B, 0, 0) + ch.shape) if order >= 2 else None
            return R, d1, d2
        parts = [cs.residual(r, ch.geom, order=order) for r in rho]
        R = np.stack([b.value for b in parts])
        d1 = np.stack([b.d1 for b in parts]) if order >= 1 else None
        d2 = np.stack([b.d2 for b in parts]) if order >= 2 else None
        return R, d1, d2

    def H(self, ch: Chunk, lam: np.ndarray, rho: np.ndarray, order: int = 0):
        """``H = sum_m lam_m K_m + R(rho)`` (B, U, n, n) for ``lam`` (B, k_lin) and ``rho``
        (B, k_corr), with the residual derivatives up to ``order``."""
        R, d1, d2 = self.residual_blocks(ch, rho, order)
        H = R + np.einsum("bm,muts->buts", lam, ch.K) if self.k_lin else R.copy()
        return H, d1, d2

    def accumulate(self, lam, rho, stats, *, order: int = 0, keep: bool | None = None,
                   inverses=None):  # fmt: skip
        """The sums over chunks of the profiled likelihood at ``B`` parameter sets.

        Returns ``(A, b, c, logdet, bad, kept)``: ``X'H^-1X`` (B, p, p), ``X'H^-1y`` (B, p),
        ``y'H^-1y`` (B,), ``sum log|H_i|``, the not-positive-definite mask, and per chunk
        ``(H^-1, log|H_u|, dR)`` when ``keep`` (default: when ``order >= 1``).
        ``inverses(ch)`` may replace ``spd_inverse(H(ch))`` (returning ``(M, ld, bad, dR)``).
        """
        B, p = lam.shape[0], self.k_fe
        keep = order >= 1 if keep is None else keep
        A, b = np.zeros((B, p, p)), np.zeros((B, p))
        c, logdet = np.zeros(B), np.zeros(B)
        bad = np.zeros(B, bool)
        kept = []
        for ch, st in zip(self.chunks, stats, strict=True):
            if inverses is None:
                H, dR, _ = self.H(ch, lam, rho, order=order)
                M, ld, bad_c = spd_inverse(H)
            else:
                M, ld, bad_c, dR = inverses(ch)
            bad |= bad_c
            logdet += ld @ ch.weight
            A += ch.xx(M)
            b += ch.xy(M, st)
            c += ch.yy(M, st)
            if keep:
                kept.append((M, ld, dR))
        return A, b, c, logdet, bad, kept

    def profile(self, lam, rho, reml: bool, stats: list[dict] | None = None, gradient=False):
        """Profiled deviance ``-2 l`` for ``B`` parameter sets and responses at once.

        Parameters
        ----------
        lam, rho : ndarray (B, k_lin), (B, k_corr)
            Linear covariance parameters (``Psi`` lower triangle, ``vc`` / sigma^2) and the
            residual structure's parameters.
        reml : bool
        stats : list of dict, optional
            :meth:`endog_stats` of ``B`` responses (default: the engine's own response, which
            needs ``B == 1``).
        gradient : bool
            Also return ``grad_lin`` (B, k_lin) and ``grad_rho`` (B, k_corr).

        Returns
        -------
        dict
            ``dev``, ``beta`` (B, p), ``scale``, ``A`` (B, p, p, ``X'H^-1X``), ``Ainv`` (its
            inverse, from the conditioned problem), ``logdet`` (``sum log|H_i|``), ``logdet_A``
            (``log|A|``) and ``ok`` (B,): False where some
            ``H_i`` or ``A`` is not positive definite or the residual sum of squares is not
            positive (``dev`` is ``inf`` there).  All on the user's scale; the computation runs
            on the conditioned design and response (:mod:`.conditioning`).
        """
        lam = np.asarray(lam, dtype=float)
        B = lam.shape[0]
        lam = lam.reshape(B, self.k_lin)
        rho = np.asarray(rho, dtype=float).reshape(B, self.k_corr)
        stats = self.own_stats if stats is None else stats
        A, b, c, logdet, bad, kept = self.accumulate(lam, rho, stats, order=int(gradient))
        dfr = self.nobs - self.k_fe if reml else self.nobs
        beta, scale, dev, bad, logdet_A = gls_finish(A, b, c, logdet, bad, dfr, reml)
        dev = np.where(bad | ~np.isfinite(dev), np.inf, dev)
        out = {"dev": dev, "beta": beta, "scale": scale, "A": A, "logdet": logdet,
               "logdet_A": logdet_A}  # fmt: skip
        out["ok"] = np.isfinite(dev)
        if gradient:
            keep = [(M, dR) for M, _, dR in kept]
            grad = self._gradient(keep, stats, beta, scale, A if reml else None)
            grad[~out["ok"]] = 0.0
            out["grad_lin"] = grad[:, : self.k_lin]
            out["grad_rho"] = grad[:, self.k_lin :]
        return self.cond.profile_to_user(out, reml)

    def _gradient(self, keep, stats, beta, scale, A) -> np.ndarray:
        """Gradient of ``-2 l`` in ``(lam, rho)`` (B, k); ``A`` given for REML."""
        B = beta.shape[0]
        k = self.k_lin + self.k_corr
        grad = np.zeros((B, k))
        if k == 0:
            return grad
        Ainv = np.linalg.inv(A) if A is not None else None
        for ch, st, (M, dR) in zip(self.chunks, stats, keep, strict=True):
            K = np.broadcast_to(ch.K, (B,) + ch.K.shape)
            D = np.concatenate([K, dR], axis=1) if self.k_corr else K  # (B, k, U, n, n)
            if ch.pattern:
                grad += _pattern_gradient(ch, st, M, D, beta, scale, Ainv)
                continue
            MDM = M[:, None] @ D @ M[:, None]
            g = np.einsum("u,buts,bkust->bk", ch.weight, M, D)
            XX = ch.xx(MDM)  # (B, k, p, p)
            g -= ch.rr(MDM, st, beta, xx=XX) / scale[:, None]
            if Ainv is not None:
                g -= np.einsum("bkac,bca->bk", XX, Ainv)
            grad += g
        return grad

    def profile_one(self, lam, rho, reml: bool, gradient: bool = False) -> dict:
        """:meth:`profile` of the engine's own response at one parameter set, as scalars and
        vectors; raises :class:`EngineError` where the covariance is not positive definite."""
        out = self.profile(np.asarray(lam, float)[None], np.asarray(rho, float)[None], reml,
                           gradient=gradient)  # fmt: skip
        if not out["ok"][0]:
            raise EngineError(
                "a group covariance matrix or X' V^-1 X is not positive definite, or the "
                "residual sum of squares is not positive"
            )
        return {k: (v[0].item() if v[0].ndim == 0 else v[0]) for k, v in out.items()}


def _pattern_gradient(ch: Chunk, st: dict, M, D, beta, scale, Ainv) -> np.ndarray:
    """The gradient terms of one chunk of visit patterns in ``k U n^2``, not ``k U n^2 p^2``.

    Every term is linear in ``N_k = M D_k M``: ``r'N_k r / scale + tr(Ainv X'N_k X) =
    sum <N_k, Q>`` with ``Q = (S_rr / scale + X Ainv X')`` per pattern (from the sufficient
    statistics), and ``sum <M D_k M, Q> = sum <D_k, M Q M>`` (symmetric ``M``, ``Q``), so the
    gradient is ``sum_u <D_k, w M - M Q M>``: one ``(U, n, n)`` matrix contracted with each
    ``D_k``.
    """
    B = M.shape[0]
    U, n = M.shape[1:3]
    p = beta.shape[1]
    bb = (beta[:, :, None] * beta[:, None, :]).reshape(B, p * p)
    q = st["yy"] - 2.0 * np.einsum("bma,ba->bm", st["xy"], beta) + bb @ ch.Sxx_flat.T
    q = q / scale[:, None]
    if Ainv is not None:
        q = q + np.swapaxes(Ainv, -1, -2).reshape(B, p * p) @ ch.Sxx_flat.T
    Q = q.reshape(B, U, n, n)
    Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
    G = ch.weight[None, :, None, None] * M - M @ Q @ M
    return np.einsum("buts,bkuts->bk", G, D)
