"""The engine on visit-pattern sufficient statistics that add up across pieces of the data.

For data that do not fit in memory (a Dask DataFrame), each piece (partition) holding whole
groups gives, per *pattern* (the positions and random-effects rows of a group, which determine
its ``H``), the number of groups and ``S_WW[t, s] = sum_i w_it w_is'`` with ``w = [x, y]``, and
the R factor of its ``[X y]`` (a small triangular matrix).  Counts and ``S_WW`` add up exactly;
R factors combine by one QR of the stacked factors (Demmel et al.'s tall-skinny QR), whose
Gram matrix is ``[X y]'[X y]``.  :class:`ReducedEngine` then builds from them the conditioning
(:mod:`.conditioning`: the pivoted QR of the stacked factors gives the same ``T``, ``g0`` and
``s`` as that of ``X``) and the pattern chunks of :mod:`.layout`, so that the likelihood, its
gradient and the derivative blocks of inference are the in-memory engine's own code.

Rows are never kept: whatever needs them (BLUPs, residuals, simulation) is refused by the
model that owns this engine.

References
----------
Demmel, J., Grigori, L., Hoemmen, M. and Langou, J. (2012). Communication-optimal parallel
and sequential QR and LU factorizations. *SIAM J. Sci. Comput.* 34, A206-A239.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._threads import blas_threads
from ..covstruct import CovStruct
from .conditioning import Conditioning, pivoted_qr
from .engine import Engine
from .layout import _CHUNK_ELEMENTS, Chunk

__all__ = ["FactorConditioning", "PatternStats", "ReducedEngine", "pattern_stats"]


@dataclass
class PatternStats:
    """Sufficient statistics of some groups, by pattern; ``+`` combines disjoint pieces.

    ``patterns`` maps a key (group size, bytes of the pattern's features) to
    ``[features (n, d + q), count, S_WW (n, k, n, k)]`` with ``k = p + 1``; ``rfactor`` is an
    R factor of ``[X y]`` (``(m, k)``, ``m <= k``); ``nobs`` and ``n_groups`` count rows and
    groups.
    """

    k: int
    d: int
    patterns: dict = field(default_factory=dict)
    rfactor: np.ndarray | None = None
    nobs: int = 0
    n_groups: int = 0

    def __add__(self, other: PatternStats) -> PatternStats:
        out = PatternStats(self.k, self.d, dict(self.patterns), None, self.nobs + other.nobs,
                           self.n_groups + other.n_groups)  # fmt: skip
        for key, (feat, cnt, sww) in other.patterns.items():
            mine = out.patterns.get(key)
            out.patterns[key] = [feat, cnt, sww] if mine is None else [
                mine[0], mine[1] + cnt, mine[2] + sww]  # fmt: skip
        parts = [r for r in (self.rfactor, other.rfactor) if r is not None and len(r)]
        out.rfactor = _combine_r(parts, self.k)
        return out

    @property
    def nbytes(self) -> int:
        return sum(v[2].nbytes for v in self.patterns.values())


def _combine_r(parts: list[np.ndarray], k: int) -> np.ndarray:
    if not parts:
        return np.zeros((0, k))
    stacked = np.vstack(parts)
    if stacked.shape[0] <= k:
        return stacked
    return np.linalg.qr(stacked, mode="r")


def _row_order(positions: np.ndarray, groups: np.ndarray) -> np.ndarray | None:
    """Rows ordered by group then position (stable), or None when they already are: data
    stored subject by subject need no sort."""
    if len(groups) < 2:
        return None
    same = groups[1:] == groups[:-1]
    if np.all(groups[1:] >= groups[:-1]) and positions.shape[1] == 1:
        if np.all(positions[1:, 0][same] > positions[:-1, 0][same]):
            return None
    keys = [positions[:, j] for j in range(positions.shape[1] - 1, -1, -1)] + [groups]
    return np.lexsort(keys)  # stable: ties keep the rows' order


def _distinct_rows(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of the distinct rows of ``F``: a 64-bit hash of each row's values
    (linear time; equal rows hash equally), verified exactly; ``np.unique`` if two different
    rows share a hash.  Unlike :func:`~statsmodels_lmm_ext._formula.row_codes` (a projection,
    faster, for the rank check) equal rows always share a code here: the patterns are keyed by
    their features, so a pattern split in two would lose one half's sums."""
    if F.shape[1] == 0:
        return np.zeros(1, int), np.zeros(len(F), int)
    h = np.zeros(len(F), np.uint64)
    for j in range(F.shape[1]):
        h = h * np.uint64(1099511628211) ^ pd.util.hash_array(np.ascontiguousarray(F[:, j]))
    inv, uniq = pd.factorize(h)
    first = np.empty(len(uniq), int)
    first[inv[::-1]] = np.arange(len(F))[::-1]
    if np.array_equal(F[first][inv], F):
        return first, inv
    _, first, inv = np.unique(F, axis=0, return_index=True, return_inverse=True)
    return first, inv.ravel()


@blas_threads()
def pattern_stats(W: np.ndarray, Z: np.ndarray, positions: np.ndarray, groups: np.ndarray,
                  labels=None) -> PatternStats:  # fmt: skip
    """:class:`PatternStats` of the rows ``W = [X y]`` (N, k) with random-effects design ``Z``
    (N, q), positions (N, d) and group codes ``0 .. G-1`` (N,), every group whole.

    Rows are ordered within a group by position (as :class:`Engine` orders them).  Two rows of
    one group at the same position raise an error naming the group (``labels[code]``).
    """
    W = np.asarray(W, float)
    N, k = W.shape
    positions = np.asarray(positions, float).reshape(N, -1) + 0.0  # -0.0 -> 0.0 in the keys
    Z = np.asarray(Z, float).reshape(N, -1) + 0.0
    d = positions.shape[1]
    out = PatternStats(k, d, nobs=N)
    if N == 0:
        return out
    groups = np.asarray(groups)
    order = _row_order(positions, groups)
    gsorted = groups if order is None else groups[order]
    if d:
        ps = positions if order is None else positions[order]
        dup = (gsorted[1:] == gsorted[:-1]) & np.all(ps[1:] == ps[:-1], axis=1)
        if dup.any():
            code = gsorted[1:][dup][0]
            name = labels[code] if labels is not None else code
            name = name.item() if isinstance(name, np.generic) else name
            raise ValueError(
                f"group {name!r} has two rows at the same position "
                f"{tuple(ps[1:][dup][0].tolist())}; the residual structure needs distinct "
                "positions within a group"
            )
    counts = np.bincount(groups)
    present = np.flatnonzero(counts)
    sizes = counts[present]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out.n_groups = len(present)
    feats_all = np.concatenate([positions, Z], axis=1)
    for n in np.unique(sizes):
        n = int(n)
        rows = starts[sizes == n][:, None] + np.arange(n)[None, :]  # (G, n)
        rows = rows if order is None else order[rows]
        feats = feats_all[rows].reshape(len(rows), -1)
        first, inv = _distinct_rows(feats)
        Wf = W[rows].reshape(len(rows), n * k)
        sort = np.argsort(inv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(first)))])
        for u in range(len(first)):
            Wu = Wf[sort[bounds[u] : bounds[u + 1]]]
            feat = feats[first[u]]
            sww = (Wu.T @ Wu).reshape(n, k, n, k)
            out.patterns[(n, feat.tobytes())] = [feat.reshape(n, -1), len(Wu), sww]
    out.rfactor = _combine_r([np.linalg.qr(W, mode="r")], k)
    return out


