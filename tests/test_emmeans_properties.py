"""Marginal means: properties that need no reference software.

Each test states the identity it checks; the expected values come from independent routes
(closed forms, statsmodels' own predictions, scipy's multivariate t, brute force).
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.emmeans import _letters


@pytest.fixture(scope="module")
def tf():
    return lmm.datasets.load("twofactor_unbalanced")


def test_non_estimable_cells_are_nan(tf):
    """An empty cell in a rank-deficient OLS fit: the cell mean, the marginal mean averaging
    over it and the contrasts involving it are NaN; everything else is estimable and equals
    the fit without the offending level."""
    d = tf[~((tf.A == "a3") & (tf.B == "b4"))]
    with pytest.warns(Warning, match="rank-deficient"):
        res = smf.ols("y ~ A * B + x", d).fit()
    cells = lmm.emmeans(res, "B", by="A").summary_frame()
    nan = cells[cells.B.eq("b4") & cells.A.eq("a3")]
    assert nan["emmean"].isna().all() and nan["se"].isna().all()
    assert cells.drop(nan.index)["emmean"].notna().all()
    em = lmm.emmeans(res, "A")
    f = em.summary_frame()
    assert f.set_index("A")["emmean"].isna().to_dict() == {"a1": False, "a2": False, "a3": True}
    assert any("not estimable" in n for n in f.attrs["notes"])
    pw = em.pairs().summary_frame().set_index("contrast")
    assert np.isnan(pw.loc["a1 - a3", "estimate"]) and np.isnan(pw.loc["a2 - a3", "p_value"])
    assert np.isfinite(pw.loc["a1 - a2", "p_value"])
    # the estimable means equal those of the full-rank fit of the same column space (the
    # empty cell's interaction column is all zeros: drop it)
    X = res.model.exog
    keep = np.abs(X).sum(axis=0) > 0
    assert keep.sum() == X.shape[1] - 1
    full = sm.OLS(res.model.endog, X[:, keep]).fit()
    L = em.L[:2][:, keep]
    assert_allclose(em.estimate[:2], L @ full.params, rtol=1e-10)
    assert_allclose(em.se[:2], np.sqrt(np.diag(L @ full.cov_params() @ L.T)), rtol=1e-8)


def test_cells_weights_give_raw_means(tf):
    """A saturated cell-means model with weights='cells' returns the raw marginal means."""
    res = smf.ols("y ~ A * B", tf).fit()
    em = lmm.emmeans(res, "A", weights="cells").summary_frame()
    assert_allclose(em["emmean"], tf.groupby("A")["y"].mean().to_numpy(), rtol=1e-12)


def test_equal_weights_are_averages_of_predictions(tf):
    """A mean is the average of the model's predictions over the other factor at mean x,
    with transformed terms evaluated at the mean of the variable (np.log(mean x))."""
    res = smf.ols("y ~ A * B + np.log(x + 1)", tf).fit()
    grid = pd.DataFrame(
        list(itertools.product(["a1", "a2", "a3"], ["b1", "b2", "b3", "b4"])), columns=["A", "B"]
    )
    grid["x"] = tf.x.mean()
    pred = res.predict(grid).to_numpy().reshape(3, 4).mean(axis=1)
    assert_allclose(lmm.emmeans(res, "A").estimate, pred, rtol=1e-12)
    at = lmm.emmeans(res, "A", by="x", at={"x": [0.5, 2.0]}).summary_frame()
    assert list(at["x"]) == [0.5, 0.5, 0.5, 2.0, 2.0, 2.0]
    grid["x"] = 2.0
    pred2 = res.predict(grid).to_numpy().reshape(3, 4).mean(axis=1)
    assert_allclose(at["emmean"].to_numpy()[3:], pred2, rtol=1e-12)


def test_numeric_variable_as_factor_and_category_order(tf):
    """C(x) on a numeric column is a factor; a pandas Categorical keeps its level order."""
    d = tf.copy()
    d["dose"] = d.B.map({"b1": 0.0, "b2": 0.5, "b3": 1.0, "b4": 2.0})
    d["A"] = pd.Categorical(d.A, categories=["a3", "a1", "a2"])
    res = smf.ols("y ~ A + C(dose)", d).fit()
    assert list(lmm.emmeans(res, "dose").levels["dose"]) == [0.0, 0.5, 1.0, 2.0]
    em = lmm.emmeans(res, "A")
    assert list(em.levels["A"]) == ["a3", "a1", "a2"]
    assert list(em.pairs().summary_frame()["contrast"]) == ["a3 - a1", "a3 - a2", "a1 - a2"]


def test_formulaic_engine_matches_patsy(tf):
    """The reference grid through formulaic's ModelSpec gives the same means as patsy's."""
    res = lmm.mixedlm("y ~ A * B + x", tf, groups="block").fit()
    ref = lmm.emmeans(res, "A").summary_frame()
    old = statsmodels.formula.options.formula_engine
    try:
        statsmodels.formula.options.formula_engine = "formulaic"
        res_f = lmm.mixedlm("y ~ A * B + x", tf, groups="block").fit()
        assert type(res_f.model.data.model_spec).__module__.startswith("formulaic")
        got = lmm.emmeans(res_f, "A").summary_frame()
    finally:
        statsmodels.formula.options.formula_engine = old
    assert_allclose(got[["emmean", "se", "df"]], ref[["emmean", "se", "df"]], rtol=1e-6)


def test_satterthwaite_df_from_finite_differences():
    """Satterthwaite df of a mean, 2 (l'Phi l)^2 / (g' W g), with g the finite-difference
    derivative of l'Phi(theta) l in theta = (sigma^2, rho) (gls with AR(1) residuals)."""
    d = lmm.datasets.load("fev_data")
    res = lmm.mixedlm(
        "FEV1 ~ ARMCD * AVISIT + FEV1_BL",
        d,
        groups="USUBJID",
        re_formula="0",
        cov_struct=lmm.AR1(time="VISITN"),
        missing="drop",
    ).fit()
    vm, eng = res.variance_model, res.model.engine
    s2, r0 = vm.theta

    def ainv(r):
        return np.linalg.inv(eng.profile_one(np.zeros(0), np.array([r]), True)["A"])

    h = 1e-5
    G = [ainv(r0), s2 * (ainv(r0 + h) - ainv(r0 - h)) / (2 * h)]
    W = vm.cov_theta("observed")
    em = lmm.emmeans(res, "ARMCD | AVISIT", ddf="satterthwaite")
    for l, df in zip(em.L, em.df, strict=True):
        g = np.array([l @ Gk @ l for Gk in G])
        assert_allclose(df, 2 * (l @ vm.Phi @ l) ** 2 / (g @ W @ g), rtol=1e-6)


