"""The results object behaves like statsmodels MixedLMResults, with labels."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import statsmodels_lmm_ext as lmm


@pytest.fixture(scope="module")
def res():
    d = lmm.datasets.load("orthodont")
    return lmm.mixedlm(
        "distance ~ age * Sex",
        d,
        groups="Subject",
        re_formula="1 + age",
        cov_struct=lmm.AR1(time="visit"),
    ).fit()


def test_labelled_attributes(res):
    names = ["Intercept", "Sex[T.Male]", "age", "age:Sex[T.Male]"]
    assert list(res.fe_params.index) == names
    assert list(res.bse_fe.index) == names
    assert list(res.params.index) == names + ["Subject Var", "Subject x age Cov", "age Var", "rho"]
    assert list(res.tvalues.index) == list(res.params.index)
    assert list(res.pvalues.index) == list(res.params.index)
    ci = res.conf_int()
    assert isinstance(ci, pd.DataFrame) and list(ci.index) == list(res.params.index)
    assert res.cov_params().shape == (8, 8)
    assert list(res.cov_struct_params.index) == ["rho"]
    assert isinstance(res.cov_re, pd.DataFrame)
    assert res.cov_re.shape == (2, 2)
    assert len(res.bse) == 8 and np.isfinite(res.bse).all()
    assert len(res.bse_re) == 3
    assert res.vcomp.shape == (0,)
    assert res.method == "REML"


def test_cov_params_blocks(res):
    cov = res.cov_params()
    assert_allclose(np.sqrt(np.diag(cov))[:4], res.bse_fe, rtol=1e-12)
    vm = res.variance_model
    # rho's variance is the inverse observed information's
    assert_allclose(cov.iloc[-1, -1], vm.cov_theta("observed")[-1, -1], rtol=1e-10)


def test_blups_account_for_residual_correlation(res):
    """b_i = G Z_i' V_i^-1 (y_i - X_i beta), with V_i built densely for one group."""
    m = res.model
    g = "F03"
    rows = np.asarray(m.row_indices[g])
    t = m.positions[rows, 0]
    rho = res.cov_struct_params["rho"]
    C = rho ** np.abs(t[:, None] - t[None, :])
    Z = m.exog_re[rows]
    G = np.asarray(res.cov_re)
    V = Z @ G @ Z.T + res.scale * C
    r = m.endog[rows] - m.exog[rows] @ res.fe_params.values
    b = G @ Z.T @ np.linalg.solve(V, r)
    assert_allclose(res.random_effects[g].values, b, rtol=1e-8)
    cov_b = G - G @ Z.T @ np.linalg.solve(V, Z @ G)
    assert_allclose(res.random_effects_cov[g].values, cov_b, rtol=1e-8, atol=1e-12)
    fitted = m.exog[rows] @ res.fe_params.values + Z @ b
    assert_allclose(res.fittedvalues.values[rows], fitted, rtol=1e-10)
    assert_allclose(res.resid.values[rows], m.endog[rows] - fitted, rtol=1e-8, atol=1e-10)


def test_predict(res):
    d = lmm.datasets.load("orthodont")
    assert_allclose(res.predict(), res.model.exog @ res.fe_params.values)
    new = pd.DataFrame({"age": [9.0, 13.0], "Sex": ["Female", "Male"]})
    p = res.predict(exog=new)
    b = res.fe_params
    assert_allclose(
        np.asarray(p),
        [
            b["Intercept"] + 9 * b["age"],
            b["Intercept"] + b["Sex[T.Male]"] + 13 * (b["age"] + b["age:Sex[T.Male]"]),
        ],
    )
    assert len(res.predict(d)) == len(d)


def test_wald_tests_on_fixed_effects(res):
    L = np.array([[0, 0, 1, 0], [0, 0, 0, 1]], float)
    f = res.f_test(L)
    b = res.fe_params.values
    V = res.cov_params().values[:4, :4]
    w = (L @ b) @ np.linalg.solve(L @ V @ L.T, L @ b)
    assert_allclose(f.fvalue, w / 2, rtol=1e-10)
    t = res.t_test(L[:1])
    assert_allclose(t.effect, b[2])
    assert_allclose(t.sd, np.sqrt(V[2, 2]))
    assert_allclose(res.t_test("age = 0").effect, b[2])
    wt = res.wald_test(L, scalar=True)
    assert_allclose(wt.statistic, w, rtol=1e-10)
    with pytest.raises(ValueError, match="expected 4"):
        res.t_test(np.ones((1, 3)))


def test_summary_contents(res):
    text = res.summary().as_text()
    for item in [
        "REML",
        "AR1('visit')",
        "Log-Likelihood",
        "AIC",
        "BIC",
        "No. Groups:",
        "27",
        "No. Observations:",
        "108",
        "Subject Var",
        "Residual",
        "rho (AR1)",
        "age:Sex[T.Male]",
    ]:
        assert item in text, item