class FactorConditioning(Conditioning):
    """:class:`~.conditioning.Conditioning` from an R factor ``S = [Sx sy]`` of ``[X y]``.

    ``S'S = [X y]'[X y]``, so the pivoted QR of ``Sx`` has the R factor, pivots and column
    norms of ``X``'s, and the least squares fit of ``sy`` on ``Sx`` has the coefficients and
    residual sum of squares of ``y`` on ``X``: ``T``, ``g0`` and ``s`` are those of the rows.
    ``Xt`` and ``yt`` (rows) do not exist.
    """

    def __init__(self, S: np.ndarray, nobs: int):
        S = np.asarray(S, float)
        Sx, sy = S[:, :-1], S[:, -1]
        self.nobs, self.p = int(nobs), Sx.shape[1]
        Q, R, piv, d = pivoted_qr(Sx)
        self.R, self.piv, self.d = R, piv, d
        root = np.sqrt(max(self.nobs, 1))
        self.T = (R[:, np.argsort(piv)] * d) / root if self.p else np.zeros((0, 0))
        with np.errstate(divide="ignore"):
            self.logdet_T = float(
                np.log(np.abs(np.diag(R))).sum() + np.log(d).sum() - self.p * np.log(root)
            )
        self.Xt = root * Q  # of the factor's rows, for the response fit only
        self.set_response(sy)
        self.Xt = self.yt = None

    def set_response(self, y: np.ndarray) -> None:
        y = np.asarray(y, float)
        g0, e = np.zeros(self.p), y.copy()
        for _ in range(2):
            g = self.Xt.T @ e / max(self.nobs, 1)
            e = e - self.Xt @ g
            g0 = g0 + g
        self.g0 = g0
        rms_e = float(np.sqrt(e @ e / max(self.nobs, 1)))
        rms_y = float(np.sqrt(y @ y / max(self.nobs, 1)))
        self.exact_fit = not rms_e > 1e-11 * rms_y
        self.s = rms_e if rms_e > 0 else 1.0

    def w_map(self) -> np.ndarray:
        """``M`` with ``[Xc yc] = [X y] M``: ``Xc = X T^-1``, ``yc = (y - Xc g0) / s``."""
        p = self.p
        Tinv = self.T_solve(np.eye(p)).T if p else np.zeros((0, 0))
        M = np.zeros((p + 1, p + 1))
        M[:p, :p] = Tinv
        M[:p, p] = -(Tinv @ self.g0) / self.s
        M[p, p] = 1.0 / self.s
        return M


