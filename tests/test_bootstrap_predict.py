"""Bootstrap prediction intervals (``lmm.bootstrap.predict``) against the prediction-error
variance of Henderson's predictor, reproducibility, bad input and coverage."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import simulation


def _pev(d, res, group):
    """Prediction-error variances of y_new for a known group (BLUP) and a new group, by the
    dense formulas with the variances at their estimates (Henderson 1975): the predictor is
    linear in y, y_hat = w'y, so Var(y_hat - y_new) = w'Vw - 2 w'Cov(y, y_new) + Var(y_new)."""
    y = d["y"].to_numpy()
    g = d["g"].to_numpy()
    s2a, s2 = float(res.cov_re.iloc[0, 0]), float(res.scale)
    same = (g[:, None] == g[None, :]).astype(float)
    V = s2a * same + s2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    one = np.ones(len(y))
    w_mu = Vi @ one / (one @ Vi @ one)  # mu_hat = w_mu' y
    new = w_mu @ V @ w_mu + s2a + s2
    z = (g == group).astype(float)
    # b_hat = s2a z'V^-1 (y - 1 mu_hat)  ->  y_hat = w'y
    w = w_mu + s2a * (Vi @ z - (z @ Vi @ one) * w_mu)
    cov = s2a * z  # Cov(y, b_g); the new residual is independent of y
    known = w @ V @ w - 2 * w @ cov + s2a + s2
    return np.sqrt(known), np.sqrt(new)


@pytest.fixture(scope="module")
def wide_oneway():
    rng = np.random.default_rng(11)
    a, n = 60, 4
    g = np.repeat(np.arange(a), n)
    d = pd.DataFrame({"y": 20 + rng.normal(0, 2, a)[g] + rng.normal(0, 3, a * n), "g": g})
    return d, lmm.mixedlm("y ~ 1", d, groups="g").fit()


def test_prediction_intervals_match_prediction_error_variance(wide_oneway):
    d, res = wide_oneway
    sd_known, sd_new = _pev(d, res, 7)
    new = pd.DataFrame({"x": [0.0]})
    pn = lmm.bootstrap.bootstrap_predict(res, new, nsim=1000, seed=0, n_jobs=2)
    pk = lmm.bootstrap.bootstrap_predict(
        res, new, nsim=1000, seed=0, new_group=False, groups=[7], n_jobs=2
    )
    assert pn.nsim_failed == 0 and pk.nsim_failed == 0
    # centre: the original predictions (x'beta_hat; plus the BLUP of group 7)
    assert_allclose(pn.predicted, res.fe_params.iloc[0])
    assert_allclose(pk.predicted, res.fe_params.iloc[0] + res.random_effects[7].iloc[0])
    # spread: the plug-in prediction-error SDs; 8% covers the Monte-Carlo error of an SD from
    # 1000 draws (2.2%, so ~3.6 SE) and the small extra variance from estimating the variances
    assert_allclose(pn.summary_frame()["se_pred"], sd_new, rtol=0.08)
    assert_allclose(pk.summary_frame()["se_pred"], sd_known, rtol=0.08)
    # percentile limits of near-normal prediction errors: prediction -/+ 1.96 SD
    z = stats.norm.ppf(0.975)
    assert_allclose(pn.upper - pn.lower, 2 * z * sd_new, rtol=0.1)
    assert_allclose(pk.upper - pk.lower, 2 * z * sd_known, rtol=0.1)
    assert sd_known < sd_new
    assert list(pk.summary_frame().columns) == ["predicted", "se_pred", "pi_lower", "pi_upper"]
    assert "known groups" in str(pk) and "a new group" in str(pn)


def test_prediction_reproducible_and_bad_input(wide_oneway):
    d, res = wide_oneway
    new = pd.DataFrame({"x": [0.0, 0.0]}, index=["a", "b"])
    p1 = lmm.bootstrap.bootstrap_predict(res, new, nsim=50, seed=3, n_jobs=1)
    p2 = lmm.bootstrap.bootstrap_predict(res, new, nsim=50, seed=3, n_jobs=2)
    assert np.array_equal(p1.samples, p2.samples)
    assert list(p1.lower.index) == ["a", "b"]
    with pytest.raises(ValueError, match="needs groups="):
        lmm.bootstrap.bootstrap_predict(res, new, nsim=5, new_group=False)
    with pytest.raises(ValueError, match="unknown group"):
        lmm.bootstrap.bootstrap_predict(res, new, nsim=5, new_group=False, groups=[1, 999])
    with pytest.raises(ValueError, match="alpha"):
        lmm.bootstrap.bootstrap_predict(res, new, nsim=5, alpha=1.5)
    with pytest.raises(TypeError, match="mixed model"):
        lmm.bootstrap.bootstrap_predict(smf.ols("y ~ 1", d).fit(), new, nsim=5)
    sleep = lmm.datasets.load("sleepstudy")
    slope = lmm.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit()
    with pytest.raises(ValueError, match="pass exog_re_new"):
        lmm.bootstrap.bootstrap_predict(slope, pd.DataFrame({"Days": [3.0]}), nsim=5)
    p = lmm.bootstrap.bootstrap_predict(
        slope, pd.DataFrame({"Days": [3.0]}), nsim=30, seed=1, exog_re_new=[[1.0, 3.0]]
    )
    assert np.isfinite(p.upper.iloc[0]) and p.lower.iloc[0] < p.predicted.iloc[0]
    oats = lmm.datasets.load("oats")
    vc = lmm.mixedlm(
        "grain_yield ~ nitro_f", oats, groups="Block", vc_formula={"V": "0 + C(Variety)"}
    ).fit()
    with pytest.raises(NotImplementedError, match="variance components"):
        lmm.bootstrap.bootstrap_predict(vc, oats.iloc[:1], nsim=5)


