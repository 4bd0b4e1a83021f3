"""Estimated marginal means (least-squares means) and their contrasts.

The reference grid is every combination of the levels of the categorical variables of the
fixed-effects formula, with numeric covariates at their means (or at user values).  Each grid
row's design row comes from the model's own formula spec (patsy ``DesignInfo`` or formulaic
``ModelSpec``), so codings, interactions and transformed terms such as ``np.log(x)`` are
handled as the model handled them.  A marginal mean averages grid rows over the remaining
factors; estimates, standard errors and degrees of freedom come from the chosen ddf method
(Kenward-Roger by default for REML fits, with the adjusted covariance), and simultaneous
inference from :mod:`statsmodels_lmm_ext.multiplicity`.

References
----------
Searle, S. R., Speed, F. M. and Milliken, G. A. (1980). Population marginal means in the
linear model: an alternative to least squares means. The American Statistician 34, 216-221.
Lenth, R. V. (2016). Least-squares means: the R package lsmeans. Journal of Statistical
Software 69(1).
Piepho, H.-P. (2004). An algorithm for a letter-based representation of all-pairwise
comparisons. Journal of Computational and Graphical Statistics 13, 456-466.
"""

from __future__ import annotations

import io
import itertools
import re
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import RegressionResults

from ._design import model_spec
from .adapters import _unwrap, as_fitted
from .inference import Inference, check_ddf
from .multiplicity import Family, adjust, check_adjust

__all__ = ["CONTRAST_METHODS", "EmmResults", "EmmContrasts", "emmeans", "ref_grid"]

WEIGHTS = ("equal", "proportional", "outer", "cells", "flat")


# --------------------------------------------------------------------------------------------
# Estimates, standard errors and df for rows of L: one provider per kind of fitted model
# --------------------------------------------------------------------------------------------


class _Provider:
    """``L beta``, its covariance and df, for one fitted model and one ddf method."""

    def __init__(self, beta, cov, df: Callable[[np.ndarray], np.ndarray], label: str):
        self.beta = np.asarray(beta, dtype=float)
        self.cov = np.asarray(cov, dtype=float)
        self._df = df
        self.label = label

    def estimate(self, L: np.ndarray):
        est = L @ self.beta
        se = np.sqrt(np.einsum("ia,ab,ib->i", L, self.cov, L))
        return est, se, self._df(L)


def _provider(results, ddf, information) -> _Provider:
    res = _unwrap(results)
    fixed_df = None
    if ddf is not None and not isinstance(ddf, str):
        fixed_df = float(ddf)
        if not fixed_df > 0:
            raise ValueError(f"ddf must be a method name or a positive number, not {ddf!r}")
    if isinstance(res, RegressionResults):
        return _regression_provider(res, ddf, fixed_df)
    try:
        vm = as_fitted(results).variance_model
    except TypeError:
        raise TypeError(
            "emmeans needs a fitted MixedLM (statsmodels_lmm_ext or statsmodels) or a "
            f"statsmodels OLS/WLS/GLS result, got {type(res).__name__}"
        ) from None
    if fixed_df is not None:
        inf = Inference(vm, "residual", None)
        return _Provider(vm.beta, inf.cov, lambda L: np.full(len(L), fixed_df), f"fixed ({ddf:g})")
    if ddf is None:
        ddf = "kenward-roger" if vm.reml else "satterthwaite"
    inf = Inference(vm, ddf, information)
    return _Provider(vm.beta, inf.cov, lambda L: inf.t(L, np.zeros(len(L)))[2], inf.ddf)


