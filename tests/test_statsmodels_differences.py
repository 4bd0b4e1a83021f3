"""The intended differences between statsmodels' own MixedLM tests and our MixedLM.

Each test backs one entry of ``tests/_statsmodels_suite.py::INTENDED_DIFFERENCES``: our value
agrees with lme4 (``tests/results/lme4_statsmodels_suite.json`` and
``tests/results/lme4_small_reml.json``, written by the R scripts beside them) or with
statsmodels' own exact formula, where statsmodels' test expects something else.
"""

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.regression.mixed_linear_model import MixedLM as SMMixedLM
from statsmodels.regression.mixed_linear_model import MixedLMParams
from statsmodels.tools import numdiff
from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning

import statsmodels_lmm_ext as lmm

from ._statsmodels_suite import (
    INTENDED_DIFFERENCES,
    SUITE_PATH,
    load_suite,
    run_without,
)
from .conftest import load_reference

LME4 = load_reference("lme4_statsmodels_suite.json")


needs_suite = pytest.mark.skipif(
    not os.path.exists(SUITE_PATH), reason="statsmodels' tests are not installed"
)


@needs_suite
def test_every_intended_difference_names_a_suite_test_and_a_backing_test():
    suite = load_suite()
    here = globals()
    for key, (reason, backing) in INTENDED_DIFFERENCES.items():
        obj = suite
        for part in key.split("[")[0].split("::"):
            obj = getattr(obj, part)
        assert callable(obj), key
        assert reason and backing.split("::")[-1] in here, backing


# ------------------------------------------------------------------ fixed-effect SEs ---------


