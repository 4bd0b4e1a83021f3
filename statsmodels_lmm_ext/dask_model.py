"""Mixed models fitted from a Dask DataFrame: one pass over the partitions, no rows kept.

``lmm.mixedlm(formula, data=ddf, groups="subject", cov_struct=...)`` (and
:meth:`MixedLM.from_formula`) with a Dask DataFrame returns a :class:`DaskMixedLM`: the data
are reduced to the visit-pattern sufficient statistics of the engine
(:mod:`._engine.reduced`, :mod:`._dask_pass`); the optimiser, Satterthwaite, Kenward-Roger,
Type III tests and emmeans then work on them without touching the rows again.  What needs
the rows (BLUPs, fitted values, residuals, simulation, refits, the bootstrap) raises an error
saying so.  See docs/dask.rst.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.base.model import LikelihoodModel
from statsmodels.regression import mixed_linear_model as sm_mlm

from ._dask_pass import (
    DesignSpec,
    SplitGroupsError,
    _in_c,
    global_levels,
    grid_columns,
    is_dask_frame,
    reduce_partitions,
)
from ._engine.reduced import ReducedEngine
from ._formula import check_columns, formula_names, names_in, namespace_for
from ._residual_terms import compose
from ._validation import check_rank, check_response
from .model import DATA_BACKENDS, MixedLM
from .model_formula import _NO_RE, MISSING, check_cov_struct
from .results import MixedLMResults

__all__ = ["DaskMixedLM", "DaskMixedLMResults"]


def _needs_rows(what: str):
    raise NotImplementedError(
        f"{what} needs the data's rows, which a model fitted from a Dask DataFrame does not "
        "keep (it holds sufficient statistics only); fit the model in memory (a pandas "
        "DataFrame, e.g. ddf.compute() or a subset of the subjects) for it"
    )


class DaskMixedLMResults(MixedLMResults):
    """Results of a :class:`DaskMixedLM`: estimates, log-likelihood, summary, tests,
    Satterthwaite and Kenward-Roger inference, anova and emmeans as in memory; what needs the
    rows (random effects, fitted values, residuals, simulation, refits, bootstrap) raises."""

    @property
    def random_effects(self):
        _needs_rows("random_effects (BLUPs)")

    @property
    def random_effects_cov(self):
        _needs_rows("random_effects_cov")

    @property
    def fittedvalues(self):
        _needs_rows("fittedvalues")

    @property
    def resid(self):
        _needs_rows("resid")

    def simulate(self, *args, **kwargs):
        _needs_rows("simulate")

    def refit(self, *args, **kwargs):
        _needs_rows("refit")

    def predict(self, exog=None, transform=True, *args, conditional: bool = False, **kwargs):
        """Marginal predictions ``X beta`` of new data (``exog`` a DataFrame); the rows of
        the fitted data and conditional predictions are not available."""
        if exog is None:
            _needs_rows("predict() without new data")
        if conditional:
            _needs_rows("predict(conditional=True)")
        return super().predict(exog, transform, *args, **kwargs)


class DaskMixedLM(MixedLM):
    """A :class:`MixedLM` built from a Dask DataFrame's sufficient statistics.

    Built by :meth:`MixedLM.from_formula` / :func:`mixedlm` when ``data`` is a Dask
    DataFrame (not directly).  ``nobs`` and ``n_groups`` are those of the data; ``exog`` holds
    only rows with distinct design rows (enough for Type III hypotheses and estimability) and
    ``endog`` is a placeholder of NaN.
    """

    _results_class = DaskMixedLMResults
    #: what needs the rows (model comparisons, BLUPs, simulation) checks this
    keeps_rows = False

    def __init__(self, engine: ReducedEngine, summary: dict, spec: DesignSpec, cov_struct,
                 position_labels: dict):  # fmt: skip
        ydi, xdi, zdi = spec.designs()
        sample, stats = summary["sample"], summary["stats"]
        self.position_labels = position_labels
        self.cov_struct = cov_struct
        self.use_sqrt, self.reml = True, True
        self.fe_pen = self.re_pen = self.cov_pen = None
        self._freepat = None
        self._engine_mode = "pattern"
        self._engine = engine
        self.exog_vc = sm_mlm.VCSpec([], [], [])
        self.k_vc = 0
        yname = ydi.column_names[0]
        endog = pd.Series(np.full(len(sample), np.nan), name=yname)
        exog = pd.DataFrame(summary["X"], columns=xdi.column_names)
        exog_re = None
        if spec.re_formula not in (None, "0"):
            names = [c.replace("Intercept", spec.group) for c in zdi.column_names]  # statsmodels
            exog_re = pd.DataFrame(np.zeros((len(sample), len(names))), columns=names)
        LikelihoodModel.__init__(self, endog, exog, groups=np.zeros(len(sample)),
                                 exog_re=exog_re, missing="none", formula=spec.formula,
                                 model_spec=xdi)  # fmt: skip
        self._init_keys.extend(["use_sqrt", "exog_vc", "cov_struct"])
        self.k_fe = self.exog.shape[1]
        self._set_random_effects(exog_re)
        if spec.re_formula == "0":
            self._drop_random_effects()
        elif spec.re_formula is None:
            self.data.exog_re_names = [spec.group]
            self.data.exog_re_names_full = [f"{spec.group} Var"]
            self.data.param_names = list(self.exog_names) + [f"{spec.group} Var"]
        self._engine = engine
        self.formula = spec.formula
        self.data.frame = sample
        self.data.grid_frame = _grid_frame(summary["cells"], spec)
        # the representative group of each pattern stands for its groups in the checks
        self.exog_re = engine.Z
        self.positions = engine.positions
        self._group_codes = engine.groups
        self.group_labels = None
        self.n_groups = stats.n_groups
        self.nobs = self.n_totobs = stats.nobs
        self.endog = np.broadcast_to(np.nan, (stats.nobs,))
        self.position_names = list(spec.position_columns)
        self._group_column = spec.group
        self._re_formula = spec.re_formula if spec.re_formula != "0" else None
        self._response_var = _response_variance(summary["ysum"], stats)
        self._check_reduced(yname)

    def _check_reduced(self, yname: str) -> None:
        """The checks of :meth:`MixedLM._check_data` on the statistics and representatives."""
        cond = self._engine.cond
        N, p = self.nobs, self.k_fe
        qr = (None, cond.R, cond.piv, cond.d)
        check_rank(np.broadcast_to(0.0, (N, p)), self.exog_names, qr)
        check_response(cond, np.array([0.0, 1.0]), yname)
        self.cov_struct.check_positions(self.positions, self.position_names)
        self.cov_struct.check_design(self._engine.visit, self._group_codes,
                                     next(iter(self.position_labels.values()), None))  # fmt: skip

    @property
    def engine(self) -> ReducedEngine:
        return self._engine

    def _response_variance(self) -> float:
        return self._response_var

    def _get_init_kwds(self) -> dict:
        _needs_rows("cloning the model (refits, fit_regularized)")

    @property
    def row_indices(self):
        _needs_rows("row_indices")

    def fit_regularized(self, *args, **kwargs):
        _needs_rows("fit_regularized")


def _grid_frame(cells: pd.DataFrame, spec: DesignSpec) -> pd.DataFrame:
    """Cells of the formula's categorical variables with covariate means and counts: the
    reference grid's weighted stand-in for the data (``attrs["weights"]`` names the counts)."""
    out = cells.copy()
    for c in spec.grid_covariates:
        out[c] = out[c] / out["_n"]
    for c in spec.grid_factors:
        out[c] = pd.Categorical(out[c], categories=spec.levels[c])
    out.attrs["weights"] = "_n"
    return out


