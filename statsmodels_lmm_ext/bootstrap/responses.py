"""New responses for a fitted model: simulate them, and refit the model to one of them."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import OLS

from .._threads import blas_threads
from .random import check_memory, check_nsim, normals, seed_sequence
from .simulation import fitted_for, spec_of


@blas_threads()
def simulate(results, nsim: int = 1, *, seed=None, use_random_effects: bool = False):
    """Simulate responses from a fitted model.

    Parameters
    ----------
    results : fitted model
        Ours, a statsmodels MixedLM result or a statsmodels OLS result.
    nsim : int
    seed : None, int, SeedSequence or Generator
        Column ``j`` is drawn with ``numpy.random.default_rng(SeedSequence(seed).spawn(nsim)[j])``.
    use_random_effects : bool
        ``False``: new random effects and residuals, ``y = X beta + chol(V_i) z``.  ``True``:
        condition on the predicted random effects, ``y = X beta + Z b_hat + chol(sigma^2 C_i) z``
        (lme4's ``use.u = TRUE``).

    Returns
    -------
    ndarray (nobs, nsim)
        In the model's row order.

    Notes
    -----
    Each group is simulated through the Cholesky factor of its covariance matrix (batched over
    groups of equal size; no ``N x N`` matrix), so random effects, variance components and the
    residual correlation structure are all respected.
    """
    nsim = check_nsim(nsim)
    spec = spec_of(fitted_for(results), conditional=use_random_effects)
    # the normals and the responses: two (nobs, nsim) arrays
    check_memory(nsim, 16 * spec.nobs, f"its normals and response ({spec.nobs} values each)")
    seeds = seed_sequence(seed).spawn(nsim)
    Z, _ = normals(seeds, spec.nobs)
    return spec.simulate(Z, conditional=use_random_effects)


def _model_with_endog(model, y: np.ndarray):
    """A shallow copy of our MixedLM with a new response; the engine keeps its y-free parts."""
    new = copy.copy(model)
    new.endog = y
    new._engine = model.engine.with_endog(y)
    new.data = copy.copy(model.data)
    new.data.endog = y
    orig = model.data.orig_endog
    if isinstance(orig, pd.Series | pd.DataFrame):
        new.data.orig_endog = pd.Series(y, index=orig.index, name=model.endog_names)
    else:
        new.data.orig_endog = y
    return new


def _check_endog(endog, nobs: int) -> np.ndarray:
    y = np.asarray(endog, dtype=float)
    if y.ndim != 1 or len(y) != nobs:
        raise ValueError(
            f"endog must be a vector of length nobs = {nobs}; got shape {np.shape(endog)}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"endog has non-finite values (first at row {np.flatnonzero(~np.isfinite(y))[0]})"
        )
    return y


@blas_threads()
def refit(results, endog, *, reml: bool | None = None):
    """Refit the same model to a new response, warm-started at the current estimates.

    Parameters
    ----------
    results : fitted model
        Ours or a statsmodels MixedLM result (refitted as our model with independent
        residuals), or a statsmodels OLS result.
    endog : array_like (nobs,)
        The new response, in the model's row order (e.g. a column of :func:`simulate`).
    reml : bool, optional
        Default: the method of ``results``.

    Returns
    -------
    MixedLMResultsWrapper (or statsmodels OLS results)
    """
    fit = fitted_for(results)
    y = _check_endog(endog, fit.nobs)
    if fit.kind == "ols":
        exog = pd.DataFrame(fit.model.exog, columns=list(fit.model.exog_names))
        return OLS(pd.Series(y, name=fit.model.endog_names), exog).fit()
    reml = fit.reml if reml is None else bool(reml)
    model = _model_with_endog(fit.lmm_model, y)
    spec = spec_of(fit)
    spec.reml = reml
    # the batched refit (warm start, variances at zero restarted) finds the maximum; fit()
    # then starts there and builds the full results
    best = spec.fit_many(y[:, None], want_params=True)
    if best["converged"][0]:
        start = spec.params.pack(best["psi"][0], best["vc"][0], best["rho"][0])
    else:
        start = spec.params.pack(spec.psi, spec.vc, spec.rho)
    return model.fit(reml=reml, start_params=start)