@pytest.mark.parametrize("fit", ["Y_on_X", "X_on_Y"])
def test_reml_fixed_effect_ses_are_lme4s(fit):
    """test_summary_col: 15 rows in 3 groups, REML.  lme4's vcov() (and SAS) give
    (X'V^-1X)^-1 at the REML estimate; so do we.  statsmodels inverts the joint Hessian of its
    profile likelihood in (beta, Psi), which is 11-58% larger here."""
    ref = LME4["summary_col"][fit]
    data = pd.DataFrame(LME4["summary_col"]["data"])
    formula = "Y ~ X" if fit == "Y_on_X" else "X ~ Y"
    ours = lmm.mixedlm(formula, data, groups="IDS").fit()
    # lme4 fixed effects and log-likelihood to 1e-5 relative; SEs and variances to 1e-4
    assert_allclose(ours.fe_params, list(ref["fe_params"].values()), rtol=1e-5)
    assert_allclose(ours.bse_fe, list(ref["se_fe"].values()), rtol=1e-4)
    assert_allclose(ours.cov_re.iloc[0, 0], ref["variances"]["IDS"], rtol=1e-4)
    assert_allclose(ours.scale, ref["scale"], rtol=1e-4)
    assert_allclose(ours.llf, ref["loglike"], rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SMMixedLM.from_formula(formula, data, groups="IDS").fit()
    ratio = theirs.bse_fe.values / ours.bse_fe.values
    assert np.all((ratio > 1.11) & (ratio < 1.59)), ratio


@pytest.mark.parametrize("name", ["lme00", "lme03", "lme08"])
def test_fixed_effect_ses_match_lme4_on_statsmodels_data(name):
    """statsmodels' own lme data sets (100 groups): our SEs are lme4's to 1e-4 (statsmodels'
    differ by up to 1.2% on lme03, within its own test's tolerance)."""
    ref = load_reference("lme4_small_reml.json")["fits"][name]
    d = ref["data"]
    X = np.column_stack([d["exog_fe"][c] for c in ref["exog_fe"]])
    Z = np.column_stack([d["exog_re"][c] for c in ref["exog_re"]])
    res = lmm.MixedLM(np.asarray(d["endog"]), X, np.asarray(d["groups"]), Z).fit()
    assert_allclose(res.fe_params, list(ref["fe_params"].values()), rtol=1e-5)
    assert_allclose(res.bse_fe, list(ref["se_fe"].values()), rtol=1e-4)
    p = X.shape[1]
    assert_allclose(np.asarray(res.cov_params())[:p, :p], ref["vcov_fe"], rtol=2e-4)
    assert_allclose(np.asarray(res.cov_re), ref["cov_re"], rtol=1e-3)
    assert_allclose(res.llf, ref["loglike_reml"], rtol=1e-6)


# ------------------------------------------------------------------ singular fit --------------


def _singular_data():
    data = pd.DataFrame(LME4["singular"]["data"])
    # the data test_singular generates
    rs = np.random.RandomState(3423)
    assert_allclose(data[["Y", "X"]].to_numpy(), rs.randn(100, 2), rtol=1e-14)
    return data


def test_singular_data_has_an_interior_reml_maximum():
    """test_singular: statsmodels stops at a zero group variance (llf = inf) and warns.  The
    REML log-likelihood has an interior maximum at 5.7e-4, which lme4 and we find (no warning);
    the ML maximum is on the boundary, where we warn as statsmodels does."""
    data = _singular_data()
    ref = LME4["singular"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularMatrixWarning)
        reml = lmm.MixedLM.from_formula("Y ~ X", data, groups=data["class"]).fit()
    # the likelihood is flat in the group variance: llf to 1e-7, the variance to 2e-2
    assert_allclose(reml.llf, ref["REML"]["loglike"], rtol=1e-7)
    assert_allclose(reml.cov_re.iloc[0, 0], ref["REML"]["variances"]["class"], rtol=2e-2)
    assert_allclose(reml.fe_params, list(ref["REML"]["fe_params"].values()), rtol=1e-5)
    assert_allclose(reml.bse_fe, list(ref["REML"]["se_fe"].values()), rtol=1e-4)
    m = reml.model
    assert m.loglike(reml.params_object) > m.loglike(MixedLMParams.from_components(
        fe_params=reml.fe_params.values, cov_re=np.zeros((1, 1)), vcomp=np.zeros(0)))  # fmt: skip
    with pytest.warns(SingularMatrixWarning, match="effects"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ml = lmm.MixedLM.from_formula("Y ~ X", data, groups=data["class"]).fit(reml=False)
    assert ref["ML"]["singular"] and ref["ML"]["variances"]["class"] == 0
    assert ml.cov_re.iloc[0, 0] < 1e-8
    assert_allclose(ml.llf, ref["ML"]["loglike"], rtol=1e-7)


# ------------------------------------------------------------------ REML AIC / BIC ------------


def test_pastes_reml_information_criteria():
    """test_pastes_vcomp expects NaN AIC/BIC for REML fits.  We give the REML criteria: AIC as
    lme4's AIC() of the REML fit (and nlme, SAS), BIC with n = N - p (nlme, SAS); ML values as
    lme4.  The test's other assertions pass."""
    data = pd.DataFrame(LME4["pastes"]["data"])
    vcf = {"cask": "0 + cask"}
    for method in ("REML", "ML"):
        ref = LME4["pastes"][method]
        res = lmm.MixedLM.from_formula(
            "strength ~ 1", groups="batch", re_formula="1", vc_formula=vcf, data=data
        ).fit(reml=method == "REML")
        assert_allclose(res.llf, ref["loglike"], rtol=1e-6)
        assert_allclose(res.aic, ref["AIC"], rtol=1e-6)
        n = len(data) - (1 if method == "REML" else 0)
        assert_allclose(res.bic, -2 * ref["loglike"] + np.log(n) * ref["npar"], rtol=1e-6)
        if method == "ML":
            assert_allclose(res.bic, ref["BIC"], rtol=1e-6)
        assert_allclose(res.cov_re.iloc[0, 0], ref["variances"]["batch"], rtol=1e-3)
        assert_allclose(res.vcomp, [ref["variances"]["batch:cask"]], rtol=1e-3)
    if not os.path.exists(SUITE_PATH):
        return  # statsmodels' tests are not installed: its other assertions cannot run
    run_without(
        load_suite().TestMixedLM.test_pastes_vcomp,
        ["assert_equal(result.aic, np.nan)", "assert_equal(result.bic, np.nan)"],
    )


# ------------------------------------------------------------------ Hessian --------------------


def _numdiff_model():
    """The data and model of test_compare_numdiff (statsmodels' test_lme.py)."""
    n_grp, grpsize, k_fe, k_re = 200, 5, 3, 2
    rs = np.random.RandomState(3558)
    exog_fe = rs.normal(size=(n_grp * grpsize, k_fe))
    exog_re = rs.normal(size=(n_grp * grpsize, k_re))
    exog_re[:, 0] = 1
    exog_vc = rs.normal(size=(n_grp * grpsize, 3))
    slopes = rs.normal(size=(n_grp, k_re))
    slopes[:, -1] *= 2
    slopes = np.kron(slopes, np.ones((grpsize, 1)))
    slopes_vc = rs.normal(size=(n_grp, 3))
    slopes_vc = np.kron(slopes_vc, np.ones((grpsize, 1)))
    slopes_vc[:, -1] *= 2
    endog = (
        exog_fe.sum(1)
        + (slopes * exog_re).sum(1)
        + (slopes_vc * exog_vc).sum(1)
        + rs.normal(size=n_grp * grpsize)
    )
    groups = np.kron(range(n_grp), np.ones(grpsize))
    vc = {"a": {}, "b": {}}
    for i in range(n_grp):
        ix = np.flatnonzero(groups == i)
        vc["a"][i] = exog_vc[ix, 0:2]
        vc["b"][i] = exog_vc[ix, 2:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ours = lmm.MixedLM(endog, exog_fe, groups, exog_re, exog_vc=vc, use_sqrt=False)
        theirs = SMMixedLM(endog, exog_fe, groups, exog_re, exog_vc=vc, use_sqrt=False)
    return ours, theirs


def test_hessian_is_statsmodels_analytic_hessian():
    """test_compare_numdiff[False-False-False] (ML, no square roots, fixed effects given):
    statsmodels checks its analytic Hessian at the MLE against approx_hess with rtol 1e-3.  Our
    Hessian is statsmodels' analytic one and the derivative of our exact score, at a better
    maximum than statsmodels'.  (Before the engine's numerical conditioning, the rounding of
    our log-likelihood made approx_hess miss one small entry by 1.2e-3 and the statsmodels test
    was an intended difference; it now passes, and the bound below is statsmodels' own.)"""
    ours, theirs = _numdiff_model()
    res = ours.fit(reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = theirs.fit(reml=False)
    po = res.params_object
    H, sing = ours.hessian(po)
    H_sm, sing_sm = theirs.hessian(po)
    assert not sing and not sing_sm
    assert_allclose(H, H_sm, rtol=1e-10, atol=1e-10 * np.abs(H_sm).max())
    assert_allclose(ours.loglike(po, profile_fe=False), theirs.loglike(po, profile_fe=False))
    x = po.get_packed(use_sqrt=False, has_fe=True)

    def score(v):
        return ours.score(MixedLMParams.from_packed(v, 3, 2, False, True), profile_fe=False)

    def negll(v):
        return -ours.loglike(MixedLMParams.from_packed(v, 3, 2, False, True), profile_fe=False)

    assert_allclose(H, numdiff.approx_fprime(x, score, centered=True), rtol=1e-5, atol=1e-4)
    # statsmodels' check: approx_hess at our estimate within rtol 1e-3
    rel = np.abs(-H - numdiff.approx_hess(x, negll)) / np.abs(H)
    assert rel.max() < 1e-3
    # our estimate is the better maximum: |score| 3e-6 against 8e-3 at statsmodels' estimate
    assert np.abs(score(x)).max() < 1e-5
    assert np.abs(ours.score(ref.params_object, profile_fe=False)).max() > 1e-3
    assert res.llf >= ref.llf
