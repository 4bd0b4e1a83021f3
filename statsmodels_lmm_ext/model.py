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
from statsmodels.base.model import LikelihoodModel
from statsmodels.regression import mixed_linear_model as sm_mlm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning

from . import model_statsmodels
from ._engine import Engine, EngineError
from ._engine.conditioning import Conditioning, pivoted_qr
from ._identify import check_identified
from ._lazy_exog import DesignCells, fe_design, install_cells, take_cells
from ._residual_terms import check_unbound
from ._threads import blas_threads
from ._validation import (
    check_duplicate_positions,
    check_finite,
    check_rank,
    check_response,
    distinct_rows,
    drop_missing_arrays,
    pad_vc,
    position_array,
)
from .covstruct import CovStruct, Independence
from .model_formula import (
    MISSING,
    caller_namespace,
    check_cov_struct,
    fast_model,
    name_random_effects,
    prepare,
)
from .optimize import GTOL, gradient_scale, minimize_chain, restrict
from .params import CovParams
from .results import MixedLMResults, MixedLMResultsWrapper

__all__ = ["DATA_BACKENDS", "MixedLM", "mixedlm"]

#: ``(accepts(data), build(formula, data, re_formula, vc_formula, subset, missing, kwargs,
#: namespace))`` pairs: data that is not a DataFrame (a Dask DataFrame) is built by the first
#: backend that accepts it.  Modules above this one register themselves (``dask_model``).
DATA_BACKENDS: list = []


