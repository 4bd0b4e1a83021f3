"""Likelihood-ratio tests (``lmm.bootstrap.comparison``) against R (lme4, nlme), nesting checks.

Reference values: tests/results/lrt_bootstrap.json, written by tests/results/lrt_bootstrap.R
(R 4.2.2, lme4 1.1.31, nlme 3.1.162, pbkrtest 0.5.2).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm

from ._lrt_cases import CASES, REF, _data, _fit, _reml_oneway


@pytest.fixture(scope="module")
def fits():
    cache = {}
    for name, c in CASES:
        d = _data(name)
        cache[name] = (_fit(c["python"]["small"], d), _fit(c["python"]["large"], d))
    return cache


@pytest.mark.parametrize("name,ref", CASES, ids=[c[0] for c in CASES])
def test_lrt_matches_r(fits, name, ref):
    small, large = fits[name]
    t = lmm.bootstrap.lrt(small, large)
    # R: 2 (logLik(large) - logLik(small)) from lme4 / nlme / lm on the same models
    assert_allclose(t.llf_small, ref["llf_small"], rtol=0, atol=1e-6)
    assert_allclose(t.llf_large, ref["llf_large"], rtol=0, atol=1e-6)
    assert_allclose(t.lrt, ref["lrt"], rtol=0, atol=1e-6)
    assert t.df == ref["df"]
    assert_allclose(t.pvalue, ref["p_chi2"], rtol=1e-5)
    assert t.method == ("REML" if name.endswith("reml") else "ML")
    frame = t.summary_frame()
    assert list(frame.index) == ["small", "large"]
    assert list(frame["npar"]) == [ref["df_small"], ref["df_large"]]
    # AIC and BIC as R's AIC()/BIC() (nlme's REML BIC uses N - p observations)
    assert_allclose(frame["AIC"], [ref["aic_small"], ref["aic_large"]], atol=1e-5)
    if "bic_small" in ref:
        assert_allclose(frame["BIC"], [ref["bic_small"], ref["bic_large"]], atol=1e-5)
    mix = ref.get("p_mixture", ref.get("p_mixture_chi1_chi2"))
    if mix is None:
        assert np.isnan(t.pvalue_mixture)  # correlation / fixed-effect tests: not on a boundary
    else:
        assert_allclose(t.pvalue_mixture, mix, rtol=1e-5)


def test_lrt_order_and_r_anova_table(fits):
    small, large = fits["sleep_fixed"]
    a = lmm.bootstrap.lrt(small, large)
    b = lmm.bootstrap.lrt(large, small)  # like anova(), either order
    assert a.lrt == b.lrt
    r = REF["sleep_fixed"]["anova"]  # lme4's anova(sf0, sf1)
    frame = a.summary_frame()
    assert_allclose(frame["deviance"], r["deviance"], atol=1e-5)
    assert_allclose(frame["llf"], r["logLik"], atol=1e-6)
    assert_allclose(frame["chi2"].iloc[1], r["Chisq"][1], atol=1e-6)
    assert_allclose(frame["Pr(>chi2)"].iloc[1], r["Pr(>Chisq)"][1], rtol=1e-5)
    text = str(a)
    assert "Likelihood-ratio test (ML)" in text and "Reaction ~ Days" in text


def test_reml_fits_with_different_fixed_effects_are_refitted_by_ml():
    d = _data("sleep_fixed")
    small = lmm.mixedlm("Reaction ~ 1", d, groups="Subject").fit()
    large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()
    t = lmm.bootstrap.lrt(small, large)
    assert t.method == "ML"
    assert any("refitted by ML" in n for n in t.notes)
    assert_allclose(t.lrt, REF["sleep_fixed"]["lrt"], atol=1e-6)
    # the user's REML fits and models are untouched
    assert small.method == "REML" and small.model.reml and large.model.reml
    # forcing ML for a variance-component test refits the REML fits as well
    t2 = lmm.bootstrap.lrt(*_reml_oneway(), reml=False)
    assert t2.method == "ML"
    assert_allclose(t2.lrt, REF["oneway_re"]["lrt"], atol=1e-6)
    with pytest.raises(ValueError, match="same fixed effects"):
        lmm.bootstrap.lrt(small, large, reml=True)


def test_statsmodels_mixedlm_inputs():
    d = _data("sleep_slope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s_sm = smf.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit(reml=False)
    t = lmm.bootstrap.lrt(s_sm, large)
    # statsmodels' own optimiser stops within ~1e-7 of the maximum
    assert_allclose(t.lrt, REF["sleep_slope"]["lrt"], atol=1e-5)
    assert_allclose(t.pvalue_mixture, REF["sleep_slope"]["p_mixture_chi1_chi2"], rtol=1e-4)
    # statsmodels REML fits with different fixed effects are refitted (by our engine) by ML
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s0 = smf.mixedlm("Reaction ~ 1", d, groups="Subject").fit()
        s1 = smf.mixedlm("Reaction ~ Days", d, groups="Subject").fit()
    t = lmm.bootstrap.lrt(s0, s1)
    assert t.method == "ML"
    assert_allclose(t.lrt, REF["sleep_fixed"]["lrt"], atol=1e-6)


# ------------------------------------------------------------------------------ bad input


def test_bad_input_messages():
    d = _data("sleep_fixed")
    large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    small = lmm.mixedlm("Reaction ~ 1", d, groups="Subject").fit(reml=False)
    with pytest.raises(ValueError, match="different data: 179 rows"):
        lmm.bootstrap.lrt(smf.ols("Reaction ~ 1", d.iloc[1:]).fit(), large)
    d2 = d.assign(Reaction=d["Reaction"] + 1.0)
    with pytest.raises(ValueError, match="different responses"):
        lmm.bootstrap.lrt(smf.ols("Reaction ~ 1", d2).fit(), large)
    d3 = d.assign(noise=np.arange(len(d)) % 7)
    with pytest.raises(ValueError, match="fixed effects are not in the column space"):
        lmm.bootstrap.lrt(smf.ols("Reaction ~ noise", d3).fit(), large)
    other = lmm.mixedlm("Reaction ~ 1", d.assign(g=np.arange(180) % 3), groups="g")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its group variance is 0: irrelevant here
        other = other.fit(reml=False)
    with pytest.raises(ValueError, match="group the rows differently"):
        lmm.bootstrap.lrt(other, large)
    with pytest.raises(ValueError, match="same number|small model needs fewer"):
        lmm.bootstrap.lrt(large, large)
    with pytest.raises(ValueError, match="swap"):
        lmm.bootstrap.pb_lrt(small, large, nsim=10)
    for nsim in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="nsim must be a positive integer"):
            lmm.bootstrap.pb_lrt(large, small, nsim=nsim)
    with pytest.raises(TypeError, match="statsmodels OLS result; got"):
        lmm.bootstrap.lrt("model", large)
    with pytest.raises(ValueError, match="large model is an OLS fit"):
        lmm.bootstrap.lrt(small, smf.ols("Reaction ~ Days + I(Days**2)", d).fit())
    with pytest.raises(TypeError, match="seed must be"):
        lmm.bootstrap.pb_lrt(large, small, nsim=5, seed="x")


def test_not_nested_residual_structures():
    d = _data("fev_ar1_vs_indep")
    f = "FEV1 ~ ARMCD + AVISIT"
    cs = lmm.mixedlm(f, d, groups="USUBJID", re_formula="0", cov_struct=lmm.CompoundSymmetry())
    ar = lmm.mixedlm(
        f, d, groups="USUBJID", re_formula="1", cov_struct=lmm.AR1(time="VISITN")
    ).fit(reml=False)
    with pytest.raises(ValueError, match="not a special case"):
        lmm.bootstrap.lrt(cs.fit(reml=False), ar)


def test_lrt_accepts_pandas_reordered_index():
    """Row labels do not matter, only the row order (the same data frame)."""
    d = lmm.datasets.load("oneway")
    d.index = pd.RangeIndex(100, 120)
    small = smf.ols("y ~ 1", d).fit()
    large = lmm.mixedlm("y ~ 1", d, groups="group").fit(reml=False)
    assert lmm.bootstrap.lrt(small, large).df == 1
