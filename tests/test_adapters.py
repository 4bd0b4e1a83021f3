"""The one adapter (``statsmodels_lmm_ext.adapters``): every accepted results object becomes one
``Fitted`` view, memoised weakly, and nothing is written onto the user's objects."""

import ast
import gc
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext import adapters
from statsmodels_lmm_ext.adapters import as_fitted
from statsmodels_lmm_ext.bootstrap import simulation

from ._fits import fit_mixed

PACKAGE = Path(lmm.__file__).parent


def _sm_sleep(formula="Reaction ~ Days", reml=True, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(formula, lmm.datasets.load("sleepstudy"), groups="Subject", **kw).fit(
            reml=reml
        )


def _sm_oats():
    kw = dict(groups="Block")
    return fit_mixed(
        "grain_yield ~ Variety + nitro_f", lmm.datasets.load("oats"), "statsmodels", **kw
    )


def test_our_results():
    res = lmm.mixedlm("distance ~ age", lmm.datasets.load("orthodont"), groups="Subject").fit()
    fit = as_fitted(res)
    assert as_fitted(res._results) is fit and as_fitted(res) is fit  # wrapper or not: one view
    assert fit.kind == "lmm" and fit.results is res._results
    assert fit.model is res.model and fit.lmm_model is res.model
    assert fit.engine is res.model.engine
    assert fit.variance_model is res.variance_model  # reused, not rebuilt
    assert fit.fe_names == ["Intercept", "age"]
    assert_allclose(fit.beta, res.fe_params)
    assert_allclose(fit.G, res.cov_re)
    assert fit.scale == res.scale and fit.llf == res.llf and fit.reml and fit.converged
    assert fit.npar == res.df_modelwc and fit.nobs == 108 and fit.k_fe == 2
    assert_allclose(fit.criteria(), (res.aic, res.bic))
    assert fit.uses_groups and fit.k_re == 1 and fit.vc_names == ()


def test_statsmodels_mixedlm_is_rebuilt_once():
    res = _sm_sleep(re_formula="~Days")
    fit = as_fitted(res)
    assert as_fitted(res) is fit  # cache hit
    assert fit.kind == "lmm" and fit.model is res.model
    assert isinstance(fit.lmm_model, lmm.MixedLM) and fit.engine is fit.lmm_model.engine
    # every consumer uses that one engine: inference and the bootstrap's specs
    assert lmm.variance_model(res) is fit.variance_model
    assert fit.variance_model.engine is fit.engine
    assert simulation.spec_of(fit).engine is fit.engine
    assert fit.variance_model.theta_names == [
        "G Subject Var",
        "G Subject x Days Cov",
        "G Days Var",
        "scale",
    ]
    assert_allclose(fit.G, res.cov_re)
    assert_allclose(fit.vcomp, res.vcomp)
    assert fit.label.startswith("MixedLM Reaction ~ Days (re: Subject, Days;")


def test_statsmodels_variance_model_equals_ours():
    """statsmodels' and our REML fits of the same model (both tightly converged) give the same
    variance model: the rebuilt model's engine is our engine."""
    d = lmm.datasets.load("oats")
    kw = dict(groups="Block")
    ours = fit_mixed("grain_yield ~ Variety + nitro_f", d, "ours", **kw)
    theirs = _sm_oats()
    vm_o, vm_s = lmm.variance_model(ours), lmm.variance_model(theirs)
    assert vm_s.theta_names == vm_o.theta_names
    assert_allclose(vm_s.theta, vm_o.theta, rtol=1e-5)
    assert_allclose(vm_s.cov_theta("expected"), vm_o.cov_theta("expected"), rtol=1e-4)


@pytest.mark.parametrize("how", ["ols", "wls", "gls"])
def test_regression_results(how):
    d = lmm.datasets.load("sleepstudy")
    if how == "ols":
        res = smf.ols("Reaction ~ Days", d).fit()
    elif how == "wls":
        res = smf.wls("Reaction ~ Days", d, weights=1.0 + d["Days"]).fit()
    else:
        res = smf.gls("Reaction ~ Days", d).fit()
    fit = as_fitted(res)
    assert fit.kind == "ols" and fit.model is res.model and fit.results is res._results
    assert fit.lmm_model is None and fit.engine is None and fit.params is None
    assert_allclose(fit.ols_cov, res.cov_params())
    assert fit.df_resid == res.df_resid == 178
    assert fit.npar == 3 and not fit.uses_groups
    assert fit.label == f"{how.upper()} Reaction ~ Days"
    with pytest.raises(TypeError, match="needs a fitted MixedLM.*got a .*LS regression"):
        fit.variance_model  # noqa: B018
    if how != "ols":  # the bootstrap simulates OLS fits only, and says so
        with pytest.raises(TypeError, match=f"statsmodels OLS result; got a {how.upper()}"):
            lmm.bootstrap.simulate(res)


def test_other_objects_are_refused():
    with pytest.raises(TypeError, match="OLS, WLS or GLS regression result; got str"):
        as_fitted("model")
    d = lmm.datasets.load("sleepstudy")
    glm = smf.glm("Reaction ~ Days", d, family=sm.families.Gaussian()).fit()
    with pytest.raises(TypeError, match="got GLMResults"):
        as_fitted(glm)
    with pytest.raises(TypeError, match="got GLMResults"):
        lmm.anova(glm)


@pytest.mark.parametrize("kind", ["ours", "statsmodels", "ols"])
def test_memo_is_weak(kind):
    d = lmm.datasets.load("sleepstudy")
    if kind == "ours":
        res = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()
    elif kind == "statsmodels":
        res = _sm_sleep()
    else:
        res = smf.ols("Reaction ~ Days", d).fit()
    fit = as_fitted(res)
    inner = weakref.ref(res._results)
    n = len(adapters._CACHE)
    assert inner() in adapters._CACHE
    del res
    gc.collect()
    assert inner() is None  # the view holds no strong reference to its results ...
    assert len(adapters._CACHE) == n - 1  # ... and its entry went with them
    assert fit.results is None


def _keys(res):
    # statsmodels creates ``_cache`` on first reading of a lazy attribute such as ``llf`` (as
    # any user of the results does): its own store, not ours
    return set(res.__dict__), set(res._results.__dict__) - {"_cache"}


def test_nothing_is_written_onto_user_objects():
    res = _sm_oats()
    small = _sm_sleep("Reaction ~ 1")
    large = _sm_sleep("Reaction ~ Days")
    ols = smf.ols("grain_yield ~ Variety + nitro_f", lmm.datasets.load("oats")).fit()
    before = [_keys(r) for r in (res, small, large, ols)]
    as_fitted(res)
    lmm.variance_model(res)
    lmm.anova(res)
    lmm.t_test(res, np.eye(len(res.fe_params))[:1], ddf="kenward-roger")
    lmm.emmeans(res, "Variety")
    lmm.emmeans(ols, "Variety")
    lmm.lrt(small, large)  # REML fits with different fixed effects: refitted by ML
    lmm.bootstrap.simulate(res, 2, seed=1)
    assert [_keys(r) for r in (res, small, large, ols)] == before


def test_nothing_below_adapters_imports_it():
    """DESIGN.md section 7: module-level imports run bottom to top; only the layers above the
    adapter (bootstrap, emmeans, selection, inference.api, the package's __init__) import it at
    module level."""
    above = {"adapters.py", "emmeans.py", "__init__.py", "__main__.py"}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        top = rel.parts[0] in ("bootstrap", "emmeans", "selection")
        if top or (len(rel.parts) == 1 and rel.name in above):
            continue
        if rel.as_posix() == "inference/api.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
                assert not any("adapters" in n for n in names), rel