def test_tukey_switches_to_sidak_with_a_note(tf):
    res = smf.ols("y ~ A + B", tf).fit()
    em = lmm.emmeans(res, "B")
    f = em.summary_frame(adjust="tukey")
    assert any('changed to "sidak"' in n for n in f.attrs["notes"])
    sidak = em.summary_frame(adjust="sidak")
    assert_allclose(f["lower"], sidak["lower"], rtol=1e-12)
    tvc = em.contrast("trt.vs.ctrl", adjust="tukey")
    assert "sidak method for 3 tests" in str(tvc)


def test_printing_and_summary(tf):
    res = smf.ols("y ~ A * B", tf).fit()
    em = lmm.emmeans(res, "A")
    text = str(em)
    assert "emmean" in text and "Confidence level used: 0.95" in text
    pw = em.pairs()
    assert "P value adjustment: tukey method for comparing a family of 3 estimates" in str(pw)
    assert "Results are averaged over the levels of: B" in str(pw.summary())
    assert list(pw.summary_frame().columns) == [
        "contrast",
        "estimate",
        "se",
        "df",
        "t",
        "p_value",
        "lower",
        "upper",
    ]


def test_plot(tf):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ax = lmm.emmeans(smf.ols("y ~ A * B", tf).fit(), "A").plot()
    assert len(ax.get_yticklabels()) == 3