def _response_variance(ysum: float, stats) -> float:
    """Variance of the response (start values given by the user need a scale), from its sum
    and its sum of squares (the R factor's last column)."""
    S = stats.rfactor
    n = max(stats.nobs, 1)
    return float(S[:, -1] @ S[:, -1]) / n - (ysum / n) ** 2


def _refuse(kwargs: dict, vc_formula, subset, groups) -> None:
    if vc_formula:
        raise NotImplementedError(
            "vc_formula (variance components) is not supported with a Dask DataFrame; use "
            "re_formula or fit in memory"
        )
    if subset is not None:
        raise NotImplementedError("subset= is not supported with a Dask DataFrame; filter it "
                                  "first (ddf[ddf.x > 0])")  # fmt: skip
    if not isinstance(groups, str):
        raise ValueError(
            "with a Dask DataFrame groups= must name the column of group labels (arrays of "
            f"labels cannot be aligned with partitions); got {type(groups).__name__}"
        )
    for key in ("exog_vc", "positions", "use_sparse"):
        if kwargs.pop(key, None) not in (None, False):
            raise NotImplementedError(f"{key}= is not supported with a Dask DataFrame")


def _re_kind(re_formula, meta, position_columns) -> str | None:
    """``None`` (random intercept), ``"0"`` (none) or the formula; refuses random effects on
    continuous covariates (other than the structure's positions)."""
    if re_formula is None:
        return None
    if re_formula.replace(" ", "") in _NO_RE:
        return "0"
    continuous = [
        v for v in names_in(re_formula, meta.columns)
        if v not in position_columns and pd.api.types.is_numeric_dtype(meta[v].dtype)
        and not pd.api.types.is_bool_dtype(meta[v].dtype) and not _in_c(v, [re_formula])
    ]  # fmt: skip
    if continuous:
        raise NotImplementedError(
            f"re_formula {re_formula!r} has a random effect on the continuous covariate(s) "
            f"{continuous}: every subject would be its own visit pattern, and the likelihood "
            "would need a pass over the rows at every evaluation.  With a Dask DataFrame use "
            "random effects on categorical factors or on the residual structure's time column "
            f"({list(position_columns) or 'none given'}), or fit this model in memory"
        )
    return re_formula


