"""simulate / refit, the engine's new-response fast path and the batched optimiser."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext import bootstrap as bs
from statsmodels_lmm_ext._engine import Engine
from statsmodels_lmm_ext.params import CovParams


def _fev():
    d = lmm.datasets.load("fev_data")
    return d[d["FEV1"].notna()].reset_index(drop=True)  # missing visits: several patterns


@pytest.fixture(scope="module", params=["pattern", "group"])
def ar1_fit(request):
    """Random intercept + AR(1) residuals on integer visits with gaps."""
    m = lmm.mixedlm(
        "FEV1 ~ ARMCD + AVISIT",
        _fev(),
        groups="USUBJID",
        cov_struct=lmm.AR1(time="VISITN"),
        engine=request.param,
    )
    assert m.engine.mode == request.param
    return m.fit(reml=False)


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


# ---------------------------------------------------------------- engine fast path


def _models():
    fev = _fev()
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

    U, f, conv = bs._bfgs_many(fg, np.zeros((6, 2)), 1.0, 1e-10)
    assert conv.all()
    assert_allclose(U, c, atol=1e-8)
    U1, _, _ = bs._bfgs_many(lambda U_, idx: fg(U_, idx + 3), np.zeros((1, 2)), 1.0, 1e-10)
    assert_allclose(U1[0], U[3], rtol=0, atol=1e-14)


def test_fit_many_does_not_depend_on_the_batch():
    d = lmm.datasets.load("sleepstudy")
    res = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit(reml=False)
    spec = bs._as_fit(res).spec
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
    f = bs._as_fit(res)
    spec = f.spec
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
    spec = bs._as_fit(ols).spec
    assert_allclose(spec.llf_many(d[["Reaction"]].to_numpy()), ols.llf, rtol=1e-12)
    # REML: equals our GLS engine with no random effects (and R's logLik(lm, REML = TRUE))
    gls = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="0").fit(reml=True)
    spec.reml = True
    assert_allclose(spec.llf_many(d[["Reaction"]].to_numpy()), gls.llf, rtol=1e-12)


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


def test_lrt_accepts_pandas_reordered_index():
    """Row labels do not matter, only the row order (the same data frame)."""
    d = lmm.datasets.load("oneway")
    d.index = pd.RangeIndex(100, 120)
    small = smf.ols("y ~ 1", d).fit()
    large = lmm.mixedlm("y ~ 1", d, groups="group").fit(reml=False)
    assert lmm.bootstrap.lrt(small, large).df == 1


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
    spec = bs._as_fit(large).spec
    out = spec.fit_many(y[:, None], want_params=True)
    assert out["converged"][0]
    assert_allclose(out["llf"][0], full.llf, rtol=1e-10)
    assert out["psi"][0, 0, 0] > 0.01
    # the fallback optimisers too, started on the saddle
    u, dev, ok = bs._fit_one(spec.engine, spec.transform, True, y, np.array([1e-7]))
    assert ok
    assert_allclose(-0.5 * dev, full.llf, rtol=1e-10)
    # and refit() (batched refit first, then fit() from its optimum)
    assert_allclose(large.refit(y).llf, full.llf, rtol=1e-10)