def _regression_provider(res, ddf, fixed_df) -> _Provider:
    """OLS/WLS/GLS: residual df (or asymptotic, or a fixed number)."""
    name = None if ddf is None or fixed_df is not None else check_ddf(ddf).name
    if name not in (None, "residual", "asymptotic"):
        raise ValueError(
            f"ddf={ddf!r} applies to mixed models; a linear regression has residual df "
            "(ddf='residual', the default) or 'asymptotic'"
        )
    if fixed_df is None:
        asym = name == "asymptotic"
        fixed_df = np.inf if asym else float(res.df_resid)
        label = "asymptotic" if asym else None
    else:
        label = f"fixed ({ddf:g})"
    return _Provider(res.params, res.cov_params(), lambda L: np.full(len(L), fixed_df), label)


# --------------------------------------------------------------------------------------------
# Reference grid
# --------------------------------------------------------------------------------------------


def _names_in(code: str, columns) -> list[str]:
    """Data columns referenced in a piece of formula code (in order of appearance)."""
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError):
        return [c for c in columns if re.search(rf"\b{re.escape(str(c))}\b", code)]
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string not in columns or tok.string in out:
            continue
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
        prev = tokens[i - 1].string if i else ""
        if nxt != "(" and prev != ".":
            out.append(tok.string)
    return out


def _used_frame(model) -> pd.DataFrame:
    frame = model.data.frame
    if frame is None:
        raise ValueError("the model keeps no data frame; marginal means need the data")
    labels = getattr(model.data, "row_labels", None)
    if len(frame) != model.nobs and labels is not None:
        frame = frame.loc[labels]
    return frame


def _categories(spec, var: str):
    """The level order the formula used for ``var`` (patsy or formulaic), if it says."""
    pattern = re.compile(rf"^C\(\s*{re.escape(var)}\s*[,)]")
    if hasattr(spec, "factor_infos"):  # patsy
        for f, fi in spec.factor_infos.items():
            if fi.type == "categorical" and (f.code == var or pattern.match(f.code)):
                return list(fi.categories)
        return None
    state = getattr(spec, "encoder_state", {}) or {}
    for key, (_kind, st) in state.items():
        if (key == var or pattern.match(key)) and "categories" in st:
            return list(st["categories"])
    return None


def _design_rows(spec, grid: pd.DataFrame) -> np.ndarray:
    if hasattr(spec, "term_codings"):  # patsy
        from patsy import build_design_matrices

        return np.asarray(build_design_matrices([spec], grid, NA_action="raise")[0], float)
    return np.asarray(spec.get_model_matrix(grid, output="numpy"), float)


@dataclass
class _Grid:
    frame: pd.DataFrame  # one row per grid point
    X: np.ndarray
    counts: np.ndarray  # observations in each grid point's cell of factor levels
    levels: dict  # variable -> levels (factors, and covariates given several at= values)
    factors: list[str]
    covariates: dict
    column_vars: list[set]  # data variables behind each design column


