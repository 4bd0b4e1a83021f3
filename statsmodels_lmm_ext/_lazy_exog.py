"""Fixed-effects designs kept in the formula's form, expanded only on access (issue 13).

A formula whose right-hand side has categorical factors only (``y ~ C(visit) * trt``) has a
handful of distinct design rows however many rows the data has; with numeric covariates too
(``y ~ base + C(visit) * trt``) each row is a cell's row times the row's covariates.  The
formula fast path (:mod:`._design`) then returns a :class:`DesignCells` or a
:class:`DesignTerms` (``_engine.designs``) instead of the ``N x p`` matrix: the model's rank
check, conditioning, engine, fitted values, Type III contrasts and marginal means work on that
form, and ``model.exog`` (with ``model.data.exog`` and ``model.data.orig_exog``) is built on
first access only, exactly as patsy would have built it.  At a million rows and 20 columns
this is 160 MB the fit never holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.base.data import PandasData

from ._engine.designs import CellDesign, GatheredRows, tsqr_r

__all__ = [
    "LAZY_DESIGNS",
    "DesignCells",
    "DesignTerms",
    "LazyExogData",
    "fe_design",
    "install_cells",
    "take_cells",
]


class _Labelled:
    """Column names and the data's row index of a design kept in the formula's form."""

    names: list
    index: object

    def _label(self, names, index) -> None:
        self.names = list(names)
        self.index = index


class DesignCells(GatheredRows, _Labelled):
    """A design without numeric factors: ``rows[inverse]``, ``rows`` the distinct design rows
    (each used by at least one row of the data)."""

    def __init__(self, rows: np.ndarray, inverse: np.ndarray, names, index):
        super().__init__(rows, inverse)
        self._label(names, index)


class DesignTerms(CellDesign, _Labelled):
    """A design with numeric factors: ``sum_m v_m[i] tables[m][inverse[i]]``
    (``_engine.designs.CellDesign``); ``frames`` are the pandas objects whose memory the
    multipliers share (kept so that pandas copies before the user's data change)."""

    def __init__(self, tables, inverse, numeric, columns, frames, names, index):
        super().__init__(tables, inverse, numeric, columns)
        self.frames = list(frames)
        self._label(names, index)


LAZY_DESIGNS = (DesignCells, DesignTerms)


class LazyExogData(PandasData):
    """statsmodels' ``PandasData`` whose ``exog`` and ``orig_exog`` are expanded from a
    :class:`DesignCells` or :class:`DesignTerms` on first access (then kept); assigning
    either replaces it."""

    @property
    def exog(self):
        d = self.__dict__
        if d.get("_exog") is None and d.get("_cells") is not None:
            d["_exog"] = np.asarray(d["_cells"])
        return d.get("_exog")

    @exog.setter
    def exog(self, value) -> None:
        self.__dict__["_exog"] = value
        self.__dict__["_cells"] = None

    @property
    def orig_exog(self):
        d = self.__dict__
        if "_orig_exog" in d:
            return d["_orig_exog"]
        cells, X = d.get("_cells"), self.exog
        if X is None:
            return None
        index = cells.index if cells is not None else d.get("_exog_index")
        d["_exog_index"] = index
        d["_orig_exog"] = pd.DataFrame(X, index=index, columns=list(self.xnames), copy=False)
        return d["_orig_exog"]

    @orig_exog.setter
    def orig_exog(self, value) -> None:
        self.__dict__["_orig_exog"] = value

    @property
    def row_labels(self):
        """The data's row index (statsmodels reads it from ``orig_exog``, expanding it)."""
        d = self.__dict__
        if "_row_labels" in d:
            return d["_row_labels"]
        if "_orig_exog" not in d and d.get("_cells") is not None:
            return d["_cells"].index
        exog = self.orig_exog
        return self._get_row_labels(exog if exog is not None else self.orig_endog)

    @row_labels.setter
    def row_labels(self, value) -> None:
        self.__dict__["_row_labels"] = value


def take_cells(exog, drop_rows: bool):
    """``(cells, exog)`` for a model's constructor: a lazy design is set aside (and
    ``exog`` becomes ``None``) to be installed after statsmodels' set-up; when rows are to be
    dropped for missing values it is expanded instead (dropping rows needs the matrix)."""
    if not isinstance(exog, LAZY_DESIGNS):
        return None, exog
    if drop_rows:
        return None, pd.DataFrame(np.asarray(exog), index=exog.index, columns=exog.names)
    return exog, None


def install_cells(model, cells) -> None:
    """Make ``cells`` (a :class:`DesignCells` or :class:`DesignTerms`) the design of a model
    built with ``exog=None``, with the data's names and constant as statsmodels would have
    found them on the full matrix."""
    data = model.data
    if type(data) is not PandasData:
        raise TypeError(f"a lazy design needs pandas data, got {type(data).__name__}")
    for key in ("exog", "orig_exog"):
        data.__dict__.pop(key, None)
    data.__class__ = LazyExogData
    data.xnames = list(cells.names)
    _find_constant(data, cells)
    data._exog, data._cells = None, cells
    model.k_constant = data.k_constant
    model._exog_cells = cells


def _find_constant(data, X) -> None:
    """statsmodels' constant detection (``ModelData._handle_constant``) without the matrix.

    It reads which columns are constant (and their values) and, without a constant column,
    compares the ranks of ``X`` and ``[1, X]``.  The distinct rows of a :class:`DesignCells`
    have the same constant columns and span.  For a :class:`DesignTerms` the constant columns
    are found on the tables and, for a column with a numeric factor, on its values; two rows
    that differ exactly in the other columns stand for ``X``, and the ranks come from the
    triangular factor of ``[1, X]`` (the same singular values, and statsmodels' tolerance for
    ``N`` rows)."""
    if isinstance(X, GatheredRows):
        data._exog = X.rows
        data._handle_constant(None)
        return
    if not all(v is None or np.isfinite(v).all() for v in X.numeric):
        data.k_constant, data.const_idx = 0, None  # the model's own check names the value
        return
    N, p = X.shape
    row = X[np.array([0])][0]
    const = np.zeros(p, bool)
    for T, v, cols in X._parts():  # a DesignTerms' tables fill disjoint columns
        for c, j in enumerate(range(p) if cols is None else cols):
            values = T[:, c] if v is None else T[:, c][X.inverse] * v
            const[j] = bool((values == row[j]).all())
    data._exog = np.vstack([row, np.where(const, row, np.where(row == 0, 1.0, -row))])
    data._handle_constant(None)
    if data.const_idx is None and data.k_constant <= 1:  # the implicit-constant check
        R = tsqr_r(X, np.ones(p), ones=True)
        eps = np.finfo(float).eps
        rank = [
            np.linalg.matrix_rank(M, tol=np.linalg.svd(M, compute_uv=False).max() * N * eps)
            for M in (R, R[:, 1:])
        ]
        data.k_constant = int(rank[0] == rank[1])


def fe_design(model):
    """The model's fixed-effects design as the likelihood uses it: its lazy design
    (:class:`DesignCells`, :class:`DesignTerms`) when it has one, else ``model.exog``."""
    cells = model.__dict__.get("_exog_cells")
    return model.exog if cells is None else cells
