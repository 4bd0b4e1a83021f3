"""Formula designs built at the speed of numpy, identical to patsy's.

patsy evaluates categorical factors value by value in Python (``is_categorical_NA``,
``categorical_to_int``), which costs more than fitting the model on large data.  This module
builds the same matrices from pandas' vectorised factorisation:

1. the formula is parsed by patsy (``ModelDesc``); every factor must be a data column, read
   bare (``x``), quoted (``Q("x")``) or through ``C(x)`` / ``C(x, Treatment("b"))`` with a
   named contrast (Treatment, Sum, Diff, Helmert, Poly) — anything else (functions,
   ``I()``, splines, stateful transforms, ``levels=``) returns ``None`` and the caller uses
   patsy;
2. patsy (through statsmodels' ``FormulaManager``, exactly as ``from_formula`` calls it) builds
   the ``DesignInfo`` on a tiny frame whose columns hold every distinct value (every category)
   of the data's columns, so the term order, the full/reduced coding of each factor in each
   interaction, the contrast matrices, the level order and the column names are patsy's own;
3. the big matrix is filled subterm by subterm: the level codes of the categorical factors
   (``pandas.factorize``, or a Categorical's codes) index one small table of contrast-matrix
   products, and numeric factors multiply the columns.

Rows with missing values have been dropped (or refused) before this point
(:func:`statsmodels_lmm_ext.model_formula.prepare`); a code that still finds one falls back.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy.builtins
from patsy import ModelDesc
from statsmodels.formula._manager import FormulaManager

from ._lazy_exog import DesignCells, DesignTerms
from ._validation import few_distinct

__all__ = ["FastDesign", "fast_design", "fast_re_design", "parse_factor"]

# Largest number of cells of the categorical factors for which the design is gathered from
# one table of the cells' design rows.
_MAX_CELLS = 1_000_000
_CONTRASTS = frozenset({"Treatment", "Sum", "Diff", "Helmert", "Poly"})
_FUNCTIONS = frozenset({"C", "Q"}) | _CONTRASTS


@dataclass
class FastDesign:
    """``endog`` and ``exog`` as patsy returns them (DataFrames on the data's index) and the
    right-hand side's ``DesignInfo``; ``exog`` wraps one float array without a copy, or is the
    design of few cells in the engine's form, a :class:`~._lazy_exog.DesignCells` (no numeric
    factor) or :class:`~._lazy_exog.DesignTerms` (expanded to patsy's matrix by
    ``np.asarray``)."""

    endog: pd.DataFrame | None
    exog: pd.DataFrame | DesignCells | DesignTerms
    spec: object


# --------------------------------------------------------------------------------------------
# Which factors the fast path evaluates
# --------------------------------------------------------------------------------------------


def _column_of(node, columns) -> str | None:
    """The column a bare name or ``Q("name")`` reads, if it is one of ``columns``."""
    if isinstance(node, ast.Name):
        return node.id if node.id in columns else None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Q"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value if node.args[0].value in columns else None
    return None


def _simple_contrast(node) -> bool:
    """A named contrast, bare or called with constant arguments (``Treatment("b")``,
    ``Treatment(reference=2)``)."""
    if isinstance(node, ast.Name):
        return node.id in _CONTRASTS
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    args = list(node.args) + [k.value for k in node.keywords]
    return node.func.id in _CONTRASTS and all(isinstance(a, ast.Constant) for a in args)


def parse_factor(code: str, columns) -> tuple[str, bool] | None:
    """``(column, wrapped_in_C)`` for a factor the fast path evaluates, else ``None``."""
    try:
        node = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        return None
    column = _column_of(node, columns)
    if column is not None:
        return column, False
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id != "C" or not node.args or len(node.args) > 2:
        return None
    column = _column_of(node.args[0], columns)
    extra = node.args[1:] + [k.value for k in node.keywords if k.arg == "contrast"]
    if column is None or any(k.arg != "contrast" for k in node.keywords):
        return None
    if len(extra) > 1 or not all(_simple_contrast(e) for e in extra):
        return None
    return column, True


# --------------------------------------------------------------------------------------------
# Columns: kind, distinct values and codes
# --------------------------------------------------------------------------------------------


def _kind(col: pd.Series) -> str | None:
    """``"category"``, ``"bool"``, ``"string"`` or ``"number"`` (as patsy will see the
    column), or ``None`` for dtypes the fast path leaves to patsy (nullable extension types,
    dates, objects that are not all strings)."""
    dt = col.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return "category" if len(dt.categories) else None
    if isinstance(dt, pd.StringDtype):
        return "string"
    if isinstance(dt, np.dtype):
        if dt.kind == "b":
            return "bool"
        if dt.kind in "iuf":
            return "number"
        if dt.kind == "O":
            return "string"  # checked on its distinct values
    return None


@dataclass
class _Column:
    """One data column the formula reads: its kind, values for the tiny frame, and (for a
    categorical use) its level codes relative to ``uniques``."""

    kind: str
    uniques: object = None
    codes: np.ndarray | None = None


def _factorize(col: pd.Series, kind: str) -> _Column | None:
    if kind == "category":
        return _Column(kind, col.dtype, col.cat.codes.to_numpy())
    codes, uniques = pd.factorize(col, sort=False, use_na_sentinel=True)
    if (codes < 0).any():
        return None
    codes = codes.astype(np.min_scalar_type(len(uniques)), copy=False)  # 1 byte for few levels
    if kind == "string":
        uniques = np.asarray(uniques, dtype=object)
        if not all(isinstance(u, str) for u in uniques):
            return None
    else:
        uniques = np.asarray(uniques)
    return _Column(kind, uniques, codes)


def _tiny_column(col: pd.Series, info: _Column, length: int):
    """A short column that makes patsy see the same type and the same set of levels."""
    if info.kind == "category":
        k = len(info.uniques.categories)
        return pd.Categorical.from_codes(np.arange(length) % k, dtype=info.uniques)
    if info.codes is not None:
        return np.resize(info.uniques, length)
    return np.resize(col.to_numpy()[:length], length)


def _columns(factors, data: pd.DataFrame) -> dict[str, _Column] | None:
    """The columns the factors read, factorised where they are used as categorical."""
    out = {}
    for column, wrapped in factors:
        kind = _kind(data[column])
        if kind is None:
            return None
        categorical = wrapped or kind != "number"
        have = out.get(column)
        if have is not None and (have.codes is not None or not categorical):
            continue
        info = _factorize(data[column], kind) if categorical else _Column(kind)
        if info is None:
            return None
        out[column] = info
    return out


# --------------------------------------------------------------------------------------------
# The matrices
# --------------------------------------------------------------------------------------------


def _level_codes(info: _Column, categories) -> np.ndarray | None:
    """Codes of the rows in the level order patsy chose (``categories``)."""
    if info.kind == "category":
        same = list(info.uniques.categories) == list(categories)
        return info.codes if same else None
    where = pd.Index(list(categories), dtype=object).get_indexer(list(info.uniques))
    if (where < 0).any():
        return None
    return where.astype(np.int32)[info.codes]


def _combinations(sizes: list[int]) -> list[tuple[int, ...]]:
    """patsy's column order of a subterm: the left-most factor varies fastest."""
    combos = [()]
    for n in reversed(sizes):
        combos = [c + (j,) for c in combos for j in range(n)]
    return [c[::-1] for c in combos]