def _reference_grid(results, at: Mapping | None) -> _Grid:
    model = _unwrap(results).model
    spec = model_spec(model)
    frame = _used_frame(model)
    rhs = model.formula.split("~", 1)[-1]
    variables = _names_in(rhs, frame.columns)
    at = dict(at or {})
    unknown = [k for k in at if k not in variables]
    if unknown:
        raise ValueError(
            f"at= names {unknown} that are not variables of the fixed-effects formula "
            f"(variables: {variables})"
        )
    levels, factors, covariates = {}, [], {}
    for v in variables:
        col = frame[v]
        is_cat = (
            not pd.api.types.is_numeric_dtype(col)
            or pd.api.types.is_bool_dtype(col)
            or re.search(rf"C\(\s*{re.escape(v)}\s*[,)]", rhs) is not None
        )
        if is_cat:
            cats = _categories(spec, v)
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
            vals = np.atleast_1d(np.asarray(at[v], float)) if v in at else [float(col.mean())]
            covariates[v] = vals
            if len(vals) > 1:
                levels[v] = list(vals)
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
        cell = frame[factors].astype(object).value_counts().rename("_n").reset_index()
        counts = grid[factors].astype(object).merge(cell, how="left", on=factors)["_n"]
        counts = counts.fillna(0).to_numpy(float)
    else:
        counts = np.full(len(grid), float(len(frame)))
    X = _design_rows(spec, grid[variables])
    names = list(model.exog_names)
    if X.shape[1] != len(names):
        raise ValueError(
            f"the reference grid's design has {X.shape[1]} columns, the model {len(names)}"
        )
    column_vars = [
        {w for part in n.split(":") for w in _names_in(part.split("[")[0], variables)}
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
    g = _reference_grid(results, at)
    names = list(_unwrap(results).model.exog_names)
    out = g.frame.copy()
    out["count"] = g.counts
    return pd.concat([out, pd.DataFrame(g.X, columns=names)], axis=1)


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
    X = np.asarray(model.exog, float)
    xtx = X.T @ X
    d = np.sqrt(np.maximum(np.diag(xtx), 1e-300))
    w, v = np.linalg.eigh(xtx / np.outer(d, d))
    null = v[:, w < tol * max(w.max(), 1.0)] / d[:, None]  # null vectors in beta's scale
    if null.shape[1] == 0:
        return np.ones(len(L), bool)
    null /= np.linalg.norm(null, axis=0)
    scale = np.maximum(np.abs(L).max(axis=1), 1e-300)
    return np.abs(L @ null).max(axis=1) / scale < 1e-6


# --------------------------------------------------------------------------------------------
# Tables of linear functions: shared by means and contrasts
# --------------------------------------------------------------------------------------------


def _pformat(p: float) -> str:
    if not np.isfinite(p):
        return "NaN"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


class _LinearTable:
    """Rows ``L beta`` with their inference; subclasses name the columns."""

    _est_name = "estimate"
    _model = None  # set by subclasses before __init__ (estimability needs the design)

    def __init__(self, labels, L, prov, *, by, families, level, notes, default_adjust):
        self.labels = labels.reset_index(drop=True)
        self.L = L
        self._prov = prov
        self.by = list(by)
        self.families = families
        self.level = float(level)
        self.notes = list(notes)
        self.adjust = default_adjust
        est, se, df = prov.estimate(np.nan_to_num(L))
        self._nonest = ~np.isfinite(L).all(axis=1)
        ok = ~self._nonest
        if ok.any():
            ok[ok] = _estimable(self._model, L[ok])
            self._nonest |= ~ok
        self.estimate = np.where(self._nonest, np.nan, est)
        self.se = np.where(self._nonest, np.nan, se)
        self.df = np.where(self._nonest, np.nan, df)
        if self._nonest.any():
            self.notes.append(
                f"{int(self._nonest.sum())} row(s) are not estimable (empty cells in a "
                "rank-deficient model): reported as NaN"
            )
        Lf = np.nan_to_num(L)
        self._cov = Lf @ prov.cov @ Lf.T
        s = np.sqrt(np.clip(np.diag(self._cov), 1e-300, None))
        corr = self._cov / np.outer(s, s)
        for fam in families:
            fam.corr = corr[np.ix_(fam.rows, fam.rows)]
            fam.rank = int(np.linalg.matrix_rank(Lf[fam.rows], tol=1e-8)) or 1
        self._adjusted = {}  # (adjust, level) -> AdjustedInference (mvt integrals are slow)

    @property
    def cov(self) -> np.ndarray:
        """Covariance matrix of the estimates (Kenward-Roger adjusted under KR)."""
        return self._cov

    def _inference(self, adjust_: str | None, level: float | None):
        level = self.level if level is None else float(level)
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), not {level}")
        t = self.estimate / self.se
        key = (self.adjust if adjust_ is None else adjust_, level)
        if key not in self._adjusted:
            self._adjusted[key] = adjust(t, self.df, self.families, key[0], level)
        return t, self._adjusted[key], level

    def _frame(self, adjust_, level, tests: bool, cis: bool) -> tuple[pd.DataFrame, list[str]]:
        t, out, level = self._inference(adjust_, level)
        cols = {self._est_name: self.estimate, "se": self.se, "df": self.df}
        if cis:
            cols["lower"] = self.estimate - out.crit * self.se
            cols["upper"] = self.estimate + out.crit * self.se
        if tests:
            cols["t"] = t
            cols["p_value"] = out.pvalues
        frame = pd.concat([self.labels, pd.DataFrame(cols)], axis=1)
        notes = list(self.notes)
        if self._prov.label:
            notes.append(f"Degrees-of-freedom method: {self._prov.label}")
        if cis:
            notes.append(f"Confidence level used: {level:g}")
        for n in out.notes:
            if (
                n.startswith("Note")
                or (tests and n.startswith("P"))
                or (cis and n.startswith("Conf"))
            ):
                notes.append(n)
        return frame, notes

    def _text(self, frame: pd.DataFrame, notes: list[str]) -> str:
        f = frame.copy()
        if "p_value" in f:
            f["p_value"] = [_pformat(p) for p in f["p_value"]]
        body = f.to_string(index=False, float_format=lambda x: f"{x:.6g}")
        return body + "\n\n" + "\n".join(notes)

    def __str__(self) -> str:
        frame = self.summary_frame()
        return self._text(frame, frame.attrs["notes"])

    def __repr__(self) -> str:
        return self.__str__()

    def summary(self, adjust: str | None = None, level: float | None = None):
        """A statsmodels ``Summary`` of the table and its notes."""
        from statsmodels.iolib.summary2 import Summary

        frame = self.summary_frame(adjust=adjust, level=level)
        smry = Summary()
        smry.add_df(frame, index=False, float_format="%.6g")
        smry.add_text("\n".join(frame.attrs["notes"]))
        return smry


