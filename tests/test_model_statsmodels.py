"""statsmodels' MixedLM model API on our engine (statsmodels_lmm_ext.model_statsmodels):
fit options, free patterns, loglike/score/hessian, fit_regularized, profile_re — with residual
structures too."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.base import _penalties as penalties
from statsmodels.regression.mixed_linear_model import MixedLMParams
from statsmodels.tools import numdiff
from statsmodels.tools.sm_exceptions import SingularMatrixWarning, ValueWarning

import statsmodels_lmm_ext as lmm


@pytest.fixture(scope="module")
def sleep():
    return lmm.datasets.load("sleepstudy")


def _ar1(sleep, **kw):
    return lmm.mixedlm(
        "Reaction ~ Days", sleep, groups="Subject", cov_struct=lmm.AR1(time="Days"), **kw
    )


# ------------------------------------------------------------------ fit options ---------------


def test_fit_keywords_warn_or_refuse_as_statsmodels(sleep):
    m = _ar1(sleep)
    ref = m.fit()
    with pytest.warns(FutureWarning, match="Argument cov_type not used"):
        res = m.fit(cov_type="hc1")
    assert_allclose(res.llf, ref.llf, rtol=1e-10)
    with pytest.warns(UserWarning, match="ftol not used"):
        m.fit(ftol=1e-3)
    with pytest.warns(ValueWarning, match="niter_sa is currently ignored"):
        m.fit(niter_sa=3)
    with pytest.raises(ValueError, match="method newton not available"):
        m.fit(method=["bfgs", "newton"])
    with pytest.raises(ValueError, match="unknown optimiser 'xyz'.*'cg'"):
        m.fit(method="xyz")
    with pytest.raises(ValueError, match="fit_regularized"):
        m.fit(fe_pen=penalties.L2())


@pytest.mark.parametrize("method", ["cg", ["cg", "bfgs"], "nm"])
def test_every_optimiser_reaches_the_same_fit(sleep, method):
    m = _ar1(sleep, re_formula="1 + Days")
    ref = m.fit()
    res = m.fit(method=method)
    assert_allclose(res.llf, ref.llf, rtol=1e-8)
    assert res.converged


def test_do_cg_false_returns_the_start(sleep):
    m = _ar1(sleep)
    start = {"cov_re": np.array([[500.0]]), "scale": 600.0, "rho": 0.3}
    res = m.fit(start_params=start, do_cg=False)
    assert_allclose(res.cov_re.iloc[0, 0] / res.scale, 500.0 / 600.0, rtol=1e-10)
    assert_allclose(res.cov_struct_params["rho"], 0.3)
    assert res.llf < m.fit().llf


# ------------------------------------------------------------------ free --------------------


def test_free_identity_is_the_variance_component_model_with_ar1(sleep):
    """Independent random intercept and slope (free.cov_re = I) with AR(1) residuals equals the
    model with the two as variance components: same likelihood, variances and their SEs."""
    free = MixedLMParams.from_components(np.ones(2), cov_re=np.eye(2), vcomp=np.zeros(0))
    m1 = _ar1(sleep, re_formula="1 + Days")
    r1 = m1.fit(free=free)
    m2 = lmm.mixedlm(
        "Reaction ~ Days",
        sleep,
        groups="Subject",
        re_formula="0",
        vc_formula={"a": "1", "b": "0 + Days"},
        cov_struct=lmm.AR1(time="Days"),
    )
    r2 = m2.fit()
    assert_allclose(r1.llf, r2.llf, rtol=1e-8)
    assert r1.cov_re.iloc[1, 0] == 0
    assert_allclose(np.diag(r1.cov_re), r2.vcomp, rtol=1e-4)
    assert_allclose(r1.cov_struct_params, r2.cov_struct_params, rtol=1e-4)
    assert_allclose(r1.bse_fe, r2.bse_fe, rtol=1e-5)
    # the covariance held at zero is not estimated: no SE, not counted in the AIC
    cp1, cp2 = r1.covariance_parameters(), r2.covariance_parameters()
    assert cp1.loc["Subject x Days Cov", "Std.Err."] == 0
    assert_allclose(cp1["Std.Err."].iloc[[0, 2, 3, 4]], cp2["Std.Err."], rtol=1e-4)
    assert_allclose(r1.aic, r2.aic, rtol=1e-8)
    assert r1.freepat is free


def test_free_patterns_that_cannot_be_held_are_refused(sleep):
    d = sleep.assign(D2=sleep["Days"] ** 2)
    m = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="1 + Days + D2")
    pat = np.ones((3, 3))
    pat[2, 1] = pat[1, 2] = 0  # 1 and 2 both load on column 0 of the Cholesky factor
    free = MixedLMParams.from_components(np.ones(2), cov_re=pat, vcomp=np.zeros(0))
    with pytest.raises(ValueError, match=r"free.cov_re\[2, 1\].*'Subject x D2 Cov'|D2"):
        m.fit(free=free)
    with pytest.raises(ValueError, match="cov_re of shape"):
        m.fit(free=MixedLMParams.from_components(np.ones(2), cov_re=np.eye(2)))
    fixed = MixedLMParams.from_components(np.ones(2), cov_re=np.diag([0.0, 1, 1]))
    with pytest.raises(ValueError, match="start_params"):
        m.fit(free=fixed)


# ------------------------------------------------------------------ loglike, score, hessian --


@pytest.mark.parametrize("reml", [True, False])
def test_loglike_score_hessian_with_ar1(sleep, reml):
    """Packed vectors carry the structure's parameter: the score is the gradient of loglike and
    the Hessian the derivative of the score (central differences)."""
    m = _ar1(sleep, re_formula="1 + Days", use_sqrt=False)
    res = m.fit(reml=reml)
    x = np.asarray(res.params) * np.r_[1, 1, 1.1, 0.9, 1.2, 0.8]  # away from the maximum
    assert_allclose(m.loglike(np.asarray(res.params)), res.llf, rtol=1e-12)
    for profile_fe in (True, False):
        v = x if not profile_fe else x[2:]

        def ll(v, profile_fe=profile_fe):
            return m.loglike(v, profile_fe=profile_fe)

        g = m.score(v, profile_fe=profile_fe)
        assert_allclose(g, numdiff.approx_fprime(v, ll, centered=True), rtol=1e-5, atol=1e-5)
    H, sing = m.hessian(x)
    Hn = numdiff.approx_fprime(x, lambda v: m.score(v, profile_fe=False), centered=True)
    assert not sing
    assert_allclose(H, Hn, rtol=1e-5, atol=1e-5 * np.abs(H).max())
    with pytest.raises(ValueError, match="no parameters for AR1.*rho"):
        m.loglike(res.params_object)


def test_score_on_the_square_root_scale(sleep):
    m = lmm.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="1 + Days")
    res = m.fit()
    psi = res.cov_re_unscaled.to_numpy() * 1.3
    L = np.linalg.cholesky(psi)
    u = L[np.tril_indices(2)]

    def ll(u):
        Lu = np.zeros((2, 2))
        Lu[np.tril_indices(2)] = u
        po = MixedLMParams.from_components(res.fe_params.values, cov_re=Lu @ Lu.T)
        return m.loglike(po)

    po = MixedLMParams.from_components(res.fe_params.values, cov_re=psi)
    assert_allclose(m.score(po), numdiff.approx_fprime(u, ll, centered=True), rtol=1e-5)


# ------------------------------------------------------------------ fit_regularized ----------


def test_fit_regularized_with_ar1(sleep):
    m = _ar1(sleep)
    ref = m.fit()
    r0 = m.fit_regularized(alpha=0)
    assert_allclose(r0.fe_params, ref.fe_params, rtol=1e-8)
    assert_allclose(r0.cov_re, ref.cov_re)
    big = m.fit_regularized(alpha=[0.0, 1e6])
    assert big.fe_params.iloc[1] == 0
    assert np.isnan(big.bse_fe.iloc[1]) and np.isfinite(big.bse_fe.iloc[0])
    assert big.llf < ref.llf
    assert "Days" in big.summary().as_text()
    l2 = m.fit_regularized(method=penalties.L2(), alpha=1e5)
    assert abs(l2.fe_params.iloc[1]) < abs(ref.fe_params.iloc[1])
    with pytest.raises(ValueError, match="Invalid regularization method 'l2'"):
        m.fit_regularized(method="l2")


# ------------------------------------------------------------------ profile_re ----------------


def test_profile_re_with_ar1_peaks_at_the_estimate(sleep):
    res = _ar1(sleep).fit(reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof = res.profile_re(0, "re", num_low=2, dist_low=100, num_high=2, dist_high=100)
    assert prof.shape == (5, 2)
    assert_allclose(prof[2], [res.cov_re.iloc[0, 0], res.llf], rtol=1e-6)
    assert np.all(prof[:, 1] <= res.llf + 1e-6)


def test_nested_dict_exog_vc_warns_as_statsmodels():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 4)
    X = np.ones((80, 1))
    y = rng.normal(size=80) + rng.normal(size=20)[g]
    vc = {"a": {k: np.ones((4, 1)) for k in range(20)}}
    with pytest.warns(FutureWarning, match="Using deprecated variance components format"):
        m = lmm.MixedLM(y, X, g, exog_vc=vc)
    ref = lmm.MixedLM.from_formula(
        "y ~ 1", pd.DataFrame({"y": y, "g": g}), groups="g", re_formula="0", vc_formula={"a": "1"}
    )
    assert_allclose(m.fit().llf, ref.fit().llf, rtol=1e-8)


def test_get_distribution_refuses_residual_structures(sleep):
    res = _ar1(sleep).fit()
    with pytest.raises(NotImplementedError, match="AR1.*results.simulate"):
        res.model.get_distribution(np.asarray(res.params), res.scale, None)


def test_score_warns_on_a_singular_random_effects_covariance(sleep):
    m = lmm.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="1 + Days")
    po = MixedLMParams.from_components(np.zeros(2), cov_re=np.ones((2, 2)))
    with pytest.warns(SingularMatrixWarning, match="singular"):
        m.score(po)
