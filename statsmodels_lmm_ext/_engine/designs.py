"""Fixed-effects designs kept in the form the formula gives them, never expanded to ``N x p``.

A formula design is a sum over its terms' numeric parts: each row is a row of a small table
(one per cell of the categorical factors) times the row's numeric factors.  With ``M`` groups of
columns that share their numeric factors (``1`` for purely categorical terms),

    X[i] = sum_m v_m[i] * tables[m][cells[i]]

(:class:`CellDesign`; table ``m`` fills the columns of its terms): ``N`` cell codes, ``M``
numeric vectors (views of the data's columns) and ``M`` small tables, where the matrix takes
``8 N p`` bytes.  A design without numeric factors has ``K`` distinct rows
(:class:`GatheredRows`), over which the conditioning sums too.

The engine only gathers rows (``X[r]``), multiplies by vectors (``X @ g``, ``X' e``) and maps
columns (``X A``, the conditioning's ``Xt = X T^-1``); each costs ``O(N M)`` here.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["CellDesign", "GatheredRows", "first_occurrence", "tsqr_r"]

# Rows per block when a design is expanded block by block, and when it is factored.
BLOCK_ROWS = 65_536
QR_ROWS = 16_384


def first_occurrence(codes: np.ndarray, k: int) -> np.ndarray:
    """Position of the first entry with each code ``0 .. k-1`` (every code occurs)."""
    first = np.empty(k, dtype=np.intp)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first


class CellDesign:
    """The ``(N, p)`` matrix ``sum_m v_m[i] tables[m][inverse[i]]`` (module docstring), each
    table filling its own columns.

    Parameters
    ----------
    tables : list of M ndarray (K, p_m)
    inverse : ndarray (N,) of int
        Each row's cell.
    numeric : list of M ndarray (N,) or None
        Each table's row multipliers; ``None`` for ones.
    columns : list of M index arrays or None, optional
        The columns each table fills (``None``: all ``p``, the default).
    """

    def __init__(self, tables, inverse: np.ndarray, numeric, columns=None):
        self.tables = [np.asarray(T, float) for T in tables]
        self.inverse = inverse
        self.numeric = list(numeric)
        self.columns = list(columns) if columns is not None else [None] * len(self.tables)
        whole = self.columns[0] is None
        p = self.tables[0].shape[1] if whole else sum(len(c) for c in self.columns)
        self.shape = (len(inverse), p)
        self.ndim = 2

    def _parts(self):
        return zip(self.tables, self.numeric, self.columns, strict=True)

    def _full(self, T: np.ndarray, cols, A: np.ndarray) -> np.ndarray:
        return T @ (A if cols is None else A[cols])

    def map_columns(self, A: np.ndarray) -> CellDesign:
        """``X A`` for a ``(p, q)`` matrix ``A``."""
        tables = [self._full(T, c, A) for T, _, c in self._parts()]
        return CellDesign(tables, self.inverse, self.numeric)

    def scaled(self, c: float) -> CellDesign:
        return CellDesign([T * c for T in self.tables], self.inverse, self.numeric, self.columns)

    def _whole(self, m: int) -> np.ndarray:
        """Table ``m`` widened to all ``p`` columns (zeros elsewhere), cached."""
        cache = self.__dict__.setdefault("_wide", {})
        if m not in cache:
            T, cols = self.tables[m], self.columns[m]
            if cols is None:
                cache[m] = T
            else:
                cache[m] = np.zeros((T.shape[0], self.shape[1]))
                cache[m][:, cols] = T
        return cache[m]

    def __getitem__(self, r) -> np.ndarray:
        """Rows ``X[r]`` for an index array (any shape) or a slice: one contiguous gather of
        the (widened) table without multipliers, then the other tables' own columns."""
        cells = self.inverse[r]
        plain = [m for m, v in enumerate(self.numeric) if v is None][:1]
        out = self._whole(plain[0])[cells] if plain else np.zeros(np.shape(cells) + self.shape[1:])
        for m, (T, v, cols) in enumerate(self._parts()):
            if m in plain:
                continue
            part = T[cells]
            if v is not None:
                part *= v[r][..., None]
            if cols is None:
                out += part
            else:
                out[..., cols] += part
        return out

    def __matmul__(self, g: np.ndarray) -> np.ndarray:
        g = np.asarray(g, float)
        out = None
        for T, v, cols in self._parts():
            part = self._full(T, cols, g)[self.inverse]
            if v is not None:
                part *= v.reshape((-1,) + (1,) * (part.ndim - 1))
            out = part if out is None else np.add(out, part, out=out)
        return out

    def _cell_sums(self, w: np.ndarray) -> np.ndarray:
        """Sums of the columns of ``w`` (N, B) per cell, (K, B)."""
        K = self.tables[0].shape[0]
        return np.column_stack(
            [np.bincount(self.inverse, w[:, j], minlength=K) for j in range(w.shape[1])]
        )

    def tdot(self, e: np.ndarray) -> np.ndarray:
        """``X' e`` for ``e`` (N,) or (N, B)."""
        e2 = np.asarray(e, float).reshape(len(e), -1)
        out = np.zeros((self.shape[1], e2.shape[1]))
        for T, v, cols in self._parts():
            part = T.T @ self._cell_sums(e2 if v is None else e2 * v[:, None])
            out[slice(None) if cols is None else cols] += part
        return out.reshape((self.shape[1],) + np.shape(e)[1:])

    def gram(self) -> np.ndarray:
        """``X'X``: per pair of tables, the cells' sums of the products of their multipliers."""
        K, p = self.tables[0].shape[0], self.shape[1]
        out = np.zeros((p, p))
        parts = list(self._parts())
        full = np.arange(p)
        for a, (Ta, va, ca) in enumerate(parts):
            for Tb, vb, cb in parts[a:]:
                weights = vb if va is None else va if vb is None else va * vb
                w = np.bincount(self.inverse, weights, minlength=K).astype(float)
                block = Ta.T @ (w[:, None] * Tb)
                ia = full if ca is None else ca
                ib = full if cb is None else cb
                out[np.ix_(ia, ib)] += block
                if Tb is not Ta:
                    out[np.ix_(ib, ia)] += block.T
        return out

    def first_rows(self) -> np.ndarray:
        """Position of the first row in each cell."""
        return first_occurrence(self.inverse, self.tables[0].shape[0])

    def blocks(self, size: int = BLOCK_ROWS):
        """The rows in blocks ``X[a:a+size]``."""
        for a in range(0, self.shape[0], size):
            yield self[slice(a, a + size)]

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape)
        for a, block in zip(range(0, self.shape[0], BLOCK_ROWS), self.blocks(), strict=True):
            out[a : a + len(block)] = block
        return out if dtype is None else out.astype(dtype)


