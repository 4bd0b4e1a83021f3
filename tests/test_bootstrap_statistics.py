"""The registry of bootstrap statistics and the generic parametric bootstrap
(``lmm.bootstrap.statistics``, lme4's ``bootMer``)."""

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import (
    STATISTICS,
    BootstrapStatistic,
    parametric_bootstrap,
    simulation,
)


@pytest.fixture(scope="module")
def sleep():
    d = lmm.datasets.load("sleepstudy")
    return d, lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()


def test_registry():
    assert {"fixed_effects", "covariance_parameters", "lrt", "prediction_error"} <= set(STATISTICS)
    for name, cls in STATISTICS.items():
        assert issubclass(cls, BootstrapStatistic) and cls.name == name
    assert lmm.parametric_bootstrap is parametric_bootstrap


def test_fixed_effects_sd_matches_standard_errors(sleep):
    """Under the fitted model the bootstrap SD of beta_hat* estimates the SE of beta_hat: the
    model-based SE of a REML fit, up to Monte-Carlo error (an SD from 400 draws: 3.5%) and the
    small extra variance from estimating the variances (10% allows both)."""
    _, res = sleep
    boot = parametric_bootstrap(res, "fixed_effects", nsim=400, seed=1, n_jobs=2)
    assert boot.statistic == "fixed_effects" and boot.nsim_failed == 0
    assert boot.replicates.shape == (400, 2)
    assert_allclose(boot.observed, res.fe_params)
    assert_allclose(boot.std, res.bse_fe, rtol=0.1)
    mc = res.bse_fe.to_numpy() / np.sqrt(400)  # Monte-Carlo SE of the bootstrap mean
    assert np.all(np.abs(boot.replicates.mean(axis=0) - res.fe_params.to_numpy()) <= 4 * mc)
    frame = boot.summary_frame()
    assert list(frame.index) == ["Intercept", "Days"]
    assert list(frame.columns) == ["observed", "mean", "std", "[0.025", "0.975]"]
    assert_allclose(frame["std"], boot.std)
    assert_allclose(boot.conf_int()[:, 1], frame.loc["Days", ["[0.025", "0.975]"]])
    assert "'fixed_effects'; nsim = 400, used = 400, failed = 0" in str(boot)


def test_callable_statistic_equals_the_named_one(sleep):
    _, res = sleep
    seen = []

    def beta(refits):
        seen.append(refits)
        return refits.beta

    named = parametric_bootstrap(res, "fixed_effects", nsim=30, seed=3)
    by_class = parametric_bootstrap(res, STATISTICS["fixed_effects"], nsim=30, seed=3)
    assert np.array_equal(by_class.replicates, named.replicates)
    fun = parametric_bootstrap(res, beta, nsim=30, seed=3)
    assert fun.statistic == "callable" and fun.names is None
    assert np.array_equal(fun.replicates, named.replicates)
    assert_allclose(fun.observed, named.observed)
    obs, batch = seen[0], seen[1]  # the fit to the data (a batch of one), then the replicates
    assert obs.endog.shape == (1, 180) and obs.cov_re.shape == (1, 1, 1)
    assert batch.endog.shape == (30, 180) and batch.beta.shape == (30, 2)
    assert batch.cov_re.shape == (30, 1, 1) and batch.vcomp.shape == (30, 0)
    assert batch.converged.all() and np.isfinite(batch.llf).all()
    # the responses are those of simulate(): replicate j from its own seed
    assert np.array_equal(batch.endog.T, lmm.bootstrap.simulate(res, 30, seed=3))


def test_covariance_parameters(sleep):
    _, res = sleep
    boot = parametric_bootstrap(res, "covariance_parameters", nsim=200, seed=2)
    table = res.covariance_parameters()
    assert boot.names == list(table.index)
    assert_allclose(boot.observed, table["Estimate"])
    # REML estimates are nearly unbiased: means within 4 Monte-Carlo SEs of the truth
    mc = boot.std / np.sqrt(boot.nsim_ok)
    assert np.all(np.abs(boot.replicates.mean(axis=0) - boot.observed) <= 4 * mc)


def test_ols_statistics():
    d = lmm.datasets.load("sleepstudy")
    ols = smf.ols("Reaction ~ Days", d).fit()
    cov = parametric_bootstrap(ols, "covariance_parameters", nsim=50, seed=1)
    assert cov.names == ["Residual"] and cov.replicates.shape == (50, 1)
    assert_allclose(cov.observed, [ols.scale])
    fe = parametric_bootstrap(ols, "fixed_effects", nsim=400, seed=1)
    # OLS: beta* ~ N(beta_hat, sigma^2 (X'X)^-1) exactly; an SD from 400 draws: 3.5% MC error
    assert_allclose(fe.std, ols.bse, rtol=0.12)


