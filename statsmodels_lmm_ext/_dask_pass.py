"""The passes over a Dask DataFrame that reduce it to what a mixed model needs.

1. :func:`global_levels`: the levels of every categorical variable the formulas use (known
   categories are free; string, boolean and ``C(x)`` columns cost one pass over those columns),
   so that every partition builds its design with ONE patsy ``DesignInfo``.
2. :func:`reduce_partitions`: per partition (:func:`partition_summary`) the visit-pattern
   statistics of :mod:`._engine.reduced`, the cell counts and covariate sums of the reference
   grid (emmeans), a few rows with distinct design rows (Type III hypotheses and
   estimability, which depend on the design's row space only) and the hashes of the group
   labels; tree-reduced with :func:`merge_summaries`, which also detects a group whose rows sit
   in two partitions.

Nothing here imports dask at module level: the package works without it.  Patsy design specs
cannot be pickled, so workers rebuild them from :class:`DesignSpec` (formula and levels).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg
from patsy import EvalEnvironment, build_design_matrices, dmatrices, dmatrix

from ._engine.reduced import PatternStats, _distinct_rows, pattern_stats
from ._formula import names_in

__all__ = [
    "DesignSpec",
    "SplitGroupsError",
    "global_levels",
    "is_dask_frame",
    "merge_summaries",
    "partition_summary",
    "reduce_partitions",
]

# rows kept with distinct design rows (Type III hypotheses need the design's row space)
_SAMPLE_ROWS = 2000
# the pattern statistics of one model may hold at most this many bytes
PATTERN_BYTES = 1_500_000_000


class SplitGroupsError(ValueError):
    """Rows of one group sit in two partitions."""


def is_dask_frame(data) -> bool:
    """Whether ``data`` is a Dask DataFrame (checked without importing dask)."""
    mod = type(data).__module__ or ""
    return mod.split(".")[0] == "dask" and hasattr(data, "npartitions")


def _is_categorical(dtype) -> bool:
    return (
        not pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _in_c(var: str, formulas: list[str]) -> bool:
    pattern = rf"C\(\s*{re.escape(var)}\s*[,)]"
    return any(re.search(pattern, f) for f in formulas if isinstance(f, str))


def global_levels(data, columns: list[str], formulas: list[str], visit_cols: list[str]) -> dict:
    """Levels of the categorical columns among ``columns`` (category order if the categories
    are known, else sorted values, as patsy sorts them); one ``compute`` for all that need a
    pass."""
    import dask  # noqa: PLC0415 (optional dependency)

    meta = data._meta
    levels, pending = {}, {}
    for c in columns:
        dtype = meta[c].dtype
        if not (_is_categorical(dtype) or _in_c(c, formulas) or c in visit_cols):
            continue
        if pd.api.types.is_bool_dtype(dtype):
            levels[c] = [False, True]
        elif isinstance(dtype, pd.CategoricalDtype) and data[c].cat.known:
            levels[c] = list(dtype.categories)
        else:
            pending[c] = set()
    if pending:
        cols = list(pending)
        parts = [dask.delayed(_uniques)(p, cols) for p in data[cols].to_delayed()]
        found = dask.compute(*parts)
        for c in cols:
            if isinstance(meta[c].dtype, pd.CategoricalDtype):
                levels[c] = _category_levels([f[c] for f in found])
            else:
                levels[c] = sorted({v for f in found for v in f[c]})
    empty = [c for c, lv in levels.items() if not len(lv)]
    if empty:
        raise ValueError(f"column(s) {empty} have no values (no rows, or all missing)")
    return levels


def _category_levels(per_part: list[list]) -> list:
    """Categories of a categorical column with categories unknown to Dask (parquet): their
    order when every partition has the same, else the sorted union (as pandas' concat)."""
    first = per_part[0]
    if all(p == first for p in per_part):
        return list(first)
    return sorted({v for p in per_part for v in p})


def _uniques(df: pd.DataFrame, cols: list[str]) -> dict:
    """Values of the columns (all categories of a categorical one, in their order)."""
    out = {}
    for c in cols:
        col = df[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[c] = list(col.cat.categories)
        else:
            out[c] = pd.unique(col.dropna().to_numpy()).tolist()
    return out


@dataclass
class DesignSpec:
    """What a partition needs to build its design: picklable (no patsy objects)."""

    formula: str
    re_formula: str | None  # None: random intercept; "0": none; else a formula
    group: str
    columns: list[str]  # the data columns the model uses (group and positions included)
    levels: dict  # categorical column -> levels
    position_columns: list[str]
    visit_columns: list[str]  # non-numeric position columns (coded by their levels)
    eval_env: dict
    missing: str
    grid_factors: list[str]  # categorical variables of the fixed-effects formula
    grid_covariates: list[str]  # numeric variables of the fixed-effects formula
    _designs: tuple | None = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_designs"] = None
        return state

    def template(self) -> pd.DataFrame:
        """A small frame with the columns' types and the global levels (patsy learns the
        levels of a pandas Categorical from its categories)."""
        n = max([len(v) for v in self.levels.values()] + [2])
        out = {}
        for c in self.columns:
            if c in self.levels:
                lv = self.levels[c]
                out[c] = pd.Categorical([lv[i % len(lv)] for i in range(n)], categories=lv)
            else:
                out[c] = np.arange(1.0, n + 1.0)
        return pd.DataFrame(out)

    def designs(self):
        """``(y, X, Z)`` patsy DesignInfos (``Z`` None for a random intercept or none)."""
        if self._designs is None:
            frame = self.template()
            env = EvalEnvironment([self.eval_env])
            y, X = dmatrices(self.formula, frame, eval_env=env, NA_action="raise")
            Z = None
            if self.re_formula not in (None, "0"):
                Z = dmatrix(self.re_formula, frame, eval_env=env,
                            NA_action="raise").design_info  # fmt: skip
            infos = [y.design_info, X.design_info] + ([Z] if Z is not None else [])
            for di in infos:
                for f, fi in di.factor_infos.items():
                    if fi.state.get("transforms"):
                        raise ValueError(
                            f"the term {f.name()!r} uses a stateful transform (center, "
                            "standardize, scale ...), which learns from all the data; with a "
                            "Dask DataFrame compute that column first (e.g. with dask's "
                            "mean and std) and use it in the formula"
                        )
            self._designs = (y.design_info, X.design_info, Z)
        return self._designs

    def coded(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with categorical columns as Categoricals of the global levels."""
        df = df.copy()
        for c, lv in self.levels.items():
            cat = pd.Categorical(df[c], categories=lv)
            bad = pd.isna(cat) & ~pd.isna(df[c].to_numpy())
            if bad.any():
                raise ValueError(f"column {c!r} has the value {df[c][bad].iloc[0]!r}, not one "
                                 f"of the levels found in the data ({lv})")  # fmt: skip
            df[c] = cat
        return df

    def positions(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for c in self.position_columns:
            if c in self.visit_columns:
                lookup = {v: i for i, v in enumerate(self.levels[c])}
                parts.append(df[c].map(lookup).to_numpy(float))
            else:
                parts.append(df[c].to_numpy(float))
        return np.column_stack(parts) if parts else np.zeros((len(df), 0))


def _handle_missing(df: pd.DataFrame, spec: DesignSpec) -> pd.DataFrame:
    na = df[spec.columns].isna()
    num = df[spec.columns].select_dtypes("number")
    bad = na.any(axis=1) | np.isinf(num.to_numpy(float)).any(axis=1)
    if not bad.any():
        return df
    if spec.missing == "drop":
        return df.loc[~bad.to_numpy()]
    cols = [c for c in spec.columns if na[c].any() or (c in num and np.isinf(num[c]).any())]
    raise ValueError(
        f"missing or infinite values in column(s) {', '.join(map(repr, cols))} (first at row "
        f"{df.index[np.flatnonzero(bad.to_numpy())[0]]!r}); pass missing='drop' to drop those "
        "rows"
    )


def _sample_rows(X: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` rows with distinct design rows spanning the row space of
    ``X``: the independent rows a pivoted QR picks among candidates (all distinct rows, or a
    fixed pseudo-random subset of them when that has full rank), then others."""
    first, _ = _distinct_rows(X)
    first = np.sort(first)
    if len(first) <= limit:
        return first
    rng = np.random.default_rng(0)
    cand = first
    if len(first) > 20 * limit:
        sub = np.sort(rng.choice(first, 20 * limit, replace=False))
        if np.linalg.matrix_rank(X[sub]) == np.linalg.matrix_rank(X.T @ X):
            cand = sub
    _, _, piv = scipy.linalg.qr(X[cand].T, mode="economic", pivoting=True)
    keep = list(piv[: X.shape[1]])
    rest = rng.permutation(np.setdiff1d(np.arange(len(cand)), keep))
    keep += list(rest[: limit - len(keep)])
    return np.sort(cand[keep])


def partition_summary(df: pd.DataFrame, spec: DesignSpec) -> dict:
    """What one partition contributes: pattern statistics, grid cells, sample rows, hashes of
    its group labels."""
    ydi, xdi, zdi = spec.designs()
    df = _handle_missing(df[spec.columns], spec)
    coded = spec.coded(df)
    y, X = (np.asarray(m, float) for m in build_design_matrices([ydi, xdi], coded,
                                                                  NA_action="raise"))  # fmt: skip
    if spec.re_formula is None:
        Z = np.ones((len(df), 1))
    elif spec.re_formula == "0":
        Z = np.zeros((len(df), 0))
    else:
        Z = np.asarray(build_design_matrices([zdi], coded, NA_action="raise")[0], float)
    codes, labels = pd.factorize(df[spec.group].to_numpy(), sort=False)
    stats = pattern_stats(np.column_stack([X, y]), Z, spec.positions(df), codes, labels)
    if stats.nbytes > PATTERN_BYTES:
        raise_too_many_patterns(stats)
    labels = np.asarray(labels)
    hashes = np.unique(pd.util.hash_array(labels if labels.dtype != object else labels))
    rows = _sample_rows(X, _SAMPLE_ROWS)
    sample = coded.iloc[rows].reset_index(drop=True)
    return {"stats": stats, "cells": _cells(df, spec), "sample": sample, "X": X[rows],
            "hashes": hashes, "ysum": float(y.sum())}  # fmt: skip


def raise_too_many_patterns(stats: PatternStats):
    raise ValueError(
        f"the data have {len(stats.patterns)} distinct visit patterns (positions and random-"
        f"effects rows of a group) holding {stats.nbytes / 1e9:.1f} GB of statistics: a "
        "random effect on a continuous covariate makes nearly every group its own pattern, "
        "and the likelihood then needs the rows at every evaluation.  With a Dask DataFrame "
        "use random effects on categorical factors or on the residual structure's time "
        "column (or none, with an unstructured residual), or fit in memory"
    )


def _cells(df: pd.DataFrame, spec: DesignSpec) -> pd.DataFrame:
    """Counts and covariate sums per combination of the formula's categorical variables."""
    cov = df[spec.grid_covariates].astype(float)
    frame = pd.concat([df[spec.grid_factors].astype(object), cov], axis=1)
    frame["_n"] = 1.0
    if not spec.grid_factors:
        return frame.sum().to_frame().T
    return frame.groupby(spec.grid_factors, observed=True, dropna=False).sum().reset_index()


def merge_summaries(a: dict, b: dict, spec: DesignSpec) -> dict:
    """Two disjoint pieces' summaries combined; ``split`` counts the groups with rows in both
    (then nothing else is merged: the data must be shuffled by group)."""
    common = np.intersect1d(a["hashes"], b["hashes"], assume_unique=True)
    split = a.get("split", 0) + b.get("split", 0) + len(common)
    if split:
        return {"split": split, "hashes": np.union1d(a["hashes"], b["hashes"])}
    cells = pd.concat([a["cells"], b["cells"]], ignore_index=True)
    if spec.grid_factors:
        cells = cells.groupby(spec.grid_factors, observed=True, dropna=False).sum()
        cells = cells.reset_index()
    else:
        cells = cells.sum().to_frame().T
    X = np.vstack([a["X"], b["X"]])
    rows = _sample_rows(X, _SAMPLE_ROWS)
    sample = pd.concat([a["sample"], b["sample"]], ignore_index=True).iloc[rows]
    stats = a["stats"] + b["stats"]
    if stats.nbytes > PATTERN_BYTES:
        raise_too_many_patterns(stats)
    return {"stats": stats, "cells": cells, "sample": sample.reset_index(drop=True),
            "X": X[rows], "hashes": np.union1d(a["hashes"], b["hashes"]),
            "ysum": a["ysum"] + b["ysum"]}  # fmt: skip


def reduce_partitions(data, spec: DesignSpec) -> dict:
    """:func:`partition_summary` of every partition, tree-reduced with
    :func:`merge_summaries` on the active Dask scheduler (one pass over the data)."""
    import dask  # noqa: PLC0415 (optional dependency)

    parts = [dask.delayed(partition_summary)(p, spec) for p in data.to_delayed()]
    while len(parts) > 1:
        nxt = [dask.delayed(merge_summaries)(parts[i], parts[i + 1], spec)
               for i in range(0, len(parts) - 1, 2)]  # fmt: skip
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    out = dask.compute(parts[0])[0]
    if out.get("split"):
        raise SplitGroupsError(f"{out['split']} group(s) have rows in more than one partition")
    return out


def grid_columns(formula: str, meta: pd.DataFrame, levels: dict) -> tuple[list, list]:
    """The categorical and numeric variables of the fixed-effects formula (as emmeans'
    reference grid classifies them)."""
    rhs = formula.split("~", 1)[-1]
    variables = names_in(rhs, meta.columns)
    factors = [v for v in variables if v in levels]
    return factors, [v for v in variables if v not in levels]
