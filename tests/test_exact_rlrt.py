"""Exact (restricted) likelihood-ratio tests for one variance component against RLRsim.

Reference: tests/results/exact_rlrt.json from tests/results/exact_rlrt.R (RLRsim 3.1.8,
lme4, nlme; R 4.2.2): RLRsim's ``exactRLRT`` / ``exactLRT`` statistics, and p-values and
summaries of 1e6 simulated null values.  Statistics agree to 1e-6 (both are differences of
converged log-likelihoods).  Simulated quantities are compared within 4 combined Monte Carlo
standard errors (ours: 2e5 values, R: 1e6): a false alarm has probability ~6e-5 per check.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

import statsmodels_lmm_ext as lmm
from tests.conftest import load_reference

REF = load_reference("exact_rlrt.json")
CASES = REF["cases"]
NSIM = 200_000


def _pulp():
    return pd.DataFrame(REF["data"]["pulp"])


def _ortho(unbalanced=False):
    d = lmm.datasets.load("orthodont")
    if unbalanced:  # the R script drops rows 1, 8, 15, ... (1-based)
        d = d.drop(index=d.index[::7]).reset_index(drop=True)
    return d


def _fit(case, reml=True, shuffle=False):
    if case.startswith("pulp"):
        d, f, kw = _pulp(), "bright ~ 1", dict(groups="operator")
    elif case == "ortho_rlrt":
        d, f, kw = _ortho(), "distance ~ age * Sex", dict(groups="Subject")
    elif case.startswith("ortho_u"):
        d, f, kw = _ortho(True), "distance ~ age + Sex", dict(groups="Subject")
    else:
        d = lmm.datasets.load("sleepstudy")
        f, kw = "Reaction ~ Days", dict(groups="Subject", re_formula="0 + Days")
    if shuffle:
        d = d.sample(frac=1.0, random_state=7)
    return lmm.mixedlm(f, d, **kw).fit(reml=reml), d


def _small(case, d):
    return smf.ols("bright ~ 1" if case.startswith("pulp") else "distance ~ age", d).fit()


def _run(case, nsim=NSIM, seed=1, **kw):
    if CASES[case]["test"] == "exactRLRT":
        res, _ = _fit(case)
        return lmm.exact_rlrt(res, nsim=nsim, seed=seed, **kw)
    res, d = _fit(case, reml=False)
    return lmm.exact_lrt(res, _small(case, d), nsim=nsim, seed=seed, **kw)


def _close(ours: float, ref: float, n_ref: int, n_ours: int = NSIM):
    """Two simulated proportions within 4 combined Monte Carlo standard errors."""
    p = 0.5 * (ours + ref)
    se = np.sqrt(p * (1 - p) * (1 / n_ref + 1 / n_ours))
    assert abs(ours - ref) <= 4 * se + 1e-12, (ours, ref, se)


@pytest.fixture(scope="module", params=sorted(CASES))
def case_result(request):
    return request.param, _run(request.param)


def test_statistic(case_result):
    case, t = case_result
    assert_allclose(t.statistic, CASES[case]["statistic"], rtol=1e-6, atol=1e-8)


def test_pvalue_and_null_distribution(case_result):
    case, t = case_result
    ref = CASES[case]
    _close(t.pvalue, ref["pvalue"], ref["nsim"])
    _close(np.mean(t.sample == 0), ref["sample_p0"], ref["nsim"])
    for c, p in zip(ref["tail_at"], ref["tail_p"], strict=True):
        _close(np.mean(t.sample > c), p, ref["nsim"])
    assert t.nsim == NSIM and t.sample.shape == (NSIM,)


def test_mass_at_zero_is_exact_beta_probability():
    # balanced pulp: the simulated RLRT is 0 when its slope at lambda = 0 is <= 0, i.e.
    # (n - p) chi2_3 / (chi2_3 + chi2_16) <= 3 (mu_s equal for the K - 1 = 3 contrasts), a
    # Beta(3/2, 8) probability: an analytic check independent of R.
    t = _run("pulp_rlrt")
    p0 = stats.beta.cdf(3 / 19, 1.5, 8)
    _close(np.mean(t.sample == 0), p0, 10**12)


def test_statsmodels_results_and_ols_small_model():
    d = _pulp()
    sm = smf.mixedlm("bright ~ 1", d, groups="operator").fit(reml=True)
    t = lmm.exact_rlrt(sm, nsim=2000, seed=3)
    assert_allclose(t.statistic, CASES["pulp_rlrt"]["statistic"], rtol=1e-5)
    # our Independence fit without random effects is an accepted small model too
    res, _ = _fit("pulp_lrt", reml=False)
    small = lmm.mixedlm("bright ~ 1", d, groups="operator", re_formula="0").fit(reml=False)
    t2 = lmm.exact_lrt(res, small, nsim=2000, seed=3)
    assert_allclose(t2.statistic, CASES["pulp_lrt"]["statistic"], rtol=1e-6)


def test_refits_by_the_right_method():
    res_ml, _ = _fit("pulp_rlrt", reml=False)
    t = lmm.exact_rlrt(res_ml, nsim=1000, seed=1)
    assert_allclose(t.statistic, CASES["pulp_rlrt"]["statistic"], rtol=1e-6)
    assert any("refitted by REML" in n for n in t.notes)
    res_reml, d = _fit("pulp_lrt", reml=True)
    t = lmm.exact_lrt(res_reml, _small("pulp_lrt", d), nsim=1000, seed=1)
    assert_allclose(t.statistic, CASES["pulp_lrt"]["statistic"], rtol=1e-6)
    assert any("refitted by ML" in n for n in t.notes)
    assert any("RLRT is preferable" in n for n in t.notes)  # q = 0


def test_invariant_to_row_order_labels_and_units():
    res, d = _fit("ortho_u_rlrt")
    base = lmm.exact_rlrt(res, nsim=5000, seed=9)
    shuffled, _ = _fit("ortho_u_rlrt", shuffle=True)
    t = lmm.exact_rlrt(shuffled, nsim=5000, seed=9)
    assert_allclose(t.statistic, base.statistic, rtol=1e-6)
    assert_allclose(t.sample, base.sample, rtol=1e-8, atol=1e-10)
    relabelled = "s" + d["Subject"].str[::-1]
    d2 = d.assign(Subject=relabelled, distance=1000 * d["distance"] + 5e4, age=d["age"] / 12)
    r2 = lmm.mixedlm("distance ~ age + Sex", d2, groups="Subject").fit()
    t2 = lmm.exact_rlrt(r2, nsim=5000, seed=9)
    assert_allclose(t2.statistic, base.statistic, rtol=1e-5)
    assert_allclose(t2.sample, base.sample, rtol=1e-8, atol=1e-10)


def test_seed_and_search_rule():
    a = _run("ortho_u_rlrt", nsim=3000, seed=5)
    b = _run("ortho_u_rlrt", nsim=3000, seed=5)
    assert_allclose(a.sample, b.sample, rtol=0, atol=0)
    g = _run("ortho_u_rlrt", nsim=3000, seed=5, search="global")
    # the global maximum over the grid is never below RLRsim's first local maximum
    assert np.all(g.sample >= a.sample - 1e-12)
    assert "RLRT" in str(a) and "p-value" in str(a)


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")
@pytest.mark.filterwarnings("ignore:The random effects covariance matrix is singular")
def test_zero_statistic_gives_pvalue_one():
    # the variance component estimated at 0: RLRT = 0 and p = 1 (RLRsim's convention)
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"g": np.repeat(np.arange(10), 5), "x": rng.normal(size=50)})
    d["y"] = d["x"] + rng.normal(size=50)
    d.loc[:, "y"] = d["y"] - d.groupby("g")["y"].transform("mean")  # no group variation
    res = lmm.mixedlm("y ~ x", d, groups="g").fit()
    t = lmm.exact_rlrt(res, nsim=500, seed=1)
    assert t.statistic == 0.0 and t.pvalue == 1.0


def test_refuses_other_models():
    d = _ortho()
    ar1 = lmm.mixedlm("distance ~ age", d, groups="Subject", cov_struct=lmm.AR1(time="visit"))
    with pytest.raises(ValueError, match="independent residuals.*AR1"):
        lmm.exact_rlrt(ar1.fit(), nsim=10)
    two = lmm.mixedlm("distance ~ age", d, groups="Subject", re_formula="1 + age").fit()
    with pytest.raises(ValueError, match="exactly one variance component"):
        lmm.exact_rlrt(two, nsim=10)
    ri = lmm.mixedlm("distance ~ age", d, groups="Subject").fit()
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        lmm.exact_rlrt(ri, nsim=0)
    with pytest.raises(ValueError, match="small model must have no random effects"):
        lmm.exact_lrt(ri, ri, nsim=10)
    other = smf.ols("distance ~ age", d.iloc[:100]).fit()
    with pytest.raises(ValueError, match="different data"):
        lmm.exact_lrt(ri, other, nsim=10)
    with pytest.raises(TypeError, match="one variance component"):
        lmm.exact_rlrt(smf.ols("distance ~ age", d).fit())


def test_variance_component_form():
    # the operator effect as one variance component of a single group: the same model, so the
    # same statistic and (same eigenvalues, same seed) the same simulated values
    d = _pulp().assign(one=1)
    vc = lmm.mixedlm("bright ~ 1", d, groups="one", re_formula="0",
                     vc_formula={"op": "0 + C(operator)"}).fit()  # fmt: skip
    ri, _ = _fit("pulp_rlrt")
    a = lmm.exact_rlrt(vc, nsim=2000, seed=4)
    b = lmm.exact_rlrt(ri, nsim=2000, seed=4)
    assert_allclose(a.statistic, CASES["pulp_rlrt"]["statistic"], rtol=1e-6)
    assert_allclose(a.sample, b.sample, rtol=1e-10, atol=1e-12)