def _fill_subterm(out, subterm, factor_infos, values, codes) -> None:
    """The columns of one subterm into ``out`` (N, k): one gather from a table of products of
    contrast-matrix entries over the cells of its categorical factors, times its numeric
    factors."""
    sizes, cats = [], []
    for f in subterm.factors:
        if factor_infos[f].type == "categorical":
            sizes.append(subterm.contrast_matrices[f].matrix.shape[1])
            cats.append(f)
        else:
            sizes.append(factor_infos[f].num_columns)
    combos = _combinations(sizes)
    if cats:
        levels = [len(factor_infos[f].categories) for f in cats]
        cell = np.zeros(len(out), dtype=np.intp)
        for f, k in zip(cats, levels, strict=True):
            cell *= k
            cell += codes[f]
        grid = np.indices(levels).reshape(len(cats), -1)
        table = np.ones((grid.shape[1], len(combos)))
        for i, combo in enumerate(combos):
            for j, f in enumerate(cats):
                pos = subterm.factors.index(f)
                table[:, i] *= subterm.contrast_matrices[f].matrix[grid[j], combo[pos]]
        np.take(table, cell, axis=0, out=out, mode="clip")
    else:
        out[...] = 1.0
    numeric = [f for f in subterm.factors if factor_infos[f].type != "categorical"]
    for i in range(len(combos)):
        for f in numeric:
            out[:, i] *= values[f]


