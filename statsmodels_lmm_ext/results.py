"""Results of :class:`~statsmodels_lmm_ext.MixedLM` fits (a statsmodels MixedLMResults)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.base import model as base
from statsmodels.base import wrapper as wrap
from statsmodels.regression import mixed_linear_model as sm_mlm

from .inference import VarianceModel, check_ddf, contrasts

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
        res.freepat = None
        res._llf = -0.5 * prof["dev"]
        res._cov_fe = scale * np.linalg.inv(prof["A"])
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
        """Number of estimated parameters, sigma^2 included (as nlme's logLik df)."""
        return len(self.params) + 1

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
        fit = m.exog @ self.fe_params
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
        """t tests of ``L beta = q``; ``r_matrix`` may have ``k_fe`` columns.

        With ``ddf=None`` the Wald (normal) tests of statsmodels; with ``ddf`` one of
        ``"satterthwaite"``, ``"kenward-roger"``, ``"kenward-roger-linear"``, ``"residual"``,
        ``"asymptotic"`` small-sample t tests with per-row ``df_denom``
        (see :func:`statsmodels_lmm_ext.t_test`).
        """
        if ddf is not None:
            return contrasts.t_test(
                self.variance_model, self._fe_names, r_matrix, ddf, information
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
        """Summary tables: model, fixed effects, covariance parameters, residual structure.

        With ``ddf`` (e.g. ``"kenward-roger"``) the fixed-effects table gains a ``df`` column
        and t-based p-values and intervals (Kenward-Roger: SEs from the adjusted covariance).
        """
        from statsmodels.iolib import summary2

        m = self.model
        smry = summary2.Summary()
        sizes = np.bincount(m._group_codes)
        info = {
            "Model:": "MixedLM",
            "Dependent Variable:": yname or m.endog_names,
            "No. Observations:": str(m.nobs),
            "No. Groups:": str(m.n_groups),
            "Min. group size:": f"{sizes.min():.0f}",
            "Max. group size:": f"{sizes.max():.0f}",
            "Mean group size:": f"{sizes.mean():.1f}",
            "Method:": self.method,
            "Residual structure:": repr(m.cov_struct),
            "Scale:": f"{self.scale:.4f}",
            "Log-Likelihood:": f"{self.llf:.4f}",
            "AIC:": f"{self.aic:.4f}",
            "BIC:": f"{self.bic:.4f}",
            "Converged:": "Yes" if self.converged else "No",
        }
        p = self.k_fe
        names = list(xname_fe or m.exog_names)
        est = np.asarray(self.fe_params)
        q = stats.norm.ppf(1 - alpha / 2)
        if ddf is None:
            se = np.sqrt(np.diag(self._cov_fe))
            z = est / se
            cols = {"Coef.": est, "Std.Err.": se, "z": z, "P>|z|": 2 * stats.norm.sf(np.abs(z))}
        else:
            tt = contrasts.t_test(self.variance_model, self._fe_names, np.eye(p), ddf, information)
            se, df = tt.sd, tt.df_denom
            q = stats.t.ppf(1 - alpha / 2, df)
            cols = {"Coef.": est, "Std.Err.": se, "df": df, "t": tt.tvalue, "P>|t|": tt.pvalue}
            info["Denominator df:"] = check_ddf(ddf).name
            if tt.information:  # which information matrix gave W (DDFMethod.information)
                info["Information:"] = tt.information
        fe = pd.DataFrame(
            {**cols, f"[{alpha / 2:g}": est - q * se, f"{1 - alpha / 2:g}]": est + q * se},
            index=names[:p],
        )
        smry.add_dict(info)
        smry.add_title(title or "Mixed Linear Model Regression Results")
        smry.add_df(fe.map(lambda x: f"{x:.3f}"), align="r")
        cp = self.covariance_parameters()
        zq = stats.norm.ppf(1 - alpha / 2)
        cp[f"[{alpha / 2:g}"] = cp["Estimate"] - zq * cp["Std.Err."]
        cp[f"{1 - alpha / 2:g}]"] = cp["Estimate"] + zq * cp["Std.Err."]
        smry.add_df(cp, float_format="%.4f", align="r")
        return smry

    def covariance_parameters(self) -> pd.DataFrame:
        """Covariance parameters on the natural scale with standard errors.

        Rows: random-effect variances/covariances, variance components, ``Residual`` (sigma^2)
        and the residual structure's parameters; SEs from the inverse observed information.
        """
        vm = self.variance_model
        names = self.cov_params_spec.theta_names("table")
        theta = vm.theta
        se = np.sqrt(np.clip(np.diag(vm.cov_theta("observed")), 0, None))
        return pd.DataFrame({"Estimate": theta, "Std.Err.": se}, index=names)


class MixedLMResultsWrapper(sm_mlm.MixedLMResultsWrapper):
    pass


wrap.populate_wrapper(MixedLMResultsWrapper, MixedLMResults)
