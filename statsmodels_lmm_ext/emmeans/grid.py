"""The reference grid, the cell weights of marginal means, and estimability.

The reference grid is every combination of the levels of the categorical variables of the
fixed-effects formula, with numeric covariates at their means (or at user values).  Each grid
row's design row comes from the model's own formula spec (:mod:`statsmodels_lmm_ext._formula`),
so codings, interactions and transformed terms such as ``np.log(x)`` are handled as the model
handled them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._engine.designs import CellDesign
from .._formula import categories, design_rows, model_spec, names_in, used_frame
from .._lazy_exog import fe_design
from .provider import _model_of

__all__ = ["WEIGHTS", "ref_grid"]

#: how grid cells are averaged over the factors a mean does not name
WEIGHTS = ("equal", "proportional", "outer", "cells", "flat")


@dataclass
class _Grid:
    frame: pd.DataFrame  # one row per grid point
    X: np.ndarray
    counts: np.ndarray  # observations in each grid point's cell of factor levels
    levels: dict  # variable -> levels (factors, and covariates given several at= values)
    factors: list[str]
    covariates: dict
    column_vars: list[set]  # data variables behind each design column


def _grid_variables(spec, frame: pd.DataFrame, rhs: str, variables: list[str], at: dict):
    """Levels of the factors (and of covariates given several ``at`` values), the factors,
    and the values of the covariates."""
    levels, factors, covariates = {}, [], {}
    for v in variables:
        col = frame[v]
        is_cat = (
            not pd.api.types.is_numeric_dtype(col)
            or pd.api.types.is_bool_dtype(col)
            or re.search(rf"C\(\s*{re.escape(v)}\s*[,)]", rhs) is not None
        )
        if is_cat:
            cats = categories(spec, v)
            if cats is None:
                cats = (
                    list(col.cat.categories)
                    if isinstance(col.dtype, pd.CategoricalDtype)
                    else sorted(col.dropna().unique().tolist())
                )
            if v in at:
                want = list(np.atleast_1d(at[v]))
                bad = [w for w in want if w not in cats]
                if bad:
                    raise ValueError(f"at[{v!r}] has levels {bad} not in the data ({cats})")
                cats = want
            levels[v] = cats
            factors.append(v)
        else:
            vals = np.atleast_1d(np.asarray(at[v], float)) if v in at else [_mean(frame, v)]
            covariates[v] = vals
            if len(vals) > 1:
                levels[v] = list(vals)
    return levels, factors, covariates


def _mean(frame: pd.DataFrame, v: str) -> float:
    """Mean of a covariate; a frame of cells (``attrs["weights"]`` names their counts) gives
    the count-weighted mean of its cell means."""
    w = frame.attrs.get("weights")
    if w is None:
        return float(frame[v].mean())
    return float(np.average(frame[v].to_numpy(float), weights=frame[w].to_numpy(float)))


def _cell_counts(frame: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Observations (or the weights ``attrs["weights"]`` names) per combination of the
    factors' levels that occurs (column ``_n``; levels as Python objects).  Counted on the
    columns' codes: no object copy of the rows."""
    w = frame.attrs.get("weights")
    codes, labels = [], []
    for v in factors:
        c, u = pd.factorize(frame[v], sort=False)
        codes.append(c.astype(np.min_scalar_type(-len(u) - 1)))  # -1: missing
        labels.append(np.asarray(u, dtype=object))
    keep = np.logical_and.reduce([c >= 0 for c in codes])  # as value_counts, drop missing
    weights = None if w is None else frame[w].to_numpy(float)
    if not keep.all():
        codes = [c[keep] for c in codes]
        weights = None if weights is None else weights[keep]
    dims = [len(u) for u in labels]
    key = np.ravel_multi_index(codes, dims)
    if np.prod(dims, dtype=float) <= 4 * len(key) + 1024:
        n = np.bincount(key, weights, minlength=int(np.prod(dims)))
        cells = np.flatnonzero(np.bincount(key, minlength=len(n)))
        n = n[cells]
    else:
        inv, cells = pd.factorize(key, sort=True)
        n = np.bincount(inv, weights, minlength=len(cells))
    idx = np.unravel_index(cells, dims)
    out = pd.DataFrame({v: labels[i][idx[i]] for i, v in enumerate(factors)})
    out["_n"] = n
    return out


