"""simulate / refit (``lmm.bootstrap.responses``): group-wise Cholesky simulation, seeds,
refits equal to fresh fits."""

import warnings

import numpy as np
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm


def _normals(seed, nsim, n):
    """The standard normals simulate() uses: replicate j from SeedSequence(seed).spawn()[j]."""
    seeds = np.random.SeedSequence(seed).spawn(nsim)
    return np.column_stack([np.random.default_rng(s).standard_normal(n) for s in seeds])


def _dense_V(res, rows):
    """V_g = Z G Z' + sigma^2 C_g(rho) of one group, built directly (AR(1): rho^|t_j - t_k|)."""
    m = res.model
    t = m.positions[rows, 0]
    rho = res.cov_struct_params["rho"] if len(res.cov_struct_params) else 0.0
    C = rho ** np.abs(t[:, None] - t[None, :])
    Z = m.exog_re[rows]
    return Z @ np.asarray(res.cov_re) @ Z.T + res.scale * C, C


def test_simulate_goes_through_the_cholesky_factor_of_each_group(ar1_fit):
    res = ar1_fit
    m = res.model
    Y = res.simulate(nsim=3, seed=7)
    Z = _normals(7, 3, m.nobs)
    mean = m.exog @ res.fe_params.to_numpy()
    for g in list(m.group_labels)[:25]:
        rows = np.asarray(m.row_indices[g])
        order = np.argsort(m.positions[rows, 0], kind="stable")  # the engine sorts by time
        rows = rows[order]
        V, _ = _dense_V(res, rows)
        expected = mean[rows, None] + np.linalg.cholesky(V) @ Z[rows]
        assert_allclose(Y[rows], expected, rtol=1e-10, atol=1e-10)


def test_simulate_conditional_on_blups(ar1_fit):
    res = ar1_fit
    m = res.model
    Y = res.simulate(nsim=2, seed=3, use_random_effects=True)
    Z = _normals(3, 2, m.nobs)
    fitted = res.fittedvalues.to_numpy()
    for g in list(m.group_labels)[:25]:
        rows = np.asarray(m.row_indices[g])
        rows = rows[np.argsort(m.positions[rows, 0], kind="stable")]
        _, C = _dense_V(res, rows)
        expected = fitted[rows, None] + np.linalg.cholesky(res.scale * C) @ Z[rows]
        assert_allclose(Y[rows], expected, rtol=1e-10, atol=1e-10)


def test_simulate_seeds():
    d = lmm.datasets.load("oneway")
    res = lmm.mixedlm("y ~ 1", d, groups="group").fit()
    a = res.simulate(nsim=5, seed=11)
    assert a.shape == (20, 5)
    assert np.array_equal(a, res.simulate(nsim=5, seed=11))
    # replicate j depends on its own child seed only
    assert np.array_equal(a[:, :3], res.simulate(nsim=3, seed=11))
    assert not np.allclose(a, res.simulate(nsim=5, seed=12))
    assert np.array_equal(
        a, res.simulate(nsim=5, seed=np.random.SeedSequence(11))
    )  # SeedSequence accepted
    b = res.simulate(nsim=2, seed=np.random.default_rng(0))
    assert b.shape == (20, 2)


def test_simulate_statsmodels_and_ols_results():
    d = lmm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit()
    Y = lmm.bootstrap.simulate(sm, 2, seed=5)
    Z = _normals(5, 2, len(d))
    groups = d["Subject"].to_numpy()
    mean = sm.model.exog @ sm.fe_params.to_numpy()
    for g in np.unique(groups)[:5]:
        rows = np.flatnonzero(groups == g)
        Zg = sm.model.exog_re[rows]
        V = Zg @ np.asarray(sm.cov_re) @ Zg.T + sm.scale * np.eye(len(rows))
        assert_allclose(Y[rows], mean[rows, None] + np.linalg.cholesky(V) @ Z[rows], rtol=1e-10)
    ols = smf.ols("Reaction ~ Days", d).fit()
    Y = lmm.bootstrap.simulate(ols, 2, seed=5)
    # R's simulate(lm): sigma is the residual standard error (denominator n - p)
    assert_allclose(Y, ols.fittedvalues.to_numpy()[:, None] + np.sqrt(ols.scale) * Z)