def test_prediction_refits_are_guarded_one_by_one(wide_oneway, monkeypatch):
    """bootstrap_predict had no guard at all: a refit that raises now fails its replicate
    only, with its reason; the replicates of the other batches are unchanged bit for bit."""
    d, res = wide_oneway
    new = pd.DataFrame({"x": [0.0]}, index=["new"])
    clean = lmm.bootstrap.bootstrap_predict(res, new, nsim=130, seed=5)
    real = simulation.LMMSpec.fit_many
    calls = []

    def flaky(self, Y, want_params=False):
        calls.append(Y.shape[1])
        # call 2 is the second batch (replicates 64-127); it raises, and its replicates are
        # refitted one at a time: call 13 is replicate 74
        if len(calls) in (2, 13):
            raise FloatingPointError("injected")
        return real(self, Y, want_params)

    monkeypatch.setattr(simulation.LMMSpec, "fit_many", flaky)
    with pytest.warns(lmm.BootstrapWarning, match="1 of 130 bootstrap replicates failed"):
        out = lmm.bootstrap.bootstrap_predict(res, new, nsim=130, seed=5)
    # batches (0, 64), (64, 128), (128, 130): the second raised and was refitted one by one
    assert calls == [64, 64] + [1] * 64 + [2]
    assert list(out.failed) == [64 + 10]
    assert out.failures.loc[74, "reason"] == "FloatingPointError: injected"
    kept = np.delete(clean.errors, 74, axis=1)
    assert np.array_equal(out.errors[:, :64], kept[:, :64])
    assert np.array_equal(out.errors[:, -2:], kept[:, -2:])
    assert_allclose(out.errors[:, 64:-2], kept[:, 64:-2], rtol=1e-9, atol=1e-9)
    assert "1 of 130 refits failed and were left out (FloatingPointError: injected (1x))" in (
        out.notes
    )


def test_prediction_with_every_refit_failed_is_invalid(wide_oneway, monkeypatch):
    d, res = wide_oneway

    def broken(self, Y, want_params=False):
        raise np.linalg.LinAlgError("injected")

    monkeypatch.setattr(simulation.LMMSpec, "fit_many", broken)
    with pytest.warns(lmm.BootstrapWarning, match="20 of 20 .* no replicate is left"):
        out = lmm.bootstrap.bootstrap_predict(res, pd.DataFrame({"x": [0.0]}), nsim=20, seed=1)
    assert not out.valid and out.reason.startswith("all 20 bootstrap replicates failed")
    assert out.lower.isna().all() and out.upper.isna().all()
    assert out.summary_frame()["se_pred"].isna().all()
    assert out.errors.shape == (1, 0) and len(out.failures) == 20
    assert "Not valid: all 20" in str(out)


@pytest.mark.slow
@pytest.mark.parametrize("new_group", [True, False])
def test_prediction_interval_coverage(new_group):
    """Coverage of 95% intervals over 120 simulated one-way data sets (10 groups x 5)."""
    rng = np.random.default_rng(99 + new_group)
    a, n, R = 10, 5, 120
    g = np.repeat(np.arange(a), n)
    hits = 0
    for _ in range(R):
        b = rng.normal(0, 3, a)
        d = pd.DataFrame({"y": 50 + b[g] + rng.normal(0, 4, a * n), "g": g})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = lmm.mixedlm("y ~ 1", d, groups="g").fit()
        new = pd.DataFrame({"x": [0.0]})
        if new_group:
            p = lmm.bootstrap.bootstrap_predict(res, new, nsim=199, seed=int(rng.integers(2**31)))
            y_new = 50 + rng.normal(0, 3) + rng.normal(0, 4)
        else:
            p = lmm.bootstrap.bootstrap_predict(
                res, new, nsim=199, seed=int(rng.integers(2**31)), new_group=False, groups=[0]
            )
            y_new = 50 + b[0] + rng.normal(0, 4)
        hits += p.lower.iloc[0] <= y_new <= p.upper.iloc[0]
    cover = hits / R
    assert abs(cover - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / R) + 0.02, cover
