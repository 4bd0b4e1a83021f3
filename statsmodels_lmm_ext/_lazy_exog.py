"""A fixed-effects design kept as its distinct rows and each row's code (issue 13).

A formula whose right-hand side has categorical factors only (``y ~ C(visit) * trt``) has a
handful of distinct design rows however many rows the data has.  The formula fast path
(:mod:`._design`) then returns a :class:`DesignCells` instead of the ``N x p`` matrix: the
model's rank check, conditioning, engine, fitted values and Type III contrasts work on the
distinct rows and the codes, and ``model.exog`` (with ``model.data.exog`` and
``model.data.orig_exog``) is built on first access only, exactly as patsy would have built it.
At a million rows and 20 columns this is 160 MB the fit never holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.base.data import PandasData

from ._engine.conditioning import GatheredRows

__all__ = ["DesignCells", "LazyExogData", "fe_design", "install_cells", "take_cells"]


class DesignCells(GatheredRows):
    """The ``(N, p)`` design ``rows[inverse]`` with its column names and the data's row index.

    ``rows`` are the distinct design rows (each used by at least one row of the data).
    """

    def __init__(self, rows: np.ndarray, inverse: np.ndarray, names, index):
        super().__init__(np.asarray(rows, float), inverse)
        self.names = list(names)
        self.index = index

    def first_rows(self) -> np.ndarray:
        """Position of the first row of the data carrying each distinct row."""
        first = np.empty(len(self.rows), dtype=np.intp)
        n = len(self.inverse)
        first[self.inverse[::-1]] = np.arange(n - 1, -1, -1)
        return first


class LazyExogData(PandasData):
    """statsmodels' ``PandasData`` whose ``exog`` and ``orig_exog`` are expanded from a
    :class:`DesignCells` on first access (then kept); assigning either replaces it."""

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
    """``(cells, exog)`` for a model's constructor: a :class:`DesignCells` is set aside (and
    ``exog`` becomes ``None``) to be installed after statsmodels' set-up; when rows are to be
    dropped for missing values it is expanded instead (dropping rows needs the matrix)."""
    if not isinstance(exog, DesignCells):
        return None, exog
    if drop_rows:
        return None, pd.DataFrame(np.asarray(exog), index=exog.index, columns=exog.names)
    return exog, None


def install_cells(model, cells: DesignCells) -> None:
    """Make ``cells`` the design of a model built with ``exog=None``: the data's names and
    constant as statsmodels would have found them on the full matrix (found on the distinct
    rows, which have the same columns' constancy and span)."""
    data = model.data
    if type(data) is not PandasData:
        raise TypeError(f"a design of cells needs pandas data, got {type(data).__name__}")
    for key in ("exog", "orig_exog"):
        data.__dict__.pop(key, None)
    data.__class__ = LazyExogData
    data.xnames = list(cells.names)
    data._exog = cells.rows  # statsmodels' constant detection on the distinct rows
    data._handle_constant(None)
    data._exog, data._cells = None, cells
    model.k_constant = data.k_constant
    model._exog_cells = cells


def fe_design(model):
    """The model's fixed-effects design as the likelihood uses it: its :class:`DesignCells`
    when it has them, else ``model.exog``."""
    cells = model.__dict__.get("_exog_cells")
    return model.exog if cells is None else cells