class ReducedEngine(Engine):
    """An :class:`Engine` whose units are the patterns of a :class:`PatternStats`.

    Parameters
    ----------
    stats : PatternStats
        Of all the data (every group in exactly one piece).
    cov_struct : CovStruct
    k_re : int
        Columns of the random-effects design (the features after the ``d`` positions).

    Notes
    -----
    Its "rows" are one representative group per pattern (positions and ``Z`` rows), which is
    all that ``H``, the structure's geometry and the covariance basis depend on; the data enter
    through the conditioned ``S_XX``, ``S_Xy`` and ``S_yy`` and the counts.  ``nobs`` is the
    number of rows of the data.
    """

    def __init__(self, stats: PatternStats, cov_struct: CovStruct, k_re: int):
        if not stats.patterns:
            raise ValueError("the data have no complete rows")
        d, k = stats.d, stats.k
        keys = sorted(stats.patterns, key=lambda key: (key[0], key[1]))
        feats = [stats.patterns[key][0] for key in keys]
        self._counts = np.array([stats.patterns[key][1] for key in keys], float)
        self.cond = FactorConditioning(stats.rfactor, stats.nobs)
        M = self.cond.w_map()
        self._sww = [np.einsum("tasb,ac,bd->tcsd", stats.patterns[key][2], M, M,
                               optimize=True) for key in keys]  # fmt: skip
        rep = np.concatenate(feats, axis=0)
        self.positions = rep[:, :d]
        self.Z = np.ascontiguousarray(rep[:, d : d + k_re])
        self.Zvc = []
        self.X = self.y = self.Xc = self.yc = None
        self.cov_struct = cov_struct
        self.visit = np.asarray(cov_struct.visit_index(self.positions), dtype=np.int64)
        self.k_fe, self.k_re = k - 1, k_re
        self.k_re2 = k_re * (k_re + 1) // 2
        self.k_vc, self.k_lin = 0, self.k_re2
        self.k_corr = cov_struct.k_params
        self.groups = np.repeat(np.arange(len(keys)), [f.shape[0] for f in feats])
        self.nobs = len(rep)
        self.n_groups = len(keys)
        self._layout()
        self.nobs, self.n_rows_total = stats.nobs, stats.nobs
        self.n_groups_total = stats.n_groups
        self.max_group_size = int(self.sizes.max())
        self.mode = "pattern"
        self.chunks = self._reduced_chunks()

    def _reduced_chunks(self) -> list[Chunk]:
        p = self.k_fe
        out = []
        for n, gids in self._size_buckets():
            rows = self.group_rows(gids, n)
            step = max(1, _CHUNK_ELEMENTS // (n * n * max(p * p, n)))
            for a in range(0, len(gids), step):
                g, r = gids[a : a + step], rows[a : a + step]
                S = np.stack([self._sww[i] for i in g])  # (U, n, k, n, k)
                xy = S[:, :, :p, :, p].transpose(0, 1, 3, 2)  # (U, n, n, p): x_t a, y_s
                own = {"xy": xy.reshape(1, -1, p), "yy": S[:, :, p, :, p].reshape(1, -1)}
                out.append(Chunk(n=n, weight=self._counts[g], geom=self.geometry(r),
                                 K=self._basis(r), Sxx=np.ascontiguousarray(S[:, :, :p, :, :p]),
                                 cache={"own": own}))  # fmt: skip
        return out

    @property
    def own_stats(self) -> list[dict]:
        return [ch.cache["own"] for ch in self.chunks]

    def _no_rows(self, what: str):
        raise NotImplementedError(
            f"{what} needs the data's rows, which a fit from sufficient statistics (a Dask "
            "DataFrame) does not keep; fit the model in memory (a pandas DataFrame) for it"
        )

    def group_chunks(self):
        self._no_rows("a per-group quantity (random effects, residuals, simulation)")

    def endog_stats(self, Y):
        self._no_rows("a new response (simulation, refits, the bootstrap)")

    def with_endog(self, y):
        self._no_rows("a new response (refits)")