def test_named_statistics_of_pb_lrt_and_bootstrap_predict(sleep):
    """The LRT and prediction-error statistics of pb_lrt and bootstrap_predict, run by name."""
    d, res = sleep
    small = lmm.mixedlm("Reaction ~ 1", d, groups="Subject").fit(reml=False)
    large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    pb = lmm.bootstrap.pb_lrt(large, small, nsim=40, seed=3)
    boot = parametric_bootstrap(small, "lrt", nsim=40, seed=3, large=large)
    assert np.array_equal(boot.replicates, pb.ref_distribution)
    assert boot.observed == pb.lrt
    new = pd.DataFrame({"Days": [2.0, 8.0]}, index=["a", "b"])
    pred = lmm.bootstrap.bootstrap_predict(res, new, nsim=30, seed=1)
    err = parametric_bootstrap(res, "prediction_error", nsim=30, seed=1, exog_new=new)
    assert np.array_equal(err.replicates.T, pred.errors)
    assert err.observed is None and err.names == ["a", "b"]
    assert list(err.summary_frame().index) == ["a", "b"]


def test_failed_replicates_are_counted(sleep):
    _, res = sleep

    def flaky(refits):
        out = refits.beta[:, 1].copy()
        out[::5] = np.nan  # a statistic that cannot be computed is a failed replicate
        return out

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boot = parametric_bootstrap(res, flaky, nsim=20, seed=4)
    assert [w.category for w in caught] == [lmm.BootstrapWarning]
    assert "4 of 20 bootstrap replicates failed" in str(caught[0].message)
    assert np.array_equal(boot.failed, [0, 5, 10, 15])
    assert boot.nsim_ok == 16 and boot.replicates.shape == (16,)
    ok = parametric_bootstrap(res, lambda r: r.beta[:, 1], nsim=20, seed=4)
    assert np.array_equal(boot.replicates, np.delete(ok.replicates, [0, 5, 10, 15]))
    assert boot.notes == ["failed replicates: the statistic is not finite (4x)"]
    with pytest.warns(lmm.BootstrapWarning, match="1 of 1"):
        none = parametric_bootstrap(res, lambda r: r.beta[:, 1] * np.nan, nsim=1, seed=4)
    assert none.nsim_ok == 0 and none.summary_frame()["std"].isna().all()


def test_failures_list_each_replicate_with_its_reason(sleep, monkeypatch):
    _, res = sleep

    def flaky(refits):
        out = refits.beta[:, 1].copy()
        out[::5] = np.nan
        return out

    with pytest.warns(lmm.BootstrapWarning, match="the statistic is not finite \\(4x\\)"):
        boot = parametric_bootstrap(res, flaky, nsim=20, seed=4)
    assert boot.valid and boot.reason is None
    assert list(boot.failures.index) == [0, 5, 10, 15]
    assert (boot.failures["reason"] == "the statistic is not finite").all()
    # a refit that does not converge names the gradient it stopped at; the notes count
    # reasons without their numbers
    real = simulation.bfgs_many

    def bfgs_two_left(fg, U0, gscale, gtol, maxiter=200, Hinv0=None):
        U, f, conv = real(fg, U0, gscale, gtol, maxiter, Hinv0)
        conv[[2, 3]] = False
        return U, f, conv

    monkeypatch.setattr(simulation, "bfgs_many", bfgs_two_left)
    monkeypatch.setattr(simulation, "fit_one", lambda eng, bt, reml, y, u0: (u0, 1e5, False))
    with pytest.warns(lmm.BootstrapWarning, match="refit did not converge \\(2x\\)"):
        boot = parametric_bootstrap(res, "fixed_effects", nsim=20, seed=4)
    assert list(boot.failed) == [2, 3]
    assert boot.failures["reason"].str.match(r"refit did not converge \(max\|grad\|/n = ").all()
    assert boot.notes == ["failed replicates: refit did not converge (2x)"]


def test_same_numbers_in_worker_processes(sleep):
    """Statistics travel to worker processes with only what their batches need (the fitted
    views, which refer weakly to the user's results, stay behind)."""
    _, res = sleep
    one = parametric_bootstrap(res, lambda r: r.beta[:, 1] ** 2, nsim=150, seed=7)
    with joblib.parallel_config(backend="loky"):
        two = parametric_bootstrap(res, lambda r: r.beta[:, 1] ** 2, nsim=150, seed=7, n_jobs=2)
    assert np.array_equal(one.replicates, two.replicates)


def test_bad_input(sleep):
    _, res = sleep
    with pytest.raises(ValueError, match="unknown bootstrap statistic 'beta'; choose one of"):
        parametric_bootstrap(res, "beta", nsim=5)
    with pytest.raises(TypeError, match="unexpected option"):
        parametric_bootstrap(res, lambda r: r.beta, nsim=5, large=res)
    with pytest.raises(ValueError, match="one value \\(or row\\) per replicate first"):
        parametric_bootstrap(res, lambda r: r.beta.sum(), nsim=5)
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        parametric_bootstrap(res, "fixed_effects", nsim=0)
    with pytest.raises(TypeError, match="statsmodels OLS result; got str"):
        parametric_bootstrap("model", "fixed_effects", nsim=5)
    with pytest.raises(TypeError, match="large"):
        parametric_bootstrap(res, "lrt", nsim=5)