def _spec(formula, data, re_formula, cov_struct, group, missing, namespace) -> DesignSpec:
    meta = data._meta
    pos_cols = list(cov_struct.position_columns)
    needed = {"cov_struct": pos_cols, "groups": [group]}
    formulas = {"formula": formula, "re_formula": re_formula}
    for where, f in formulas.items():
        if isinstance(f, str):
            needed[where] = sorted(formula_names(f))
    check_columns(meta, needed, namespace)
    names = {n for v in needed.values() for n in v}
    used = sorted(n for n in names if n in meta.columns)
    visit = [c for c in pos_cols if not pd.api.types.is_numeric_dtype(meta[c].dtype)]
    if visit and not hasattr(type(cov_struct), "n_visits"):
        raise ValueError(f"position column {visit[0]!r} for {type(cov_struct).__name__} must "
                         f"be numeric; it has dtype {meta[visit[0]].dtype}")  # fmt: skip
    re_kind = _re_kind(re_formula, meta, pos_cols)
    features = [c for c in used if c != group]
    levels = global_levels(data, features, [formula, re_formula], visit)
    factors, covariates = grid_columns(formula, meta, levels)
    return DesignSpec(formula=formula, re_formula=re_kind, group=group, columns=used,
                      levels=levels, position_columns=pos_cols, visit_columns=visit,
                      eval_env=namespace_for(names, meta.columns, namespace), missing=missing,
                      grid_factors=factors, grid_covariates=covariates)  # fmt: skip


def from_dask(formula, data, re_formula, vc_formula, subset, missing, kwargs, namespace):
    """:meth:`MixedLM.from_formula` for a Dask DataFrame (see the module docstring)."""
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, not {missing!r}")
    groups = kwargs.pop("groups", None)
    _refuse(kwargs, vc_formula, subset, groups)
    cov_struct = check_cov_struct(kwargs.pop("cov_struct", None))
    composed = compose(cov_struct, kwargs.pop("variance", None), kwargs.pop("weights", None))
    if composed is not cov_struct:
        raise NotImplementedError(
            "group=, variance= and weights= are not supported with a Dask DataFrame: they make "
            "the residual covariance depend on columns the visit patterns do not carry"
        )
    engine_opt = kwargs.pop("engine", "auto")
    unknown = [k for k, v in kwargs.items() if v is not None]
    if unknown or engine_opt not in ("auto", "pattern"):
        raise TypeError(f"unsupported keyword(s) for a Dask DataFrame: {unknown or ['engine']}")
    spec = _spec(formula, data, re_formula, cov_struct, groups, missing, namespace)
    try:
        summary = reduce_partitions(data, spec)
    except SplitGroupsError as exc:
        warnings.warn(
            f"{exc}: shuffling the data by {groups!r} and reading it again (shuffle it "
            f"yourself, ddf.shuffle(on={groups!r}), or set_index({groups!r}), to save a pass)",
            UserWarning,
            stacklevel=4,
        )
        summary = reduce_partitions(data.shuffle(on=groups), spec)
    k_re = {None: 1, "0": 0}.get(spec.re_formula)
    if k_re is None:
        k_re = len(spec.designs()[2].column_names)
    engine = ReducedEngine(summary["stats"], cov_struct, k_re)
    labels = {c: list(spec.levels[c]) for c in spec.visit_columns}
    for j, c in enumerate(spec.position_columns):
        if c in labels:
            seen = set(np.unique(engine.positions[:, j]).astype(int))
            unused = [lv for i, lv in enumerate(labels[c]) if i not in seen]
            if unused:
                raise ValueError(
                    f"visit column {c!r}: level(s) {unused} occur in no row (no subject has "
                    "that visit); remove them (e.g. cat.remove_unused_categories())"
                )
    return DaskMixedLM(engine, summary, spec, cov_struct, labels)


DATA_BACKENDS.append((is_dask_frame, from_dask))