def test_ml_fit_defaults_to_satterthwaite_and_refuses_kr(tf):
    res = lmm.mixedlm("y ~ A + B", tf, groups="block").fit(reml=False)
    f = lmm.emmeans(res, "A").summary_frame()
    assert "Degrees-of-freedom method: satterthwaite" in f.attrs["notes"]
    with pytest.raises(ValueError, match="REML"):
        lmm.emmeans(res, "A", ddf="kenward-roger")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"specs": "C"}, "not factors of the model"),
        ({"specs": "A", "at": {"z": 1}}, "not variables of the fixed-effects formula"),
        ({"specs": "A", "at": {"B": ["b9"]}}, "levels .* not in the data"),
        ({"specs": "A", "weights": "bogus"}, "weights must be one of"),
        ({"specs": "A", "ddf": "bogus"}, "unknown ddf method"),
        ({"specs": "A", "ddf": -1}, "positive number"),
        ({"specs": "A", "by": "A"}, "both specs and by"),
    ],
)
def test_bad_input(tf, kwargs, match):
    res = lmm.mixedlm("y ~ A * B + x", tf, groups="block").fit()
    with pytest.raises(ValueError, match=match):
        lmm.emmeans(res, **kwargs)


def test_bad_contrasts(tf):
    em = lmm.emmeans(smf.ols("y ~ A * B", tf).fit(), "A")
    with pytest.raises(ValueError, match="unknown adjustment"):
        em.pairs(adjust="bogus")
    with pytest.raises(ValueError, match="unknown contrast method"):
        em.contrast("bogus")
    with pytest.raises(ValueError, match="needs 3 weights"):
        em.contrast({"c": [1, -1]})
    with pytest.raises(ValueError, match="not one of the levels"):
        em.contrast("trt.vs.ctrl", ref="a9")
    with pytest.raises(ValueError, match="pairwise"):
        em.contrast("consec").cld()
    with pytest.raises(TypeError, match="emmeans needs"):
        lmm.emmeans(object(), "A")


@pytest.mark.parametrize("seed", range(20))
def test_letters_are_a_valid_display(seed):
    """Two means share a letter iff they are not significantly different (Piepho 2004)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    sig = np.triu(rng.random((k, k)) < 0.4, 1)
    sig = sig | sig.T
    cols = _letters(sig)
    for i, j in itertools.combinations(range(k), 2):
        share = any(i in c and j in c for c in cols)
        assert share == (not sig[i, j]), (sig, cols)
    assert all(any(i in c for c in cols) for i in range(k))


def test_wls_uses_its_covariance_and_residual_df(tf):
    """WLS: mean = average of predictions, SE from the WLS covariance, df = residual df."""
    w = 1 + tf.x.to_numpy()
    res = smf.wls("y ~ A + B + x", tf, weights=w).fit()
    em = lmm.emmeans(res, "A")
    grid = pd.DataFrame(
        list(itertools.product(["a1", "a2", "a3"], ["b1", "b2", "b3", "b4"])), columns=["A", "B"]
    )
    grid["x"] = tf.x.mean()
    X = np.asarray(_design(res, grid))
    L = X.reshape(3, 4, -1).mean(axis=1)
    assert_allclose(em.estimate, L @ res.params, rtol=1e-12)
    assert_allclose(em.se, np.sqrt(np.diag(L @ res.cov_params() @ L.T)), rtol=1e-12)
    assert (em.df == res.df_resid).all()


def _design(res, grid):
    from patsy import dmatrix

    return dmatrix(res.model.data.model_spec, grid)


def test_means_do_not_depend_on_the_coding(tf):
    """Sum-to-zero coding through C(A, Sum) gives the same means, SEs and KR df."""
    ref = lmm.emmeans(lmm.mixedlm("y ~ A * B + x", tf, groups="block").fit(), "A")
    res = lmm.mixedlm("y ~ C(A, Sum) * C(B, Sum) + x", tf, groups="block").fit()
    got = lmm.emmeans(res, "A")
    assert list(got.levels["A"]) == ["a1", "a2", "a3"]
    assert_allclose(got.estimate, ref.estimate, rtol=1e-7)
    assert_allclose(got.se, ref.se, rtol=1e-5)
    assert_allclose(got.df, ref.df, rtol=1e-4)