def test_refit_same_response_reproduces_the_fit(ar1_fit):
    res = ar1_fit
    again = res.refit(res.model.endog)
    assert again.converged
    assert_allclose(again.llf, res.llf, rtol=1e-10)
    assert_allclose(again.fe_params, res.fe_params, rtol=1e-6)
    assert_allclose(again.cov_struct_params, res.cov_struct_params, rtol=1e-5)
    assert again.method == "ML"


def test_refit_new_response_equals_a_fresh_fit():
    d = lmm.datasets.load("orthodont")
    formula, kw = "distance ~ age * Sex", dict(groups="Subject", cov_struct=lmm.AR1(time="visit"))
    res = lmm.mixedlm(formula, d, **kw).fit()
    ysim = res.simulate(nsim=2, seed=0)
    for j in range(2):
        r2 = res.refit(ysim[:, j])
        fresh = lmm.mixedlm(formula, d.assign(distance=ysim[:, j]), **kw).fit()
        assert_allclose(r2.llf, fresh.llf, rtol=1e-9)
        assert_allclose(r2.fe_params, fresh.fe_params, rtol=1e-6)
        assert_allclose(r2.scale, fresh.scale, rtol=1e-5)
        assert_allclose(r2.resid, d["distance"] * 0 + ysim[:, j] - r2.fittedvalues, rtol=1e-12)
        assert list(r2.fe_params.index) == list(res.fe_params.index)
    # the original results and model are untouched
    assert_allclose(res.model.endog, d["distance"])
    assert res.refit(d["distance"].to_numpy()).llf == pytest.approx(res.llf, rel=1e-10)


def test_refit_statsmodels_and_ols_and_bad_input():
    d = lmm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    y = lmm.bootstrap.simulate(sm, 1, seed=2)[:, 0]
    r = lmm.bootstrap.refit(sm, y)
    fresh = lmm.mixedlm("Reaction ~ Days", d.assign(Reaction=y), groups="Subject").fit(reml=False)
    assert isinstance(r, lmm.MixedLMResultsWrapper)
    assert_allclose(r.llf, fresh.llf, rtol=1e-9)
    assert r.method == "ML"
    assert lmm.bootstrap.refit(sm, y, reml=True).method == "REML"
    ols = smf.ols("Reaction ~ Days", d).fit()
    assert_allclose(
        lmm.bootstrap.refit(ols, y).params, smf.ols("y ~ Days", d.assign(y=y)).fit().params
    )
    with pytest.raises(ValueError, match="length nobs = 180"):
        lmm.bootstrap.refit(sm, y[:-1])
    with pytest.raises(ValueError, match="non-finite values \\(first at row 3\\)"):
        bad = y.copy()
        bad[3] = np.nan
        lmm.bootstrap.refit(sm, bad)


def test_simulate_with_variance_components():
    """V_g = G 11' + sum_j vc_j Z_jg Z_jg' + sigma^2 I, through its Cholesky factor (oats:
    random block intercept + whole-plot variance component)."""
    oats = lmm.datasets.load("oats")
    res = lmm.mixedlm(
        "grain_yield ~ Variety * nitro_f",
        oats,
        groups="Block",
        re_formula="1",
        vc_formula={"Variety": "0 + C(Variety)"},
    ).fit()
    m = res.model
    Y = res.simulate(nsim=2, seed=8)
    Z = _normals(8, 2, m.nobs)
    mean = m.exog @ res.fe_params.to_numpy()
    for gi, g in enumerate(m.group_labels):
        rows = np.asarray(m.row_indices[g])
        Zv = np.asarray(m.exog_vc.mats[0][gi])
        V = (
            float(res.cov_re.iloc[0, 0]) * np.ones((len(rows), len(rows)))
            + res.vcomp[0] * Zv @ Zv.T
            + res.scale * np.eye(len(rows))
        )
        assert_allclose(Y[rows], mean[rows, None] + np.linalg.cholesky(V) @ Z[rows], rtol=1e-10)
