"""``summary()`` of :class:`~statsmodels_lmm_ext.MixedLMResults` in statsmodels' layout.

``tables[0]`` is the model information, ``tables[1]`` statsmodels' parameter table (fixed
effects, then the random-effects variances/covariances and variance components on the data
scale, with ``xname_fe``/``xname_re`` honoured), ``tables[2]`` the residual part (``Residual``,
i.e. ``sigma^2``, and the residual structure's parameters).  Intervals of covariance
parameters come from :func:`~statsmodels_lmm_ext.params.bounded_interval`: variances on the
log scale (no negative lower limit), correlations on the atanh scale, other bounded
parameters on the logit scale of their range; a note under the tables says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.iolib import summary2

from .inference import check_ddf, contrasts
from .params import bounded_interval

__all__ = ["INTERVAL_NOTE", "residual_matrices", "summary"]

INTERVAL_NOTE = (
    "Intervals of covariance parameters: Wald intervals on the log scale for variances (and "
    "ranges), on the atanh scale for correlations, on the logit scale for other bounded "
    "parameters, with standard errors from the inverse observed information."
)


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    """statsmodels' cell format: three decimals, blanks for missing values."""
    return frame.map(lambda x: f"{x:.3f}" if np.isfinite(x) else "")


def _info(res, yname) -> dict:
    m = res.model
    sizes = np.bincount(m._group_codes)
    return {
        "Model:": "MixedLM",
        "Dependent Variable:": yname or m.endog_names,
        "No. Observations:": str(m.nobs),
        "No. Groups:": str(m.n_groups),
        "Min. group size:": f"{sizes.min():.0f}",
        "Max. group size:": f"{sizes.max():.0f}",
        "Mean group size:": f"{m.nobs / m.n_groups:.1f}",
        "Method:": res.method,
        "Residual structure:": repr(m.cov_struct),
        "Scale:": f"{res.scale:.4f}",
        "Log-Likelihood:": f"{res.llf:.4f}",
        "AIC:": f"{res.aic:.4f}",
        "BIC:": f"{res.bic:.4f}",
        "Converged:": "Yes" if res.converged else "No",
    }


def _names(res, xname_fe, xname_re) -> tuple[list[str], list[str]]:
    """Row names of the fixed effects and of the covariance parameters of ``tables[1]`` and
    ``tables[2]`` (statsmodels' length checks for ``xname_fe``/``xname_re``)."""
    spec = res.cov_params_spec
    p, kl = res.k_fe, spec.k_lin
    param_names = list(res.model.data.param_names)
    fe = list(param_names[:p])
    cov = list(param_names[p : p + kl]) + spec.theta_names("table")[kl:]
    if xname_fe is not None:
        if len(xname_fe) != p:
            raise ValueError(f"xname_fe should be a list of length {p:d}")
        fe = list(xname_fe)
    if xname_re is not None:
        if len(xname_re) not in (kl, kl + spec.k_corr):
            raise ValueError(
                f"xname_re should be a list of length {kl:d} (random-effects parameters)"
                + (
                    f" or {kl + spec.k_corr:d} (and the residual structure's)"
                    if spec.k_corr
                    else ""
                )
            )
        cov[:kl] = list(xname_re[:kl])
        cov[kl + 1 : kl + 1 + len(xname_re) - kl] = list(xname_re[kl:])
    return fe, cov


def _fixed_effects(res, names, alpha, ddf, information):
    """Fixed-effects rows (Wald z, or t with ``ddf``) and the information matrix that gave the
    small-sample df (None without ``ddf``)."""
    est = np.asarray(res.fe_params, float)
    used = None
    if ddf is None:
        se = np.sqrt(np.diag(res._cov_fe))
        z = est / se
        cols = {"Coef.": est, "Std.Err.": se, "z": z, "P>|z|": 2 * stats.norm.sf(np.abs(z))}
        q = stats.norm.ppf(1 - alpha / 2)
    else:
        tt = contrasts.t_test(
            res.variance_model, res._fe_names, np.eye(res.k_fe), ddf, information
        )
        se, df = tt.sd, tt.df_denom
        q = stats.t.ppf(1 - alpha / 2, df)
        cols = {"Coef.": est, "Std.Err.": se, "df": df, "t": tt.tvalue, "P>|t|": tt.pvalue}
        used = tt.information  # which information matrix gave W (DDFMethod.information)
    cols[f"[{alpha / 2:g}"] = est - q * se
    cols[f"{1 - alpha / 2:g}]"] = est + q * se
    return pd.DataFrame(cols, index=names), used