def _subterms(spec):
    """``(start, subterm)`` of every subterm of a ``DesignInfo``, in column order."""
    start = 0
    for subterms in spec.term_codings.values():
        for st in subterms:
            yield start, st
            start += st.num_columns


def _fill(spec, values, codes, n: int) -> np.ndarray:
    """The design on ``n`` rows with the given factor values and level codes."""
    X = np.empty((n, len(spec.column_names)))
    for start, st in _subterms(spec):
        block = np.empty((n, st.num_columns))
        _fill_subterm(block, st, spec.factor_infos, values, codes)
        X[:, start : start + st.num_columns] = block
    return X


def _float_column(data: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.DataFrame]:
    """A data column as a float array that a model may keep, and the one-column frame that
    must be kept with it.

    Under pandas' copy-on-write the array is a read-only view of the column, shared with the
    frame: while the frame lives, pandas copies the column before the user's data change in
    place (it does not track bare numpy views).  Without copy-on-write, selecting the column
    copies it.
    """
    frame = data[[column]].astype(float)
    return np.asarray(frame.iloc[:, 0]), frame


def _matrix(spec, factor_map, columns, data, cells: bool = False):
    """The design of ``spec`` (a patsy ``DesignInfo``) on ``data``.

    When the categorical factors have few combined cells, the design of every cell is built
    once (numeric factors set to 1) and the rows are one contiguous gather from that table
    (a strided gather per subterm is an order of magnitude slower); numeric factors then
    multiply their columns.  With ``cells``, a design of few cells is returned in the engine's
    form instead (:func:`_kept_form`), never expanded.
    """
    values, codes, frames = {}, {}, {}
    for f, fi in spec.factor_infos.items():
        column, _ = factor_map[f.code]
        if fi.type == "categorical":
            codes[f] = _level_codes(columns[column], fi.categories)
            if codes[f] is None:
                return None
        else:
            if fi.num_columns != 1:
                return None
            values[f], frames[f] = _float_column(data, column)
    n = len(data)
    cats = list(codes)
    levels = [len(spec.factor_infos[f].categories) for f in cats]
    n_cells = float(np.prod(levels, dtype=float))
    if n_cells > min(n, _MAX_CELLS):
        return _fill(spec, values, codes, n)
    grid = np.indices(levels).reshape(len(cats), -1) if cats else np.zeros((0, 1), np.intp)
    ones = {f: np.ones(grid.shape[1]) for f in values}
    table = _fill(spec, ones, dict(zip(cats, grid, strict=True)), grid.shape[1])
    cell = np.zeros(n, dtype=np.int32)  # at most _MAX_CELLS cells
    for f, k in zip(cats, levels, strict=True):
        cell *= k
        cell += codes[f]
    if cells:
        kept = _kept_form(spec, table, cell, values, frames)
        if kept is not None:
            return kept
    X = np.empty((n, table.shape[1]))
    np.take(table, cell, axis=0, out=X, mode="clip")
    for start, st in _subterms(spec):
        for f in st.factors:
            if f in values:
                X[:, start : start + st.num_columns] *= values[f][:, None]
    return X