class GatheredRows(CellDesign):
    """An ``(N, p)`` matrix whose rows are ``rows[inverse]`` (``K`` distinct rows), never
    expanded: a design without numeric factors, the ``Q`` of a design with few distinct rows,
    and then the conditioned design.  Gathers and products cost ``O(N)``."""

    def __init__(self, rows: np.ndarray, inverse: np.ndarray):
        super().__init__([rows], inverse, [None])
        self.rows = self.tables[0]

    def map_columns(self, A: np.ndarray) -> GatheredRows:
        return GatheredRows(self.rows @ A, self.inverse)

    def scaled(self, c: float) -> GatheredRows:
        return GatheredRows(self.rows * c, self.inverse)

    def __getitem__(self, r) -> np.ndarray:
        return self.rows[self.inverse[r]]

    def __matmul__(self, g: np.ndarray) -> np.ndarray:
        return (self.rows @ g)[self.inverse]

    def __array__(self, dtype=None, copy=None):
        out = self.rows[self.inverse]
        return out if dtype is None else out.astype(dtype)

    def distinct(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, inverse, counts)``, as ``conditioning.pivoted_qr`` takes them."""
        return self.rows, self.inverse, np.bincount(self.inverse, minlength=len(self.rows))


def tsqr_r(X: CellDesign, d: np.ndarray, ones: bool = False) -> np.ndarray:
    """The triangular factor ``R`` (``R'R = Y'Y``) of ``Y = X / d`` (with a leading column of
    ones when ``ones``), by QR of one block of rows at a time stacked under the ``R`` so far:
    as stable as the QR of ``Y`` (Householder on every block), in ``O(block x p)`` memory."""
    p = X.shape[1] + int(ones)
    R = np.zeros((0, p))
    for block in X.blocks(QR_ROWS):
        block /= d
        if ones:
            block = np.column_stack([np.ones(len(block)), block])
        # LAPACK's QR in place (numpy's and scipy's wrappers copy the block and form R)
        stacked = np.asfortranarray(np.vstack([R, block]))
        qr, _, _, info = scipy.linalg.lapack.dgeqrf(stacked, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"QR of a block of the design failed (LAPACK info {info})")
        R = np.triu(qr[: min(len(stacked), p)])
    return R
