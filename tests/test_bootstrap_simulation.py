"""Simulation-and-refit specs (``lmm.bootstrap.simulation``), the engine's new-response fast
path and the batched optimiser."""

import numpy as np
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext._engine import Engine
from statsmodels_lmm_ext.adapters import as_fitted
from statsmodels_lmm_ext.bootstrap import simulation
from statsmodels_lmm_ext.optimize import bfgs_many
from statsmodels_lmm_ext.params import CovParams

from .conftest import fev_data


def _models():
    fev = fev_data()
    return [
        lmm.mixedlm("y ~ 1", lmm.datasets.load("oneway"), groups="group"),
        lmm.mixedlm(
            "Reaction ~ Days",
            lmm.datasets.load("sleepstudy"),
            groups="Subject",
            re_formula="~Days",
        ),
        lmm.mixedlm(
            "FEV1 ~ ARMCD * AVISIT", fev, groups="USUBJID", cov_struct=lmm.AR1(time="VISITN")
        ),
        lmm.mixedlm(
            "FEV1 ~ ARMCD * AVISIT",
            fev,
            groups="USUBJID",
            cov_struct=lmm.AR1(time="VISITN"),
            engine="group",
        ),
        lmm.mixedlm("FEV1 ~ ARMCD", fev, groups="USUBJID", re_formula="0"),
        lmm.mixedlm(
            "grain_yield ~ Variety * nitro_f",
            lmm.datasets.load("oats"),
            groups="Block",
            vc_formula={"Variety": "0 + C(Variety)"},
        ),
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.endog_names}-{m.engine.mode}")
def test_profile_many_equals_profile(model):
    """The batched deviance and gradient for B responses equal B single evaluations on engines
    rebuilt from scratch with each response."""
    eng = model.engine
    rng = np.random.default_rng(0)
    B = 4
    Y = model.endog[:, None] + rng.normal(size=(model.nobs, B)) * model.endog.std() * 0.3
    lam = np.abs(rng.normal(size=(B, eng.k_lin))) * 0.5
    if eng.k_re == 2:
        lam[:, 1] = 0.01
    rho = rng.uniform(0.1, 0.5, size=(B, eng.k_corr))
    stats_ = eng.endog_stats(Y)
    for reml in (True, False):
        out = eng.profile(lam, rho, reml, stats_, gradient=True)
        assert out["ok"].all()
        for b in range(B):
            fresh = Engine(
                Y[:, b],
                eng.X,
                eng.groups,
                eng.Z,
                eng.Zvc,
                eng.positions,
                eng.cov_struct,
                mode=eng.mode,
            )
            grad = eng.k_lin + eng.k_corr > 0
            ref = fresh.profile_one(lam[b], rho[b], reml, gradient=grad)
            fast = eng.with_endog(Y[:, b]).profile_one(lam[b], rho[b], reml, gradient=grad)
            assert_allclose(out["dev"][b], ref["dev"], rtol=1e-11)
            assert_allclose(out["beta"][b], ref["beta"], rtol=1e-8, atol=1e-10)
            assert_allclose(out["scale"][b], ref["scale"], rtol=1e-10)
            assert_allclose(fast["dev"], ref["dev"], rtol=1e-12)
            if grad:
                assert_allclose(out["grad_lin"][b], ref["grad_lin"], rtol=1e-7, atol=1e-8)
                assert_allclose(out["grad_rho"][b], ref["grad_rho"], rtol=1e-7, atol=1e-8)
                assert_allclose(fast["grad_lin"], ref["grad_lin"], rtol=1e-9, atol=1e-10)


def test_profile_many_flags_non_positive_definite_rows():
    m = lmm.mixedlm("y ~ 1", lmm.datasets.load("oneway"), groups="group")
    eng = m.engine
    st = eng.endog_stats(np.column_stack([m.endog, m.endog]))
    out = eng.profile(np.array([[-0.9], [0.3]]), np.zeros((2, 0)), False, st, gradient=True)
    assert list(out["ok"]) == [False, True]
    assert np.isinf(out["dev"][0]) and np.isfinite(out["dev"][1])
    assert_allclose(out["dev"][1], eng.profile_one(np.array([0.3]), np.zeros(0), False)["dev"])


def test_batch_transform_matches_transform():
    rng = np.random.default_rng(1)
    tr = CovParams(2, 1, lmm.Exponential(coords="x", nugget=True), max_group_size=4)
    U = rng.normal(size=(5, 6))
    g_lin, g_rho = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    lam, rho, psi, vc = tr.natural_many(U)
    G = tr.chain_many(U, g_lin, g_rho)
    for b in range(5):
        p, v, r = tr.natural(U[b])
        assert_allclose(psi[b], p)
        assert_allclose(vc[b], v)
        assert_allclose(rho[b], r)
        assert_allclose(lam[b], tr.lin(p, v))
        assert_allclose(G[b], tr.chain_many(U[b : b + 1], g_lin[b : b + 1], g_rho[b : b + 1])[0])