class EmmResults(_LinearTable):
    """Estimated marginal means.  Created by :func:`emmeans`.

    Attributes
    ----------
    estimate, se, df : ndarray
        The means, their standard errors and degrees of freedom.
    L : ndarray
        The linear functions of the fixed effects (one row per mean).
    levels : DataFrame
        The spec (and ``by``) levels of each row.
    """

    _est_name = "emmean"

    def __init__(self, results, levels, L, prov, specs, by, level, notes):
        self._model = _unwrap(results).model
        self.specs = list(specs)
        groups = _by_groups(levels, by)
        fams = [Family(rows=r, n_means=len(r)) for r in groups]
        super().__init__(
            levels, L, prov, by=by, families=fams, level=level, notes=notes, default_adjust="none"
        )
        self.levels = self.labels

    def summary_frame(
        self, adjust: str | None = None, level: float | None = None, infer=(True, False)
    ) -> pd.DataFrame:
        """The means: spec (and ``by``) columns, ``emmean``, ``se``, ``df``, ``lower``,
        ``upper``; with ``infer=(True, True)`` also ``t`` and ``p_value`` (of mean = 0).

        ``adjust`` makes the intervals (and tests) simultaneous within each ``by`` group.
        The notes printed with the table are in ``frame.attrs["notes"]``.
        """
        frame, notes = self._frame(adjust, level, tests=infer[1], cis=infer[0])
        frame.attrs["notes"] = notes
        return frame

    def contrast(
        self,
        method: str | Mapping[str, Sequence[float]] = "pairwise",
        adjust: str | None = None,
        *,
        by: str | Sequence[str] | None | object = "same",
        ref: int | str = 0,
    ) -> EmmContrasts:
        """Contrasts of the means within each ``by`` group.

        Parameters
        ----------
        method : str or dict
            ``"pairwise"`` (``a - b`` for every pair, in level order), ``"revpairwise"``,
            ``"trt.vs.ctrl"`` (each level minus the level ``ref``), ``"consec"`` (each level
            minus the previous), ``"poly"`` (orthogonal polynomials, integer coefficients as
            emmeans), ``"eff"`` (each mean minus the average of the means), or
            ``{name: weights}`` with one weight per mean of a ``by`` group.
        adjust : str, optional
            One of :data:`~statsmodels_lmm_ext.multiplicity.ADJUSTMENTS`; default per method
            as emmeans (:data:`CONTRAST_METHODS`).
        by : str or list, optional
            Grouping for the contrasts; default the grouping of the means.
        ref : int or str
            Control level (position or name) for ``"trt.vs.ctrl"``.
        """
        by = self.by if isinstance(by, str) and by == "same" else _as_list(by)
        unknown = [b for b in by if b not in self.levels.columns]
        if unknown:
            raise ValueError(f"by= names {unknown} that are not columns of the means")
        keys = [c for c in self.levels.columns if c not in by]
        if isinstance(method, Mapping):
            name, default = "custom", "none"
        else:
            if method not in CONTRAST_METHODS:
                raise ValueError(
                    f"unknown contrast method {method!r}; choose one of "
                    f"{list(CONTRAST_METHODS)} or give {{name: weights}}"
                )
            name, default = method, CONTRAST_METHODS[method][1]
        adjust_ = check_adjust(default if adjust is None else adjust)
        blocks, labels, fams, start = [], [], [], 0
        for rows in _by_groups(self.levels, by):
            sub = self.levels.loc[rows, keys]
            names = [" ".join(str(v) for v in r) for r in sub.itertuples(index=False)]
            if isinstance(method, Mapping):
                K, clab = _custom_contrasts(method, len(rows))
            else:
                K, clab = CONTRAST_METHODS[method][0](names, ref=ref)
            Kfull = np.zeros((len(clab), len(self.levels)))
            Kfull[:, rows] = K
            blocks.append(Kfull)
            by_vals = self.levels.loc[rows[0], by].to_dict() if by else {}
            labels += [{"contrast": c, **by_vals} for c in clab]
            fams.append(
                Family(
                    rows=np.arange(start, start + len(clab)),
                    n_means=len(rows),
                    pairwise=name in ("pairwise", "revpairwise"),
                )
            )
            start += len(clab)
        K = np.vstack(blocks)
        L = K @ np.nan_to_num(self.L)
        missing = ~np.isfinite(self.L).all(axis=1)
        L[(K[:, missing] != 0).any(axis=1)] = np.nan  # involves a non-estimable mean
        labels = pd.DataFrame(labels, columns=["contrast", *by])
        notes = [n for n in self.notes if n.startswith(("Results are averaged", "NOTE"))]
        return EmmContrasts(self, labels, L, K, by, fams, notes, adjust_, name)

    def pairs(self, adjust: str | None = None, *, reverse: bool = False, by="same"):
        """All pairwise differences within each ``by`` group (Tukey-adjusted by default)."""
        return self.contrast("revpairwise" if reverse else "pairwise", adjust, by=by)

    def cld(self, adjust: str = "tukey", alpha: float = 0.05, sort: bool = True):
        """Compact letter display of the pairwise comparisons: see :meth:`EmmContrasts.cld`."""
        return self.pairs(adjust).cld(alpha=alpha, sort=sort)

    def plot(self, ax=None, adjust: str | None = None, level: float | None = None):
        """Means with confidence intervals (matplotlib, an optional dependency)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("plot() needs matplotlib: pip install matplotlib") from exc
        f = self.summary_frame(adjust=adjust, level=level)
        keys = list(self.levels.columns)
        ticks = [" ".join(str(v) for v in r) for r in f[keys].itertuples(index=False)]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(f) + 1.2))
        y = np.arange(len(f))[::-1]
        ax.errorbar(
            f["emmean"],
            y,
            xerr=[f["emmean"] - f["lower"], f["upper"] - f["emmean"]],
            fmt="o",
            capsize=3,
        )
        ax.set_yticks(y, ticks)
        ax.set_xlabel(f"emmean ({100 * (self.level if level is None else level):g}% CI)")
        return ax


class EmmContrasts(_LinearTable):
    """Contrasts of estimated marginal means.  Created by :meth:`EmmResults.contrast`."""

    def __init__(self, parent, labels, L, K, by, families, notes, adjust_, method):
        self._model = parent._model
        self.parent = parent
        self.coef = K  # contrast coefficients on the parent's means
        self.method = method
        super().__init__(
            labels,
            L,
            parent._prov,
            by=by,
            families=families,
            level=parent.level,
            notes=notes,
            default_adjust=adjust_,
        )

    def summary_frame(self, adjust: str | None = None, level: float | None = None):
        """``contrast``, the ``by`` columns, ``estimate``, ``se``, ``df``, ``t``, ``p_value``,
        ``lower``, ``upper``; notes in ``frame.attrs["notes"]``."""
        frame, notes = self._frame(adjust, level, tests=True, cis=True)
        cols = ["contrast", *self.by, "estimate", "se", "df", "t", "p_value", "lower", "upper"]
        frame = frame[cols]
        frame.attrs["notes"] = notes
        return frame

    @property
    def pvalues(self) -> np.ndarray:
        """p-values with this family's adjustment."""
        return self._inference(None, None)[1].pvalues

    def cld(self, alpha: float = 0.05, sort: bool = True, adjust: str | None = None):
        """Compact letter display (Piepho 2004): means sharing a letter are not significantly
        different at ``alpha`` with this table's adjustment.

        Returns the means frame (intervals with the same adjustment applied to the family of
        means, i.e. Sidak for Tukey, as emmeans) with a ``group`` column; sorted by the mean
        within each ``by`` group unless ``sort=False``.  Only for pairwise comparisons.
        """
        if self.method not in ("pairwise", "revpairwise"):
            raise ValueError("a compact letter display needs pairwise comparisons (pairs())")
        adjust_ = self.adjust if adjust is None else adjust
        p = self._inference(adjust_, None)[1].pvalues
        means = self.parent.summary_frame(adjust=adjust_)
        est = self.parent.estimate
        letters = pd.Series("", index=means.index)
        for fam, rows in zip(self.families, _by_groups(self.parent.levels, self.by), strict=True):
            k = len(rows)
            sig = np.zeros((k, k), bool)
            for r in fam.rows:  # each contrast row is +1 on one mean, -1 on another
                i, j = np.flatnonzero(self.coef[r][rows])
                sig[i, j] = sig[j, i] = p[r] < alpha
            order = np.argsort(est[rows], kind="stable")
            cols = _letters(sig[np.ix_(order, order)])
            for pos, idx in enumerate(order):
                letters[rows[idx]] = "".join(
                    _LETTERS[c] for c, col in enumerate(cols) if pos in col
                )
        means["group"] = letters
        if sort:
            key = means["emmean"]
            grp = pd.Series(0, index=means.index)
            for g, rows in enumerate(_by_groups(self.parent.levels, self.by)):
                grp[rows] = g
            means = means.assign(_g=grp, _k=key).sort_values(["_g", "_k"], kind="stable")
            means = means.drop(columns=["_g", "_k"])
        notes = means.attrs.get("notes", []) + [
            f"P value adjustment: {self._inference(adjust_, None)[1].method} "
            f"(significance level used: alpha = {alpha:g})",
            "Means sharing a letter are not shown to be different (which does not show them "
            "to be equal).",
        ]
        means.attrs["notes"] = notes
        return means


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _letters(sig: np.ndarray) -> list[set]:
    """Insert-absorb letters for means in ascending order (Piepho 2004), then sweep."""
    k = sig.shape[0]
    cols = [set(range(k))]
    for i, j in zip(*np.nonzero(np.triu(sig)), strict=True):
        new = []
        for c in cols:
            if i in c and j in c:
                new += [c - {i}, c - {j}]
            else:
                new.append(c)
        cols = [
            c
            for n, c in enumerate(new)
            if not any(c < d or (c == d and m < n) for m, d in enumerate(new) if m != n)
        ]
    # sweep: drop a mean from a letter if every non-significant partner shares another letter
    for c in cols:
        for i in sorted(c):
            others = [d for d in cols if d is not c and i in d]
            if all(any(j in d for d in others) for j in c if j != i) and len(c) > 1:
                covered = {j for d in others for j in d}
                if all(j in covered for j in c - {i}):
                    c.discard(i)
    cols = [c for c in cols if c]
    cols.sort(key=lambda c: (min(c), max(c)))
    if len(cols) > len(_LETTERS):
        raise ValueError("too many letters needed for a compact letter display")
    return cols


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


