"""Linear mixed models with residual (R-side) correlation structures.

:class:`MixedLM` subclasses :class:`statsmodels.regression.mixed_linear_model.MixedLM`: the
random-effects (G-side) specification, the formula interface and the results are those of
statsmodels; a ``cov_struct`` adds a within-group residual correlation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.linalg
from statsmodels.base.model import LikelihoodModel
from statsmodels.regression import mixed_linear_model as sm_mlm
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ._engine import Engine, EngineError
from ._formula import check_columns, formula_names
from ._threads import blas_threads
from .covstruct import CovStruct, Independence
from .optimize import GTOL, METHODS, gradient_scale, minimize_chain
from .params import CovParams
from .results import MixedLMResults, MixedLMResultsWrapper

__all__ = ["MixedLM", "mixedlm"]

_MISSING = ("drop", "raise", "none")


def _pad_vc(exog_vc, row_indices, group_labels, nobs: int) -> list[np.ndarray]:
    """Variance-component designs (statsmodels VCSpec, per group) as per-row arrays,
    zero-padded to a common width."""
    out = []
    for mats in exog_vc.mats:
        width = max((m.shape[1] for m in mats), default=0)
        Z = np.zeros((nobs, width))
        for gi, g in enumerate(group_labels):
            m = mats[gi]
            m = m.toarray() if hasattr(m, "toarray") else np.asarray(m)
            Z[row_indices[g], : m.shape[1]] = m
        out.append(Z)
    return out


def _check_cov_struct(cov_struct) -> CovStruct:
    if cov_struct is None:
        return Independence()
    if not isinstance(cov_struct, CovStruct):
        raise TypeError(
            f"cov_struct must be a CovStruct instance (e.g. AR1(time='visit')), "
            f"not {type(cov_struct).__name__}"
        )
    return cov_struct


def _handle_missing(data: pd.DataFrame, groups, used, missing: str, group_name):
    """Drop the rows with a missing value in a used column (``missing="drop"``) or raise an
    error naming the columns and the first row."""
    na = data[used].isna().to_numpy() | pd.isna(groups)[:, None]
    if not na.any():
        return data, groups
    if missing == "drop":
        keep = ~na.any(axis=1)
        return data.loc[keep], groups[keep]
    cols = [c for c, bad in zip(used, na.any(axis=0), strict=True) if bad]
    if pd.isna(groups).any():
        cols.append(f"groups ({group_name or 'array'})")
    first = int(np.flatnonzero(na.any(axis=1))[0])
    raise ValueError(
        f"missing values in column(s) {', '.join(repr(c) for c in cols)} "
        f"(first at row {data.index[first]!r}); pass missing='drop' to drop those rows"
    )


class MixedLM(sm_mlm.MixedLM):
    """Linear mixed model with random effects and a residual correlation structure.

    For group ``i``::

        y_i = X_i beta + Z_i b_i + e_i,  b_i ~ N(0, G),  e_i ~ N(0, sigma^2 C_i(rho))

    ``G`` is the statsmodels random-effects covariance (``exog_re`` / ``re_formula`` and
    variance components ``exog_vc`` / ``vc_formula``); ``C_i`` comes from ``cov_struct``.

    Parameters
    ----------
    endog : array_like (N,)
    exog : array_like (N, p)
        Fixed-effects design; must have full column rank.
    groups : array_like (N,)
        Group labels.
    exog_re : array_like (N, q), optional
        Random-effects design.  ``None`` with no ``exog_vc`` gives a random intercept (as in
        statsmodels); an array with zero columns gives no random effects (a GLS model).
    exog_vc : VCSpec, optional
        Variance components, as in statsmodels.
    cov_struct : CovStruct, optional
        Residual correlation (default :class:`~statsmodels_lmm_ext.Independence`).
    positions : array_like (N,) or (N, d), optional
        Times or coordinates for ``cov_struct`` (the formula interface takes them from the
        columns the structure names).
    missing : {"none", "drop", "raise"}
        Array interface: ``"drop"`` drops rows with a NaN anywhere, otherwise NaNs raise.
    engine : {"auto", "pattern", "group"}
        How groups are batched (user guide, "How the engine batches groups"); ``"auto"``
        chooses.

    Notes
    -----
    The likelihood is profiled over ``beta`` and ``sigma^2`` and maximised over
    ``Psi = G / sigma^2`` (through its Cholesky factor), the variance components and the
    correlation parameters; REML and ML as in Harville (1977).  See the user guide
    (docs/residual_structures.rst).

    References
    ----------
    Pinheiro, J. C. and Bates, D. M. (2000). *Mixed-Effects Models in S and S-PLUS*. Springer.
    """

    def __init__(
        self,
        endog,
        exog,
        groups,
        exog_re=None,
        exog_vc=None,
        cov_struct: CovStruct | None = None,
        positions=None,
        use_sqrt: bool = True,
        missing: str = "none",
        engine: str = "auto",
        **kwargs,
    ):
        for k in kwargs:
            if k not in ("missing_idx", "formula", "model_spec", "position_names"):
                raise ValueError(f"argument {k} not permitted for MixedLM initialization")
        position_names = kwargs.pop("position_names", None)
        self.cov_struct = _check_cov_struct(cov_struct)
        if missing not in _MISSING:
            raise ValueError(f"missing must be one of {_MISSING}, not {missing!r}")
        self.use_sqrt = use_sqrt
        self.reml = True
        self.fe_pen = self.re_pen = self.cov_pen = None
        self._freepat = None
        self._engine_mode = engine
        self._engine = None
        if exog_vc is None:
            exog_vc = sm_mlm.VCSpec([], [], [])
        elif isinstance(exog_vc, dict):
            exog_vc = sm_mlm._convert_vc(exog_vc)
        self.exog_vc = exog_vc
        self.k_vc = len(exog_vc.names)
        pos = self._position_array(positions, len(endog))
        if missing == "drop" and "missing_idx" not in kwargs:
            endog, exog, groups, exog_re, pos = self._drop_missing_arrays(
                endog, exog, groups, exog_re, pos
            )
            missing = "none"
        self.positions = pos
        self.position_names = list(position_names or self.cov_struct.position_columns)
        if exog is not None and np.ndim(exog) == 1:
            exog = np.asarray(exog)[:, None]
        if exog_re is not None and np.ndim(exog_re) == 1:
            exog_re = np.asarray(exog_re)[:, None]
        LikelihoodModel.__init__(
            self, endog, exog, groups=groups, exog_re=exog_re, missing=missing, **kwargs
        )
        self._init_keys.extend(["use_sqrt", "exog_vc", "cov_struct", "positions", "engine"])
        self.k_fe = self.exog.shape[1]
        self._set_random_effects(exog_re)
        self._check_finite()
        codes, labels = pd.factorize(np.asarray(self.groups), sort=True)
        self._group_codes = codes
        self.group_labels = list(labels)
        self.n_groups = len(labels)
        self.nobs = len(self.endog)
        self.n_totobs = self.nobs
        if self.exog_names is None:
            self.exog_names = [f"FE{k + 1:d}" for k in range(self.k_fe)]
        self._check_rank()
        self.cov_struct.check_positions(self.positions, self.position_names)
        self._check_duplicate_positions()

    def _get_init_kwds(self) -> dict:
        """Keywords that rebuild this model (statsmodels' cloning protocol); ``engine`` is the
        batching mode given to the constructor, not the :class:`Engine` object."""
        kwds = super()._get_init_kwds()
        kwds["engine"] = self._engine_mode
        return kwds

    def _position_array(self, positions, n: int) -> np.ndarray:
        pos = np.zeros((n, 0)) if positions is None else np.asarray(positions, dtype=float)
        if pos.ndim == 1:
            pos = pos[:, None]
        need = len(self.cov_struct.position_columns)
        if pos.shape[1] != need:
            raise ValueError(
                f"{self.cov_struct!r} needs {need} position column(s); got {pos.shape[1]}"
            )
        return pos

    def _set_random_effects(self, exog_re) -> None:
        """``exog_re`` and the random-effects names, as statsmodels sets them."""
        if exog_re is None and self.k_vc == 0:
            self.exog_re = np.ones((len(self.endog), 1))
            self.data.exog_re = self.exog_re
            names = ["Group Var"]
            self.data.param_names = self.exog_names + names
            self.data.exog_re_names = names
            self.data.exog_re_names_full = names
        elif exog_re is not None:
            self.data.exog_re = exog_re
            self.exog_re = np.asarray(exog_re, dtype=float).reshape(len(self.endog), -1)
        else:
            self.exog_re = np.zeros((len(self.endog), 0))
        self.k_re = self.exog_re.shape[1]
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        if not self.data._param_names:
            pn, ren, renf = self._make_param_names(exog_re)
            self.data.param_names = pn
            self.data.exog_re_names = ren
            self.data.exog_re_names_full = renf
        self.k_params = self.k_fe + self.k_re2 + self.k_vc

    # -------------------------------------------------------------- checks
    @staticmethod
    def _drop_missing_arrays(endog, exog, groups, exog_re, pos):
        arrays = [np.asarray(endog, float), np.asarray(exog, float), pos]
        if exog_re is not None:
            arrays.append(np.asarray(exog_re, float))
        keep = np.ones(len(arrays[0]), bool)
        for a in arrays:
            keep &= np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        keep &= pd.notna(np.asarray(groups))

        def sub(a):
            return None if a is None else (a[keep] if not hasattr(a, "iloc") else a.iloc[keep])

        return sub(endog), sub(exog), sub(np.asarray(groups)), sub(exog_re), pos[keep]

    def _check_finite(self) -> None:
        parts = {
            "endog": self.endog[:, None],
            "exog": self.exog,
            "exog_re": self.exog_re,
            "positions": self.positions,
        }
        for name, a in parts.items():
            bad = ~np.isfinite(a)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                col = name
                if name == "exog":
                    col = f"exog column {self.exog_names[j]!r}"
                elif name == "positions" and self.position_names:
                    col = f"position column {self.position_names[j]!r}"
                raise ValueError(
                    f"missing or non-finite value in {col} (row {i}); "
                    "use missing='drop' to drop such rows"
                )
        if pd.isna(np.asarray(self.groups)).any():
            raise ValueError("missing value in groups; use missing='drop' to drop such rows")

    def _check_rank(self) -> None:
        X = self.exog
        if X.shape[1] == 0:
            return
        scale = np.sqrt((X**2).sum(0))
        scale[scale == 0] = 1.0
        R, piv = scipy.linalg.qr(X / scale, mode="r", pivoting=True)
        d = np.abs(np.diag(R))
        tol = d.max() * max(X.shape) * np.finfo(float).eps * 10
        rank = int((d > tol).sum())
        if rank < X.shape[1] or X.shape[0] <= X.shape[1]:
            aliased = [self.exog_names[j] for j in piv[rank:]]
            raise ValueError(
                f"the fixed-effects design is rank deficient (rank {rank} < {X.shape[1]} "
                f"columns): {', '.join(repr(a) for a in aliased)} "
                "is a linear combination of the other columns; drop or recode it"
            )

    def _check_duplicate_positions(self) -> None:
        if not self.cov_struct.unique_positions:
            return
        key = np.column_stack([self._group_codes, self.positions])
        o = np.lexsort(key.T[::-1])
        ks = key[o]
        dup = np.flatnonzero((ks[1:] == ks[:-1]).all(axis=1))
        if dup.size:
            g = self.group_labels[int(ks[dup[0], 0])]
            v = ks[dup[0], 1:]
            vs = v[0] if len(v) == 1 else tuple(v)
            raise ValueError(
                f"group {g!r} has two rows at the same position "
                f"{self.position_names[0] if self.position_names else 'time'}={vs:g}; "
                f"{type(self.cov_struct).__name__} needs distinct time points within a group"
            )

    # ------------------------------------------------------------ formulas
    @classmethod
    def from_formula(
        cls,
        formula,
        data,
        re_formula=None,
        vc_formula=None,
        subset=None,
        use_sparse=False,
        missing="none",
        *args,
        **kwargs,
    ):
        """Create a model from a formula and a DataFrame.

        As :meth:`statsmodels.regression.mixed_linear_model.MixedLM.from_formula`, with

        Parameters
        ----------
        re_formula : str, optional
            ``"0"`` gives no random effects (a GLS model with the residual structure only);
            ``None`` a random intercept unless ``vc_formula`` is given.
        cov_struct : CovStruct, optional
            Residual correlation; the columns it names (``time``/``coords``) are taken from
            ``data``.
        missing : {"none", "drop", "raise"}
            ``"drop"`` drops the rows with a missing value in any column the model uses
            (response, covariates, groups, positions); ``"raise"`` and ``"none"`` raise an error
            naming the column.
        groups : str or array_like
            Group labels; ``None`` makes the whole data set one group (a spatial field).
        """
        if missing not in _MISSING:
            raise ValueError(f"missing must be one of {_MISSING}, not {missing!r}")
        if subset is not None:
            data = data.loc[subset]
        cov_struct = _check_cov_struct(kwargs.get("cov_struct"))
        groups = kwargs.pop("groups", None)
        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(data)
        if groups is None:
            groups = np.zeros(len(data), dtype=int)
            group_name = "Group"
        elif isinstance(groups, str):
            check_columns(data, {"groups": [groups]})
            group_name = groups
            groups = data[groups].to_numpy()
        else:
            group_name = None
            groups = np.asarray(groups)
            if len(groups) != len(data):
                raise ValueError(f"groups has {len(groups)} values but data has {len(data)} rows")
        pos_cols = cov_struct.position_columns
        needed = {"formula": sorted(formula_names(formula)), "cov_struct": pos_cols}
        if re_formula is not None:
            needed["re_formula"] = sorted(formula_names(re_formula))
        for k, f in (vc_formula or {}).items():
            needed[f"vc_formula[{k!r}]"] = sorted(formula_names(f))
        check_columns(data, needed)
        used = sorted({c for names in needed.values() for c in names if c in data.columns})
        data, groups = _handle_missing(data, groups, used, missing, group_name)
        if not data.index.is_unique:
            data = data.reset_index(drop=True)
        for c in pos_cols:
            if not pd.api.types.is_numeric_dtype(data[c]):
                raise ValueError(
                    f"position column {c!r} for {type(cov_struct).__name__} must be numeric; "
                    f"it has dtype {data[c].dtype}"
                )
        kwargs["positions"] = data[pos_cols].to_numpy(dtype=float) if pos_cols else None
        kwargs["position_names"] = pos_cols
        no_re = re_formula is not None and re_formula.replace(" ", "") in ("0", "-1", "0+1")
        mod = super().from_formula(
            formula,
            data,
            re_formula=None if no_re else re_formula,
            vc_formula=vc_formula,
            use_sparse=use_sparse,
            missing="none",
            groups=group_name if group_name in data.columns else groups,
            *args,  # noqa: B026
            **kwargs,
        )
        if no_re:
            mod._drop_random_effects()
        elif re_formula is None and vc_formula is None:
            name = group_name or "Group"
            mod.data.exog_re_names = [name]
            mod.data.exog_re_names_full = [f"{name} Var"]
            mod.data.param_names = list(mod.exog_names) + [f"{name} Var"]
        return mod

    def _drop_random_effects(self) -> None:
        """Turn the model into one without G-side random effects (``re_formula="0"``)."""
        if self.k_vc:
            return
        self.exog_re = np.zeros((len(self.endog), 0))
        self.data.exog_re = self.exog_re
        self.k_re = self.k_re2 = 0
        self.k_params = self.k_fe
        self.data.param_names = list(self.exog_names)
        self.data.exog_re_names = []
        self.data.exog_re_names_full = []
        self._engine = None

    # ------------------------------------------------- statsmodels compatibility
    @property
    def row_indices(self) -> dict:
        o = np.argsort(self._group_codes, kind="stable")
        bounds = np.cumsum(np.bincount(self._group_codes, minlength=self.n_groups))
        parts = np.split(o, bounds[:-1])
        return dict(zip(self.group_labels, [list(p) for p in parts], strict=True))

    def group_list(self, array):
        if array is None:
            return None
        ri = self.row_indices
        return [np.asarray(array)[ri[g]] for g in self.group_labels]

    @property
    def endog_li(self):
        return self.group_list(self.endog)

    @property
    def exog_li(self):
        return self.group_list(self.exog)

    @property
    def exog_re_li(self):
        return self.group_list(self.exog_re)

    def _set_param_names(self) -> None:
        """Names of the packed parameters: fixed effects, then :class:`CovParams`' names."""
        self.data.param_names = list(self.exog_names) + self.cov_params_spec.packed_names()

    # ------------------------------------------------------------- engine
    def _vc_padded(self) -> list[np.ndarray]:
        if not self.k_vc:
            return []
        return _pad_vc(self.exog_vc, self.row_indices, self.group_labels, self.nobs)

    @property
    def engine(self) -> Engine:
        """The batched likelihood engine (built on first use)."""
        if self._engine is None:
            self._engine = Engine(
                self.endog,
                self.exog,
                self._group_codes,
                self.exog_re,
                self._vc_padded(),
                self.positions,
                self.cov_struct,
                mode=self._engine_mode,
            )
        return self._engine

    @property
    def cov_params_spec(self) -> CovParams:
        """The :class:`~statsmodels_lmm_ext.params.CovParams` of this model."""
        names = list(self.data.exog_re_names_full) if self.k_re else []
        return CovParams(
            self.k_re,
            self.k_vc,
            self.cov_struct,
            self.engine.max_group_size,
            re_names=names,
            vc_names=list(self.exog_vc.names),
        )

    def loglike(self, params, profile_fe=True):
        """Profiled (REML or ML) log-likelihood at covariance parameters.

        Parameters
        ----------
        params : array_like
            Packed parameters ``(Psi lower triangle, vc / scale, correlation)`` — or the full
            packed vector from a results object (fixed effects first), which is recognised by its
            length.  ``beta`` and ``sigma^2`` are profiled out either way.
        """
        spec = self.cov_params_spec
        params = np.asarray(params, dtype=float)
        if len(params) == self.k_fe + spec.k:
            params = params[self.k_fe :]
        psi, vc, rho = spec.unpack(params)
        return -0.5 * self.engine.profile_one(spec.lin(psi, vc), rho, self.reml)["dev"]

    def score(self, params, profile_fe=True):
        """Not available: the fit uses the engine's analytic gradient."""
        raise NotImplementedError(
            "score is not provided on the packed scale; the fit uses the engine's analytic "
            "gradient (MixedLM.engine.profile(..., gradient=True))"
        )

    def hessian(self, params):
        """Not available: see ``results.cov_params()`` and ``variance_model(results)``."""
        raise NotImplementedError(
            "use the results' cov_params() or statsmodels_lmm_ext.variance_model(results)"
        )

    def fit_regularized(self, *args, **kwargs):
        """Not available with residual structures."""
        raise NotImplementedError("fit_regularized is not available with residual structures")

    def deviance_function(self, reml: bool):
        """``f(u) -> deviance`` and ``fg(u) -> (deviance, gradient)`` in the optimiser
        coordinates of :attr:`cov_params_spec` (``inf`` where the covariance is not positive
        definite), and the saddle detector ``saddles(u) -> mask``
        (:mod:`statsmodels_lmm_ext.optimize`)."""
        eng, spec = self.engine, self.cov_params_spec
        gscale = gradient_scale(eng.nobs)

        def evaluate(u):
            lam, rho, _, _ = spec.natural_many(np.asarray(u, float)[None])
            return eng.profile(lam, rho, reml, gradient=True)

        def fg(u):
            out = evaluate(u)
            g = spec.chain_many(np.asarray(u, float)[None], out["grad_lin"], out["grad_rho"])
            return float(out["dev"][0]), g[0]

        def f(u):
            lam, rho, _, _ = spec.natural_many(np.asarray(u, float)[None])
            return float(eng.profile(lam, rho, reml)["dev"][0])

        def saddles(u):
            out = evaluate(u)
            return spec.saddles_many(np.asarray(u, float)[None], out["grad_lin"], gscale)[0]

        return f, fg, saddles

    @blas_threads()
    def fit(
        self,
        start_params=None,
        reml: bool = True,
        *,
        method: str | Sequence[str] = METHODS,
        maxiter: int = 2000,
        gtol: float = GTOL,
        full_output: bool = False,
        **kwargs,
    ):
        """Fit by REML (default) or ML.

        Parameters
        ----------
        start_params : dict or array_like, optional
            Either a dict with any of ``cov_re`` (G), ``vcomp``, ``scale`` and the structure's
            parameters by name (``rho``, ``range``, ``nugget``), or a packed vector
            ``(Psi lower triangle, vc/scale, correlation)``.  By default several candidate
            starts are scored and the best is used.
        reml : bool
            REML (default) or ML.
        method : str or sequence of str
            Optimisers tried in turn until the gradient criterion holds: ``"lbfgs"``,
            ``"bfgs"``, ``"nm"`` (Nelder-Mead, then BFGS again), ``"powell"``.
        maxiter : int
            Iteration limit per optimiser.
        full_output : bool
            Accepted for statsmodels compatibility; the optimiser history is always kept in
            ``results.hist``.
        gtol : float
            Convergence criterion: the largest absolute gradient component of the profiled
            deviance ``-2 l`` in the optimiser coordinates, divided by ``max(nobs, 100)``
            (:func:`statsmodels_lmm_ext.optimize.gradient_scale`).  If not met after all
            optimisers, a ``ConvergenceWarning`` is issued and ``converged`` is False.

        Returns
        -------
        MixedLMResultsWrapper
        """
        for k in ("fe_pen", "cov_pen", "free", "niter_sa", "do_cg"):
            if kwargs.pop(k, None) not in (None, 0, True):
                raise ValueError(f"{k} is not supported by statsmodels_lmm_ext.MixedLM.fit")
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(kwargs)}")
        self.reml = bool(reml)
        self._set_param_names()
        spec = self.cov_params_spec
        methods = [method] if isinstance(method, str) else list(method)
        f, fg, saddles = self.deviance_function(self.reml)
        u = self._start(start_params, spec, f)
        u, _, converged, gmax, hist = minimize_chain(
            fg,
            u,
            f=f,
            saddles=saddles,
            gscale=gradient_scale(self.nobs),
            methods=methods,
            maxiter=maxiter,
            gtol=gtol,
        )
        if not converged:
            warnings.warn(
                f"MixedLM optimisation did not converge: max |gradient| / n = {gmax:.3g} > "
                f"gtol = {gtol:g} after {', '.join(methods)}; the estimates may not be the "
                "maximum (try other start_params or rescale the data)",
                ConvergenceWarning,
                stacklevel=3,  # 2 + the blas_threads wrapper
            )
        return self._results_at(spec, u, converged, hist)

    def _results_at(self, spec: CovParams, u: np.ndarray, converged: bool, hist):
        psi, vc, rho = spec.natural(u)
        try:
            prof = self.engine.profile_one(spec.lin(psi, vc), rho, self.reml)
        except EngineError as exc:
            raise RuntimeError(f"the fitted covariance is not positive definite: {exc}") from exc
        results = MixedLMResults.from_estimates(
            self, prof["beta"], psi, vc, rho, prof["scale"], prof, converged=converged, hist=hist
        )
        vm = results.variance_model
        if vm.boundary.any():
            warnings.warn(
                "The MLE may be on the boundary of the parameter space "
                f"({', '.join(vm.boundary_names)} estimated at zero).",
                ConvergenceWarning,
                stacklevel=4,  # 3 + the blas_threads wrapper of fit()
            )
        return MixedLMResultsWrapper(results)

    def _start(self, start_params, spec: CovParams, f) -> np.ndarray:
        geoms = [ch.geom for ch in self.engine.chunks]
        if start_params is not None:
            return spec.parse_start(start_params, self.k_fe, float(np.var(self.endog)), geoms)
        best, best_u = np.inf, None
        for u in spec.start_candidates(geoms):
            val = f(u)
            if val < best:
                best, best_u = val, u
        if best_u is None:
            cs = self.cov_struct
            hint = ""
            if cs.position_columns and not getattr(cs, "nugget", True):
                hint = (
                    "; two rows of one group at the same coordinates make a spatial "
                    "correlation matrix singular: use nugget=True or remove the duplicates"
                )
            raise ValueError(
                f"no starting value gives a positive definite covariance for {cs!r}{hint}"
            )
        return best_u


def mixedlm(
    formula: str,
    data,
    groups=None,
    re_formula: str | None = None,
    vc_formula: Mapping[str, str] | None = None,
    cov_struct: CovStruct | None = None,
    subset=None,
    missing: str = "none",
    **kwargs,
) -> MixedLM:
    """Create a :class:`MixedLM` from a formula (mirrors ``statsmodels.formula.api.mixedlm``).

    Parameters
    ----------
    formula : str
        Fixed-effects formula, e.g. ``"distance ~ age * Sex"``.
    data : DataFrame
    groups : str or array_like, optional
        Grouping column or labels; ``None`` makes the data one group.
    re_formula : str, optional
        Random effects (statsmodels semantics; ``"0"`` for none).
    vc_formula : dict, optional
        Variance components (statsmodels semantics).
    cov_struct : CovStruct, optional
        Residual correlation within group.
    missing : {"none", "drop", "raise"}

    Returns
    -------
    MixedLM
    """
    return MixedLM.from_formula(
        formula,
        data,
        re_formula=re_formula,
        vc_formula=vc_formula,
        subset=subset,
        missing=missing,
        groups=groups,
        cov_struct=cov_struct,
        **kwargs,
    )