def _kept_form(spec, table: np.ndarray, cell: np.ndarray, values: dict, frames: dict):
    """The design in the engine's form (``_engine.designs``), or ``None`` when the matrix is
    the better form: ``("cells", rows, codes)`` without numeric factors, ``("terms", tables,
    codes, multipliers, columns, frames)`` with them (each subterm at most one numeric factor,
    whose column multiplies its table as patsy multiplies it; ``frames`` keep the columns'
    memory, :func:`_float_column`), when the used cells are few
    (:func:`~._validation.few_distinct`)."""
    n, p = len(cell), table.shape[1]
    counts = np.bincount(cell, minlength=len(table))
    used = np.flatnonzero(counts)
    if not few_distinct(len(used), n, p):
        return None
    remap = np.zeros(len(table), dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    table, codes = table[used], remap[cell]
    if not values:
        return "cells", table, codes
    groups: dict = {}
    for start, st in _subterms(spec):
        numeric = [f for f in st.factors if f in values]
        if len(numeric) > 1:
            return None
        key = numeric[0] if numeric else None
        groups.setdefault(key, []).extend(range(start, start + st.num_columns))
    cols = [np.asarray(c, dtype=np.intp) for c in groups.values()]
    multipliers = [None if f is None else values[f] for f in groups]
    return "terms", [table[:, c] for c in cols], codes, multipliers, cols, list(frames.values())


def _factors(desc: ModelDesc):
    return {f for side in (desc.lhs_termlist, desc.rhs_termlist) for t in side for f in t.factors}


def _prepare(formula: str, data: pd.DataFrame, eval_env):
    """Parse the formula and factorise its columns; ``None`` when patsy must do it."""
    if not isinstance(formula, str) or not isinstance(data, pd.DataFrame):
        return None
    if len(data) == 0 or not data.columns.is_unique:
        return None
    columns = {c for c in data.columns if isinstance(c, str)}
    env = eval_env or {}
    shadowed = [n for n in _FUNCTIONS & set(env) if env[n] is not getattr(patsy.builtins, n)]
    if columns & _FUNCTIONS or shadowed:
        return None  # a data column or a caller's name would shadow patsy's C, Q, Treatment...
    try:
        desc = ModelDesc.from_formula(formula)
    except Exception:  # noqa: BLE001 - patsy reports its own syntax errors
        return None
    factor_map = {}
    for f in _factors(desc):
        parsed = parse_factor(f.code, columns)
        if parsed is None:
            return None
        factor_map[f.code] = parsed
    info = _columns(factor_map.values(), data)
    if info is None:
        return None
    return desc, factor_map, info


def _tiny_frame(data: pd.DataFrame, info: dict[str, _Column]) -> pd.DataFrame:
    sizes = [
        len(c.uniques.categories) if c.kind == "category" else len(c.uniques)
        for c in info.values()
        if c.codes is not None
    ]
    length = min(max(sizes + [2]), len(data))
    return pd.DataFrame({c: _tiny_column(data[c], v, length) for c, v in info.items()})


def fast_design(formula: str, data: pd.DataFrame, eval_env) -> FastDesign | None:
    """``(endog, exog, DesignInfo)`` of a two-sided formula as statsmodels' ``from_formula``
    gets them from patsy, or ``None`` when the formula or the data need patsy itself.

    ``eval_env`` is the dict of the caller's names the formula needs (as
    :func:`statsmodels_lmm_ext.model_formula.prepare` gives it).
    """
    prepared = _prepare(formula, data, eval_env)
    if prepared is None or FormulaManager().engine != "patsy":
        return None
    desc, factor_map, info = prepared
    if len(desc.lhs_termlist) != 1 or len(desc.lhs_termlist[0].factors) != 1:
        return None
    (lhs,) = desc.lhs_termlist[0].factors
    if factor_map[lhs.code][1] or info[factor_map[lhs.code][0]].kind != "number":
        return None
    mgr = FormulaManager()
    tiny_y, tiny_X = mgr.get_matrices(
        formula,
        _tiny_frame(data, info),
        eval_env=eval_env or {},
        pandas=True,
        na_action=mgr.get_na_action(action="raise"),
    )
    spec = mgr.spec
    X = _matrix(spec, factor_map, info, data, cells=True)
    if X is None:
        return None
    # the response shares the column's memory under copy-on-write, as _float_column's (the
    # model keeps this frame as ``data.orig_endog``)
    endog = data[[factor_map[lhs.code][0]]].astype(float)
    endog.columns = [tiny_y.columns[0]]
    names = list(tiny_X.columns)
    if isinstance(X, tuple):
        kind, *parts = X
        exog = (DesignCells if kind == "cells" else DesignTerms)(*parts, names, data.index)
    else:
        exog = pd.DataFrame(X, index=data.index, columns=names, copy=False)
    return FastDesign(endog, exog, spec)


def fast_re_design(re_formula: str, data: pd.DataFrame, eval_env):
    """``(matrix, column names)`` of a one-sided random-effects formula as patsy builds them
    (``Intercept`` not yet renamed), or ``None`` when patsy must do it."""
    prepared = _prepare(re_formula, data, eval_env)
    if prepared is None or FormulaManager().engine != "patsy":
        return None
    desc, factor_map, info = prepared
    if desc.lhs_termlist:
        return None
    mgr = FormulaManager()
    tiny = mgr.get_matrices(
        re_formula,
        _tiny_frame(data, info),
        eval_env=eval_env or {},
        pandas=True,
    )
    Z = _matrix(mgr.spec, factor_map, info, data)
    return None if Z is None else (Z, list(tiny.columns))
