"""Batched per-group likelihood engine (no formulas, no pandas).

Model, for group ``i`` with ``n_i`` rows::

    y_i = X_i beta + Z_i b_i + e_i,   V_i = sigma^2 H_i,
    H_i = sum_m lam_m K_mi + C_i(rho)

where the ``K_mi`` are fixed matrices built from the random-effects design (one per distinct
element of ``Psi = G / sigma^2``, lower triangle, and one per variance component) and ``C_i`` is
the residual correlation.  Everything is a sum over *units*: either single groups, or — when all
groups sharing a pattern of positions and random-effects rows share one ``H`` — patterns, with
the data entering through the sufficient statistics ``S_XX[t, s] = sum_i x_it x_is'`` etc.
(the "pattern" route).  Units of one size are stacked so that each operation is one batched
numpy call; no ``N x N`` matrix is ever formed.

References
----------
Pinheiro, J. C. and Bates, D. M. (2000). *Mixed-Effects Models in S and S-PLUS*. Springer.
Harville, D. A. (1977). Maximum likelihood approaches to variance component estimation.
*JASA* 72, 320-338.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np

from .covstruct import CovStruct

# Largest number of matrix elements (U * n * n * max(p, n)) held by one chunk of units.
_CHUNK_ELEMENTS = 8_000_000
# Pattern sufficient statistics above this many bytes fall back to per-group units.
_PATTERN_MEMORY = 1_500_000_000


@dataclass
class _Chunk:
    """Stacked units of one size ``n``.

    In group mode ``X`` (U, n, p) and ``y`` (U, n) hold the data; in pattern mode ``Sxx``
    (U, n, p, n, p), ``Sxy`` (U, n, p, n) and ``Syy`` (U, n, n) hold sums over the groups of each
    pattern, and ``weight`` counts them.
    """

    n: int
    weight: np.ndarray
    geom: object  # the residual structure's geometry of these units (opaque)
    K: np.ndarray  # (m, U, n, n)
    rows: np.ndarray | None = None  # (U, n) row indices (group mode)
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    Sxx: np.ndarray | None = None
    Sxy: np.ndarray | None = None
    Syy: np.ndarray | None = None
    # pattern mode: rows (G, n) of the member groups, sorted by unit, and unit boundaries (U + 1,)
    member_rows: np.ndarray | None = None
    member_bounds: np.ndarray | None = None
    cache: dict = field(default_factory=dict)

    @property
    def pattern(self) -> bool:
        return self.Sxx is not None

    # Data contractions with stacks of (U, n, n) matrices N (any leading axes):
    # xx(N) = sum_u X_u' N_u X_u, xy(N) = sum_u X_u' N_u y_u, yy(N) = sum_u y_u' N_u y_u.
    # In pattern mode each is one matrix product with the flattened sufficient statistics.
    def _flat(self, N: np.ndarray) -> np.ndarray:
        return N.reshape(N.shape[:-3] + (-1,))

    @property
    def _Sxx_flat(self) -> np.ndarray:
        if "Sxx_flat" not in self.cache:
            U, n, p = self.Sxx.shape[:3]
            self.cache["Sxx_flat"] = self.Sxx.transpose(0, 1, 3, 2, 4).reshape(U * n * n, p * p)
            self.cache["Sxy_flat"] = self.Sxy.transpose(0, 1, 3, 2).reshape(U * n * n, p)
        return self.cache["Sxx_flat"]

    def xx(self, N: np.ndarray) -> np.ndarray:
        if self.pattern:
            p = self.Sxx.shape[2]
            return (self._flat(N) @ self._Sxx_flat).reshape(N.shape[:-3] + (p, p))
        NX = N @ self.X
        return np.einsum("uta,...utb->...ab", self.X, NX, optimize=True)

    def xy(self, N: np.ndarray) -> np.ndarray:
        if self.pattern:
            self._Sxx_flat  # noqa: B018 (fills the cache)
            return self._flat(N) @ self.cache["Sxy_flat"]
        Ny = np.einsum("...uts,us->...ut", N, self.y, optimize=True)
        return np.einsum("uta,...ut->...a", self.X, Ny, optimize=True)

    def yx(self, N: np.ndarray) -> np.ndarray:
        """sum_u X_u' N_u' y_u (= xy of the transposes)."""
        return self.xy(np.swapaxes(N, -1, -2))

    def yy(self, N: np.ndarray) -> np.ndarray:
        if self.pattern:
            return self._flat(N) @ self.Syy.reshape(-1)
        return np.einsum("ut,...uts,us->...", self.y, N, self.y, optimize=True)

    def rr(self, N: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """sum_u r_u' N_u r_u with r = y - X beta."""
        xxb = self.xx(N) @ beta
        return self.yy(N) - self.xy(N) @ beta - self.yx(N) @ beta + xxb @ beta

    def xr(self, N: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """sum_u X_u' N_u r_u."""
        return self.xy(N) - self.xx(N) @ beta

    def wtrace(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """sum_u w_u tr(A_u B_u) for stacks A (..., U, n, n), B (..., U, n, n) (B transposed)."""
        return np.einsum("u,...uts,...ust->...", self.weight, A, B, optimize=True)


class EngineError(ValueError):
    """A covariance matrix of one group is not positive definite."""


class Engine:
    """Likelihood, gradient and derivative blocks of a linear mixed model.

    Parameters
    ----------
    y : ndarray (N,)
    X : ndarray (N, p)
        Full column rank (checked by the caller).
    groups : ndarray (N,) of int
        Group codes ``0 .. G-1``.
    Z : ndarray (N, q)
        Random-effects design (``q`` may be 0).
    Zvc : list of ndarray (N, m_j)
        Variance-component designs, zero-padded per row.
    positions : ndarray (N, d)
        Rows' positions for the residual structure (``d`` may be 0).
    cov_struct : CovStruct
    mode : {"auto", "pattern", "group"}
        Units are patterns when that saves work (``auto``), or always/never.
    """

    def __init__(
        self,
        y: np.ndarray,
        X: np.ndarray,
        groups: np.ndarray,
        Z: np.ndarray,
        Zvc: list[np.ndarray],
        positions: np.ndarray,
        cov_struct: CovStruct,
        mode: str = "auto",
    ):
        self.y = np.ascontiguousarray(y, dtype=float)
        self.X = np.ascontiguousarray(X, dtype=float)
        self.Z = np.ascontiguousarray(Z, dtype=float).reshape(len(y), -1)
        self.Zvc = [np.asarray(z, dtype=float).reshape(len(y), -1) for z in Zvc]
        self.positions = np.asarray(positions, dtype=float).reshape(len(y), -1)
        self.cov_struct = cov_struct
        self.visit = cov_struct.visit_index(self.positions)
        self.nobs, self.k_fe = self.X.shape
        self.k_re = self.Z.shape[1]
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = len(self.Zvc)
        self.k_lin = self.k_re2 + self.k_vc
        self.k_corr = cov_struct.k_params
        self.groups = np.asarray(groups)
        self.n_groups = int(self.groups.max()) + 1 if self.nobs else 0
        self._layout()
        self.max_group_size = int(self.sizes.max())
        self.bounds = cov_struct.bounds(self.max_group_size)
        self.mode = self._choose_mode(mode)
        self.chunks = self._build_chunks(self.mode == "pattern")

    # ------------------------------------------------------------------ layout
    def _layout(self) -> None:
        """Order rows by group then position; index groups by size."""
        keys = [np.arange(self.nobs)]
        keys += [self.positions[:, j] for j in range(self.positions.shape[1] - 1, -1, -1)]
        keys.append(self.groups)
        order = np.lexsort(keys)
        self.order = order
        self.sizes = np.bincount(self.groups, minlength=self.n_groups)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])

    def group_rows(self, group_ids: np.ndarray, n: int) -> np.ndarray:
        """Row indices (U, n) of the given groups, all of size ``n``, in position order."""
        return self.order[self.starts[group_ids][:, None] + np.arange(n)[None, :]]

    def _features(self, rows: np.ndarray) -> np.ndarray:
        """What H of a group depends on: positions, Z and Zvc rows, flattened per group."""
        parts = [self.positions[rows], self.Z[rows]] + [z[rows] for z in self.Zvc]
        return np.concatenate([p.reshape(rows.shape[0], -1) for p in parts], axis=1)

    def _patterns(self, n: int, gids: np.ndarray):
        """Distinct H-determining features of the size-``n`` groups: (first, inverse), cached."""
        cache = self.__dict__.setdefault("_pattern_cache", {})
        if n not in cache:
            feats = self._features(self.group_rows(gids, n))
            _, first, inv = np.unique(feats, axis=0, return_index=True, return_inverse=True)
            cache[n] = (first, inv.ravel())
        return cache[n]

    def _size_buckets(self):
        for n in np.unique(self.sizes):
            yield int(n), np.flatnonzero(self.sizes == n)

    def _choose_mode(self, mode: str) -> str:
        if mode not in ("auto", "pattern", "group"):
            raise ValueError(f"mode must be 'auto', 'pattern' or 'group', not {mode!r}")
        if mode != "auto":
            return mode
        n_units, nbytes = 0, 0
        p = self.k_fe
        for n, gids in self._size_buckets():
            u = len(self._patterns(n, gids)[0])
            n_units += u
            nbytes += u * (n * p) ** 2 * 8
        if n_units <= 0.5 * self.n_groups and nbytes <= _PATTERN_MEMORY:
            return "pattern"
        return "group"

    def _basis(self, rows: np.ndarray) -> np.ndarray:
        """Linear covariance basis K (m, U, n, n) for groups with row indices ``rows``."""
        U, n = rows.shape
        K = np.empty((self.k_lin, U, n, n))
        Zg = self.Z[rows]
        m = 0
        for i in range(self.k_re):
            for j in range(i + 1):
                zz = Zg[:, :, i, None] * Zg[:, None, :, j]
                K[m] = zz if i == j else zz + np.swapaxes(zz, 1, 2)
                m += 1
        for z in self.Zvc:
            zg = z[rows]
            K[m] = zg @ np.swapaxes(zg, 1, 2)
            m += 1
        return K

    def _build_chunks(self, pattern: bool) -> list[_Chunk]:
        chunks = []
        p = self.k_fe
        for n, gids in self._size_buckets():
            rows = self.group_rows(gids, n)
            if pattern:
                first, inv = self._patterns(n, gids)
                rep_rows = rows[first]
                weight = np.bincount(inv, minlength=len(first)).astype(float)
                U = len(first)
                Sxx = np.empty((U, n, p, n, p))
                Sxy = np.empty((U, n, p, n))
                Syy = np.empty((U, n, n))
                sort = np.argsort(inv, kind="stable")
                bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=U))])
                for u in range(U):
                    r = rows[sort[bounds[u] : bounds[u + 1]]]
                    Xf = self.X[r].reshape(len(r), n * p)
                    yf = self.y[r]
                    Sxx[u] = (Xf.T @ Xf).reshape(n, p, n, p)
                    Sxy[u] = (Xf.T @ yf).reshape(n, p, n)
                    Syy[u] = yf.T @ yf
                pos, vis = self.positions[rep_rows], self.visit[rep_rows]
                members = rows[sort]
                step = max(1, _CHUNK_ELEMENTS // (n * n * max(p * p, n)))
                for a in range(0, U, step):
                    sl = slice(a, a + step)
                    mb = bounds[a : min(a + step, U) + 1]
                    chunks.append(
                        _Chunk(
                            n=n,
                            weight=weight[sl],
                            geom=self.cov_struct.geometry(pos[sl], vis[sl]),
                            K=self._basis(rep_rows[sl]),
                            Sxx=Sxx[sl],
                            Sxy=Sxy[sl],
                            Syy=Syy[sl],
                            member_rows=members[mb[0] : mb[-1]],
                            member_bounds=mb - mb[0],
                        )
                    )
            else:
                step = max(1, _CHUNK_ELEMENTS // (n * max(n, p) * max(self.k_lin + 2, 4)))
                for a in range(0, len(gids), step):
                    r = rows[a : a + step]
                    chunks.append(
                        _Chunk(
                            n=n,
                            weight=np.ones(len(r)),
                            geom=self.cov_struct.geometry(self.positions[r], self.visit[r]),
                            K=self._basis(r),
                            rows=r,
                            X=self.X[r],
                            y=self.y[r],
                        )
                    )
        return chunks

    def group_chunks(self):
        """Chunks of single groups (built on demand; for per-group quantities such as BLUPs)."""
        if self.mode == "group":
            return self.chunks
        if "_group_chunks" not in self.__dict__:
            self._group_chunks = self._build_chunks(pattern=False)
        return self._group_chunks

    # ------------------------------------------------------------ parameters
    def psi_from_lin(self, lam: np.ndarray) -> np.ndarray:
        """Psi (q, q) from the lower-triangle vector of linear parameters."""
        psi = np.zeros((self.k_re, self.k_re))
        il = np.tril_indices(self.k_re)
        psi[il] = lam[: self.k_re2]
        return psi + np.tril(psi, -1).T

    def H(self, chunk: _Chunk, lam: np.ndarray, rho: np.ndarray, order: int = 0):
        """H (U, n, n) and, with ``order >= 1``, the residual-structure derivatives."""
        cor = self.cov_struct.residual(rho, chunk.geom, order=order)
        H = cor.value + np.einsum("m,muts->uts", lam, chunk.K) if self.k_lin else cor.value
        return (H,) + tuple(cor[1 : order + 1])

    @staticmethod
    def _inverse(H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse and log-determinant of a stack of SPD matrices (via Cholesky)."""
        L = np.linalg.cholesky(H)
        logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
        Linv = np.linalg.inv(L)
        return np.swapaxes(Linv, -1, -2) @ Linv, logdet

    # ------------------------------------------------------------ likelihood
    def profile(self, lam: np.ndarray, rho: np.ndarray, reml: bool, gradient: bool = False):
        """Profiled deviance ``-2 l`` at (Psi, vc) = lam and correlation rho.

        Returns a dict with ``dev``, ``beta``, ``scale``, ``A`` (X'H^-1X), ``logdet`` and, if
        ``gradient``, ``grad_lin`` and ``grad_rho`` (derivatives of ``dev``).  Raises
        :class:`EngineError` if some ``H_i`` is not positive definite.
        """
        p = self.k_fe
        A = np.zeros((p, p))
        b = np.zeros(p)
        c = 0.0
        logdet = 0.0
        inverses = []
        for ch in self.chunks:
            out = self.H(ch, lam, rho, order=1 if gradient else 0)
            try:
                M, ld = self._inverse(out[0])
            except np.linalg.LinAlgError as exc:
                raise EngineError("a group covariance matrix is not positive definite") from exc
            logdet += ch.weight @ ld
            A += ch.xx(M)
            b += ch.xy(M)
            c += ch.yy(M)
            if gradient:
                inverses.append((M, out[1]))
        try:
            cf = np.linalg.cholesky(A)
        except np.linalg.LinAlgError as exc:
            raise EngineError("X' H^-1 X is singular") from exc
        beta = np.linalg.solve(A, b)
        Q = c - b @ beta
        N = self.nobs
        dfr = N - p if reml else N
        if not Q > 0:
            raise EngineError("non-positive residual sum of squares")
        scale = Q / dfr
        dev = dfr * (np.log(2 * np.pi * scale) + 1.0) + logdet
        logdet_A = 2.0 * np.log(np.diag(cf)).sum()
        if reml:
            dev += logdet_A
        res = {"dev": dev, "beta": beta, "scale": scale, "A": A, "logdet": logdet}
        if gradient:
            Ainv = np.linalg.inv(A)
            g_lin = np.zeros(self.k_lin)
            g_rho = np.zeros(self.k_corr)
            for ch, (M, dC) in zip(self.chunks, inverses, strict=True):
                D = np.concatenate([ch.K, dC], axis=0)  # (k, U, n, n)
                MDM = M @ D @ M
                g = ch.wtrace(M, D) - ch.rr(MDM, beta) / scale
                if reml:
                    g -= np.einsum("kab,ba->k", ch.xx(MDM), Ainv)
                g_lin += g[: self.k_lin]
                g_rho += g[self.k_lin :]
            res["grad_lin"] = g_lin
            res["grad_rho"] = g_rho
        return res

    def _natural_derivatives(self, ch: _Chunk, lam, scale: float, rho):
        """``H``, ``dV`` (K, U, n, n) and ``d2V`` (K, K, U, n, n) of one chunk, in the natural
        parameters ``(G lower triangle, vc, sigma^2, rho)``; ``d2V`` is None without
        correlation parameters (V is then linear in theta)."""
        K = self.k_lin + 1 + self.k_corr
        s2 = self.k_lin  # index of sigma^2
        Hm, dC, d2C = self.H(ch, lam, rho, order=2)
        U, n = Hm.shape[:2]
        dV = np.empty((K, U, n, n))
        dV[: self.k_lin] = ch.K
        dV[s2] = Hm - np.einsum("m,muts->uts", lam, ch.K) if self.k_lin else Hm  # C
        dV[s2 + 1 :] = scale * dC
        d2V = None
        if self.k_corr:
            d2V = np.zeros((K, K, U, n, n))
            d2V[s2, s2 + 1 :] = dC
            d2V[s2 + 1 :, s2] = dC
            d2V[s2 + 1 :, s2 + 1 :] = scale * d2C
        return Hm, dV, d2V

    # -------------------------------------------------- natural-parameter blocks
    def derivative_blocks(
        self, G: np.ndarray, vc: np.ndarray, scale: float, rho: np.ndarray, beta: np.ndarray
    ) -> dict:
        """Sums over groups needed for information matrices, Satterthwaite and Kenward-Roger.

        Natural parameters ``theta = (G lower triangle, vc, sigma^2, rho)`` with
        ``V_i = Z_i G Z_i' + sum_j vc_j K_ji + sigma^2 C_i(rho)``.  With ``Vi = V^-1``,
        ``V_k = dV/dtheta_k`` and ``V_kl`` the second derivatives it returns:

        ``XVX`` = X'Vi X; ``P[k]`` = -X'Vi V_k Vi X; ``Q[k, l]`` = X'Vi V_k Vi V_l Vi X;
        ``R[k, l]`` = X'Vi V_kl Vi X; ``trVV[k, l]`` = tr(Vi V_k Vi V_l);
        ``trV2[k, l]`` = tr(Vi V_kl); ``rVVVr[k, l]`` = r'Vi V_k Vi V_l Vi r;
        ``rV2r[k, l]`` = r'Vi V_kl Vi r; ``xr[k]`` = X'Vi V_k Vi r; ``rVr[k]`` = r'Vi V_k Vi r;
        ``trV[k]`` = tr(Vi V_k), with ``r = y - X beta``.
        """
        q2, kv, kc = self.k_re2, self.k_vc, self.k_corr
        K = q2 + kv + 1 + kc
        p = self.k_fe
        lam = np.concatenate([G[np.tril_indices(self.k_re)], vc]) / scale
        out = {
            "XVX": np.zeros((p, p)),
            "P": np.zeros((K, p, p)),
            "Q": np.zeros((K, K, p, p)),
            "R": np.zeros((K, K, p, p)),
            "trVV": np.zeros((K, K)),
            "trV2": np.zeros((K, K)),
            "rVVVr": np.zeros((K, K)),
            "rV2r": np.zeros((K, K)),
            "xr": np.zeros((K, p)),
            "rVr": np.zeros(K),
            "trV": np.zeros(K),
        }
        for ch in self.chunks:
            Hm, D, D2 = self._natural_derivatives(ch, lam, scale, rho)
            M, _ = self._inverse(Hm)
            Vi = M / scale
            E = Vi @ D @ Vi  # Vi V_k Vi
            out["XVX"] += ch.xx(Vi)
            out["P"] -= ch.xx(E)
            F = E[:, None] @ D[None] @ Vi  # Vi V_k Vi V_l Vi
            out["Q"] += ch.xx(F)
            out["trVV"] += ch.wtrace(E[:, None], D[None])
            out["rVVVr"] += ch.rr(F, beta)
            out["xr"] += ch.xr(E, beta)
            out["rVr"] += ch.rr(E, beta)
            out["trV"] += ch.wtrace(Vi[None], D)
            if D2 is not None:
                E2 = Vi @ D2 @ Vi
                out["R"] += ch.xx(E2)
                out["trV2"] += ch.wtrace(Vi[None, None], D2)
                out["rV2r"] += ch.rr(E2, beta)
        return out

    def V_and_derivatives(self, G, vc, scale, rho, group_ids=None):
        """Per-group ``V``, ``dV`` and ``d2V`` in natural parameters (for checks and tests).

        Returns a list of ``(rows, V, dV, d2V)`` with ``V`` (U, n, n), ``dV`` (K, U, n, n) and
        ``d2V`` (K, K, U, n, n), one entry per chunk of single groups.
        """
        lam = np.concatenate([G[np.tril_indices(self.k_re)], vc]) / scale
        res = []
        for ch in self.group_chunks():
            Hm, dV, d2V = self._natural_derivatives(ch, lam, scale, rho)
            if d2V is None:
                d2V = np.zeros(dV.shape[:1] + dV.shape)
            res.append((ch.rows, scale * Hm, dV, d2V))
        return res

    # ------------------------------------------------------------ per group
    def conditional(self, lam: np.ndarray, rho: np.ndarray, beta: np.ndarray):
        """BLUP ingredients per group: ``H_i^-1 r_i`` and ``Z_i`` blocks.

        Yields ``(rows, Hinv_r, Hinv)`` per chunk of single groups (``rows`` (U, n)).
        """
        for ch in self.group_chunks():
            (Hm,) = self.H(ch, lam, rho, order=0)
            M, _ = self._inverse(Hm)
            r = ch.y - ch.X @ beta
            yield ch.rows, np.einsum("uts,us->ut", M, r), M

    # ------------------------------------------------------ new responses (bootstrap)
    def _member_X(self, ch: _Chunk) -> np.ndarray:
        """``X`` of a pattern chunk's member groups (G, n * p), cached (y-independent)."""
        if "Xm" not in ch.cache:
            G, n = ch.member_rows.shape
            ch.cache["Xm"] = self.X[ch.member_rows].reshape(G, n * self.k_fe)
        return ch.cache["Xm"]

    def prepare_new_endog(self) -> None:
        """Fill the y-independent caches used by :meth:`endog_stats` and :meth:`profile_many`
        (so that threads sharing this engine only read it)."""
        for ch in self.chunks:
            if ch.pattern:
                self._member_X(ch)
                ch._Sxx_flat  # noqa: B018 (fills the cache)
            if self.k_corr == 0 and "C0" not in ch.cache:
                ch.cache["C0"] = self.cov_struct.residual(np.zeros(0), ch.geom).value

    def endog_stats(self, Y: np.ndarray) -> list[dict]:
        """Per-chunk contractions of ``B`` responses ``Y`` (N, B) for :meth:`profile_many`.

        Pattern chunks: ``xy`` (B, U n n, p) and ``yy`` (B, U n n), the flattened sufficient
        statistics ``S_Xy`` and ``S_yy`` of each response; group chunks: ``y`` (B, U, n).
        """
        Y = np.asarray(Y, dtype=float).reshape(self.nobs, -1)
        B = Y.shape[1]
        p = self.k_fe
        out = []
        for ch in self.chunks:
            n = ch.n
            if not ch.pattern:
                out.append({"y": np.ascontiguousarray(np.moveaxis(Y[ch.rows], -1, 0))})
                continue
            U = len(ch.weight)
            Xm = self._member_X(ch)
            Ym = Y[ch.member_rows]  # (G, n, B)
            xy = np.empty((B, U, n, n, p))
            yy = np.empty((B, U, n, n))
            mb = ch.member_bounds
            for u in range(U):
                Xu = Xm[mb[u] : mb[u + 1]]
                Yu = Ym[mb[u] : mb[u + 1]]
                # S_Xy[t, a, s] = sum_g X[g, t, a] y[g, s], per response b
                s = (Xu.T @ Yu.reshape(len(Xu), n * B)).reshape(n, p, n, B)
                xy[:, u] = s.transpose(3, 0, 2, 1)
                yy[:, u] = np.einsum("gtb,gsb->bts", Yu, Yu)
            out.append({"xy": xy.reshape(B, U * n * n, p), "yy": yy.reshape(B, U * n * n)})
        return out

    def with_endog(self, y: np.ndarray) -> Engine:
        """A copy of this engine for a new response ``y`` (N,), in the original row order.

        Only the parts that depend on ``y`` are recomputed (group-mode ``y`` blocks, pattern-mode
        ``S_Xy`` and ``S_yy``); designs, covariance bases, geometry and ``S_XX`` are shared.
        """
        y = np.ascontiguousarray(y, dtype=float)
        if y.shape != (self.nobs,):
            raise ValueError(f"endog must have shape ({self.nobs},); got {y.shape}")
        new = copy.copy(self)
        new.y = y
        stats = self.endog_stats(y[:, None])
        chunks = []
        for ch, st in zip(self.chunks, stats, strict=True):
            if ch.pattern:
                U, n, p = ch.Sxx.shape[:3]
                Sxy = st["xy"][0].reshape(U, n, n, p).transpose(0, 1, 3, 2)
                Syy = st["yy"][0].reshape(U, n, n)
                keep = {k: v for k, v in ch.cache.items() if k in ("Sxx_flat", "Xm", "C0")}
                if "Sxx_flat" in keep:
                    keep["Sxy_flat"] = st["xy"][0]
                chunks.append(replace(ch, Sxy=Sxy, Syy=Syy, cache=keep))
            else:
                chunks.append(replace(ch, y=st["y"][0], cache={}))
        new.chunks = chunks
        if "_group_chunks" in self.__dict__:
            if self.mode == "group":
                new._group_chunks = chunks
            else:
                new._group_chunks = [
                    replace(ch, y=y[ch.rows], cache={}) for ch in self._group_chunks
                ]
        return new

    @staticmethod
    def _inverse_many(H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inverse and log-determinant of SPD stacks ``H`` (B, U, n, n); ``bad`` (B,) marks the
        replicates with a matrix that is not positive definite (their results are garbage)."""
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

    def _H_many(self, ch: _Chunk, lam: np.ndarray, rho: np.ndarray, order: int):
        """H (B, U, n, n) for B parameter sets and, with ``order``, dC (B, k, U, n, n)."""
        B = lam.shape[0]
        if self.k_corr == 0:
            if "C0" not in ch.cache:
                ch.cache["C0"] = self.cov_struct.residual(np.zeros(0), ch.geom).value
            C0 = ch.cache["C0"]
            C = np.broadcast_to(C0, (B,) + C0.shape)
            dC = np.zeros((B, 0) + C0.shape) if order else None
        else:
            parts = [self.cov_struct.residual(r, ch.geom, order=order) for r in rho]
            C = np.stack([c.value for c in parts])
            dC = np.stack([c.d1 for c in parts]) if order else None
        H = C + np.einsum("bm,muts->buts", lam, ch.K) if self.k_lin else C.copy()
        return H, dC

    def profile_many(
        self,
        lam: np.ndarray,
        rho: np.ndarray,
        reml: bool,
        stats: list[dict],
        gradient: bool = False,
    ) -> dict:
        """:meth:`profile` for ``B`` responses at once, each at its own parameters.

        ``lam`` (B, k_lin) and ``rho`` (B, k_corr) are the parameters; ``stats`` comes from
        :meth:`endog_stats` for the ``B`` responses.  Returns ``dev``, ``beta``, ``scale`` and
        (with ``gradient``) ``grad_lin``, ``grad_rho``, as arrays with a leading axis ``B``, and
        ``ok`` (B,), False where some ``H_i`` or ``X'H^-1X`` is not positive definite or the
        residual sum of squares is not positive (``dev`` is ``inf`` there).
        """
        lam = np.asarray(lam, dtype=float)
        B = lam.shape[0]
        lam = lam.reshape(B, self.k_lin)
        rho = np.asarray(rho, dtype=float).reshape(B, self.k_corr)
        p = self.k_fe
        A = np.zeros((B, p, p))
        b = np.zeros((B, p))
        c = np.zeros(B)
        logdet = np.zeros(B)
        bad = np.zeros(B, bool)
        keep = []
        for ch, st in zip(self.chunks, stats, strict=True):
            H, dC = self._H_many(ch, lam, rho, order=1 if gradient else 0)
            M, ld, bad_c = self._inverse_many(H)
            bad |= bad_c
            logdet += ld @ ch.weight
            A += ch.xx(M)
            if ch.pattern:
                Mf = M.reshape(B, -1)
                b += np.einsum("bj,bja->ba", Mf, st["xy"])
                c += np.einsum("bj,bj->b", Mf, st["yy"])
            else:
                My = np.einsum("buts,bus->but", M, st["y"])
                b += np.einsum("uta,but->ba", ch.X, My)
                c += np.einsum("but,but->b", st["y"], My)
            if gradient:
                keep.append((M, dC))
        eye = np.eye(p)
        A[bad] = eye
        try:
            cf = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            cf = np.empty_like(A)
            for i in range(B):
                try:
                    cf[i] = np.linalg.cholesky(A[i])
                except np.linalg.LinAlgError:
                    bad[i] = True
                    cf[i] = eye
                    A[i] = eye
        beta = np.linalg.solve(A, b[..., None])[..., 0]
        Q = c - np.einsum("ba,ba->b", b, beta)
        bad |= ~(Q > 0)
        dfr = self.nobs - p if reml else self.nobs
        scale = np.where(bad, 1.0, Q) / dfr
        dev = dfr * (np.log(2 * np.pi * scale) + 1.0) + logdet
        if reml:
            dev += 2.0 * np.log(np.diagonal(cf, axis1=-2, axis2=-1)).sum(axis=-1)
        dev = np.where(bad | ~np.isfinite(dev), np.inf, dev)
        out = {"dev": dev, "beta": beta, "scale": scale, "ok": np.isfinite(dev)}
        if gradient:
            k = self.k_lin + self.k_corr
            grad = np.zeros((B, k))
            Ainv = np.linalg.inv(A) if reml else None
            for ch, st, (M, dC) in zip(self.chunks, stats, keep, strict=True):
                if k == 0:
                    break
                K = np.broadcast_to(ch.K, (B,) + ch.K.shape)
                D = np.concatenate([K, dC], axis=1) if self.k_corr else K  # (B, k, U, n, n)
                MDM = M[:, None] @ D @ M[:, None]
                g = np.einsum("u,buts,bkust->bk", ch.weight, M, D)
                XX = ch.xx(MDM)  # (B, k, p, p)
                if ch.pattern:
                    Nf = MDM.reshape(B, k, -1)
                    yy = np.einsum("bkj,bj->bk", Nf, st["yy"])
                    xy = np.einsum("bkj,bja->bka", Nf, st["xy"])
                    rr = yy - 2.0 * np.einsum("bka,ba->bk", xy, beta)
                    rr += np.einsum("ba,bkac,bc->bk", beta, XX, beta)
                else:
                    r = st["y"] - np.einsum("uta,ba->but", ch.X, beta)
                    rr = np.einsum("but,bkuts,bus->bk", r, MDM, r)
                g -= rr / scale[:, None]
                if reml:
                    g -= np.einsum("bkac,bca->bk", XX, Ainv)
                grad += g
            grad[bad] = 0.0
            out["grad_lin"] = grad[:, : self.k_lin]
            out["grad_rho"] = grad[:, self.k_lin :]
        return out
