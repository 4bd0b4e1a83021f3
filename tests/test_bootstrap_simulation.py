"""Simulation-and-refit specs (``lmm.bootstrap.simulation``), the engine's new-response fast
path and the batched optimiser."""

import numpy as np
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.adapters import as_fitted
from statsmodels_lmm_ext.bootstrap import simulation


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


def test_fit_many_gives_one_reason_per_refit(monkeypatch):
    """Each failed refit says why: an exception of its fallback optimisers, a non-finite
    log-likelihood, or the convergence criterion missed (with the gradient it stopped at)."""
    d = lmm.datasets.load("sleepstudy")
    res = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
    spec = simulation.spec_of(as_fitted(res))
    Y = res.simulate(nsim=8, seed=2)
    clean = spec.fit_many(Y, want_params=True)
    assert clean["converged"].all() and list(clean["reasons"]) == [""] * 8
    real = simulation.bfgs_many

    def bfgs_leaving_three(fg, U0, gscale, gtol, maxiter=200, Hinv0=None):
        U, f, conv = real(fg, U0, gscale, gtol, maxiter, Hinv0)
        conv[[1, 4, 6]] = False  # handed to the fallback
        return U, f, conv

    def fallback(eng, bt, reml, y, u0):
        if np.array_equal(y, Y[:, 1]):
            raise np.linalg.LinAlgError("injected")
        if np.array_equal(y, Y[:, 4]):
            return u0, np.nan, False
        return u0 + 0.5, 0.0, False  # stops away from the optimum

    monkeypatch.setattr(simulation, "bfgs_many", bfgs_leaving_three)
    monkeypatch.setattr(simulation, "fit_one", fallback)
    out = spec.fit_many(Y, want_params=True)
    assert list(np.flatnonzero(~out["converged"])) == [1, 4, 6]
    r = out["reasons"]
    assert r[1] == "LinAlgError: injected"
    assert r[4] == "non-finite log-likelihood (NaN)"
    assert r[6].startswith("refit did not converge (max|grad|/n = ")
    assert float(r[6][len("refit did not converge (max|grad|/n = ") : -1]) > 1e-6
    keep = [0, 2, 3, 5, 7]
    assert all(r[j] == "" for j in keep)
    assert np.array_equal(out["llf"][keep], clean["llf"][keep])


def test_ols_fit_many_reasons():
    d = lmm.datasets.load("sleepstudy")
    spec = simulation.spec_of(as_fitted(smf.ols("Reaction ~ Days", d).fit()))
    # the second response has a zero residual sum of squares (its log rounds to -inf or NaN)
    Y = np.column_stack([d["Reaction"], spec.mean])
    out = spec.fit_many(Y)
    assert list(out["converged"]) == [True, False]
    assert out["reasons"][0] == ""
    assert out["reasons"][1] in (
        "non-finite log-likelihood (NaN)",
        "non-finite log-likelihood (inf)",
    )