def test_batched_bfgs_on_independent_quadratics():
    """Each row converges to its own minimiser, whatever the rest of the batch does."""
    rng = np.random.default_rng(2)
    A = [np.array([[1.0, 3.0], [3.0, 100.0]]) * (1 + k) for k in range(6)]
    c = rng.normal(size=(6, 2))

    def fg(U, idx):
        d = U - c[idx]
        f = np.array([0.5 * d[i] @ A[j] @ d[i] for i, j in enumerate(idx)])
        g = np.array([A[j] @ d[i] for i, j in enumerate(idx)])
        return f, g

    U, f, conv = bfgs_many(fg, np.zeros((6, 2)), 1.0, 1e-10)
    assert conv.all()
    assert_allclose(U, c, atol=1e-8)
    U1, _, _ = bfgs_many(lambda U_, idx: fg(U_, idx + 3), np.zeros((1, 2)), 1.0, 1e-10)
    assert_allclose(U1[0], U[3], rtol=0, atol=1e-14)


def test_fit_many_does_not_depend_on_the_batch():
    d = lmm.datasets.load("sleepstudy")
    res = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit(reml=False)
    spec = simulation.spec_of(as_fitted(res))
    Y = res.simulate(nsim=12, seed=4)
    whole = spec.fit_many(Y, want_params=True)
    part = spec.fit_many(Y[:, 5:8], want_params=True)
    assert whole["converged"].all()
    assert_allclose(part["llf"], whole["llf"][5:8], rtol=1e-12)
    # and each refit is the maximum a full fit finds
    for j in (0, 7):
        full = lmm.mixedlm(
            "Reaction ~ Days", d.assign(Reaction=Y[:, j]), groups="Subject", re_formula="~Days"
        ).fit(reml=False)
        assert_allclose(whole["llf"][j], full.llf, rtol=1e-10)
        assert_allclose(whole["beta"][j], full.fe_params, rtol=1e-6)


def test_blups_of_refits_equal_results_random_effects(ar1_fit):
    res = ar1_fit
    spec = simulation.spec_of(as_fitted(res))
    fits = {
        "beta": res.fe_params.to_numpy()[None],
        "psi": spec.psi[None],
        "vc": spec.vc[None],
        "rho": spec.rho[None],
    }
    codes = np.array([0, 5, 17])
    b = spec.blups(res.model.endog[:, None], fits, codes, np.array([True]))
    for i, c in enumerate(codes):
        g = res.model.group_labels[c]
        assert_allclose(b[0, i], res.random_effects[g].to_numpy(), rtol=1e-8)


def test_ols_llf_closed_form():
    d = lmm.datasets.load("sleepstudy")
    ols = smf.ols("Reaction ~ Days", d).fit()
    spec = simulation.spec_of(as_fitted(ols))
    assert_allclose(spec.llf_many(d[["Reaction"]].to_numpy()), ols.llf, rtol=1e-12)
    # REML: equals our GLS engine with no random effects (and R's logLik(lm, REML = TRUE))
    gls = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="0").fit(reml=True)
    spec.reml = True
    assert_allclose(spec.llf_many(d[["Reaction"]].to_numpy()), gls.llf, rtol=1e-12)


def test_refits_leave_a_variance_stuck_at_zero():
    """With Psi = L^2 the deviance has a zero gradient at L = 0 whatever the data, so an
    optimiser that lands there stops.  This response (found by a closed-form check of 16,000
    REML replicates) sends the first quasi-Newton step there although the REML estimate of the
    group variance is positive; the refits must detect it and restart."""
    d = lmm.datasets.load("oneway")
    small = smf.ols("y ~ 1", d).fit()
    large = lmm.mixedlm("y ~ 1", d, groups="group").fit()  # REML
    y = lmm.bootstrap.simulate(small, 4000, seed=4)[:, 2943]
    full = lmm.mixedlm("y ~ 1", d.assign(y=y), groups="group").fit()
    assert float(full.cov_re.iloc[0, 0]) > 0.1
    spec = simulation.spec_of(as_fitted(large))
    out = spec.fit_many(y[:, None], want_params=True)
    assert out["converged"][0]
    assert_allclose(out["llf"][0], full.llf, rtol=1e-10)
    assert out["psi"][0, 0, 0] > 0.01
    # the fallback optimisers too, started on the saddle
    u, dev, ok = simulation.fit_one(spec.engine, spec.params, True, y, np.array([1e-7]))
    assert ok
    assert_allclose(-0.5 * dev, full.llf, rtol=1e-10)
    # and refit() (batched refit first, then fit() from its optimum)
    assert_allclose(large.refit(y).llf, full.llf, rtol=1e-10)