# --------------------------------------------------------------------------------------------
# Contrast methods (one registry): name -> (coefficients(names, ref) -> (K, labels), adjust)
# --------------------------------------------------------------------------------------------


def _pairwise(names, ref=0):
    pairs = list(itertools.combinations(range(len(names)), 2))
    return _diff_rows(len(names), pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _revpairwise(names, ref=0):
    k = len(names)
    pairs = [(j, i) for i in range(k) for j in range(i + 1, k)]
    pairs.sort(key=lambda p: (p[1], p[0]))
    return _diff_rows(k, pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _trt_vs_ctrl(names, ref=0):
    r = names.index(ref) if isinstance(ref, str) and ref in names else ref
    if isinstance(r, str) or not 0 <= int(r) < len(names):
        raise ValueError(f"ref={ref!r} is not one of the levels {names}")
    pairs = [(i, r) for i in range(len(names)) if i != r]
    return _diff_rows(len(names), pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _consec(names, ref=0):
    pairs = [(i + 1, i) for i in range(len(names) - 1)]
    return _diff_rows(len(names), pairs), [f"{names[i]} - {names[j]}" for i, j in pairs]


def _eff(names, ref=0):
    k = len(names)
    return np.eye(k) - 1.0 / k, [f"{n} effect" for n in names]


def _poly(names, ref=0):
    """Orthogonal polynomial contrasts scaled to integers (emmeans' ``poly.emmc``)."""
    k = len(names)
    x = np.arange(1, k + 1, dtype=float)
    V = np.vander(x - x.mean(), k, increasing=True)
    Q, _ = np.linalg.qr(V)
    out = []
    for j in range(1, k):
        con = Q[:, j] * np.sign(Q[-1, j])
        con = con / np.min(con[con > 0.01])
        z = np.max(np.abs(con - np.round(con)))
        while z > 0.05:
            con = con / z
            z = np.max(np.abs(con - np.round(con)))
        out.append(np.round(con))
    words = ["linear", "quadratic", "cubic", "quartic"]
    labels = [words[j] if j < 4 else f"degree {j + 1}" for j in range(k - 1)]
    return np.array(out), labels


def _diff_rows(k, pairs):
    K = np.zeros((len(pairs), k))
    for r, (i, j) in enumerate(pairs):
        K[r, i], K[r, j] = 1.0, -1.0
    return K


def _custom_contrasts(method: Mapping, k: int):
    K = np.array([np.asarray(w, float) for w in method.values()])
    if K.ndim != 2 or K.shape[1] != k:
        raise ValueError(f"each contrast needs {k} weights (one per mean of a by group)")
    return K, [str(n) for n in method]


#: contrast methods: name -> (coefficient builder, default adjustment as in emmeans)
CONTRAST_METHODS: dict[str, tuple[Callable, str]] = {
    "pairwise": (_pairwise, "tukey"),
    "revpairwise": (_revpairwise, "tukey"),
    "trt.vs.ctrl": (_trt_vs_ctrl, "dunnettx"),
    "consec": (_consec, "mvt"),
    "poly": (_poly, "none"),
    "eff": (_eff, "fdr"),
}


# --------------------------------------------------------------------------------------------
# emmeans()
# --------------------------------------------------------------------------------------------


def _parse_specs(specs, by) -> tuple[list[str], list[str]]:
    if isinstance(specs, str):
        s = specs.strip().lstrip("~").strip()
        if "|" in s:
            left, right = s.split("|", 1)
            specs = [v.strip() for v in re.split(r"[*+:]", left) if v.strip()]
            by = _as_list(by) + [v.strip() for v in re.split(r"[*+:]", right) if v.strip()]
        else:
            specs = [v.strip() for v in re.split(r"[*+:]", s) if v.strip()]
    specs, by = list(specs), _as_list(by)
    if not specs:
        raise ValueError("specs must name at least one variable")
    dup = set(specs) & set(by)
    if dup:
        raise ValueError(f"{sorted(dup)} appear in both specs and by")
    return specs, by


def emmeans(
    results,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    at: Mapping | None = None,
    weights: str = "equal",
    ddf: str | float | None = None,
    information: str | None = None,
    level: float = 0.95,
) -> EmmResults:
    """Estimated marginal means (least-squares means) of a fitted model.

    Parameters
    ----------
    results : fitted model
        Our MixedLM results, a plain ``smf.mixedlm`` result, or a statsmodels OLS/WLS/GLS
        result from a formula.
    specs : str or list of str
        The variables whose levels the means are for: ``"A"``, ``["A", "B"]``, or
        emmeans-style ``"A | B"`` / ``"~ A * B | C"``.
    by : str or list of str, optional
        Variables to group by: means (and their contrasts and adjustments) per ``by`` level.
    at : dict, optional
        Values for covariates (a number or a list: several values become a grid dimension)
        or a subset of a factor's levels.  Covariates default to their means.
    weights : {"equal", "proportional", "outer", "cells", "flat"}
        How grid cells are averaged over the factors not in ``specs``/``by``: equally
        (default, the lsmeans of SAS), in proportion to the observed marginal frequencies
        of the averaged-over factors, to the product of their one-way frequencies, to the
        cell counts, or equally over non-empty cells.
    ddf : str or float, optional
        Degrees of freedom: a method of :data:`~statsmodels_lmm_ext.DDF_METHODS` (default
        ``"kenward-roger"`` for REML fits, whose SEs then come from the adjusted covariance,
        and ``"satterthwaite"`` for ML fits; residual df for linear regressions), or a number.
    information : {"observed", "expected"}, optional
        Information matrix for Satterthwaite/Kenward-Roger (see :func:`~statsmodels_lmm_ext.
        t_test`).
    level : float
        Confidence level.

    Returns
    -------
    EmmResults

    Notes
    -----
    For grid rows ``x_g'`` (design rows of the reference grid) and weights ``w`` over the
    cells being averaged, a mean is ``l' beta`` with ``l = sum_g w_g x_g``; its standard error
    is ``sqrt(l' C l)`` with ``C`` the (Kenward-Roger adjusted) covariance of ``beta``.
    A mean whose ``l`` is not in the row space of ``X`` is not estimable and is NaN.
    """
    specs, by = _parse_specs(specs, by)
    prov = _provider(results, ddf, information)
    g = _reference_grid(results, at)
    keys = specs + by
    unknown = [v for v in keys if v not in g.levels]
    if unknown:
        raise ValueError(
            f"{unknown} are not factors of the model (nor covariates given several at= values); "
            f"grid variables: {list(g.levels)}"
        )
    means, W = _cell_weights(g, keys, weights)
    L = W @ g.X
    other = [v for v in g.factors if v not in keys]
    notes = []
    if other:
        notes.append(f"Results are averaged over the levels of: {', '.join(other)}")
        if any(c & set(keys) and c & set(other) for c in g.column_vars):
            notes.append("NOTE: Results may be misleading due to involvement in interactions")
    return EmmResults(results, means, L, prov, specs, by, level, notes)
