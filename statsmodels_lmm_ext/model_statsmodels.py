"""statsmodels' MixedLM model API on the likelihood engine.

* :func:`fit_options`: the keywords of ``statsmodels MixedLM.fit`` (``method`` lists,
  ``free``, ``disp``, ``niter_sa``, ``do_cg``, the optimiser options it forwards to scipy and the
  keywords it warns about and ignores, such as ``cov_type``);
* :func:`loglike`, :func:`score`, :func:`hessian`: the log-likelihood with ``sigma^2``
  profiled out (and ``beta`` too with ``profile_fe=True``) at a statsmodels ``MixedLMParams``
  or a packed vector, its gradient and its Hessian in statsmodels' parameterisation, computed
  exactly from the engine's profile and derivative blocks (so they hold for residual
  structures too: their parameters ``rho`` follow the covariance parameters);
* :func:`fit_regularized`: penalised fixed effects with the covariance held at the
  unpenalised estimate, as statsmodels.

Notation (statsmodels' ``MixedLMParams``): ``Psi = cov_re`` and ``vc = vcomp`` relative to
``sigma^2``, ``H_i = Z_i Psi Z_i' + sum_j vc_j K_ji + R_i(rho)``, ``A = X'H^-1X``,
``Q(beta) = (y - X beta)'H^-1(y - X beta)``, ``d = N - p`` (REML) or ``N`` (ML)::

    l = -d/2 log(2 pi Q / d) - d/2 - 1/2 sum_i log|H_i| [- 1/2 log|A|  (REML)]

References
----------
Lindstrom, M. J. and Bates, D. M. (1988). Newton-Raphson and EM algorithms for linear
mixed-effects models for repeated-measures data. *JASA* 83, 1014-1022.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize
from statsmodels.base._penalties import Penalty
from statsmodels.regression import mixed_linear_model as sm_mlm
from statsmodels.tools.sm_exceptions import SingularMatrixWarning, ValueWarning

from .optimize import METHODS, OPTIMIZERS

__all__ = ["fit_options", "fit_regularized", "hessian", "loglike", "regularized_fe", "score"]

#: optimiser options statsmodels forwards to scipy; our chain has its own (see ``fit``)
_SCIPY_OPTIONS = ("eps", "maxcor", "ftol", "tol", "maxls")


def fit_options(method, kwargs: dict, *, niter_sa, fe_pen, cov_pen) -> list[str]:
    """The optimisers to try; checks and warns about ``fit``'s other keywords as statsmodels.

    Keywords statsmodels does not know raise a ``FutureWarning`` and are ignored (statsmodels
    0.14+ behaviour); the scipy options statsmodels forwards warn that the chain does not use
    them; penalties belong to :meth:`MixedLM.fit_regularized`.
    """
    if fe_pen is not None or cov_pen is not None:
        raise ValueError(
            "fe_pen and cov_pen are not supported by MixedLM.fit; penalise the fixed effects "
            "with fit_regularized(method=<statsmodels Penalty>, alpha=...)"
        )
    if niter_sa:
        warnings.warn("niter_sa is currently ignored", ValueWarning, stacklevel=3)
    unknown = sorted(set(kwargs) - set(_SCIPY_OPTIONS))
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        warnings.warn(
            f"Argument{s} {', '.join(unknown)} not used by MixedLM.fit. Future versions will "
            "raise on these arguments.",
            FutureWarning,
            stacklevel=3,
        )
    scipy_opts = sorted(set(kwargs) & set(_SCIPY_OPTIONS))
    if scipy_opts:
        warnings.warn(
            f"{', '.join(scipy_opts)} not used: the optimiser chain uses its own settings and "
            "judges convergence by gtol",
            UserWarning,
            stacklevel=3,
        )
    methods = list(METHODS) if method is None else [method] if isinstance(method, str) else method
    methods = [m.lower() for m in methods]
    for m in methods:
        if m in ("newton", "ncg"):
            raise ValueError(f"method {m} not available for MixedLM")
        if m not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimiser {m!r}; choose from {', '.join(map(repr, OPTIMIZERS))}"
            )
    return methods


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def _components(model, params, need_fe: bool):
    """``(beta or None, psi, vc, rho)`` from a ``MixedLMParams`` or a packed vector.

    A packed vector is ``results.params``' layout: optional fixed effects, ``Psi`` (lower
    triangle), ``vc`` and the structure's parameters, all relative to ``sigma^2``.
    """
    spec = model.cov_params_spec
    if isinstance(params, sm_mlm.MixedLMParams):
        if spec.k_corr:
            raise ValueError(
                f"a MixedLMParams has no parameters for {model.cov_struct!r} "
                f"({', '.join(spec.corr_names)}); pass a packed vector (fixed effects, Psi lower "
                "triangle, vc, then the structure's parameters) as in results.params"
            )
        beta = np.asarray(params.fe_params, float) if need_fe else None
        psi = np.asarray(params.cov_re, float).reshape(model.k_re, model.k_re)
        return beta, psi, np.asarray(params.vcomp, float).reshape(model.k_vc), np.zeros(0)
    p = np.asarray(params, float).ravel()
    beta = None
    if len(p) == model.k_fe + spec.k:
        beta, p = p[: model.k_fe], p[model.k_fe :]
    elif need_fe or len(p) != spec.k:
        raise ValueError(
            f"params has length {len(p)}; expected the {model.k_fe} fixed effects followed by "
            f"{spec.k} covariance parameters ({', '.join(spec.packed_names()) or 'none'})"
            + ("" if need_fe else ", or the covariance parameters alone")
        )
    psi, vc, rho = spec.unpack(p)
    return beta, psi, vc, rho


def _profile(model, psi, vc, rho, beta):
    """Profile at ``(psi, vc, rho)``: ``(prof, d, Q, Ad)`` with ``Ad = A (beta - beta_hat)``."""
    spec = model.cov_params_spec
    prof = model.engine.profile_one(spec.lin(psi, vc), rho, model.reml)
    dfr = model.nobs - model.k_fe if model.reml else model.nobs
    Qhat = prof["scale"] * dfr
    if beta is None:
        return prof, dfr, Qhat, np.zeros(model.k_fe)
    diff = np.asarray(beta, float) - prof["beta"]
    Ad = prof["A"] @ diff
    return prof, dfr, Qhat + diff @ Ad, Ad


def loglike(model, params, profile_fe: bool = True) -> float:
    """statsmodels' profile log-likelihood (``sigma^2`` profiled; ``beta`` too if
    ``profile_fe``) at ``params``; see the module docstring."""
    beta, psi, vc, rho = _components(model, params, need_fe=not profile_fe)
    prof, dfr, Q, _ = _profile(model, psi, vc, rho, None if profile_fe else beta)
    ll = -0.5 * dfr * (np.log(2 * np.pi * Q / dfr) + 1.0) - 0.5 * prof["logdet"]
    if model.reml:
        ll -= 0.5 * prof["logdet_A"]
    return float(ll)


def _blocks(model, psi, vc, rho, beta):
    """Derivative blocks with ``sigma^2 = 1`` (so ``V = H``) and the positions of the
    covariance parameters ``(Psi, vc, rho)`` among the natural ones (sigma^2 left out)."""
    eng = model.engine
    b = eng.derivative_blocks(psi, vc, 1.0, rho, beta)
    idx = np.delete(np.arange(eng.k_theta), eng.k_lin)
    return b, idx


def _derivatives(model, params, profile_fe: bool, order: int):
    """Gradient (and Hessian for ``order=2``) of :func:`loglike` in ``(beta, Psi, vc, rho)``."""
    beta, psi, vc, rho = _components(model, params, need_fe=not profile_fe)
    prof, dfr, Q, Ad = _profile(model, psi, vc, rho, None if profile_fe else beta)
    beta = prof["beta"] if profile_fe else beta
    b, idx = _blocks(model, psi, vc, rho, beta)
    A_inv = prof["Ainv"]
    rVr, P = b["rVr"][idx], b["P"][idx]
    reml = 1.0 if model.reml else 0.0
    g_cov = 0.5 * dfr * rVr / Q - 0.5 * b["trV"][idx]
    g_cov -= 0.5 * reml * np.einsum("ab,kba->k", A_inv, P)
    g_fe = -dfr * Ad / Q
    if order == 1:
        return np.concatenate([g_fe, g_cov]), (psi, vc, rho)
    ix = np.ix_(idx, idx)
    H_fe = -dfr * prof["A"] / Q + 2.0 * dfr * np.outer(Ad, Ad) / Q**2
    H_x = dfr * (-b["xr"][idx] / Q - np.outer(rVr, Ad) / Q**2)  # (k, p)
    H_cov = 0.5 * dfr * ((b["rV2r"][ix] - 2.0 * b["rVVVr"][ix]) / Q + np.outer(rVr, rVr) / Q**2)
    H_cov -= 0.5 * (b["trV2"][ix] - b["trVV"][ix])
    if model.reml:
        AP = np.einsum("ab,kbc->kac", A_inv, P)
        dP = b["Q"][ix] + np.swapaxes(b["Q"][ix], 0, 1) - b["R"][ix]
        H_cov -= 0.5 * (np.einsum("ab,klba->kl", A_inv, dP) - np.einsum("kab,lba->kl", AP, AP))
    p = model.k_fe
    H = np.zeros((p + len(idx), p + len(idx)))
    H[:p, :p], H[p:, :p], H[:p, p:], H[p:, p:] = H_fe, H_x, H_x.T, H_cov
    return H, (psi, vc, rho)


def score(model, params, profile_fe: bool = True) -> np.ndarray:
    """Gradient of :func:`loglike` as statsmodels returns it.

    Coordinates: ``(Cholesky factor of Psi (lower triangle), sqrt(vc))`` if ``model.use_sqrt``
    else ``(Psi lower triangle, vc)``, then the structure's parameters (natural scale); with
    ``profile_fe=False`` the fixed effects come first.  Entries that ``fit(free=...)`` holds
    fixed are zero, as in statsmodels.
    """
    g, (psi, vc, rho) = _derivatives(model, params, profile_fe, order=1)
    if profile_fe and psi.size and np.linalg.matrix_rank(psi) < psi.shape[0]:
        warnings.warn("Random effects covariance is singular", SingularMatrixWarning, stacklevel=3)
    spec = model.cov_params_spec
    p, kl = model.k_fe, spec.k_lin
    g_fe, g_lin, g_rho = g[:p], g[p : p + kl], g[p + kl :]
    if model.use_sqrt and kl:
        U = spec.unconstrained(psi, vc, rho)[None]
        g_lin = spec.chain_many(U, g_lin[None], np.zeros((1, spec.k_corr)))[0, :kl]
    g_cov = np.concatenate([g_lin, g_rho])
    if spec.free_mask is not None:
        g_cov = g_cov * spec.free_mask
        fe_free = getattr(spec.free, "fe_params", None)
        if fe_free is not None and len(np.atleast_1d(fe_free)) == p:
            g_fe = g_fe * np.asarray(fe_free, float)
    return g_cov if profile_fe else np.concatenate([g_fe, g_cov])


def hessian(model, params) -> tuple[np.ndarray, bool]:
    """Hessian of :func:`loglike` (``profile_fe=False``) in ``(beta, Psi lower triangle, vc,
    rho)`` (no square roots) and whether ``Psi`` is singular, as statsmodels returns them."""
    H, (psi, _, _) = _derivatives(model, params, profile_fe=False, order=2)
    sing = bool(psi.size) and np.linalg.matrix_rank(psi) < psi.shape[0]
    return H, sing


# --------------------------------------------------------------------------------------------
# Penalised fixed effects
# --------------------------------------------------------------------------------------------


def _shooting(M, c, alpha, beta, ceps: float, ptol: float, maxit: int) -> np.ndarray:
    """Cyclic coordinate descent for ``beta'M beta - 2 c'beta + sum alpha_j |beta_j|``
    (statsmodels' L1 "shooting" loop on the GLS sufficient statistics)."""
    beta = beta.copy()
    for _ in range(maxit):
        old = beta.copy()
        for j in range(len(beta)):
            if abs(beta[j]) < ceps:
                continue
            beta[j] = 0.0
            a = M[j, j]
            b = -2.0 * (c[j] - M[j] @ beta)
            if b > alpha[j]:
                beta[j] = -(b - alpha[j]) / (2 * a)
            elif b < -alpha[j]:
                beta[j] = -(b + alpha[j]) / (2 * a)
        if np.abs(old - beta).max() < ptol:
            break
    return beta


def regularized_fe(res, method, alpha, ceps: float, ptol: float, maxit: int) -> np.ndarray:
    """Penalised fixed effects with the covariance of the unpenalised fit ``res``.

    With ``V`` that covariance, ``M = X'V^-1X`` and ``c = X'V^-1y``: ``method="l1"``
    minimises ``(y - X b)'V^-1(y - X b) + sum_j alpha_j |b_j|`` by coordinate descent, as
    statsmodels; a statsmodels ``Penalty`` minimises ``1/2 (y - X b)'V^-1(y - X b) +
    alpha * penalty(b)`` (the negative penalised log-likelihood).
    """
    model = res.model
    spec = res.cov_params_spec
    prof = model.engine.profile_one(spec.lin(res.cov_re_unscaled, res.vcomp / res.scale),
                                    res._rho, model.reml)  # fmt: skip
    M = prof["A"] / res.scale
    c = M @ prof["beta"]
    if isinstance(method, Penalty):
        method.alpha = alpha
        r = optimize.minimize(
            lambda b: 0.5 * (b @ M @ b - 2 * c @ b) + method.func(b),
            prof["beta"],
            jac=lambda b: M @ b - c + method.deriv(b),
            method="BFGS",
        )
        return r.x
    if not isinstance(method, str) or method.lower() != "l1":
        raise ValueError(
            f"Invalid regularization method {method!r}: use 'l1' or a statsmodels Penalty "
            "(statsmodels.base._penalties.L2, PseudoHuber, ...)"
        )
    alpha = np.broadcast_to(np.asarray(alpha, float), (model.k_fe,))
    return _shooting(M, c, alpha, prof["beta"], ceps, ptol, maxit)


def fit_regularized(model, start_params, method, alpha, ceps, ptol, maxit, fit_kwargs):
    """Unpenalised fit, then penalised fixed effects (see :func:`regularized_fe`); the
    results keep the unpenalised covariance and give the fixed effects that the penalty set
    to zero (``|b_j| < ceps``) a NaN covariance."""
    res = model.fit(start_params=start_params, **fit_kwargs)._results
    beta = regularized_fe(res, method, alpha, ceps, ptol, maxit)
    packed = np.concatenate([beta, res.params[model.k_fe :]])
    llf = loglike(model, packed, profile_fe=False)
    return res.with_fixed_effects(beta, active=np.abs(beta) >= ceps, llf=llf)
