"""Shared model fits for tests comparing against R."""

import warnings

import statsmodels.formula.api as smf

import statsmodels_lmm_ext as lmm


def fit_mixed(formula, data, how, **kw):
    """REML fit with ours (``how="ours"``) or with plain statsmodels (``"statsmodels"``).

    statsmodels fits are tightly converged, so that comparisons test the inference and not
    statsmodels' default optimiser tolerance (its default L-BFGS stops ~1e-4 away in G on the
    unbalanced Oats case).
    """
    if how == "statsmodels":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return smf.mixedlm(formula, data, **kw).fit(reml=True, method=["bfgs"], gtol=1e-10)
    return lmm.mixedlm(formula, data, **kw).fit(reml=True)
