"""Parametric-bootstrap likelihood-ratio tests (``lmm.bootstrap.pb``) against R (pbkrtest,
lme4, RLRsim), closed forms and calibration under the null.

Reference values: tests/results/lrt_bootstrap.json, written by tests/results/lrt_bootstrap.R
(R 4.2.2, lme4 1.1.31, nlme 3.1.162, pbkrtest 0.5.2).  Bootstrap p-values are compared within
4 combined Monte-Carlo standard errors (ours from our nsim, R's from its nsim).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import pb as pb_module
from statsmodels_lmm_ext.bootstrap import simulation
from statsmodels_lmm_ext.inference.tests import TestResult

from ._lrt_cases import REF, _data, _reml_oneway

# ------------------------------------------------------------- moment approximations


@pytest.mark.parametrize(
    "name,key",
    [
        ("oneway_re", "pbkrtest_style"),
        ("oneway_re", "pbkrtest_style_singular_zeroed"),
        ("sleep_fixed", None),
    ],
)
def test_bartlett_gamma_formulas_match_pbkrtest(name, key):
    """pbkrtest:::.summarizePB from the moments of the positive LRT* (same moments in, same
    p-values out; the samples themselves are not in the JSON)."""
    ref = REF[name]["pb"] if key is None else REF[name]["pb"][key]
    mean, var = ref["ref_mean_pos"], ref["ref_var_pos"]
    out = pb_module.moment_pvalues(REF[name]["lrt"], REF[name]["df"], mean, var)
    assert_allclose(out["bartlett"], ref["bartlett_stat"], rtol=1e-10)
    # pbkrtest reports 1 - pchisq(...) and 1 - pgamma(...): 0 below ~1e-16 (sleep_fixed)
    assert_allclose(out["p_bartlett"], ref["p_bartlett"], rtol=1e-8, atol=1e-15)
    assert_allclose(out["p_gamma"], ref["p_gamma"], rtol=1e-8, atol=1e-15)


def test_bartlett_gamma_use_positive_reference_values_only():
    ref = np.array([0.0, 0.0, -1e-3, 0.5, 1.0, 2.5, 4.0])
    pos = ref[ref > 0]
    out = pb_module.gamma_bartlett(3.0, 1, ref)
    exp = pb_module.moment_pvalues(3.0, 1, pos.mean(), pos.var(ddof=1))
    assert out == exp


# ------------------------------------------------------------- bootstrap vs R


def _oneway_lrt_closed_form(Y, g, a, n):
    """ML LRT of y ~ 1 + (1|g) against y ~ 1, balanced one-way layout (Searle, Casella and
    McCulloch 1992, ch. 3): with SSA, SSE the ANOVA sums of squares and N = a n, the ML
    estimates are sigma^2 = SSE / (a (n-1)) and sigma^2 + n sigma_a^2 = SSA / a when
    F = MSA / MSE >= a / (a - 1), and sigma_a^2 = 0 otherwise (LRT = 0)."""
    N = a * n
    means = np.stack([Y[g == k].mean(axis=0) for k in np.unique(g)])
    ssa = n * ((means - Y.mean(axis=0)) ** 2).sum(axis=0)
    sse = ((Y - means[np.searchsorted(np.unique(g), g)]) ** 2).sum(axis=0)
    lrt = N * np.log((ssa + sse) / N) - a * (n - 1) * np.log(sse / (a * (n - 1)))
    lrt -= a * np.log(ssa / a)
    F = (ssa / (a - 1)) / (sse / (a * (n - 1)))
    return np.where(F >= a / (a - 1), lrt, 0.0), F


@pytest.fixture(scope="module")
def oneway_pb():
    d = _data("oneway")
    small = smf.ols("y ~ 1", d).fit()
    large = lmm.mixedlm("y ~ 1", d, groups="group").fit(reml=False)
    return small, large, lmm.bootstrap.pb_lrt(large, small, nsim=2000, seed=1, n_jobs=2)


def test_oneway_replicates_equal_closed_form(oneway_pb):
    small, large, pb = oneway_pb
    d = _data("oneway")
    g = d["group"].to_numpy()
    Y = lmm.bootstrap.simulate(small, 2000, seed=1)  # the same responses as the bootstrap
    exact, F = _oneway_lrt_closed_form(Y, g, 4, 5)
    assert pb.nsim_failed == 0 and pb.nsim_ok == 2000
    # every refit pair reaches the ML estimates: LRT* to 1e-6 (and exact zeros on the boundary)
    assert_allclose(pb.ref_distribution, exact, atol=1e-6)
    assert np.all(pb.ref_distribution[F < 4 / 3] == 0)
    obs, F_obs = _oneway_lrt_closed_form(d[["y"]].to_numpy(), g, 4, 5)
    assert_allclose(pb.lrt, obs[0], rtol=1e-9)
    # the PB p-value counts LRT* >= LRT, i.e. F* >= F (LRT is increasing in F above 4/3)
    assert pb.pvalue == (1 + np.sum(F >= F_obs[0])) / 2001


def test_oneway_pb_pvalue_agrees_with_r_and_exact(oneway_pb):
    _, _, pb = oneway_pb
    ref = REF["oneway_re"]
    r = ref["pb"]  # manual lme4 loop, nsim 5000: p_PB = (1 + #(LRT* >= LRT)) / (1 + n)
    se_ours = np.sqrt(r["p_PB"] * (1 - r["p_PB"]) / pb.nsim_ok)
    assert abs(pb.pvalue - r["p_PB"]) <= 4 * np.hypot(se_ours, r["mc_se"])
    # in the balanced one-way layout the LRT is a monotone function of the ANOVA F, so the
    # exact null p-value of the observed LRT is the F-test p-value (R: anova(lm(y ~ group)))
    p_exact = ref["anova_F"]["p_value"]
    assert abs(pb.pvalue - p_exact) <= 4 * np.sqrt(p_exact * (1 - p_exact) / pb.nsim_ok)
    # share of LRT* = 0: exact P(F(3, 16) < 4/3) and R's count of singular refits
    p0 = stats.f.cdf(4 / 3, 3, 16)
    share = np.mean(pb.ref_distribution == 0)
    assert abs(share - p0) <= 4 * np.sqrt(p0 * (1 - p0) / pb.nsim_ok)
    r0 = r["n_singular"] / r["nsim"]
    assert abs(share - r0) <= 4 * np.hypot(
        np.sqrt(p0 * (1 - p0) / 2000), np.sqrt(p0 * (1 - p0) / 5000)
    )
    # mean of LRT*: R's manual sample (its variance gives the standard errors)
    se_mean = np.sqrt(r["ref_var"] / pb.nsim_ok + r["ref_var"] / r["n_used"])
    assert abs(pb.ref_distribution.mean() - r["ref_mean"]) <= 4 * se_mean
    assert_allclose(pb.pvalue_mixture, ref["p_mixture"], rtol=1e-10)
    assert_allclose(pb.pvalue_chi2, ref["p_chi2"], rtol=1e-8)


def test_sleep_fixed_pb_agrees_with_pbmodcomp():
    d = _data("sleep_fixed")
    small = lmm.mixedlm("Reaction ~ 1", d, groups="Subject").fit(reml=False)
    large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    pb = lmm.bootstrap.pb_lrt(large, small, nsim=1000, seed=1, n_jobs=2)
    r = REF["sleep_fixed"]["pb"]  # PBmodcomp(large, small, nsim = 2000)
    assert pb.nsim_failed == 0
    assert pb.n_extreme == r["n_extreme"] == 0  # no LRT* near 116
    assert pb.pvalue == 1 / (1 + pb.nsim_ok)
    ref = pb.ref_distribution
    se_mean = np.sqrt(r["ref_var"] / len(ref) + r["ref_var"] / r["nsim"])
    assert abs(ref.mean() - r["ref_mean"]) <= 4 * se_mean
    # variance of a sample variance of chi2(1)-like values: (mu4 - sigma^4) / n = 56 / n
    se_var = np.sqrt(56 / len(ref) + 56 / r["nsim"])
    assert abs(ref.var(ddof=1) - r["ref_var"]) <= 4 * se_var
    # Bartlett statistic LRT / mean(LRT*): delta method on the mean
    se_b = r["bartlett_stat"] * se_mean / r["ref_mean"]
    assert abs(pb.bartlett_stat - r["bartlett_stat"]) <= 4 * se_b
    assert_allclose(pb.lrt, REF["sleep_fixed"]["lrt"], atol=1e-6)


# ------------------------------------------------------------------ result API


def test_pb_result_api(oneway_pb):
    _, _, pb = oneway_pb
    assert pb.nsim == 2000 and pb.nsim_ok + pb.nsim_failed == pb.nsim
    assert pb.ref_distribution.shape == (pb.nsim_ok,)
    assert pb.df == 1
    frame = pb.summary_frame()
    assert list(frame.columns) == ["stat", "df", "p-value"]
    assert list(frame.index) == ["LRT (chi2)", "PBtest", "Bartlett", "Gamma", "Mixture"]
    assert frame.loc["PBtest", "p-value"] == pb.pvalue
    text = str(pb)
    assert "Parametric bootstrap" in text and "failed = 0" in text and "LRT* are 0" in text
    assert "PBTestResult" in repr(pb)
    assert 0 < pb.mc_se < 0.01
    assert isinstance(pb.seed_entropy, int)


def test_failed_refits_are_counted(monkeypatch):
    """A refit that raises or does not converge is a failed replicate, reported, never used."""
    d = _data("oneway")
    small = smf.ols("y ~ 1", d).fit()
    large = lmm.mixedlm("y ~ 1", d, groups="group").fit(reml=False)
    ok = lmm.bootstrap.pb_lrt(large, small, nsim=40, seed=3)
    real = simulation.bfgs_many

    def flaky_bfgs(fg, U0, gscale, gtol, maxiter=200, Hinv0=None):
        U, f, conv = real(fg, U0, gscale, gtol, maxiter, Hinv0)
        conv[::4] = False  # hand every 4th replicate to the fallback
        return U, f, conv

    calls = []

    def fallback(eng, bt, reml, y, u0):
        calls.append(1)
        if len(calls) % 2:
            raise np.linalg.LinAlgError("boom")
        return u0, 0.0, False  # "did not converge"

    monkeypatch.setattr(simulation, "bfgs_many", flaky_bfgs)
    monkeypatch.setattr(simulation, "fit_one", fallback)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pb = lmm.bootstrap.pb_lrt(large, small, nsim=40, seed=3)
    # one warning for the call, not one per replicate
    assert [w.category for w in caught] == [lmm.bootstrap.BootstrapWarning]
    assert "10 of 40 bootstrap replicates failed" in str(caught[0].message)
    failed = np.arange(0, 40, 4)
    assert pb.nsim_failed == len(failed) and pb.nsim_ok == 30
    assert np.array_equal(pb.failed, failed)
    keep = np.setdiff1d(np.arange(40), failed)
    assert_allclose(pb.ref_distribution, ok.ref_distribution[keep], atol=1e-12)
    assert pb.pvalue == (1 + np.sum(pb.ref_distribution >= pb.lrt)) / 31
    note = " ".join(pb.notes)
    assert "10 of 40 replicates failed" in note and "LinAlgError: boom" in note
    assert "did not converge" in note


@pytest.fixture(scope="module")
def sleep_pair():
    d = _data("sleep_fixed")
    small = lmm.mixedlm("Reaction ~ 1", d, groups="Subject").fit(reml=False)
    large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    return large, small


def _raising_for(columns, real):
    """A ``fit_many`` that raises for a batch holding one of the responses ``columns`` (equal to
    rounding: batches of other sizes may round the simulated responses differently)."""

    def fit_many(self, Y, want_params=False):
        for j, col in columns.items():
            if any(np.allclose(y, col, rtol=1e-12, atol=0) for y in Y.T):
                raise FloatingPointError(f"injected for replicate {j}")
        return real(self, Y, want_params)

    return fit_many


def test_a_refit_that_raises_costs_only_its_replicate(sleep_pair, monkeypatch):
    """Replicate by replicate: a refit that raises in a batch of 64 fails that replicate only
    (it used to fail the whole batch), with its reason; the other batches are unchanged bit for
    bit, the others of its batch (then refitted one at a time) to rounding."""
    large, small = sleep_pair
    clean = lmm.bootstrap.pb_lrt(large, small, nsim=150, seed=11)
    assert clean.nsim_failed == 0
    Y = lmm.bootstrap.simulate(small, 150, seed=11)
    bad = {7: Y[:, 7], 90: Y[:, 90]}
    monkeypatch.setattr(
        simulation.LMMSpec, "fit_many", _raising_for(bad, simulation.LMMSpec.fit_many)
    )
    with pytest.warns(lmm.bootstrap.BootstrapWarning, match="2 of 150 bootstrap replicates"):
        pb = lmm.bootstrap.pb_lrt(large, small, nsim=150, seed=11)
    assert list(pb.failed) == [7, 90] and pb.nsim_ok == 148 and pb.valid
    assert list(pb.failures["reason"]) == [
        "FloatingPointError: injected for replicate 7",
        "FloatingPointError: injected for replicate 90",
    ]
    rest = np.delete(clean.ref_distribution, [7, 90])
    assert np.array_equal(pb.ref_distribution[126:], rest[126:])  # the third batch
    assert_allclose(pb.ref_distribution[:126], rest[:126], rtol=1e-9, atol=1e-9)
    assert pb.pvalue == (1 + np.sum(pb.ref_distribution >= pb.lrt)) / 149
    assert "2 of 150 replicates failed and were left out (FloatingPointError" in " ".join(pb.notes)


def test_non_finite_refits_are_named(sleep_pair, monkeypatch):
    large, small = sleep_pair
    real = simulation.bfgs_many

    def nan_bfgs(fg, U0, gscale, gtol, maxiter=200, Hinv0=None):
        U, f, conv = real(fg, U0, gscale, gtol, maxiter, Hinv0)
        f[:2], conv[:2] = np.nan, False  # the first two of each batch
        return U, f, conv

    def nan_fallback(eng, bt, reml, y, u0):
        return u0, np.nan, False

    monkeypatch.setattr(simulation, "bfgs_many", nan_bfgs)
    monkeypatch.setattr(simulation, "fit_one", nan_fallback)
    with pytest.warns(lmm.bootstrap.BootstrapWarning, match="4 of 70"):
        pb = lmm.bootstrap.pb_lrt(large, small, nsim=70, seed=1)
    assert list(pb.failed) == [0, 1, 64, 65]
    # both models are mixed models here, so both refits fail
    reason = "small model: non-finite log-likelihood (NaN); large model: non-finite "
    assert (pb.failures["reason"] == reason + "log-likelihood (NaN)").all()


def test_all_refits_failed_is_an_invalid_test(sleep_pair, monkeypatch):
    """No replicate left: the bootstrap p-value is NaN (it was 1.0, with mc_se 0), the result
    is invalid with its reason, and the warning says so."""
    large, small = sleep_pair

    def broken(self, Y, want_params=False):
        raise np.linalg.LinAlgError("injected")

    monkeypatch.setattr(simulation.LMMSpec, "fit_many", broken)
    with pytest.warns(lmm.bootstrap.BootstrapWarning) as rec:
        pb = lmm.bootstrap.pb_lrt(large, small, nsim=20, seed=1)
    msg = str(rec[0].message)
    assert "20 of 20 bootstrap replicates failed: no replicate is left" in msg
    assert "not valid" in msg and "LinAlgError: injected (20x)" in msg
    assert np.isnan(pb.pvalue) and np.isnan(pb.mc_se)
    assert np.isnan(pb.pvalue_bartlett) and np.isnan(pb.pvalue_gamma)
    assert not pb.valid and isinstance(pb, TestResult)
    assert pb.reason == "all 20 bootstrap replicates failed (LinAlgError: injected (20x))"
    assert pb.nsim_ok == 0 and pb.ref_distribution.shape == (0,)
    assert list(pb.failures.index) == list(range(20))
    assert "Not valid: all 20 bootstrap replicates failed" in str(pb)
    assert np.isnan(pb.summary_frame().loc["PBtest", "p-value"])
    assert pb.pvalue_chi2 == pb.test.pvalue  # the chi-square test does not need replicates


def test_oneway_reml_pb_agrees_with_exact_rlrt():
    """REML fits with the same fixed effects: the REML LRT is bootstrapped by REML refits.  Its
    exact null p-value is again the F-test p-value (balanced layout); RLRsim's exactRLRT
    (10,000 simulations) is the R reference."""
    ref = REF["oneway_re"]
    small, large = _reml_oneway()
    pb = lmm.bootstrap.pb_lrt(large, small, nsim=2000, seed=2, n_jobs=2)
    assert pb.method == "REML" and pb.nsim_failed == 0
    assert_allclose(pb.lrt, ref["reml"]["lrt"], atol=1e-6)
    assert_allclose(pb.lrt, ref["exactRLRT"]["statistic"], atol=1e-6)
    p_exact = ref["anova_F"]["p_value"]
    se = np.sqrt(p_exact * (1 - p_exact) / pb.nsim_ok)
    assert abs(pb.pvalue - p_exact) <= 4 * se
    p_r = ref["exactRLRT"]["p_value"]
    se_r = np.sqrt(p_r * (1 - p_r) / ref["exactRLRT"]["nsim"])
    assert abs(pb.pvalue - p_r) <= 4 * np.hypot(se, se_r)


def test_pb_replicates_equal_full_refits_of_simulated_data():
    """Replicate j of pb_lrt is simulate(small, nsim, seed)[:, j], refitted by both models."""
    d = lmm.datasets.load("orthodont")
    kw = dict(groups="Subject", cov_struct=lmm.AR1(time="visit"))
    small = lmm.mixedlm("distance ~ age + Sex", d, **kw).fit(reml=False)
    large = lmm.mixedlm("distance ~ age * Sex", d, **kw).fit(reml=False)
    pb = lmm.bootstrap.pb_lrt(large, small, nsim=6, seed=9)
    Y = small.simulate(nsim=6, seed=9)
    for j in (0, 4):
        dj = d.assign(distance=Y[:, j])
        l0 = lmm.mixedlm("distance ~ age + Sex", dj, **kw).fit(reml=False).llf
        l1 = lmm.mixedlm("distance ~ age * Sex", dj, **kw).fit(reml=False).llf
        assert_allclose(pb.ref_distribution[j], 2 * (l1 - l0), rtol=1e-7, atol=1e-7)


@pytest.mark.slow
def test_pb_pvalues_uniform_under_the_null():
    """Fixed-effect test in a small random-intercept design, data simulated under H0: the
    bootstrap p-values are uniform (coarse KS check, 200 data sets x 99 replicates)."""
    rng = np.random.default_rng(2024)
    a, n = 8, 4
    g = np.repeat(np.arange(a), n)
    pvals = []
    for _ in range(200):
        x = rng.normal(size=a * n)
        y = 1.0 + rng.normal(0, 1.0, a)[g] + rng.normal(0, 1.5, a * n)
        d = pd.DataFrame({"y": y, "x": x, "g": g})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boundary fits are expected here
            small = lmm.mixedlm("y ~ 1", d, groups="g").fit(reml=False)
            large = lmm.mixedlm("y ~ x", d, groups="g").fit(reml=False)
        pb = lmm.bootstrap.pb_lrt(large, small, nsim=99, seed=int(rng.integers(2**31)))
        assert pb.nsim_failed == 0
        pvals.append(pb.pvalue)
    ks = stats.kstest(pvals, "uniform")
    assert ks.pvalue > 0.01, ks


@pytest.mark.slow
def test_variance_component_pb_is_calibrated():
    """One-way layout with no group effect (a boundary null): the bootstrap test rejects at
    about its level, whereas ties at LRT = 0 make p = 1 for about half of the data sets."""
    rng = np.random.default_rng(7)
    a, n, R = 6, 4, 200
    g = np.repeat(np.arange(a), n)
    pvals = []
    for _ in range(R):
        d = pd.DataFrame({"y": 5 + rng.normal(0, 2, a * n), "g": g})
        small = smf.ols("y ~ 1", d).fit()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            large = lmm.mixedlm("y ~ 1", d, groups="g").fit(reml=False)
        pvals.append(
            lmm.bootstrap.pb_lrt(large, small, nsim=99, seed=int(rng.integers(2**31))).pvalue
        )
    pvals = np.array(pvals)
    for alpha in (0.05, 0.1, 0.2):
        rate = np.mean(pvals <= alpha)
        assert abs(rate - alpha) <= 4 * np.sqrt(alpha * (1 - alpha) / R), (alpha, rate)
    assert 0.3 < np.mean(pvals == 1.0) < 0.8