def _reference_grid(model, at: Mapping | None) -> _Grid:
    """The reference grid of a formula model (see :func:`ref_grid`); a model without rows
    (fitted from a Dask DataFrame) gives its frame of cells, ``model.data.grid_frame``."""
    spec = model_spec(model)
    frame = getattr(model.data, "grid_frame", None)
    frame = used_frame(model) if frame is None else frame
    rhs = model.formula.split("~", 1)[-1]
    variables = names_in(rhs, frame.columns)
    at = dict(at or {})
    unknown = [k for k in at if k not in variables]
    if unknown:
        raise ValueError(
            f"at= names {unknown} that are not variables of the fixed-effects formula "
            f"(variables: {variables})"
        )
    levels, factors, covariates = _grid_variables(spec, frame, rhs, variables, at)
    dims = list(levels)
    combos = list(itertools.product(*(levels[v] for v in reversed(dims))))
    grid = (
        pd.DataFrame([c[::-1] for c in combos], columns=dims) if dims else pd.DataFrame(index=[0])
    )
    for v, vals in covariates.items():
        if v not in levels:
            grid[v] = vals[0]
    for v in factors:
        if isinstance(frame[v].dtype, pd.CategoricalDtype):
            grid[v] = pd.Categorical(grid[v], categories=frame[v].cat.categories)
    if factors:
        cell = _cell_counts(frame, factors)
        counts = grid[factors].astype(object).merge(cell, how="left", on=factors)["_n"]
        counts = counts.fillna(0).to_numpy(float)
    else:
        w = frame.attrs.get("weights")
        total = float(len(frame)) if w is None else float(frame[w].sum())
        counts = np.full(len(grid), total)
    X = design_rows(spec, grid[variables])
    names = list(model.exog_names)
    if X.shape[1] != len(names):
        raise ValueError(
            f"the reference grid's design has {X.shape[1]} columns, the model {len(names)}"
        )
    column_vars = [
        {w for part in n.split(":") for w in names_in(part.split("[")[0], variables)}
        for n in names
    ]
    return _Grid(
        grid[dims].reset_index(drop=True) if dims else grid,
        X,
        counts,
        levels,
        factors,
        covariates,
        column_vars,
    )


def ref_grid(results, at: Mapping | None = None) -> pd.DataFrame:
    """The reference grid: one row per combination of factor levels (and ``at`` values).

    Columns: the grid's variables, ``count`` (observations in that cell) and the design row
    (one column per fixed effect).
    """
    model = _model_of(results)
    g = _reference_grid(model, at)
    out = g.frame.copy()
    out["count"] = g.counts
    return pd.concat([out, pd.DataFrame(g.X, columns=list(model.exog_names))], axis=1)


def _cell_weights(g: _Grid, keys: list[str], weights: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of the means (key combinations) and the weight matrix on the grid rows."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    dims = list(g.levels)
    other = [v for v in dims if v not in keys]
    combos = list(itertools.product(*(g.levels[v] for v in reversed(keys))))
    means = pd.DataFrame([c[::-1] for c in combos], columns=keys)
    frame = g.frame
    W = np.zeros((len(means), len(frame)))
    other_f = [v for v in other if v in g.factors]
    if weights == "proportional" and other_f:
        marg = (
            pd.Series(g.counts)
            .groupby([frame[v].astype(object) for v in other_f])
            .transform("sum")
            .to_numpy()
        )
    elif weights == "outer" and other_f:
        marg = np.ones(len(frame))
        for v in other_f:
            marg *= (
                pd.Series(g.counts).groupby(frame[v].astype(object)).transform("sum").to_numpy()
            )
    for i, row in enumerate(means.itertuples(index=False)):
        sel = np.ones(len(frame), bool)
        for v, val in zip(keys, row, strict=True):
            sel &= (frame[v].astype(object) == val).to_numpy()
        if weights == "equal" or not other_f:
            w = sel.astype(float)
        elif weights in ("proportional", "outer"):
            w = np.where(sel, marg, 0.0)
        elif weights == "cells":
            w = np.where(sel, g.counts, 0.0)
        else:  # flat: equal weights on the cells that have data
            w = np.where(sel & (g.counts > 0), 1.0, 0.0)
        total = w.sum()
        W[i] = w / total if total > 0 else np.nan
    return means, W


def _estimable(model, L: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Rows of L in the row space of X (Searle's estimability), from the null space of X'X."""
    X = fe_design(model)
    if isinstance(X, CellDesign):
        xtx = X.gram()
    else:
        X = np.asarray(X, float)
        xtx = X.T @ X
    d = np.sqrt(np.maximum(np.diag(xtx), 1e-300))
    w, v = np.linalg.eigh(xtx / np.outer(d, d))
    null = v[:, w < tol * max(w.max(), 1.0)] / d[:, None]  # null vectors in beta's scale
    if null.shape[1] == 0:
        return np.ones(len(L), bool)
    null /= np.linalg.norm(null, axis=0)
    scale = np.maximum(np.abs(L).max(axis=1), 1e-300)
    return np.abs(L @ null).max(axis=1) / scale < 1e-6


def _as_list(x) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _by_groups(levels: pd.DataFrame, by: list[str]) -> list[np.ndarray]:
    """Row positions of each ``by`` group in order of first appearance."""
    if not by:
        return [np.arange(len(levels))]
    codes = levels[by].astype(object).groupby(by, sort=False).ngroup().to_numpy()
    return [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
