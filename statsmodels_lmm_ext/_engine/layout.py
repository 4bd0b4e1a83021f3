"""Data layout of the engine: units (groups or visit patterns), chunks, sufficient statistics.

Everything is a sum over *units*: either single groups, or — when all groups sharing a pattern of
positions and random-effects rows share one ``H`` — patterns, with the data entering through
the sufficient statistics ``S_XX[t, s] = sum_i x_it x_is'``, ``S_Xy`` and ``S_yy`` (the
"pattern" route, DESIGN.md section 2).  Units of one size are stacked into chunks so that each
operation is one batched numpy call; no ``N x N`` matrix is ever formed.  Responses enter a
chunk through per-response contractions (:meth:`LayoutMixin.endog_stats`), so that one code path
serves the model's own response and a batch of simulated ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np

# Largest number of matrix elements (U * n * n * max(p, n)) held by one chunk of units.
_CHUNK_ELEMENTS = 8_000_000
# Pattern sufficient statistics above this many bytes fall back to per-group units.
_PATTERN_MEMORY = 1_500_000_000
# Rows per block when patterns and pattern sums are found: their transient arrays then stay
# a few MB however many groups there are (the sums add up exactly over blocks).
_BLOCK_ROWS = 16_384
_PATTERN_ROWS = 65_536  # (features are a few columns per row: a larger block)


@dataclass
class Chunk:
    """Stacked units of one size ``n``.

    In group mode ``X`` (U, n, p) and ``rows`` (U, n) locate the data; in pattern mode ``Sxx``
    (U, n, p, n, p) holds sums over the groups of each pattern, ``weight`` counts them, and
    ``member_rows``/``member_bounds`` list the member groups' rows.  ``geom`` is the residual
    structure's opaque geometry, ``K`` (m, U, n, n) the linear covariance basis.
    """

    n: int
    weight: np.ndarray
    geom: object
    K: np.ndarray
    rows: np.ndarray | None = None
    X: np.ndarray | None = None
    Sxx: np.ndarray | None = None
    member_rows: np.ndarray | None = None
    member_bounds: np.ndarray | None = None
    cache: dict = field(default_factory=dict)

    @property
    def pattern(self) -> bool:
        return self.Sxx is not None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(U, n, n)``: the shape of one stack of unit matrices."""
        return (len(self.weight), self.n, self.n)

    def _flat(self, N: np.ndarray) -> np.ndarray:
        return N.reshape(N.shape[:-3] + (-1,))

    @property
    def Sxx_flat(self) -> np.ndarray:
        if "Sxx_flat" not in self.cache:
            U, n, p = self.Sxx.shape[:3]
            self.cache["Sxx_flat"] = self.Sxx.transpose(0, 1, 3, 2, 4).reshape(U * n * n, p * p)
        return self.cache["Sxx_flat"]

    def xx(self, N: np.ndarray) -> np.ndarray:
        """``sum_u X_u' N_u X_u`` for a stack ``N`` (..., U, n, n)."""
        if self.pattern:
            p = self.Sxx.shape[2]
            return (self._flat(N) @ self.Sxx_flat).reshape(N.shape[:-3] + (p, p))
        NX = N @ self.X
        return np.einsum("uta,...utb->...ab", self.X, NX, optimize=True)

    def wtrace(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``sum_u w_u tr(A_u B_u)`` for stacks ``A``, ``B`` (..., U, n, n)."""
        return np.einsum("u,...uts,...ust->...", self.weight, A, B, optimize=True)

    # Response contractions.  ``ys`` is this chunk's entry of ``endog_stats``: pattern mode
    # ``xy`` (B, U n n, p) and ``yy`` (B, U n n); group mode ``y`` (B, U, n).  ``N`` has shape
    # (B, ..., U, n, n); the results (B, ..., p) and (B, ...).
    def xy(self, N: np.ndarray, ys: dict) -> np.ndarray:
        """``sum_u X_u' N_u y_u``."""
        B, mid = N.shape[0], N.shape[1:-3]
        if self.pattern:
            out = N.reshape(B, -1, ys["xy"].shape[1]) @ ys["xy"]
            return out.reshape((B,) + mid + (-1,))
        U, n, p = self.X.shape
        Ny = self._Ny(N, ys)  # (B, M, U, n)
        return (Ny.reshape(-1, U * n) @ self.X.reshape(U * n, p)).reshape((B,) + mid + (p,))

    def _Ny(self, N: np.ndarray, ys: dict) -> np.ndarray:
        B = N.shape[0]
        U, n = N.shape[-3:-1]
        Nr = N.reshape(B, -1, U, n, n)
        return (Nr @ ys["y"][:, None, :, :, None])[..., 0]

    def yy(self, N: np.ndarray, ys: dict) -> np.ndarray:
        """``sum_u y_u' N_u y_u``."""
        B, mid = N.shape[0], N.shape[1:-3]
        if self.pattern:
            out = N.reshape(B, -1, ys["yy"].shape[1]) @ ys["yy"][:, :, None]
            return out.reshape((B,) + mid)
        Ny = self._Ny(N, ys)
        return np.einsum("bmut,but->bm", Ny, ys["y"]).reshape((B,) + mid)

    def rr(self, N, ys: dict, beta: np.ndarray, xx=None, symmetric: bool = True) -> np.ndarray:
        """``sum_u r_u' N_u r_u`` with ``r = y - X beta`` (``beta`` (B, p)).  ``xx`` may pass
        ``self.xx(N)`` when already computed; ``symmetric=False`` for non-symmetric ``N``."""
        xx = self.xx(N) if xx is None else xx
        xy = self.xy(N, ys)
        xy = 2.0 * xy if symmetric else xy + self.xy(np.swapaxes(N, -1, -2), ys)
        bx = np.einsum("b...a,ba->b...", xy, beta)
        return self.yy(N, ys) - bx + np.einsum("ba,b...ac,bc->b...", beta, xx, beta)


class EngineError(ValueError):
    """A covariance matrix of one group is not positive definite."""


class LayoutMixin:
    """Units, patterns, chunks and response statistics of an :class:`Engine`."""

    def _layout(self) -> None:
        """Order rows by group then position; index groups by size."""
        keys = [np.arange(self.nobs)]
        keys += [self.positions[:, j] for j in range(self.positions.shape[1] - 1, -1, -1)]
        keys.append(self.groups)
        self.order = np.lexsort(keys)
        self.sizes = np.bincount(self.groups, minlength=self.n_groups)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])

    def group_rows(self, group_ids: np.ndarray, n: int) -> np.ndarray:
        """Row indices (U, n) of the given groups, all of size ``n``, in position order."""
        return self.order[self.starts[group_ids][:, None] + np.arange(n)[None, :]]

    def geometry(self, rows: np.ndarray):
        """The residual structure's geometry of the groups with row indices ``rows`` (U, n)."""
        return self.cov_struct.geometry(self.positions[rows], self.visit[rows])

    def _features(self, rows: np.ndarray) -> np.ndarray:
        """What H of a group depends on: positions (which determine the visit indices), Z and
        Zvc rows, per group."""
        parts = [self.positions[rows], self.Z[rows]]
        parts += [z[rows] for z in self.Zvc]
        return np.concatenate([p.reshape(rows.shape[0], -1) for p in parts], axis=1)

    def _patterns(self, n: int, gids: np.ndarray):
        """Distinct H-determining features of the size-``n`` groups: (first, inverse), cached;
        as ``np.unique(features, axis=0)`` gives them, found block by block of groups."""
        cache = self.__dict__.setdefault("_pattern_cache", {})
        if n not in cache:
            firsts, invs, uniques = [], [], []
            step = max(1, _PATTERN_ROWS // n)
            for a in range(0, len(gids), step):
                feats = self._features(self.group_rows(gids[a : a + step], n))
                u, first, inv = np.unique(feats, axis=0, return_index=True, return_inverse=True)
                firsts.append(first + a)
                invs.append(inv.ravel() + sum(len(x) for x in uniques))
                uniques.append(u)
            _, where, back = np.unique(
                np.concatenate(uniques), axis=0, return_index=True, return_inverse=True
            )
            back = back.ravel()
            # the first group of a pattern is in the first block that has it
            first = np.concatenate(firsts)[where]
            cache[n] = (first, back[np.concatenate(invs)])
        return cache[n]

    def _size_buckets(self):
        for n in np.unique(self.sizes):
            yield int(n), np.flatnonzero(self.sizes == n)

    def _choose_mode(self, mode: str) -> str:
        if mode not in ("auto", "pattern", "group"):
            raise ValueError(f"engine mode must be 'auto', 'pattern' or 'group', not {mode!r}")
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

    def _pattern_sums(self, r: np.ndarray):
        """``(S_XX, S_Xy, S_yy)`` of the groups with rows ``r`` (m, n), designs flattened to
        ``n p`` columns.  When the conditioning knows the rows' distinct-design codes (a
        design with few distinct rows), ``S_XX`` and ``S_Xy`` are sums over the groups'
        distinct designs (with their counts and response sums) instead of over all groups."""
        m, n = r.shape
        yf = self.yc[r]
        codes = getattr(self.cond, "row_codes", None)
        if codes is None:
            Xf = self.Xc[r].reshape(m, -1)
            return Xf.T @ Xf, Xf.T @ yf, yf.T @ yf
        cr = codes[r]
        K = int(codes.max()) + 1
        if n * np.log2(max(K, 2)) < 62:
            key = cr @ (K ** np.arange(n, dtype=np.int64))
            _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        else:
            _, first, inv = np.unique(cr, axis=0, return_index=True, return_inverse=True)
        inv = inv.ravel()
        D = len(first)
        Xd = self.Xc[r[first]].reshape(D, -1)
        count = np.bincount(inv, minlength=D).astype(float)
        ysum = np.column_stack([np.bincount(inv, yf[:, j], minlength=D) for j in range(n)])
        return Xd.T @ (count[:, None] * Xd), Xd.T @ ysum, yf.T @ yf

    def _pattern_chunks(self, n: int, rows: np.ndarray, gids: np.ndarray) -> list[Chunk]:
        p = self.k_fe
        first, inv = self._patterns(n, gids)
        rep_rows = rows[first]
        weight = np.bincount(inv, minlength=len(first)).astype(float)
        U = len(first)
        Sxx = np.empty((U, n, p, n, p))
        # the engine's own response enters through the same sums (see endog_stats)
        xy, yy = np.empty((U, n, n, p)), np.empty((U, n, n))
        sort = np.argsort(inv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=U))])
        step = max(1, _BLOCK_ROWS // n)
        for u in range(U):
            sxx = sxy = yy[u] = 0.0  # sums over blocks of the pattern's groups
            for a in range(bounds[u], bounds[u + 1], step):
                bxx, bxy, byy = self._pattern_sums(rows[sort[a : min(a + step, bounds[u + 1])]])
                sxx, sxy, yy[u] = sxx + bxx, sxy + bxy, yy[u] + byy
            Sxx[u] = sxx.reshape(n, p, n, p)
            xy[u] = sxy.reshape(n, p, n).transpose(0, 2, 1)
        members = rows[sort]
        step = max(1, _CHUNK_ELEMENTS // (n * n * max(p * p, n)))
        out = []
        for a in range(0, U, step):
            sl = slice(a, a + step)
            mb = bounds[a : min(a + step, U) + 1]
            out.append(
                Chunk(
                    n=n,
                    weight=weight[sl],
                    geom=self.geometry(rep_rows[sl]),
                    K=self._basis(rep_rows[sl]),
                    Sxx=Sxx[sl],
                    member_rows=members[mb[0] : mb[-1]],
                    member_bounds=mb - mb[0],
                    cache={"own": {"xy": xy[sl].reshape(1, -1, p), "yy": yy[sl].reshape(1, -1)}},
                )
            )
        return out

    def _group_chunks(self, n: int, rows: np.ndarray) -> list[Chunk]:
        step = max(1, _CHUNK_ELEMENTS // (n * max(n, self.k_fe) * max(self.k_lin + 2, 4)))
        out = []
        for a in range(0, len(rows), step):
            r = rows[a : a + step]
            out.append(
                Chunk(
                    n=n,
                    weight=np.ones(len(r)),
                    geom=self.geometry(r),
                    K=self._basis(r),
                    rows=r,
                    X=self.Xc[r],
                )
            )
        return out

    def _build_chunks(self, pattern: bool) -> list[Chunk]:
        chunks = []
        for n, gids in self._size_buckets():
            rows = self.group_rows(gids, n)
            if pattern:
                chunks += self._pattern_chunks(n, rows, gids)
            else:
                chunks += self._group_chunks(n, rows)
        return chunks

    def group_chunks(self) -> list[Chunk]:
        """Chunks of single groups (built on demand; for per-group quantities such as BLUPs)."""
        if self.mode == "group":
            return self.chunks
        if "_single_chunks" not in self.__dict__:
            self._single_chunks = self._build_chunks(pattern=False)
        return self._single_chunks

    # ------------------------------------------------------------------ responses
    def _member_X(self, ch: Chunk) -> np.ndarray:
        """``X`` of a pattern chunk's member groups (G, n * p), cached (y-independent)."""
        if "Xm" not in ch.cache:
            G, n = ch.member_rows.shape
            ch.cache["Xm"] = self.Xc[ch.member_rows].reshape(G, n * self.k_fe)
        return ch.cache["Xm"]

    def prepare_new_endog(self) -> None:
        """Fill the y-independent caches used with new responses (so that threads sharing
        this engine only read it)."""
        for ch in self.chunks:
            if ch.pattern:
                self._member_X(ch)
                ch.Sxx_flat  # noqa: B018 (fills the cache)
            if self.k_corr == 0 and "C0" not in ch.cache:
                ch.cache["C0"] = self.cov_struct.residual(np.zeros(0), ch.geom).value

    def _chunk_stats(self, ch: Chunk, Y: np.ndarray) -> dict:
        """One chunk's contractions of responses ``Y`` (N, B) (see :class:`Chunk`)."""
        if not ch.pattern:
            return {"y": np.ascontiguousarray(np.moveaxis(Y[ch.rows], -1, 0))}
        B = Y.shape[1]
        n, p = ch.n, self.k_fe
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
        return {"xy": xy.reshape(B, U * n * n, p), "yy": yy.reshape(B, U * n * n)}

    def endog_stats(self, Y: np.ndarray) -> list[dict]:
        """Per-chunk contractions of ``B`` responses ``Y`` (N, B), in the original row order,
        conditioned with the engine's own ``(g0, s)`` (:mod:`.conditioning`)."""
        Y = self.cond.response(np.asarray(Y, dtype=float).reshape(self.nobs, -1))
        return [self._chunk_stats(ch, Y) for ch in self.chunks]

    @property
    def own_stats(self) -> list[dict]:
        """:meth:`endog_stats` of the engine's own response (pattern chunks keep theirs from
        their construction)."""
        if "_own_stats" not in self.__dict__:
            Y = self.yc[:, None]
            self._own_stats = [
                ch.cache["own"] if "own" in ch.cache else self._chunk_stats(ch, Y)
                for ch in self.chunks
            ]
        return self._own_stats

    def with_endog(self, y: np.ndarray):
        """A copy of this engine for a new response ``y`` (N,), in the original row order.

        Designs, covariance bases, geometry and ``S_XX`` are shared; only the response
        statistics are recomputed.
        """
        y = np.ascontiguousarray(y, dtype=float)
        if y.shape != (self.nobs,):
            raise ValueError(f"endog must have shape ({self.nobs},); got {y.shape}")
        new = copy.copy(self)
        new.y = y
        new.cond = copy.copy(self.cond)
        new.cond.set_response(y)
        new.yc = new.cond.yt
        new.__dict__.pop("_own_stats", None)
        new.chunks = [
            replace(ch, cache={k: v for k, v in ch.cache.items() if k != "own"})
            for ch in self.chunks
        ]
        if "_single_chunks" in self.__dict__ and self.mode != "group":
            new._single_chunks = [replace(ch, cache={}) for ch in self._single_chunks]
        return new