def covariance_rows(res, alpha: float) -> pd.DataFrame:
    """Estimates, SEs and intervals of the natural covariance parameters (rows as
    ``covariance_parameters()``)."""
    vm = res.variance_model
    spec = res.cov_params_spec
    theta = vm.theta
    se = np.sqrt(np.clip(np.diag(vm.cov_theta("observed")), 0, None))
    lo, hi = bounded_interval(theta, se, stats.norm.ppf(1 - alpha / 2), spec.theta_bounds())
    out = pd.DataFrame(
        {"Estimate": theta, "Std.Err.": se, "lower": lo, "upper": hi},
        index=spec.theta_names("table"),
    )
    extra = _level_variances(vm, spec, alpha)
    return pd.concat([out, extra]) if len(extra) else out


def _level_variances(vm, spec, alpha: float) -> pd.DataFrame:
    """Rows of the per-level residual variances of a group-specific structure (SAS scale:
    ``sigma^2 tau_l``), with delta-method SEs and log-scale intervals; empty otherwise."""
    hook = getattr(spec.cov_struct, "level_variances", None)
    if hook is None:
        return pd.DataFrame()
    kl = spec.k_lin
    names, values, jac = hook(vm.theta[kl + 1 :], float(vm.theta[kl]))
    J = np.zeros((len(values), len(vm.theta)))
    J[:, kl:] = jac
    se = np.sqrt(np.clip(np.einsum("ma,ab,mb->m", J, vm.cov_theta("observed"), J), 0, None))
    q = stats.norm.ppf(1 - alpha / 2)
    lo, hi = bounded_interval(values, se, q, [(0.0, np.inf)] * len(values))
    return pd.DataFrame({"Estimate": values, "Std.Err.": se, "lower": lo, "upper": hi},
                        index=names)  # fmt: skip


def residual_matrices(res) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The estimated residual covariance ``sigma^2 S C S`` over all visits and its
    correlation (SAS's "Estimated R Matrix" and "R Correlation"), labelled by visit; None for
    a structure without visits."""
    cs = res.model.cov_struct
    if getattr(cs, "time", None) is None or getattr(cs, "_levels", None) is None:
        return None
    levels = np.asarray(cs._levels, float)
    T = len(levels)
    geom = cs.geometry(levels[None, :, None], np.arange(T)[None])
    R = res.scale * cs.residual(np.asarray(res._rho, float), geom).value[0]
    labels = res.model.position_labels.get(cs.time)
    names = [str(v) for v in labels] if labels is not None else [f"{v:g}" for v in levels]
    sd = np.sqrt(np.diag(R))
    cov = pd.DataFrame(R, index=names, columns=names)
    corr = pd.DataFrame(R / np.outer(sd, sd), index=names, columns=names)
    return cov, corr


def summary(res, yname=None, xname_fe=None, xname_re=None, title=None, alpha=0.05, *,
            ddf=None, information=None):  # fmt: skip
    """The summary of ``res`` (see the module docstring)."""
    fe_names, cov_names = _names(res, xname_fe, xname_re)
    info = _info(res, yname)
    fe, used = _fixed_effects(res, fe_names, alpha, ddf, information)
    if ddf is not None:
        info["Denominator df:"] = check_ddf(ddf).name
        if used:
            info["Information:"] = used
    cp = covariance_rows(res, alpha)
    derived = cp.iloc[len(cov_names) :]
    cp = cp.iloc[: len(cov_names)].copy()
    cp.index = cov_names
    if len(derived):
        cp = pd.concat([cp, derived])
        cov_names = list(cp.index)
    cov = pd.DataFrame(np.nan, index=cov_names, columns=fe.columns)
    cov["Coef."], cov["Std.Err."] = cp["Estimate"], cp["Std.Err."]
    cov[fe.columns[-2]], cov[fe.columns[-1]] = cp["lower"], cp["upper"]
    kl = res.cov_params_spec.k_lin
    smry = summary2.Summary()
    smry.add_dict(info)
    smry.add_title(title or "Mixed Linear Model Regression Results")
    smry.add_df(_fmt(pd.concat([fe, cov.iloc[:kl]])), align="r")
    smry.add_df(_fmt(cov.iloc[kl:]), align="r")
    mats = residual_matrices(res)
    if mats is not None:
        # SAS's "Estimated R Matrix" and "Estimated R Correlation Matrix", rows by visit
        cov, corr = mats
        cov.index = [f"R [{v}]" for v in cov.index]
        corr.index = [f"R corr [{v}]" for v in corr.index]
        smry.add_df(_fmt(cov), align="r")
        smry.add_df(corr.map(lambda x: f"{x:.4f}"), align="r")
    smry.add_text(INTERVAL_NOTE)
    return smry