def _check_init_kwargs(kwargs: dict) -> None:
    """Refuse keywords the array interface does not take, saying what to use instead."""
    for k in kwargs:
        if k in ("variance", "weights", "group"):
            raise ValueError(
                f"MixedLM(endog, exog, groups, ...) does not take {k}=: it names data "
                f"columns; use the formula interface, lmm.mixedlm(formula, data, "
                f"groups=..., {k}=...) or MixedLM.from_formula (the array interface "
                "reads the residual structure's positions= only)"
            )
        if k not in ("missing_idx", "formula", "model_spec", "position_names", "position_labels"):
            raise ValueError(f"argument {k} not permitted for MixedLM initialization")


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

    _results_class = MixedLMResults

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
        _check_init_kwargs(kwargs)
        position_names = kwargs.pop("position_names", None)
        self.position_labels = dict(kwargs.pop("position_labels", None) or {})
        self.cov_struct = check_cov_struct(cov_struct)
        check_unbound(self.cov_struct)
        if missing not in MISSING:
            raise ValueError(f"missing must be one of {MISSING}, not {missing!r}")
        self.use_sqrt = use_sqrt
        self.reml = True
        self.fe_pen = self.re_pen = self.cov_pen = None
        self._freepat = None
        self._engine_mode = engine
        self._engine = None
        if exog_vc is None:
            exog_vc = sm_mlm.VCSpec([], [], [])
        elif isinstance(exog_vc, dict):
            warnings.warn(
                "Using deprecated variance components format (a dict of dicts); pass a "
                "statsmodels VCSpec or use vc_formula",
                FutureWarning,
                stacklevel=2,
            )
            exog_vc = sm_mlm._convert_vc(exog_vc)
        self.exog_vc = exog_vc
        self.k_vc = len(exog_vc.names)
        pos = position_array(self.cov_struct, positions, len(endog))
        # the formula fast path's design of few cells is installed after statsmodels' set-up,
        # and expanded only on access to ``exog`` (_lazy_exog)
        drop = missing == "drop" and "missing_idx" not in kwargs
        cells, exog = take_cells(exog, drop_rows=drop)
        if drop:
            endog, exog, groups, exog_re, pos = drop_missing_arrays(
                endog, exog, groups, exog_re, pos
            )
            missing = "none"
        if len(np.asarray(endog)) == 0:
            raise ValueError(
                "the model has no observations (no rows, or none left after dropping missing "
                "values); pass data with at least one complete row per group"
            )
        self.positions = pos
        self.position_names = list(position_names or self.cov_struct.position_columns)
        if exog is not None and np.ndim(exog) == 1:
            exog = np.asarray(exog)[:, None]
        if exog_re is not None and np.ndim(exog_re) == 1:
            exog_re = np.asarray(exog_re)[:, None]
        LikelihoodModel.__init__(
            self, endog, exog, groups=groups, exog_re=exog_re, missing=missing, **kwargs
        )
        self._init_keys.extend(
            ["use_sqrt", "exog_vc", "cov_struct", "positions", "engine", "position_labels"]
        )
        if cells is not None:
            install_cells(self, cells)
        self.k_fe = fe_design(self).shape[1]
        self._set_random_effects(exog_re)
        check_finite(self)
        codes, labels = pd.factorize(np.asarray(self.groups), sort=True)
        self._group_codes = codes
        self.group_labels = list(labels)
        self.n_groups = len(labels)
        self.nobs = len(self.endog)
        self.n_totobs = self.nobs
        if self.exog_names is None:
            self.exog_names = [f"FE{k + 1:d}" for k in range(self.k_fe)]
        self._check_data()

    def _check_data(self) -> None:
        """Rank, response, positions and design checks (after the arrays are set)."""
        # one pivoted QR of X (through its distinct rows when few: a DesignCells has them, and
        # a design with numeric factors may still have few) serves the rank check and the
        # engine's conditioning
        X = fe_design(self)
        qr = pivoted_qr(X, None if isinstance(X, DesignCells) else distinct_rows(X))
        check_rank(X, self.exog_names, qr)
        cond = Conditioning(X, self.endog, qr=qr)
        self._conditioning = (X, cond)
        check_response(cond, self.endog, self.endog_names)
        self.cov_struct.check_positions(self.positions, self.position_names)
        check_duplicate_positions(self)
        self.cov_struct.check_design(
            self.cov_struct.visit_index(self.positions),
            self._group_codes,
            next(iter(self.position_labels.values()), None),
        )

    @property
    def exog(self):
        """The fixed-effects design (N, p); a formula design of few distinct rows is expanded
        here on first access (the fit does not need it: :mod:`._lazy_exog`)."""
        if self.__dict__.get("_exog_cells") is not None:
            return self.data.exog
        return self.__dict__.get("_exog")

    @exog.setter
    def exog(self, value) -> None:
        self.__dict__["_exog"] = value
        self.__dict__["_exog_cells"] = None

    def _get_init_kwds(self) -> dict:
        """Keywords that rebuild this model (statsmodels' cloning protocol); ``engine`` is the
        batching mode given to the constructor, not the :class:`Engine` object."""
        kwds = super()._get_init_kwds()
        kwds["engine"] = self._engine_mode
        return kwds

    def _set_random_effects(self, exog_re) -> None:
        """``exog_re`` and the random-effects names, as statsmodels sets them."""
        if exog_re is None and self.k_vc == 0:
            # the random intercept's column of ones, as a read-only view of one value
            self.exog_re = np.broadcast_to(np.ones(1), (len(self.endog), 1))
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
        data : DataFrame or Dask DataFrame
            A Dask DataFrame is reduced in one pass to sufficient statistics and gives a
            :class:`~statsmodels_lmm_ext.DaskMixedLM` (docs/dask.rst).
        re_formula : str, optional
            ``"0"`` gives no random effects (a GLS model with the residual structure only);
            ``None`` a random intercept unless ``vc_formula`` is given.
        cov_struct : CovStruct, optional
            Residual correlation; the columns it names (``time``/``coords``) are taken from
            ``data``.
        variance : VarFunc or list of VarFunc, optional
            nlme variance functions (``VarIdent``, ``VarPower``, ``VarExp``) multiplying the
            residual standard deviations row by row.
        weights : str, optional
            Column of positive observation weights (SAS ``WEIGHT``, mmrm ``weights=``).
        missing : {"none", "drop", "raise"}
            ``"drop"`` drops the rows with a missing value in any column the model uses
            (response, covariates, groups, positions); ``"raise"`` and ``"none"`` raise an error
            naming the column.
        groups : str or array_like
            Group labels; ``None`` makes the whole data set one group (a spatial field).
        eval_env : int, dict or patsy EvalEnvironment, optional
            Where names of the formulas that are not data columns are looked up (functions
            and variables such as ``ctr(x)`` or ``I(x - ref)``): by default the caller's
            namespace, as ``smf.mixedlm``; an int ``k`` looks ``k`` frames further up, ``-1``
            gives an empty namespace.
        """
        namespace = caller_namespace(kwargs.pop("eval_env", None), depth=1)
        for accepts, build in DATA_BACKENDS:
            if accepts(data):
                kwargs.update(use_sparse=use_sparse)
                return build(formula, data, re_formula, vc_formula, subset, missing, kwargs,
                             namespace)  # fmt: skip
        inputs = prepare(
            formula,
            data,
            re_formula,
            vc_formula,
            subset,
            missing,
            kwargs,
            namespace,
        )
        mod = fast_model(cls, formula, inputs, re_formula, vc_formula, args)
        if mod is None:
            mod = super().from_formula(
                formula,
                inputs.data,
                re_formula=None if inputs.no_re else re_formula,
                vc_formula=vc_formula,
                use_sparse=use_sparse,
                missing="none",
                groups=inputs.groups,
                *args,  # noqa: B026
                **inputs.kwargs,
            )
        name_random_effects(mod, inputs, re_formula, vc_formula)
        # what conditional prediction needs to rebuild a subject's rows from new data
        mod._group_column = inputs.group_name
        mod._re_formula = None if inputs.no_re else re_formula
        mod._vc_formula = dict(vc_formula) if vc_formula else None
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
        return pad_vc(self.exog_vc, self.row_indices, self.group_labels, self.nobs)

    @property
    def engine(self) -> Engine:
        """The batched likelihood engine (built on first use)."""
        if self._engine is None:
            X = fe_design(self)
            self._engine = Engine(
                self.endog,
                X,
                self._group_codes,
                self.exog_re,
                self._vc_padded(),
                self.positions,
                self.cov_struct,
                mode=self._engine_mode,
                cond=self._conditioning[1] if self._conditioning[0] is X else None,
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
            free=self._freepat,
        )

    def loglike(self, params, profile_fe=True):
        """Log-likelihood (REML or ML, as the last fit) with ``sigma^2`` profiled out.

        Parameters
        ----------
        params : MixedLMParams or array_like
            A statsmodels ``MixedLMParams`` (``cov_re`` and ``vcomp`` relative to ``sigma^2``,
            as ``results.params_object``), or a packed vector in the layout of
            ``results.params``: optionally the fixed effects, then ``Psi`` (lower triangle),
            ``vc`` and the residual structure's parameters.  (statsmodels reads packed vectors
            on the square-root scale when ``use_sqrt``; ours always read as ``params``.)
        profile_fe : bool
            Replace the fixed effects by their GLS estimates (default), as statsmodels;
            otherwise ``params`` must carry them.
        """
        return model_statsmodels.loglike(self, params, profile_fe)

    def score(self, params, profile_fe=True):
        """Gradient of :meth:`loglike` in statsmodels' parameterisation: the Cholesky factor
        of ``Psi`` and ``sqrt(vc)`` if ``use_sqrt`` (default) else ``Psi`` and ``vc``, then the
        structure's parameters; fixed effects first when ``profile_fe=False``.  Exact (from the
        engine's derivative blocks)."""
        return model_statsmodels.score(self, params, profile_fe)

    def hessian(self, params):
        """``(H, singular)``: the Hessian of :meth:`loglike` (``profile_fe=False``) in
        ``(beta, Psi lower triangle, vc, rho)`` and whether ``Psi`` is singular, as
        statsmodels.  Inference uses the natural parameters instead
        (:func:`statsmodels_lmm_ext.variance_model`)."""
        return model_statsmodels.hessian(self, params)

    def fit_regularized(
        self,
        start_params=None,
        method="l1",
        alpha=0,
        ceps=1e-4,
        ptol=1e-6,
        maxit=200,
        **fit_kwargs,
    ):
        """Penalised fixed effects with the covariance held at its unpenalised estimate.

        As :meth:`statsmodels.regression.mixed_linear_model.MixedLM.fit_regularized`:
        ``method="l1"`` (coordinate descent with weights ``alpha``, a scalar or one per fixed
        effect) or a statsmodels ``Penalty`` scaled by ``alpha``; works with any residual
        structure.  Fixed effects set to zero (``|b| < ceps``) get NaN standard errors, the
        others those of the GLS fit of the active set.
        """
        return model_statsmodels.fit_regularized(
            self, start_params, method, alpha, ceps, ptol, maxit, fit_kwargs
        )

    def get_distribution(self, params, scale, exog):
        """statsmodels' simulator of the response (independent residuals, so Independence
        only); with a residual structure use ``results.simulate`` (:func:`lmm.simulate`)."""
        if not isinstance(self.cov_struct, Independence):
            raise NotImplementedError(
                f"get_distribution draws independent residuals and cannot simulate "
                f"{self.cov_struct!r}; use results.simulate(nsim, seed=...) "
                "(statsmodels_lmm_ext.simulate), which draws from the fitted V_i"
            )
        return super().get_distribution(params, scale, exog)

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
        method: str | Sequence[str] | None = None,
        maxiter: int = 2000,
        gtol: float = GTOL,
        free=None,
        full_output: bool = False,
        disp: bool = False,
        do_cg: bool = True,
        niter_sa: int = 0,
        fe_pen=None,
        cov_pen=None,
        **kwargs,
    ):
        """Fit by REML (default) or ML.

        Parameters
        ----------
        start_params : dict, MixedLMParams or array_like, optional
            A dict with any of ``cov_re`` (G), ``vcomp``, ``scale`` and the structure's
            parameters by name (``rho``, ``range``, ``nugget``); a statsmodels
            ``MixedLMParams``; or a vector laid out as ``results.params`` (fixed effects
            optional).  By default several candidate starts are scored and the best is used.
        reml : bool
            REML (default) or ML.
        method : str or sequence of str, optional
            Optimisers tried in turn until the gradient criterion holds: ``"lbfgs"``,
            ``"bfgs"``, ``"cg"``, ``"nm"`` (Nelder-Mead, then BFGS again), ``"powell"``.
            Default ``("lbfgs", "bfgs", "nm")``.  ``maxiter``: iterations per optimiser.
        gtol : float
            Convergence criterion: the largest absolute gradient component of the profiled
            deviance ``-2 l`` in the optimiser coordinates, divided by ``max(nobs, 100)``
            (:func:`statsmodels_lmm_ext.optimize.gradient_scale`).  If not met after all
            optimisers, a ``ConvergenceWarning`` is issued and ``converged`` is False.
        free : MixedLMParams, optional
            statsmodels' pattern of estimated parameters: a 0 holds the corresponding entry of
            the Cholesky factor of ``Psi`` (``cov_re``) or ``sqrt(vcomp)`` at its start value;
            ``free.cov_re = np.eye(q)`` fits independent random effects (the covariances are
            held at zero).  Works with every residual structure (its parameters stay free).
            Holding a variance fixed needs ``start_params`` giving its value.
        full_output : bool
            Accepted for statsmodels compatibility; ``results.hist`` always has the history.
        disp : bool
            Passed to the scipy optimisers (they print their convergence messages).
        do_cg : bool
            False returns the results at the start values without optimising.
        niter_sa, fe_pen, cov_pen, **kwargs
            As statsmodels: ``niter_sa`` and unknown keywords (e.g. ``cov_type``) are ignored
            with a warning; penalties are refused (use :meth:`fit_regularized`).

        Returns
        -------
        MixedLMResultsWrapper
        """
        methods = model_statsmodels.fit_options(
            method, kwargs, niter_sa=niter_sa, fe_pen=fe_pen, cov_pen=cov_pen
        )
        self.reml = bool(reml)
        self._freepat = free
        self._set_param_names()
        spec = self.cov_params_spec
        check_identified(self.cov_struct, self.exog_re, self._vc_padded(), self._group_codes,
                         spec.theta_names("table"))  # fmt: skip
        spec.check_free_start(start_params)
        f, fg, saddles = self.deviance_function(self.reml)
        u0 = self._start(start_params, spec, f)
        fg, f, saddles, v, expand = restrict(fg, f, saddles, u0, spec.free_mask)
        gscale = gradient_scale(self.nobs)
        if not do_cg:
            gmax = float(np.max(np.abs(fg(v)[1]), initial=0.0)) / gscale
            return self._results_at(spec, expand(v), gmax <= gtol, [])
        v, _, converged, gmax, hist = minimize_chain(
            fg, v, f=f, saddles=saddles, gscale=gscale, methods=methods, maxiter=maxiter,
            gtol=gtol, disp=disp,
        )  # fmt: skip
        if not converged:
            warnings.warn(
                f"MixedLM optimisation did not converge: max |gradient| / n = {gmax:.3g} > "
                f"gtol = {gtol:g} after {', '.join(methods)}; the estimates may not be the "
                "maximum (try other start_params or rescale the data)",
                ConvergenceWarning,
                stacklevel=3,  # 2 + the blas_threads wrapper
            )
        return self._results_at(spec, expand(v), converged, hist)

    def _results_at(self, spec: CovParams, u: np.ndarray, converged: bool, hist):
        psi, vc, rho = spec.natural(u)
        try:
            prof = self.engine.profile_one(spec.lin(psi, vc), rho, self.reml)
        except EngineError as exc:
            raise RuntimeError(f"the fitted covariance is not positive definite: {exc}") from exc
        results = self._results_class.from_estimates(
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
            warnings.warn(
                "The random effects covariance matrix is singular "
                f"({', '.join(vm.boundary_names)} estimated at zero).",
                SingularMatrixWarning,
                stacklevel=4,  # 3 + the blas_threads wrapper of fit()
            )
        return MixedLMResultsWrapper(results)

    def _response_variance(self) -> float:
        """The response's variance (a scale for start values given by the user)."""
        return float(np.var(self.endog))

    def _start(self, start_params, spec: CovParams, f) -> np.ndarray:
        geoms = [ch.geom for ch in self.engine.chunks]
        if start_params is not None:
            return spec.parse_start(start_params, self.k_fe, self._response_variance(), geoms)
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
    *,
    variance=None,
    weights: str | None = None,
    **kwargs,
) -> MixedLM:
    """Create a :class:`MixedLM` from a formula (mirrors ``statsmodels.formula.api.mixedlm``).

    Parameters
    ----------
    formula : str
        Fixed-effects formula, e.g. ``"distance ~ age * Sex"``.
    data : DataFrame or Dask DataFrame
        A Dask DataFrame (data larger than memory) is reduced in one pass to the engine's
        sufficient statistics (:class:`~statsmodels_lmm_ext.DaskMixedLM`, docs/dask.rst).
    groups : str or array_like, optional
        Grouping column or labels; ``None`` makes the data one group.
    re_formula : str, optional
        Random effects (statsmodels semantics; ``"0"`` for none).
    vc_formula : dict, optional
        Variance components (statsmodels semantics).
    cov_struct : CovStruct, optional
        Residual correlation within group; ``group=`` on any structure gives one parameter
        set per level of a subject-level factor (SAS ``GROUP=``).
    missing : {"none", "drop", "raise"}
    variance : VarFunc or list of VarFunc, optional
        nlme-style variance functions multiplying the residual standard deviations row by
        row: :class:`~statsmodels_lmm_ext.VarIdent`, :class:`~statsmodels_lmm_ext.VarPower`,
        :class:`~statsmodels_lmm_ext.VarExp`.
    weights : str, optional
        Column of positive observation weights ``w``:
        ``R_i = sigma^2 W_i^(-1/2) S C S W_i^(-1/2)`` (SAS ``WEIGHT``, mmrm ``weights=``).
    **kwargs
        ``eval_env`` (see :meth:`MixedLM.from_formula`; names not in ``data`` are looked up in
        the caller's namespace) and keywords of the model.

    Returns
    -------
    MixedLM
    """
    kwargs["eval_env"] = caller_namespace(kwargs.get("eval_env"), depth=1)
    return MixedLM.from_formula(
        formula,
        data,
        re_formula=re_formula,
        vc_formula=vc_formula,
        subset=subset,
        missing=missing,
        groups=groups,
        cov_struct=cov_struct,
        variance=variance,
        weights=weights,
        **kwargs,
    )
