"""Intervals for the covariance parameters on the sd / correlation scale, and intraclass
correlations (``res.conf_int_cov()``, ``res.icc()``).

``conf_int_cov(method="profile")`` follows lme4's ``confint(method = "profile")``: the
deviance is profiled over each parameter on the sd / correlation scale, the others
re-optimised (:mod:`.profile`).  ``method="wald"`` follows nlme's ``intervals()``: normal
intervals on the log scale of standard deviations and ratios, the Fisher z scale of
correlations (nlme's ``log((1 + r) / (1 - r))``, the same interval) and the logit scale of
other bounded parameters, with standard errors from the inverse observed information (exact
derivatives where nlme differentiates numerically) by the delta method.

``icc()``: for a model whose random effects are intercepts (a random intercept and/or
variance components), the intraclass correlation of each random effect ``k``,
``ICC_k = sigma_k^2 / (sum_j sigma_j^2 + sigma^2)`` (the share of the variance of one
observation that the effect explains; with one random intercept, the correlation of two
observations of one group whose residuals are independent), with a profile-likelihood or a
Wald (logit scale, delta method) interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .._display import NotedFrame
from .._threads import blas_threads
from ..params import bounded_interval
from .profile import Target, _Free, minimize_free, parameter_target, profile_limits
from .sdscale import COR, SD, VCSD, SdScale, to_line

__all__ = ["conf_int_cov", "icc"]

METHODS = ("profile", "wald")


def _check(method: str, alpha: float) -> str:
    m = str(method).lower()
    if m not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
    return m


def _check_model(res) -> None:
    spec = res.cov_params_spec
    if spec.free is not None:
        raise ValueError(
            "intervals of covariance parameters need a fit with every parameter estimated; "
            "this fit held some at fixed values (fit(free=...)): refit without free"
        )


def _estimate(sds: SdScale, res) -> tuple[np.ndarray, float]:
    """``phi`` at the minimum of ``sds``'s deviance and that minimum: the fit's estimate
    (polished), or for the other criterion (ML profile of a REML fit) its re-optimisation."""
    phi0 = sds.from_theta(res.variance_model.theta)
    dev0 = float(sds.deviance(phi0[None])[0])
    free = _Free(sds, None)
    scale, restart = free.scales(phi0)

    def fun(W):
        return sds.deviance(free.to_phi(W, phi0))

    dev, w = minimize_free(fun, free.to_w(phi0), restart, scale)
    if not (np.isfinite(dev0) or dev < 1e300):
        raise RuntimeError(
            "the deviance is not finite at the estimates (a covariance matrix that is not "
            "positive definite); no intervals can be profiled from this fit"
        )
    if dev < dev0:
        return free.to_phi(w, phi0)[0], dev
    return phi0, dev0


def _wald_se_line(sds: SdScale, res, phi: np.ndarray) -> np.ndarray:
    """Wald standard errors of ``phi`` on the real-line scale of each parameter (the first
    step of the profile search)."""
    vm = res.variance_model
    J = sds.jacobian(vm.theta)
    se = np.sqrt(np.clip(np.diag(J @ vm.cov_theta("observed") @ J.T), 0, None))
    h = 1e-6 * np.maximum(np.abs(phi), 1e-3)
    with np.errstate(all="ignore"):
        d = (to_line((phi + h)[None], sds.bounds) - to_line((phi - h)[None], sds.bounds))[0]
        return se * np.abs(d / (2 * h))


def _frame(names, lower, est, upper, title: str, notes: list[str]) -> NotedFrame:
    out = NotedFrame({"lower": lower, "estimate": est, "upper": upper}, index=list(names))
    out.attrs["title"] = title
    out.attrs["notes"] = notes
    return out


def _criterion(res, reml: bool | None) -> bool:
    return bool(res.reml) if reml is None else bool(reml)


@blas_threads()
def conf_int_cov(res, method: str = "profile", alpha: float = 0.05, *,
                 reml: bool | None = None, parm=None) -> pd.DataFrame:  # fmt: skip
    """Intervals for the covariance parameters on the sd / correlation scale.

    Parameters
    ----------
    res : MixedLMResults
    method : {"profile", "wald"}
        ``"profile"``: profile-likelihood intervals (lme4 ``confint(method = "profile")``);
        ``"wald"``: Wald intervals on the log / Fisher z scale (nlme ``intervals()``).
    alpha : float
        ``1 - alpha`` intervals.
    reml : bool, optional
        Profile: the deviance profiled (default: the fit's criterion; ``False`` profiles the
        ML deviance, as lme4 does for every fit, REML ones included, and reports the ML
        estimates).  Wald intervals use the fit's criterion only.
    parm : sequence of str, optional
        Only these rows (names as in the returned frame), as lme4's ``parm``: a profile
        costs one search per row.

    Returns
    -------
    DataFrame
        ``lower``, ``estimate``, ``upper``; rows: random-effect standard deviations
        (``... SD``) and correlations (``... Corr``), variance-component standard
        deviations, ``Residual SD`` and the residual structure's parameters.
    """
    method = _check(method, alpha)
    _check_model(res)
    m = res.model
    z = stats.norm.ppf(1 - alpha / 2)
    if method == "wald":
        if reml is not None and bool(reml) != bool(res.reml):
            raise ValueError(
                f"Wald intervals use the information of the fit's criterion ({res.method}); "
                f"reml={reml!r} needs a refit (fit(reml={bool(reml)})) or method='profile'"
            )
        sds = SdScale(res.cov_params_spec, m.engine, res.reml)
        rows = _rows(sds, parm)
        vm = res.variance_model
        phi = sds.from_theta(vm.theta)
        J = sds.jacobian(vm.theta)
        se = np.sqrt(np.clip(np.diag(J @ vm.cov_theta("observed") @ J.T), 0, None))
        lo, hi = bounded_interval(phi, se, z, sds.bounds)
        note = (f"Wald intervals ({res.method}): log scale for standard deviations, Fisher z "
                "for correlations, logit / log scale of other bounded parameters; SEs from "
                "the inverse observed information")  # fmt: skip
        return _frame(sds.names, lo, phi, hi, f"{1 - alpha:.0%} intervals", [note]).iloc[rows]
    crit = _criterion(res, reml)
    sds = SdScale(res.cov_params_spec, m.engine, crit)
    rows = _rows(sds, parm)
    phi, dev_min = _estimate(sds, res)
    steps = _wald_se_line(sds, res, phi)
    lims = [profile_limits(sds, parameter_target(sds, j, phi), phi, dev_min, z, steps[j])
            for j in rows]  # fmt: skip
    lo, hi = (np.array(v) for v in zip(*lims, strict=True))
    notes = [f"Profile-likelihood intervals of the {'REML' if crit else 'ML'} deviance "
             "(estimates of that criterion)"]  # fmt: skip
    if _singular(sds, phi):
        notes.append(
            "Singular fit (a standard deviation at 0 or a correlation at +-1): limits of the "
            "parameters tied to it may be the bounds of their range"
        )
    names = [sds.names[j] for j in rows]
    return _frame(names, lo, phi[rows], hi, f"{1 - alpha:.0%} intervals", notes)


def _rows(sds: SdScale, parm) -> list[int]:
    """Positions of the rows ``parm`` names (all rows if None)."""
    names = sds.names
    if parm is None:
        return list(range(len(names)))
    parm = [parm] if isinstance(parm, str) else list(parm)
    unknown = [p for p in parm if p not in names]
    if unknown:
        raise ValueError(f"parm: unknown parameter(s) {unknown}; the rows are {names}")
    return [names.index(p) for p in parm]


def _singular(sds: SdScale, phi: np.ndarray) -> bool:
    kinds = np.array(sds.kinds)
    sd = phi[np.isin(kinds, [SD, VCSD])]
    cor = phi[kinds == COR]
    tiny = 1e-4 * phi[sds.k_lin]
    return bool(np.any(np.abs(sd) < tiny) or np.any(np.abs(cor) > 1 - 1e-4))


# ---------------------------------------------------------------------- ICC
def _icc_components(res, sds: SdScale) -> list[int]:
    """Positions in ``phi`` of the random intercepts and variance components; a ValueError
    for random slopes or a model without random effects."""
    m = res.model
    spec = res.cov_params_spec
    if spec.k_re > 1 or (spec.k_re == 1 and np.any(np.asarray(m.exog_re)[:, 0] != 1.0)):
        names = ", ".join(spec.re_names)
        raise ValueError(
            f"icc() needs random intercepts or variance components only; the random effects "
            f"({names}) include slopes, whose share of the variance depends on the "
            "covariate: fit the random intercept alone or use conf_int_cov()"
        )
    for name, mats in zip(spec.vc_names, getattr(m.exog_vc, "mats", []), strict=False):
        for mat in mats:
            mat = np.asarray(mat, float)
            if mat.size and (np.any((mat != 0) & (mat != 1)) or np.any(mat.sum(axis=1) > 1)):
                raise ValueError(
                    f"icc() needs variance components with indicator designs (one 1 per row); "
                    f"the design of {name!r} is not one, so its share of the variance "
                    "depends on the row: use conf_int_cov()"
                )
    comps = [j for j, k in enumerate(sds.kinds) if k in (SD, VCSD)]
    if not comps:
        hint = ""
        if getattr(spec.cov_struct, "constant_correlation", False):
            hint = (
                "; with compound symmetry the residual correlation rho is the intraclass "
                "correlation: its interval is the rho row of conf_int_cov()"
            )
        raise ValueError(
            "icc() needs a random intercept or a variance component; the model has none" + hint
        )
    return comps


def _icc_value(phi, k: int, comps: list[int], sig: int) -> float:
    v = phi[comps] ** 2
    return float(phi[k] ** 2 / (v.sum() + phi[sig] ** 2))


def _icc_target(k: int, comps: list[int], sig: int) -> Target:
    others = [j for j in comps if j != k]

    def fill(c, PHI):
        rest = (PHI[:, others] ** 2).sum(axis=1) + PHI[:, sig] ** 2
        PHI[:, k] = np.sqrt(c / (1.0 - c) * rest) if c < 1 else np.inf
        return PHI

    return Target(k, fill, lambda phi: _icc_value(phi, k, comps, sig), (0.0, 1.0), True)


def _icc_wald(res, sds: SdScale, comps, z: float):
    vm = res.variance_model
    theta = vm.theta
    sig = sds.k_lin
    tot = theta[comps].sum() + theta[sig]
    W = vm.cov_theta("observed")
    est, se = [], []
    for k in comps:
        g = np.zeros(len(theta))
        g[comps] = -theta[k] / tot**2
        g[sig] = -theta[k] / tot**2
        g[k] += 1.0 / tot
        est.append(theta[k] / tot)
        se.append(np.sqrt(max(g @ W @ g, 0.0)))
    # a variance estimated at zero has no Wald interval (its SE is zero: held fixed, as SAS)
    se = np.where(vm.boundary[comps], np.nan, se)
    lo, hi = bounded_interval(np.array(est), se, z, [(0.0, 1.0)] * len(comps))
    return np.array(est), lo, hi


@blas_threads()
def icc(res, alpha: float = 0.05, method: str = "profile") -> pd.DataFrame:
    """Intraclass correlations with intervals (see the module docstring).

    Parameters
    ----------
    res : MixedLMResults
    alpha : float
        ``1 - alpha`` intervals.
    method : {"profile", "wald"}
        Profile likelihood of the fit's criterion, or Wald on the logit scale.

    Returns
    -------
    DataFrame
        ``lower``, ``estimate``, ``upper``; one row per random intercept / variance
        component, named after it.
    """
    method = _check(method, alpha)
    _check_model(res)
    sds = SdScale(res.cov_params_spec, res.model.engine, res.reml)
    comps = _icc_components(res, sds)
    names = [n[:-3] if n.endswith(" SD") else n for n in (sds.names[j] for j in comps)]
    z = stats.norm.ppf(1 - alpha / 2)
    sig = sds.k_lin
    est_w, lo_w, hi_w = _icc_wald(res, sds, comps, z)
    note = "ICC_k = sigma_k^2 / (sum_j sigma_j^2 + sigma^2)"
    if method == "wald":
        return _frame(names, lo_w, est_w, hi_w, f"Intraclass correlations ({1 - alpha:.0%})",
                      [note, "Wald intervals on the logit scale (delta method)"])  # fmt: skip
    phi, dev_min = _estimate(sds, res)
    se_theta = np.sqrt(np.clip(np.diag(res.variance_model.cov_theta("observed")), 0, None))
    lims, est = [], []
    for k in comps:
        tg = _icc_target(k, comps, sig)
        c = tg.value(phi)
        # first step: the Wald SE of logit(ICC_k), d logit / d sigma_k^2 = 1 / (sigma_k^2 (1 - c))
        step = se_theta[k] / (phi[k] ** 2 * (1 - c)) if c > 0 else 0.25
        lims.append(profile_limits(sds, tg, phi, dev_min, z, step))
        est.append(c)
    lo, hi = (np.array(v) for v in zip(*lims, strict=True))
    notes = [note, f"Profile-likelihood intervals of the {res.method} deviance"]
    return _frame(names, lo, np.array(est), hi, f"Intraclass correlations ({1 - alpha:.0%})",
                  notes)  # fmt: skip
