"""Influence of groups (``res.influence()``): exact leave-one-group-out refits and SAS's deletion
statistics.

References:

- ``tests/results/influence_groups.json``, written by ``tests/results/influence_groups.R`` (R
  4.2.2, mmrm 0.3.11, nlme 3.1-162) on ``mmrm_fev_holes.csv``: refits without four subjects
  (mmrm ``us()`` REML, nlme ``gls`` ``corCompSymm`` REML and ML, nlme ``lme`` random intercept
  + ``corAR1`` REML and ML) and SAS's statistics computed there from those refits with dense
  per-subject likelihoods.  Tolerances: deleted estimates 1e-5 relative (R's optimisers stop
  ~1e-6 short, nlme's ``lme`` up to ~2e-5 relative in its variances and 2.4e-6 absolute in
  the AR(1) correlation, hence also 1e-5 absolute); Cook's D, MDFFITS,
  COVRATIO, COVTRACE 1e-4 (they inherit the estimates' error); the likelihood distance 3e-4
  (a difference of log-likelihoods, quadratic in the estimates' error); Cook's D of the
  covariance parameters 5e-4 (R's information is a central-difference Hessian).
- Direct refits: ``lmm.mixedlm(...).fit()`` on the data without the group, to 1e-6.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.diagnostics._deletion import DeletionFits
from statsmodels_lmm_ext.diagnostics.influence import InfluenceWarning

RESULTS = Path(__file__).resolve().parent / "results"
REF = json.loads((RESULTS / "influence_groups.json").read_text())
FORMULA = "FEV1 ~ ARMCD * AVISIT + RACE"
STRUCTS = {
    "un": (lambda: lmm.Unstructured(time="AVISIT"), "0"),
    "cs": (lambda: lmm.CompoundSymmetry(), "0"),
    "ri_ar1": (lambda: lmm.AR1(time="VISITN"), "1"),
}
STATS = ["cookd", "mdffits", "covratio", "covtrace", "cookd_cov"]


def fev():
    return pd.read_csv(RESULTS / "mmrm_fev_holes.csv")


def fit(data, model, reml, engine="auto", formula=FORMULA):
    make, re = STRUCTS[model]
    m = lmm.mixedlm(formula, data, groups="USUBJID", re_formula=re, cov_struct=make(),
                    engine=engine)  # fmt: skip
    return m.fit(reml=reml)


def changes(inf, res):
    """Deleted estimates (fixed effects, natural covariance parameters) from the frame."""
    cols = [c for c in inf.columns if c.startswith("change[")]
    p = len(res.fe_params)
    ch = inf[cols].to_numpy(float)
    return np.asarray(res.fe_params) + ch[:, :p], res.variance_model.theta + ch[:, p:]


@pytest.mark.parametrize("case", list(REF["cases"]))
def test_against_r(case):
    ref = REF["cases"][case]
    res = fit(fev(), ref["model"], ref["reml"])
    groups = REF["groups"]
    inf = res.influence(groups=groups)
    assert list(inf.index) == groups
    assert inf["converged"].all() and (inf["reason"] == "").all()
    beta, theta = changes(inf, res)
    ld = "rld" if ref["reml"] else "ld"
    for j, g in enumerate(groups):
        r = ref["deleted"][g]
        assert inf.loc[g, "nobs"] == r["nobs"]
        assert_allclose(beta[j], r["beta"], rtol=1e-5, atol=1e-5)
        assert_allclose(theta[j], r["theta"], rtol=1e-5, atol=1e-5)
        for s in STATS[:4]:
            assert_allclose(inf.loc[g, s], r[s], rtol=1e-4, err_msg=s)
        assert_allclose(inf.loc[g, "cookd_cov"], r["cookd_cov"], rtol=5e-4)
        assert_allclose(inf.loc[g, ld], r["ld"], rtol=3e-4)
        assert_allclose(inf.loc[g, "press"], r["press"], rtol=1e-6)


DIRECT = [
    ("ri_ar1", True, "auto"),
    ("ri_ar1", False, "group"),
    ("un", True, "auto"),
    ("cs", False, "auto"),
    ("cs", True, "group"),
]


@pytest.mark.parametrize("model,reml,engine", DIRECT)
def test_matches_direct_refits(model, reml, engine):
    data = fev()
    res = fit(data, model, reml, engine)
    groups = ["PT138", "PT10", "PT2"]
    inf = res.influence(groups=groups)
    beta, theta = changes(inf, res)
    p = len(beta[0])
    V = np.asarray(res.cov_params())[:p, :p]
    W = res.variance_model.cov_theta("observed")
    for j, g in enumerate(groups):
        sub = fit(data[data.USUBJID != g], model, reml)
        b2, t2 = np.asarray(sub.fe_params), sub.variance_model.theta
        assert_allclose(beta[j], b2, rtol=1e-6, atol=1e-6 * np.abs(b2).max())
        assert_allclose(theta[j], t2, rtol=1e-6, atol=1e-6 * np.abs(t2).max())
        # the statistics' definitions, from the direct refit
        d = np.asarray(res.fe_params) - b2
        V2 = np.asarray(sub.cov_params())[:p, :p]
        assert_allclose(inf.loc[g, "cookd"], d @ np.linalg.solve(V, d) / p, rtol=1e-5)
        assert_allclose(inf.loc[g, "mdffits"], d @ np.linalg.solve(V2, d) / p, rtol=1e-5)
        ratio = np.linalg.det(V2) / np.linalg.det(V)
        assert_allclose(inf.loc[g, "covratio"], ratio, rtol=1e-6)
        trace = abs(np.trace(np.linalg.solve(V, V2)) - p)
        assert_allclose(inf.loc[g, "covtrace"], trace, rtol=1e-5, atol=1e-8)
        dt = res.variance_model.theta - t2
        assert_allclose(inf.loc[g, "cookd_cov"], dt @ np.linalg.pinv(W) @ dt, rtol=1e-5)
        rows = data.USUBJID == g
        X = np.asarray(res.model.exog)[rows.to_numpy()]
        press = np.sum((data.FEV1[rows].to_numpy() - X @ b2) ** 2)
        assert_allclose(inf.loc[g, "press"], press, rtol=1e-8)


@pytest.mark.parametrize("engine", ["pattern", "group"])
def test_deletion_likelihood_is_the_reduced_data_likelihood(engine):
    """The reduced likelihood, its gradient and ``(X'H^-1X)^-1`` at arbitrary parameters equal
    the engine's on the data without the group (exactly, up to rounding)."""
    data = fev()
    res = fit(data, "ri_ar1", True, engine)
    m = res.model
    spec = m.cov_params_spec
    fits = DeletionFits(m.engine, spec, True)
    gids = np.array([0, 7, 50])
    u0 = fits.start(res.cov_re_unscaled, res.vcomp / res.scale, res._rho)
    U = u0 + 0.1 * np.random.default_rng(0).standard_normal((3, len(u0)))
    lam, rho, _, _ = spec.natural_many(U)
    out = fits.profile(lam, rho, gids, gradient=True)
    for j, g in enumerate(gids):
        sub = data[data.USUBJID != m.group_labels[g]]
        eng = lmm.mixedlm(FORMULA, sub, groups="USUBJID", cov_struct=lmm.AR1(time="VISITN"),
                          engine=engine).engine  # fmt: skip
        ref = eng.profile(lam[j : j + 1], rho[j : j + 1], True, gradient=True)
        for key in ("dev", "beta", "scale", "Ainv", "grad_lin", "grad_rho"):
            assert_allclose(out[key][j], ref[key][0], rtol=1e-9, atol=1e-10, err_msg=key)


def test_all_groups_and_frame_layout():
    res = fit(fev(), "cs", True)
    inf = res.influence()
    labels = list(res.model.group_labels)
    assert list(inf.index) == labels
    assert inf["converged"].all()
    assert (inf[[*STATS, "rld", "press"]] >= 0).all().all()
    assert inf["nobs"].sum() == res.model.nobs
    names = list(res.fe_params.index) + ["Residual", "rho (CompoundSymmetry)"]
    assert [c for c in inf.columns if c.startswith("change[")] == [f"change[{n}]" for n in names]
    assert "Influence of groups" in repr(inf)
    # the most influential subject on the fixed effects has a visibly larger Cook's D
    assert inf["cookd"].max() > 3 * inf["cookd"].median()


def test_invariant_to_row_order_labels_and_units():
    data = fev()
    groups = ["PT138", "PT77", "PT10"]
    base = fit(data, "ri_ar1", True).influence(groups=groups)
    other = data.sample(frac=1.0, random_state=3).reset_index(drop=True)
    other["USUBJID"] = "S-" + other["USUBJID"].str[::-1]
    other["FEV1"] = 1000.0 + 25.0 * other["FEV1"]  # units and offset of the response
    res = fit(other, "ri_ar1", True)
    inf = res.influence(groups=["S-" + g[::-1] for g in groups])
    assert_allclose(inf[[*STATS, "rld"]].to_numpy(float), base[[*STATS, "rld"]].to_numpy(float),
                    rtol=2e-6, atol=1e-12)  # fmt: skip
    assert_allclose(inf["press"].to_numpy(), 625.0 * base["press"].to_numpy(), rtol=1e-7)
    # changes of the fixed effects (intercept aside) scale with the response
    cols = [c for c in base.columns if c.startswith("change[")][1:10]
    assert_allclose(inf[cols].to_numpy(float), 25.0 * base[cols].to_numpy(float), rtol=1e-5,
                    atol=1e-7)  # fmt: skip


def test_group_that_alone_has_a_visit_gives_a_nan_row():
    """A visit level only one subject has: without it the fixed-effects design loses rank."""
    data = fev()
    extra = data[data.USUBJID == "PT10"].iloc[:1].copy()
    extra["AVISIT"], extra["VISITN"], extra["FEV1"] = "VIS5", 5, extra["FEV1"] + 3.0
    data = pd.concat([data, extra], ignore_index=True)
    res = fit(data, "ri_ar1", True, formula="FEV1 ~ ARMCD + AVISIT + RACE")
    with pytest.warns(InfluenceWarning, match="PT10") as record:
        inf = res.influence(groups=["PT10", "PT2"])
    assert record[0].filename == __file__  # points at the caller
    assert np.isnan(inf.loc["PT10", STATS + ["rld", "press"]].to_numpy(float)).all()
    assert "AVISIT[T.VIS5]" in inf.loc["PT10", "reason"]
    assert not inf.loc["PT10", "converged"]
    assert inf.loc["PT2", "reason"] == "" and np.isfinite(inf.loc["PT2", "cookd"])


def test_group_that_alone_informs_a_covariance_parameter():
    """Heterogeneous compound symmetry with a visit only one subject has (no visit effect in
    the mean): that visit's variance is informed by that subject alone."""
    data = fev()
    extra = data[data.USUBJID == "PT108"].iloc[:1].copy()
    extra["AVISIT"], extra["FEV1"] = "VIS5", extra["FEV1"] + 3.0
    data = pd.concat([data, extra], ignore_index=True)
    model = lmm.mixedlm(
        "FEV1 ~ ARMCD + RACE",
        data,
        groups="USUBJID",
        re_formula="0",
        cov_struct=lmm.CompoundSymmetry(time="AVISIT", heterogeneous=True),
    )
    res = model.fit()
    with pytest.warns(InfluenceWarning):
        inf = res.influence(groups=["PT108", "PT2"])
    assert "informed by this group alone" in inf.loc["PT108", "reason"]
    assert "sd_ratio5" in inf.loc["PT108", "reason"]
    assert np.isnan(inf.loc["PT108", "cookd"])
    assert np.isfinite(inf.loc["PT2", "cookd"])


def test_bad_group_label():
    res = fit(fev(), "cs", True)
    with pytest.raises(KeyError, match="not groups of the model"):
        res.influence(groups=["nobody"])


def test_fit_with_parameters_held_fixed_is_refused():
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    model = lmm.mixedlm("FEV1 ~ ARMCD", fev(), groups="USUBJID", re_formula="1 + VISITN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' note on the free pattern
        res = model.fit(free=MixedLMParams.from_components(np.ones(2), np.eye(2)))
    with pytest.raises(NotImplementedError, match="free="):
        res.influence(groups=["PT10"])


def test_fallback_optimiser_chain_agrees_with_the_batch():
    """Refits the batched BFGS leaves unconverged go through fit()'s optimiser chain."""
    res = fit(fev(), "cs", True)
    m = res.model
    fits = DeletionFits(m.engine, m.cov_params_spec, True)
    u0 = fits.start(res.cov_re_unscaled, res.vcomp / res.scale, res._rho)
    gids = np.array([3, 9])
    U1, _, conv1, est1 = fits.refit(gids, u0, fits.full_inverse_hessian(u0))
    U2, _, conv2, est2 = fits.refit(gids, u0, None, gtol=1e-300)  # the batch cannot converge
    assert conv1.all() and conv2.all()
    assert_allclose(U2, U1, atol=1e-6)
    assert_allclose(est2["beta"], est1["beta"], rtol=1e-7)


@pytest.mark.parametrize("model", ["ri_ar1", "un"])
def test_threaded_batches_give_the_serial_result(model, monkeypatch):
    # large models split the deletion refits into one batch per thread; each group's refit
    # is the same computation either way (to the refits' convergence tolerance)
    import statsmodels_lmm_ext.diagnostics.influence as infl

    res = fit(fev(), model, True)
    monkeypatch.setattr(infl, "_THREADS", 1)
    serial = res.influence()
    monkeypatch.setattr(infl, "_THREADS", 2)
    monkeypatch.setattr(infl, "_SPLIT_MIN", 2)
    monkeypatch.setattr(infl, "_THREAD_WORK", 0)
    threaded = res.influence()
    assert list(threaded.index) == list(serial.index)
    num = [c for c in serial.columns if c not in ("converged", "reason")]
    assert_allclose(
        threaded[num].to_numpy(float), serial[num].to_numpy(float), rtol=1e-5, atol=1e-7
    )
