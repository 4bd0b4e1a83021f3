"""Fits against nlme::gls / nlme::lme.

Reference values: tests/results/nlme_structures.json, produced by tests/results/nlme_structures.R
(nlme 3.1.162).  Tolerances per the issue: fixed effects rtol 1e-5, their SEs 1e-4,
log-likelihood 1e-6 relative, variance and correlation parameters 1e-3.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from tests._structs import structure_from_spec
from tests.conftest import load_reference

CASES = load_reference("nlme_structures.json")["cases"]


def fit_case(case, shuffle=False, engine="auto"):
    data = lmm.datasets.load(case["dataset"])
    if shuffle:
        data = data.sample(frac=1.0, random_state=20261121)
    model = lmm.mixedlm(
        case["python_formula"],
        data,
        groups=case["groups"],
        re_formula=case["re_formula"],
        cov_struct=structure_from_spec(case["structure"]),
        missing="drop",
        engine=engine,
    )
    return model.fit(reml=case["reml"])


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request):
    case = CASES[request.param]
    return case, fit_case(case)


def test_loglik(fitted):
    case, res = fitted
    assert res.converged
    assert_allclose(res.llf, case["loglik"], rtol=1e-6)
    assert res.nobs == case["nobs"]
    assert res.model.n_groups == case["ngroups"]


def test_fixed_effects(fitted):
    case, res = fitted
    assert list(res.fe_params.index) == case["fe_names"]
    assert_allclose(res.fe_params.values, case["fe_params"], rtol=1e-5, atol=1e-8)


def test_fixed_effect_se(fitted):
    case, res = fitted
    se = res.bse_fe.values
    if case["groups"] is not None and case["re_formula"] == "0" and not case["reml"]:
        # nlme::gls (only gls) scales the ML covariance of beta by N / (N - p), i.e. uses the
        # REML-type sigma^2; lme, lme4, statsmodels and we use the ML sigma^2.
        n, p = case["nobs"], len(case["fe_names"])
        se = se * np.sqrt(n / (n - p))
    assert_allclose(se, case["bse_fe"], rtol=1e-4)


def test_covariance_parameters(fitted):
    case, res = fitted
    assert_allclose(res.scale, case["sigma2"], rtol=1e-3)
    for name, value in case["corr_params"].items():
        assert_allclose(res.cov_struct_params[name], value, rtol=1e-3, atol=1e-4)
    if case["re_cov"] is not None:
        assert_allclose(np.asarray(res.cov_re), np.asarray(case["re_cov"]), rtol=1e-3, atol=1e-6)


def test_information_criteria(fitted):
    case, res = fitted
    # nlme counts fixed effects and all covariance parameters (sigma^2 included); REML BIC
    # uses N - p.
    assert_allclose(res.aic, case["aic"], rtol=1e-6)
    assert_allclose(res.bic, case["bic"], rtol=1e-6)


@pytest.mark.parametrize("name", ["fev_gls_ar1_reml", "fev_lme_ri_ar1_reml"])
def test_shuffled_rows_with_missing_visits(name):
    """Rows in random order, missing visits: positions, not row order, define C_i."""
    case = CASES[name]
    res = fit_case(case, shuffle=True)
    assert_allclose(res.llf, case["loglik"], rtol=1e-6)
    assert_allclose(res.fe_params.values, case["fe_params"], rtol=1e-5)
    assert_allclose(res.cov_struct_params["rho"], case["corr_params"]["rho"], rtol=1e-3)
    # the fitted values keep the caller's row labels and order
    data = lmm.datasets.load(case["dataset"]).sample(frac=1.0, random_state=20261121)
    data = data.dropna(subset=["FEV1"])
    assert list(res.fittedvalues.index) == list(data.index)


def test_ar1_order_only_differs():
    """nlme's corAR1(form = ~1 | id) ignores gaps; ours (and corAR1(~ VISITN)) keep them."""
    case = CASES["fev_gls_ar1_reml"]
    assert abs(case["loglik"] - case["loglik_ar1_order_only"]) > 0.5
    assert_allclose(case["loglik"], case["loglik_car1_check"], rtol=1e-9)


@pytest.mark.parametrize("name", ["orthodont_ri_ar1_reml", "fev_lme_ri_ar1_reml"])
def test_pattern_and_group_engines_agree(name):
    case = CASES[name]
    a = fit_case(case, engine="pattern")
    b = fit_case(case, engine="group")
    assert a.model.engine.mode == "pattern" and b.model.engine.mode == "group"
    assert_allclose(a.llf, b.llf, rtol=1e-10)
    assert_allclose(a.fe_params, b.fe_params, rtol=1e-6)
    assert_allclose(a.bse_fe, b.bse_fe, rtol=1e-6)