def test_summary_for_every_structure():
    d = lmm.datasets.load("orthodont")
    for cs in [
        lmm.CompoundSymmetry(),
        lmm.Power(time="age"),
        lmm.Exponential(coords="age", nugget=True),
        lmm.Gaussian(coords=["age"]),
    ]:
        res = lmm.mixedlm(
            "distance ~ age", d, groups="Subject", re_formula="0", cov_struct=cs
        ).fit()
        text = res.summary().as_text()
        assert type(cs).__name__ in text
        for name in cs.param_names:
            assert name in text
            assert name in res.cov_struct_params.index


def test_ml_fit_and_information_criteria():
    d = lmm.datasets.load("orthodont")
    r = lmm.mixedlm("distance ~ age", d, groups="Subject", cov_struct=lmm.AR1(time="visit")).fit(
        reml=False
    )
    assert r.method == "ML"
    k = 2 + 1 + 1 + 1  # fixed effects, G, sigma^2, rho
    assert_allclose(r.aic, -2 * r.llf + 2 * k)
    assert_allclose(r.bic, -2 * r.llf + np.log(108) * k)


def test_one_group_spatial_field():
    w = lmm.datasets.load("wheat2")
    r = lmm.mixedlm(
        "grain_yield ~ 0 + variety",
        w,
        groups=None,
        re_formula="0",
        cov_struct=lmm.Exponential(coords=["latitude", "longitude"]),
    ).fit()
    assert r.model.n_groups == 1 and r.converged
    assert r.cov_struct_params["range"] > 0


def test_start_on_a_zero_variance_is_not_a_false_optimum():
    """With Psi = L L' the gradient in L vanishes at L = 0 whatever the data: a start with a
    zero variance must not stop there when the deviance falls as the variance grows."""
    d = lmm.datasets.load("oneway")
    best = lmm.mixedlm("y ~ 1", d, groups="group").fit()
    assert float(best.cov_re.iloc[0, 0]) > 0.1
    res = lmm.mixedlm("y ~ 1", d, groups="group").fit(
        start_params={"cov_re": np.zeros((1, 1)), "scale": float(d.y.var())}
    )
    assert res.converged
    assert_allclose(res.llf, best.llf, rtol=1e-10)
    assert any("saddle" in h for h in res.hist)


def test_summary_keeps_statsmodels_layout(res):
    """tables[1] as statsmodels (fixed effects, then G and variance components, named by
    xname_fe / xname_re); the residual part in tables[2]; a note on the intervals."""
    s = res.summary()
    fe = list(res.fe_params.index)
    re = ["Subject Var", "Subject x age Cov", "age Var"]
    assert list(s.tables[1].index) == fe + re
    assert list(s.tables[1].columns) == ["Coef.", "Std.Err.", "z", "P>|z|", "[0.025", "0.975]"]
    assert (s.tables[1].loc[re, ["z", "P>|z|"]] == "").all().all()
    assert list(s.tables[2].index) == ["Residual", "rho (AR1)"]
    text = " ".join(s.as_text().split())
    assert "log scale for variances" in text and "atanh scale for correlations" in text
    s2 = res.summary(xname_fe=list("abcd"), xname_re=["u", "v", "w"])
    assert list(s2.tables[1].index) == list("abcdu") + ["v", "w"]
    assert list(res.summary(xname_re=["u", "v", "w", "r"]).tables[2].index) == ["Residual", "r"]
    with pytest.raises(ValueError, match="xname_re should be a list of length 3"):
        res.summary(xname_re=["u"])
    with pytest.raises(ValueError, match="xname_fe should be a list of length 4"):
        res.summary(xname_fe=["u"])


def test_intervals_of_covariance_parameters_map_their_range(res):
    """Variances on the log scale, correlations on the atanh scale, covariances symmetric;
    summary(), covariance_parameters() and conf_int() agree."""
    z = stats.norm.ppf(0.975)
    cp = res.covariance_parameters()
    for name in ["Subject Var", "age Var", "Residual"]:
        est, se = cp.loc[name, ["Estimate", "Std.Err."]]
        assert_allclose(
            cp.loc[name, ["lower", "upper"]], est * np.exp([-z * se / est, z * se / est])
        )
        assert cp.loc[name, "lower"] > 0
    est, se = cp.loc["Subject x age Cov", ["Estimate", "Std.Err."]]
    assert_allclose(cp.loc["Subject x age Cov", ["lower", "upper"]], [est - z * se, est + z * se])
    r, se = cp.loc["rho (AR1)", ["Estimate", "Std.Err."]]
    atanh_ci = np.tanh(np.arctanh(r) + np.array([-1, 1]) * z * se / (1 - r**2))
    assert_allclose(cp.loc["rho (AR1)", ["lower", "upper"]], atanh_ci)
    table = res.summary().tables[1]
    assert table.loc["age Var", "[0.025"] == f"{cp.loc['age Var', 'lower']:.3f}"
    ci = res.conf_int()
    bse = res.bse
    for name in ["Subject Var", "age Var"]:
        est = res.params[name]
        w = np.exp(z * bse[name] / est)
        assert_allclose(ci.loc[name], [est / w, est * w])
    assert_allclose(ci.loc["rho"], atanh_ci)
    fe = res.fe_params.index
    assert_allclose(ci.loc[fe, 0], res.fe_params - z * res.bse_fe)
