"""The reference grid, cell weights and estimability (statsmodels_lmm_ext.emmeans.grid).

Each test states the identity it checks; the expected values come from independent routes
(statsmodels' own predictions, raw means, patsy's design matrices, a refit without the
non-estimable column).
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from patsy import dmatrix

import statsmodels_lmm_ext as lmm


@pytest.fixture(scope="module")
def tf():
    return lmm.datasets.load("twofactor_unbalanced")


def test_ref_grid_rows_counts_and_design(tf):
    """One row per factor combination (first factor varying fastest, as emmeans), the
    observed cell counts, covariates at their mean and the design rows patsy builds for it."""
    res = smf.ols("y ~ A * B + np.log(x + 1)", tf).fit()
    g = lmm.ref_grid(res)
    names = list(res.model.exog_names)
    assert list(g.columns) == ["A", "B", "count", *names]
    assert list(g["A"][:3]) == ["a1", "a2", "a3"] and list(g["B"][:3]) == ["b1"] * 3
    counts = tf.groupby(["A", "B"]).size()
    assert list(g["count"]) == [counts[(a, b)] for a, b in zip(g.A, g.B, strict=True)]
    grid = g[["A", "B"]].assign(x=tf.x.mean())
    assert_allclose(g[names].to_numpy(), dmatrix(res.model.data.model_spec, grid), rtol=1e-14)
    at = lmm.ref_grid(res, at={"x": [1.0, 2.0], "A": ["a2"]})
    assert list(at.columns[:3]) == ["A", "B", "x"] and len(at) == 8
    assert set(at["A"]) == {"a2"}


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


def test_means_do_not_depend_on_the_coding(tf):
    """Sum-to-zero coding through C(A, Sum) gives the same means, SEs and KR df."""
    ref = lmm.emmeans(lmm.mixedlm("y ~ A * B + x", tf, groups="block").fit(), "A")
    res = lmm.mixedlm("y ~ C(A, Sum) * C(B, Sum) + x", tf, groups="block").fit()
    got = lmm.emmeans(res, "A")
    assert list(got.levels["A"]) == ["a1", "a2", "a3"]
    assert_allclose(got.estimate, ref.estimate, rtol=1e-7)
    assert_allclose(got.se, ref.se, rtol=1e-5)
    assert_allclose(got.df, ref.df, rtol=1e-4)
