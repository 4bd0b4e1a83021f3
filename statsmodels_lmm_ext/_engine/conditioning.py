"""Numerical conditioning of the fixed-effects design and the response (DESIGN.md section 9).

The engine never works on the user's ``(X, y)``.  An economic QR with column pivoting of the
column-scaled design, ``(X D^-1)[:, piv] = Q R``, gives the orthogonal design
``Xt = sqrt(N) Q`` and the triangular map ``X = Xt T`` with
``T = R[:, piv^-1] D / sqrt(N)``; the response becomes its ordinary least squares residual scaled
to unit root mean square, ``y = Xt g0 + s yt``.  For any covariance ``H`` the GLS fit of
``(Xt, yt)`` maps back exactly:

    beta = T^-1 (g0 + s gamma),   sigma^2 = s^2 sigma~^2,   G = s^2 G~,   vc = s^2 vc~,
    A = X'H^-1X = T' A~ T,
    -2 l = -2 l~ + dfr log s^2 (+ 2 log|det T| for REML),

with the correlation parameters unchanged.  A constant added to ``y`` (with an intercept), the
units of ``y`` and of each covariate, and any reparameterisation of the columns of ``X`` then
change only ``(g0, s, T)``, which enter the results in closed form; the optimiser and the
Cholesky factors see the same well-conditioned problem (``Xt`` has orthonormal columns up to
``sqrt(N)``, ``yt`` unit scale and no offset).

Derivative blocks (:meth:`Engine.derivative_blocks`) transform with ``V = s^2 V~``: with
``f_k = 1`` for ``G``, ``vc`` and ``sigma^2`` and ``f_k = s^2`` for the structure's parameters,
``V_k = f_k V~_k`` and ``V_kl = f_k f_l V~_kl / s^2`` (see :func:`blocks_to_user`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .designs import CellDesign, GatheredRows, tsqr_r

# A response whose least squares residual has an RMS below this fraction of the response's own
# RMS is an exact linear function of the design (up to rounding).
_EXACT_FIT = 1e-11


class Conditioning:
    """The affine maps ``X = Xt T`` and ``y = Xt g0 + s yt`` of one design and response.

    Parameters
    ----------
    X : ndarray (N, p)
    y : ndarray (N,)
    qr : tuple, optional
        ``(Q, R, piv, d)`` of :func:`pivoted_qr` when already computed (the model's rank check).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, qr=None):
        if not isinstance(X, CellDesign):
            X = np.asarray(X, float)
        self.nobs, self.p = X.shape
        Q, R, piv, d = pivoted_qr(X) if qr is None else qr
        self.R, self.piv, self.d = R, piv, d
        root = np.sqrt(max(self.nobs, 1))
        # a design with few distinct rows keeps them (and the rows' codes, over which the
        # engine sums) instead of an N x p conditioned design
        self.row_codes = None
        if isinstance(Q, CellDesign):
            self.Xt = Q.scaled(root)
            if isinstance(Q, GatheredRows):
                self.row_codes = Q.inverse
        else:
            self.Xt = np.ascontiguousarray(root * Q)
        self.T = (R[:, np.argsort(piv)] * d) / root if self.p else np.zeros((0, 0))
        with np.errstate(divide="ignore"):
            self.logdet_T = float(
                np.log(np.abs(np.diag(R))).sum() + np.log(d).sum() - self.p * np.log(root)
            )
        self.set_response(y)

    def set_response(self, y: np.ndarray) -> None:
        """``g0`` and ``s`` of a response: its least squares fit (projected twice, so that a
        large offset leaves no rounding in the residual) and residual RMS."""
        y = np.asarray(y, float)
        g0 = np.zeros(self.p)
        e = y.copy()
        for _ in range(2):
            g = _tdot(self.Xt, e) / max(self.nobs, 1)
            e = e - self.Xt @ g
            g0 = g0 + g
        self.g0 = g0
        rms_e = float(np.sqrt(np.mean(e**2))) if self.nobs else 0.0
        rms_y = float(np.sqrt(np.mean(y**2))) if self.nobs else 0.0
        self.exact_fit = not rms_e > _EXACT_FIT * rms_y
        self.s = rms_e if rms_e > 0 else 1.0
        self.yt = e / self.s

    def response(self, Y: np.ndarray) -> np.ndarray:
        """Conditioned responses ``(Y - Xt g0) / s`` with this response's ``(g0, s)``."""
        Y = np.asarray(Y, float)
        fit = self.Xt @ self.g0
        return (Y - (fit[:, None] if Y.ndim == 2 else fit)) / self.s

    # ------------------------------------------------------------ maps
    def T_solve(self, gamma: np.ndarray) -> np.ndarray:
        """``T^-1 gamma`` for ``gamma`` (..., p) (triangular solve, no inverse formed)."""
        gamma = np.asarray(gamma, float)
        if not self.p:
            return gamma.copy()
        flat = gamma.reshape(-1, self.p).T * np.sqrt(max(self.nobs, 1))
        z = scipy.linalg.solve_triangular(self.R, flat)
        beta = np.empty_like(z)
        beta[self.piv] = z / self.d[self.piv, None]
        return beta.T.reshape(gamma.shape)

    def T_apply(self, beta: np.ndarray) -> np.ndarray:
        """``T beta`` for ``beta`` (..., p)."""
        return np.asarray(beta, float) @ self.T.T

    def beta_to_user(self, gamma: np.ndarray) -> np.ndarray:
        """``beta = T^-1 (g0 + s gamma)``."""
        return self.T_solve(self.g0 + self.s * np.asarray(gamma, float))

    def beta_to_cond(self, beta: np.ndarray) -> np.ndarray:
        """``gamma = (T beta - g0) / s``."""
        return (self.T_apply(beta) - self.g0) / self.s

    def sandwich(self, M: np.ndarray) -> np.ndarray:
        """``T' M T`` for stacks ``M`` (..., p, p)."""
        return np.swapaxes(self.T, 0, 1) @ M @ self.T

    def inverse_sandwich(self, M: np.ndarray) -> np.ndarray:
        """``T^-1 M T^-T`` for stacks ``M`` (..., p, p)."""
        left = self.T_solve(np.swapaxes(M, -1, -2))  # rows: T^-1 applied to M' columns
        return self.T_solve(np.swapaxes(left, -1, -2))

    def profile_to_user(self, out: dict, reml: bool) -> dict:
        """Map :meth:`Engine.profile` outputs (conditioned) to the user's scale, in place;
        adds ``Ainv`` (``(X'H^-1X)^-1``, computed from the conditioned ``A``)."""
        s2 = self.s**2
        dfr = self.nobs - self.p if reml else self.nobs
        ok = out["ok"]
        A = out["A"]
        Ainv = np.full_like(A, np.nan)
        if ok.any():
            Ainv[ok] = self.inverse_sandwich(np.linalg.inv(A[ok]))
        out["Ainv"] = Ainv
        out["A"] = self.sandwich(A)
        out["beta"] = self.beta_to_user(out["beta"])
        out["scale"] = out["scale"] * s2
        if "logdet_A" in out:
            out["logdet_A"] = out["logdet_A"] + 2.0 * self.logdet_T
        shift = dfr * np.log(s2) + (2.0 * self.logdet_T if reml else 0.0)
        out["dev"] = np.where(ok, out["dev"] + shift, np.inf)
        return out


def _tdot(M, e: np.ndarray) -> np.ndarray:
    """``M' e`` for an array or a :class:`CellDesign`."""
    return M.tdot(e) if isinstance(M, CellDesign) else M.T @ e


def pivoted_qr(X: np.ndarray, rows=None):
    """``(Q, R, piv, d)``: economic QR with column pivoting of ``X`` with columns scaled to unit
    norm (``d`` the norms, 1 for zero columns), ``(X / d)[:, piv] = Q R``.

    ``rows``: ``(U, inverse, counts)`` of the distinct rows ``u_k`` of ``X``
    (``_validation.distinct_rows``; a :class:`GatheredRows` ``X`` gives its own).  Then ``d``
    and ``R`` come from the small matrix of rows ``sqrt(c_k) u_k / d`` (it has the same
    ``R'R``) and ``Q = (X / d)[:, piv] R^-1`` is gathered from its distinct rows (a
    :class:`GatheredRows`).  A design that this does not show to have full rank with a margin
    (100 times the rank tolerance) is factored row by row, so the rank decision and the
    columns an error names are those of the row-by-row QR.
    """
    if isinstance(X, GatheredRows):
        rows = X.distinct() if rows is None else rows
    elif not isinstance(X, CellDesign):
        X = np.asarray(X, float)
    N, p = X.shape
    if p == 0 or N == 0:
        return np.zeros((N, 0)), np.zeros((0, 0)), np.zeros(0, int), np.ones(0)
    if rows is None and isinstance(X, CellDesign):
        factored = _cell_qr(X)
        if factored is not None:
            return factored
    if rows is not None:
        U, inverse, counts = rows
        d = np.sqrt(counts @ U**2)
        d[d == 0] = 1.0
        U = U / d
        _, R, piv = scipy.linalg.qr(U * np.sqrt(counts)[:, None], mode="economic", pivoting=True)
        if R.shape[0] == p and qr_rank(R, (100 * N, p)) == p:
            Qu = scipy.linalg.solve_triangular(R, U[:, piv].T, trans="T").T
            return GatheredRows(Qu, inverse), R, piv, d
    X = np.asarray(X, float)  # the row-by-row QR (a GatheredRows is expanded here only)
    d = np.sqrt(np.einsum("ij,ij->j", X, X))
    d[d == 0] = 1.0
    Q, R, piv = scipy.linalg.qr(X / d, mode="economic", pivoting=True)
    return Q, R, piv, d


def _cell_qr(X: CellDesign):
    """:func:`pivoted_qr` of a :class:`CellDesign` from the ``R`` of its blocks of rows
    (``designs.tsqr_r``): the pivoted QR of that ``p x p`` factor has the ``R`` and pivots of
    the pivoted QR of ``X / d`` (the same ``R'R``), and ``Q = X (D^-1 P R^-1)`` keeps the
    design's form.  ``None`` when this does not show full rank with a margin."""
    N, p = X.shape
    d = np.sqrt(np.maximum(np.diag(X.gram()), 0.0))
    d[d == 0] = 1.0
    _, R, piv = scipy.linalg.qr(tsqr_r(X, d), mode="economic", pivoting=True)
    if R.shape[0] != p or qr_rank(R, (100 * N, p)) != p:
        return None
    A = scipy.linalg.solve_triangular(R, np.diag(1.0 / d)[:, piv].T, trans="T").T
    return X.map_columns(A), R, piv, d


def qr_rank(R: np.ndarray, shape: tuple[int, int]) -> int:
    """Numerical rank from the diagonal of a pivoted QR's ``R``."""
    dg = np.abs(np.diag(R))
    if not dg.size:
        return 0
    tol = dg.max() * max(shape) * np.finfo(float).eps * 10
    return int((dg > tol).sum())


def blocks_to_user(blocks: dict, cond: Conditioning, k_lin: int) -> dict:
    """Derivative blocks of the conditioned problem mapped to the user's scale (module
    docstring): ``X = Xt T``, ``r = s r~``, ``V = s^2 V~``, ``V_k = f_k V~_k``."""
    s = cond.s
    K = blocks["trV"].shape[0]
    f = np.ones(K)
    f[k_lin + 1 :] = s**2
    ff = np.outer(f, f)
    out = {}
    out["XVX"] = cond.sandwich(blocks["XVX"]) / s**2
    # its inverse from the well-conditioned block, not by inverting the user-scale one
    out["XVXinv"] = cond.inverse_sandwich(np.linalg.inv(blocks["XVX"])) * s**2
    out["P"] = cond.sandwich(blocks["P"]) * (f / s**4)[:, None, None]
    out["Q"] = cond.sandwich(blocks["Q"]) * (ff / s**6)[:, :, None, None]
    out["R"] = cond.sandwich(blocks["R"]) * (ff / s**6)[:, :, None, None]
    for name in ("trVV", "trV2", "rVVVr", "rV2r"):
        out[name] = blocks[name] * ff / s**4
    out["xr"] = (blocks["xr"] @ cond.T) * (f / s**3)[:, None]
    out["rVr"] = blocks["rVr"] * f / s**2
    out["trV"] = blocks["trV"] * f / s**2
    return out
