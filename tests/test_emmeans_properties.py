"""Marginal means and multiplicity adjustments: properties that need no reference software.

Each test states the identity it checks; the expected values come from independent routes
(closed forms, statsmodels' own predictions, scipy's multivariate t, brute force).
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.multiplicity import Family, _mvt_cdf, _mvt_factor, adjust


@pytest.fixture(scope="module")
def tf():
    return lmm.datasets.load("twofactor_unbalanced")


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
        return np.linalg.inv(eng.profile(np.zeros(0), np.array([r]), True)["A"])

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


# ------------------------------------------------------------------ multiplicity -----------


def test_single_step_adjustments_closed_forms():
    t = np.array([2.5, -1.2, 0.3, 3.1])
    df = np.array([10.0, 10.0, 12.0, 8.0])
    fam = [Family(rows=np.arange(4), rank=4)]
    p = 2 * stats.t.sf(np.abs(t), df)
    assert_allclose(adjust(t, df, fam, "bonferroni").pvalues, np.minimum(1, 4 * p))
    assert_allclose(adjust(t, df, fam, "sidak").pvalues, 1 - (1 - p) ** 4)
    assert_allclose(adjust(t, df, fam, "scheffe").pvalues, stats.f.sf(t**2 / 4, 4, df))
    # Holm by brute force: step-down, monotone
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, (4 - np.arange(4)) * p[order]))
    expect = np.empty(4)
    expect[order] = holm
    assert_allclose(adjust(t, df, fam, "holm").pvalues, expect)
    out = adjust(t, df, fam, "holm")
    assert out.ci_method == "bonferroni"
    assert_allclose(out.crit, stats.t.ppf(1 - 0.05 / 8, df))
    # a family of one is never adjusted
    one = adjust(t[:1], df[:1], [Family(rows=np.arange(1))], "bonferroni")
    assert one.method == "none" and np.isclose(one.pvalues[0], p[0])


def test_mvt_against_scipy_nonsingular():
    """Our integration of P(max |T_i| < c) vs scipy.stats.multivariate_t (Genz-Bretz)."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 8))
    s = a @ a.T
    corr = s / np.sqrt(np.outer(np.diag(s), np.diag(s)))
    for c in (1.5, 2.5, 3.0):
        ref = stats.multivariate_t(np.zeros(5), corr, df=7.3).cdf(
            np.full(5, c), lower_limit=np.full(5, -c), maxpts=2_000_000, random_state=0
        )
        assert_allclose(_mvt_cdf(c, _mvt_factor(corr), 7.3), ref, atol=5e-5)


def test_mvt_single_estimate_is_t():
    fam = [Family(rows=np.arange(1), corr=np.ones((1, 1)))]
    assert adjust([2.0], [9.0], fam, "mvt").method == "none"
    # one dimension: only the chi-square variable is integrated (by QMC, error ~1e-6)
    assert_allclose(
        _mvt_cdf(2.0, _mvt_factor(np.ones((1, 1))), 9.0), 1 - 2 * stats.t.sf(2, 9), atol=1e-5
    )


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


@pytest.mark.parametrize("lo, hi", [(40.0, 60.0), (5.0, 500.0), (2000.0, 2e5)])
def test_tukey_critical_values_for_many_df(lo, hi):
    """The interpolated Tukey quantiles equal scipy's exact ones (1e-9) on rows with many
    distinct df, including df beyond scipy's infinite-df switch at 1e5."""
    from statsmodels_lmm_ext.multiplicity import _tukey_crits

    df = np.geomspace(lo, hi, 15)
    got = _tukey_crits(0.95, 6, df)
    idx = [0, 4, 9, 14]
    exact = stats.studentized_range.ppf(0.95, 6, df[idx]) / np.sqrt(2)
    assert_allclose(got[idx], exact, rtol=1e-9)
