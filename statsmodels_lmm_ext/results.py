"""Results of :class:`~statsmodels_lmm_ext.MixedLM` fits (a statsmodels MixedLMResults)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.base import model as base
from statsmodels.base import wrapper as wrap
from statsmodels.regression import mixed_linear_model as sm_mlm

from . import results_summary
from ._conditional_predict import conditional_predict
from ._lazy_exog import fe_design
from .diagnostics import influence as _influence
from .diagnostics import intervals as _intervals
from .diagnostics import plots as diag_plots
from .diagnostics import residuals as diag_residuals
from .diagnostics import variogram as diag_variogram
from .inference import VarianceModel, contrasts
from .params import bounded_interval

cache_readonly = sm_mlm.cache_readonly

__all__ = ["MixedLMResults", "MixedLMResultsWrapper"]


class MixedLMResults(sm_mlm.MixedLMResults):
    """Results of a linear mixed model with a residual correlation structure.

    Behaves as :class:`statsmodels.regression.mixed_linear_model.MixedLMResults`.  The packed
    ``params`` are ``(fixed effects, G / scale (lower triangle), vcomp / scale, correlation
    parameters)``; ``cov_params()`` has the model-based covariance of the fixed effects
    (``scale (X' H^-1 X)^-1``) and, for the covariance parameters, the inverse observed
    information transformed to that scale.

    Attributes
    ----------
    fe_params : Series
        Fixed-effects estimates.
    cov_re : DataFrame
        Random-effects covariance ``G`` on the data scale.
    vcomp : ndarray
        Variance components on the data scale.
    scale : float
        Residual variance ``sigma^2``.
    cov_struct_params : Series
        Residual correlation parameters (nlme's parameterisation).
    converged : bool
        Whether the gradient criterion of ``fit`` was met.
    method : str
        ``"REML"`` or ``"ML"``.
    """

    @classmethod
    def from_estimates(cls, model, beta, psi, vc, rho, scale, prof, *, converged, hist):
        spec = model.cov_params_spec
        params = np.concatenate([beta, spec.pack(psi, vc, rho)])
        res = cls(model, params, None)
        res.cov_params_spec = spec
        res.fe_params = beta
        res.cov_re = scale * psi
        res.cov_re_unscaled = psi
        res.vcomp = scale * vc
        res.scale = scale
        res._rho = np.asarray(rho, float)
        res.method = "REML" if model.reml else "ML"
        res.reml = model.reml
        res.converged = converged
        res.hist = hist
        res.cov_pen = None
        res.k_fe = model.k_fe
        res.k_re = model.k_re
        res.k_re2 = model.k_re2
        res.k_vc = model.k_vc
        res.use_sqrt = model.use_sqrt
        res.freepat = spec.free
        res._llf = -0.5 * prof["dev"]
        res._cov_fe = scale * prof["Ainv"]
        res.params_object = sm_mlm.MixedLMParams.from_components(
            fe_params=beta, cov_re=psi, vcomp=vc
        )
        return res

    def __init__(self, model, params, cov_params):
        self._normalized_cov = cov_params
        # statsmodels' MixedLMResults.__init__ recomputes rank(exog) with an SVD of the whole
        # design; the model has already checked that it has full column rank.
        base.LikelihoodModelResults.__init__(self, model, params, normalized_cov_params=None)
        self.nobs = model.nobs
        self.df_resid = model.nobs - model.k_fe

    # statsmodels stores ``normalized_cov_params`` at construction; ours is computed lazily.
    @property
    def normalized_cov_params(self):
        if self._normalized_cov is None:
            self._normalized_cov = self._full_cov() / self.scale
        return self._normalized_cov

    @normalized_cov_params.setter
    def normalized_cov_params(self, value):
        self._normalized_cov = value

    @property
    def cov_struct(self):
        return self.model.cov_struct

    @cached_property
    def variance_model(self) -> VarianceModel:
        """Natural covariance parameters with derivatives and information."""
        m = self.model
        return VarianceModel(
            m.engine,
            self.cov_params_spec,
            self.fe_params,
            self.cov_re,
            self.vcomp,
            self.scale,
            self._rho,
            m.reml,
        )

    def _full_cov(self) -> np.ndarray:
        """Covariance of the packed params: fixed-effects block and covariance-parameter block
        (the inverse observed information of theta mapped by ``d packed / d theta``)."""
        k = len(self.params)
        p = self.k_fe
        cov = np.zeros((k, k))
        cov[:p, :p] = self._cov_fe
        if k == p:
            return cov
        vm = self.variance_model
        J = self.cov_params_spec.packed_jacobian(vm.theta)
        cov[p:, p:] = J @ vm.cov_theta("observed") @ J.T
        return cov

    # ------------------------------------------------------------ estimates
    @cache_readonly
    def llf(self):
        return self._llf

    @cache_readonly
    def df_modelwc(self):
        """Number of estimated parameters, sigma^2 included (as nlme's logLik df); parameters
        that ``fit(free=...)`` held fixed do not count."""
        return self.k_fe + self.cov_params_spec.n_free() + 1

    def with_fixed_effects(self, beta, active, llf: float):
        """These results with other fixed effects (penalised ones, ``fit_regularized``).

        The covariance parameters are kept; the fixed effects in ``active`` get the
        covariance of the GLS fit of those columns, the others NaN; ``llf`` is the
        log-likelihood at ``beta``.
        """
        beta = np.asarray(beta, float)
        active = np.asarray(active, bool)
        res = type(self).__new__(type(self))
        res.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ("_cache", "variance_model")}
        )
        res._cache = {}
        res._normalized_cov = None
        res.params = np.concatenate([beta, self.params[self.k_fe :]])
        res.fe_params = beta
        res._llf = float(llf)
        cov = np.full((self.k_fe, self.k_fe), np.nan)
        ix = np.ix_(active, active)
        if active.any():
            cov[ix] = np.linalg.inv(np.linalg.inv(self._cov_fe)[ix])
        res._cov_fe = cov
        res.params_object = sm_mlm.MixedLMParams.from_components(
            fe_params=beta, cov_re=self.cov_re_unscaled, vcomp=self.vcomp / self.scale
        )
        return MixedLMResultsWrapper(res)

    @cache_readonly
    def aic(self):
        """AIC = -2 llf + 2 k, with k counting fixed effects and covariance parameters.

        For REML fits this is the REML criterion that nlme and SAS print (statsmodels returns
        NaN); compare REML AICs only between models with the same fixed effects.
        """
        return -2.0 * self.llf + 2.0 * self.df_modelwc

    @cache_readonly
    def bic(self):
        """BIC = -2 llf + k log(n), with n = N - p for REML fits (the nlme convention)."""
        n = self.nobs - (self.k_fe if self.reml else 0)
        return -2.0 * self.llf + np.log(n) * self.df_modelwc

    @cache_readonly
    def cov_struct_params(self) -> pd.Series:
        """Residual correlation parameters on the natural (nlme) scale."""
        return pd.Series(self._rho, index=list(self.cov_struct.param_names), dtype=float)

    @cache_readonly
    def bse_re(self):
        """Standard errors of ``cov_re`` (lower triangle) and ``vcomp``, on the data scale."""
        q2v = self.k_re2 + self.k_vc
        W = self.variance_model.cov_theta("observed")
        return np.sqrt(np.clip(np.diag(W)[:q2v], 0, None))

    # --------------------------------------------------------- random effects
    @cached_property
    def _blups(self):
        """BLUPs per group: (b (G, q), [u_j (G, m_j)]) accounting for the residual correlation."""
        m = self.model
        eng = m.engine
        G = m.n_groups
        psi = self.cov_re_unscaled
        vc_s = self.vcomp / self.scale
        lam = self.cov_params_spec.lin(psi, vc_s)
        b = np.zeros((G, m.k_re))
        u = [np.zeros((G, z.shape[1])) for z in eng.Zvc]
        for rows, Hr, _ in eng.conditional(lam, self._rho, self.fe_params):
            gid = eng.groups[rows[:, 0]]
            b[gid] = np.einsum("uta,ut->ua", eng.Z[rows], Hr) @ psi
            for j, z in enumerate(eng.Zvc):
                u[j][gid] = vc_s[j] * np.einsum("uta,ut->ua", z[rows], Hr)
        return b, u

    @cache_readonly
    def random_effects(self):
        """Conditional means (BLUPs) of the random effects per group, as in statsmodels.

        ``b_i = G Z_i' V_i^-1 (y_i - X_i beta)`` with ``V_i`` including the residual correlation.
        """
        b, u = self._blups
        m = self.model
        out = {}
        names_re = list(m.data.exog_re_names)
        for gi, g in enumerate(m.group_labels):
            vals = list(b[gi])
            names = list(names_re)
            for j, v in enumerate(m.exog_vc.names):
                cols = m.exog_vc.colnames[j][gi]
                vals.extend(u[j][gi, : len(cols)])
                names.extend(f"{v}[{s}]" for s in cols)
            out[g] = pd.Series(vals, index=names, dtype=float)
        return out

    @cache_readonly
    def random_effects_cov(self):
        """Conditional covariance of the random effects per group, ``D - D Z' V^-1 Z D``."""
        m = self.model
        eng = m.engine
        psi = self.cov_re_unscaled
        vc_s = self.vcomp / self.scale
        lam = self.cov_params_spec.lin(psi, vc_s)
        out = {}
        for rows, _, Hinv in eng.conditional(lam, self._rho, self.fe_params):
            gid = eng.groups[rows[:, 0]]
            blocks = [eng.Z[rows] @ psi] + [vc_s[j] * z[rows] for j, z in enumerate(eng.Zvc)]
            A = np.concatenate(blocks, axis=2)  # (U, n, q + sum m_j)
            D = np.zeros(A.shape[2:] * 2)
            q = m.k_re
            D[:q, :q] = psi
            off = q
            for j, z in enumerate(eng.Zvc):
                w = z.shape[1]
                D[off : off + w, off : off + w] = vc_s[j] * np.eye(w)
                off += w
            C = self.scale * (D[None] - np.swapaxes(A, 1, 2) @ Hinv @ A)
            for i, g in enumerate(gid):
                names = list(m.data.exog_re_names)
                keep = list(range(q))
                off = q
                for j, v in enumerate(m.exog_vc.names):
                    cols = m.exog_vc.colnames[j][g]
                    names.extend(f"{v}[{s}]" for s in cols)
                    keep.extend(range(off, off + len(cols)))
                    off += eng.Zvc[j].shape[1]
                ci = C[i][np.ix_(keep, keep)]
                out[m.group_labels[g]] = pd.DataFrame(ci, index=names, columns=names)
        return out

    @cache_readonly
    def fittedvalues(self):
        """Fitted values ``X beta + Z b`` including the predicted random effects."""
        m = self.model
        eng = m.engine
        b, u = self._blups
        fit = fe_design(m) @ np.asarray(self.fe_params)
        codes = eng.groups
        if m.k_re:
            fit = fit + np.einsum("ia,ia->i", eng.Z, b[codes])
        for j, z in enumerate(eng.Zvc):
            fit = fit + np.einsum("ia,ia->i", z, u[j][codes])
        return fit

    # --------------------------------------------------------------- tests
    @property
    def _fe_names(self) -> list[str]:
        return list(self.model.exog_names)

    def _pad(self, r_matrix):
        """Accept contrasts on the fixed effects only (k_fe columns) by padding with zeros."""
        if isinstance(r_matrix, str) or (
            isinstance(r_matrix, tuple) and isinstance(r_matrix[0], str)
        ):
            return r_matrix  # constraint strings: statsmodels parses them with all names
        r = np.atleast_2d(np.asarray(r_matrix, dtype=float))
        k = len(self.params)
        if r.shape[1] == self.k_fe:
            return np.concatenate([r, np.zeros((r.shape[0], k - self.k_fe))], axis=1)
        if r.shape[1] != k:
            raise ValueError(
                f"r_matrix has {r.shape[1]} columns; expected {self.k_fe} (fixed effects) "
                f"or {k} (all parameters)"
            )
        return r

    def t_test(self, r_matrix, use_t=None, *, ddf=None, information=None):
        """t tests of ``L beta = q``; ``r_matrix`` has ``k_fe`` columns (as statsmodels) or
        is a constraint string.

        With ``ddf=None`` the Wald (normal) tests of statsmodels; with ``ddf`` one of
        ``"satterthwaite"``, ``"kenward-roger"``, ``"kenward-roger-linear"``, ``"residual"``,
        ``"asymptotic"`` small-sample t tests with per-row ``df_denom``
        (see :func:`statsmodels_lmm_ext.t_test`).
        """
        if ddf is not None:
            return contrasts.t_test(
                self.variance_model, self._fe_names, r_matrix, ddf, information
            )
        if not isinstance(r_matrix, str | tuple):
            r = np.atleast_2d(np.asarray(r_matrix, dtype=float))
            if r.shape[1] != self.k_fe:
                raise ValueError(
                    f"r_matrix for t-test should have {self.k_fe:d} columns (expected "
                    f"{self.k_fe}, one per fixed effect: {', '.join(self._fe_names)}), "
                    f"not {r.shape[1]}"
                )
        return super(sm_mlm.MixedLMResults, self).t_test(self._pad(r_matrix), use_t=use_t)

    def f_test(self, r_matrix, *, ddf=None, information=None):
        """F test of ``L beta = q``; with ``ddf`` a small-sample F (Kenward-Roger: scaled)."""
        if ddf is not None:
            return contrasts.f_test(
                self.variance_model, self._fe_names, r_matrix, ddf, information
            )
        return super().f_test(self._pad(r_matrix))

    def anova(self, ddf="satterthwaite", information=None):
        """Type III ANOVA table (see :func:`statsmodels_lmm_ext.anova`)."""
        return contrasts.anova(self.variance_model, self.model, ddf, information)

    def wald_test(self, r_matrix, use_f=None, scalar=True, **kwargs):
        """Wald test as statsmodels; ``r_matrix`` may have ``k_fe`` columns."""
        return super().wald_test(self._pad(r_matrix), use_f=use_f, scalar=scalar, **kwargs)

    # ------------------------------------------------------- simulate / refit
    def simulate(self, nsim: int = 1, *, seed=None, use_random_effects: bool = False):
        """Simulate ``nsim`` responses (nobs, nsim) from the fitted model.

        See :func:`statsmodels_lmm_ext.simulate` (``use_random_effects=True`` conditions on
        the predicted random effects).
        """
        # bootstrap sits above results (it adapts results objects): a module-level import
        # would be a cycle
        from .bootstrap.responses import simulate

        return simulate(self, nsim, seed=seed, use_random_effects=use_random_effects)

    def refit(self, endog, *, reml: bool | None = None):
        """Refit the same model to a new response, warm-started at these estimates.

        See :func:`statsmodels_lmm_ext.refit`.
        """
        # bootstrap sits above results (it adapts results objects): a module-level import
        # would be a cycle
        from .bootstrap.responses import refit

        return refit(self, endog, reml=reml)

    # --------------------------------------------------------------- summary
    def summary(
        self,
        yname=None,
        xname_fe=None,
        xname_re=None,
        title=None,
        alpha=0.05,
        *,
        ddf=None,
        information=None,
    ):
        """Summary tables in statsmodels' layout.

        ``tables[0]``: the model; ``tables[1]``: fixed effects, then the random-effects
        (co)variances and variance components (names from ``xname_fe``/``xname_re``, as
        statsmodels); ``tables[2]``: ``Residual`` (``sigma^2``) and the residual structure's
        parameters.  Intervals of covariance parameters are Wald intervals on the log scale for
        variances, the atanh scale for correlations (see :meth:`conf_int`).  With ``ddf``
        (e.g. ``"kenward-roger"``) the fixed effects get a ``df`` column and t-based p-values
        and intervals (Kenward-Roger: SEs from the adjusted covariance).
        """
        return results_summary.summary(
            self, yname, xname_fe, xname_re, title, alpha, ddf=ddf, information=information
        )

    def conf_int(self, alpha=0.05, cols=None):
        """Confidence intervals of ``params``.

        Fixed effects: Wald (normal) intervals, as statsmodels.  Covariance parameters (on the
        packed scale of ``params``): Wald intervals on the scale that maps each parameter's
        range to the real line, mapped back (delta-method SEs from the inverse observed
        information, :func:`statsmodels_lmm_ext.params.bounded_interval`): log for variances
        (no negative lower limit), atanh for correlations, identity for covariances.  Fixed
        or boundary parameters get NaN limits.
        """
        ci = np.array(super().conf_int(alpha=alpha), dtype=float)
        p = self.k_fe
        if len(self.params) > p:
            q = stats.norm.ppf(1 - alpha / 2)
            spec = self.cov_params_spec
            lo, hi = bounded_interval(
                np.asarray(self.params)[p:], np.asarray(self.bse)[p:], q, spec.packed_bounds()
            )
            ci[p:, 0], ci[p:, 1] = lo, hi
        return ci if cols is None else ci[cols]

    def predict(self, exog=None, transform=True, *args, conditional: bool = False, **kwargs):
        """Predictions; ``conditional=True`` predicts each subject's rows with a missing
        response given its observed rows in ``exog`` (a DataFrame with the response, subject,
        covariate and position columns).

        With ``conditional=False`` (default) as statsmodels (marginal ``X beta``).  With
        ``conditional=True`` returns a DataFrame with ``prediction`` and ``se``:
        ``E[y_n | y_o] = x_n'beta + V_no V_oo^-1 (y_o - X_o beta)`` with random effects and
        the residual structure in ``V``, and a standard error that includes the uncertainty
        of ``beta_hat`` (as mmrm's ``predict(..., se.fit = TRUE, interval = "confidence")``);
        rows with an observed response are returned unchanged (SE 0).  See
        :mod:`statsmodels_lmm_ext._conditional_predict`.
        """
        if not conditional:
            return super().predict(exog, transform, *args, **kwargs)
        if not isinstance(exog, pd.DataFrame):
            raise TypeError("predict(conditional=True) needs new data as a DataFrame")
        return conditional_predict(self, exog)

    def covariance_parameters(self, alpha: float = 0.05) -> pd.DataFrame:
        """Covariance parameters on the natural scale with standard errors and intervals.

        Rows: random-effect variances/covariances, variance components, ``Residual`` (sigma^2)
        and the residual structure's parameters; SEs from the inverse observed information;
        ``lower``/``upper``: ``1 - alpha`` intervals on the log scale for variances, atanh for
        correlations (as :meth:`summary`).
        """
        return results_summary.covariance_rows(self, alpha)

    # ------------------------------------------- residuals, variogram, ACF (issue 14)
    def residuals(self, kind: str = "conditional", type: str = "response") -> pd.Series:
        """Residuals on the data's index, as nlme's ``residuals(fit, level, type)``.

        Parameters
        ----------
        kind : {"conditional", "marginal"}
            ``y - X beta - Z b`` (nlme ``level = 1``) or ``y - X beta`` (``level = 0``).
        type : {"response", "pearson", "normalized"}
            Raw; divided by the fitted standard deviation of the within-group error
            (variance functions included); Pearson premultiplied by the inverse Cholesky
            factor of the within-group correlation (rows in position order).

        See :mod:`statsmodels_lmm_ext.diagnostics.residuals`.
        """
        return diag_residuals.residuals(self, kind, type)

    def variogram(self, type: str = "pearson", distance=None, **kwargs):
        """Empirical semivariogram of the residuals within groups, as nlme's ``Variogram``.

        Parameters
        ----------
        type : {"pearson", "normalized", "response"}
        distance : str, list of str or array_like, optional
            Column(s) or values the distances between rows are computed from (Euclidean);
            default the residual structure's positions (time or coordinates; the row index
            within group for structures without positions).
        **kwargs
            ``kind`` ("conditional"), ``collapse`` ("quantiles", "fixed", "none"), ``nint``
            (20), ``breaks``, ``max_dist``, ``robust`` (False), as nlme.

        Returns
        -------
        Variogram
            A DataFrame with ``dist``, ``variog``, ``n_pairs`` and ``model`` (the fitted
            structure's semivariance for the same pairs) and a ``plot()`` method.  See
            :mod:`statsmodels_lmm_ext.diagnostics.variogram`.
        """
        return diag_variogram.variogram(self, type, distance, **kwargs)

    def acf(self, type: str = "normalized", max_lag: int | None = None, *, kind="conditional"):
        """Autocorrelation of the residuals by lag within groups, as nlme's ``ACF``.

        Returns a DataFrame with ``lag``, ``ACF`` and ``n_pairs``; ``max_lag`` defaults to
        nlme's ``min(n_max - 1, floor(10 log10(n_max)))``.  Rows are taken in position order
        within each group.
        """
        return diag_variogram.acf(self, type, max_lag, kind=kind)

    def plot_diagnostics(self, *, max_groups: int = 12, seed=0, figsize=(10, 8)):
        """A matplotlib Figure with four panels: Pearson residuals against fitted values,
        normal QQ of the normalized residuals, the semivariogram and observed/fitted values
        of (a sample of ``max_groups``) groups.  See
        :func:`statsmodels_lmm_ext.diagnostics.plots.plot_diagnostics`."""
        return diag_plots.plot_diagnostics(self, max_groups=max_groups, seed=seed, figsize=figsize)

    # --------------------------------------------- intervals for covariance parameters, ICC
    def conf_int_cov(
        self,
        method: str = "profile",
        alpha: float = 0.05,
        *,
        reml: bool | None = None,
        parm=None,
    ) -> pd.DataFrame:
        """Intervals for the covariance parameters on the sd / correlation scale.

        Parameters
        ----------
        method : {"profile", "wald"}
            ``"profile"``: profile-likelihood intervals, as lme4's
            ``confint(method = "profile")``; ``"wald"``: Wald intervals on the log scale of
            standard deviations and the Fisher z scale of correlations, as nlme's
            ``intervals()``.
        alpha : float
            ``1 - alpha`` intervals.
        reml : bool, optional
            The deviance profiled (default: the fit's criterion; lme4 always profiles the ML
            deviance: ``reml=False``).
        parm : sequence of str, optional
            Only these rows (lme4's ``parm``).

        Returns
        -------
        DataFrame
            ``lower``, ``estimate``, ``upper`` for each random-effect standard deviation
            (``... SD``) and correlation (``... Corr``), variance-component standard
            deviation, ``Residual SD`` and residual-structure parameter.  See
            :mod:`statsmodels_lmm_ext.diagnostics.intervals`.
        """
        return _intervals.conf_int_cov(self, method, alpha, reml=reml, parm=parm)

    def icc(self, alpha: float = 0.05, method: str = "profile") -> pd.DataFrame:
        """Intraclass correlations ``sigma_k^2 / (sum_j sigma_j^2 + sigma^2)`` of the random
        intercepts and variance components, with profile-likelihood (default) or Wald
        (logit scale) intervals.

        Returns
        -------
        DataFrame
            ``lower``, ``estimate``, ``upper``, one row per random effect.  Models with random
            slopes are refused (their share of the variance depends on the covariate).  See
            :mod:`statsmodels_lmm_ext.diagnostics.intervals`.
        """
        return _intervals.icc(self, alpha, method)

    # ------------------------------------------------------------- influence
    def influence(self, groups=None) -> pd.DataFrame:
        """Influence of each group from exact leave-one-group-out refits (SAS PROC MIXED
        ``INFLUENCE(EFFECT=subject ITER=...)``).

        Parameters
        ----------
        groups : sequence, optional
            Labels of the groups to leave out in turn (default: all).

        Returns
        -------
        DataFrame
            One row per group: ``nobs``, Cook's D (``cookd``), ``mdffits``, ``covratio``,
            ``covtrace`` (fixed effects), ``cookd_cov`` (covariance parameters), ``rld``
            (REML) or ``ld`` (ML) likelihood distance, ``press``, ``converged``, ``reason``
            (why a row is NaN, e.g. a visit only that group has) and ``change[<name>]`` for
            every parameter.  See :mod:`statsmodels_lmm_ext.diagnostics.influence`.
        """
        return _influence.influence(self, groups)


class MixedLMResultsWrapper(sm_mlm.MixedLMResultsWrapper):
    pass


wrap.populate_wrapper(MixedLMResultsWrapper, MixedLMResults)
