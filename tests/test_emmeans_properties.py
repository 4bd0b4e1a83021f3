"""Marginal means: properties that need no reference software.

Each test states the identity it checks; the expected values come from independent routes
(closed forms, statsmodels' own predictions, scipy's multivariate t, brute force).
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm


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


def test_tables_print_with_their_notes():
    """Means, contrasts and their summary frames print their notes (as emmeans does), among
    them the ddf method and the information matrix."""
    fev = lmm.datasets.load("fev_data")
    res = lmm.mixedlm(
        "FEV1 ~ ARMCD", fev, groups="USUBJID", re_formula="0",
        cov_struct=lmm.AR1(time="VISITN"), missing="drop",
    ).fit()  # fmt: skip
    note = (
        "Information matrix: observed (default for models with a residual structure, "
        "as SAS PROC MIXED, mmrm)"
    )
    em = lmm.emmeans(res, "ARMCD")
    for table in (em, em.pairs()):
        frame = table.summary_frame()
        assert note in frame.attrs["notes"] and note in str(table)
        assert str(frame).endswith("\n".join(frame.attrs["notes"]))
    em_sat = lmm.emmeans(res, "ARMCD", ddf="satterthwaite", information="expected")
    assert "Information matrix: expected (set by information=)" in str(em_sat)
    assert "Information matrix" not in str(lmm.emmeans(res, "ARMCD", ddf="residual"))
