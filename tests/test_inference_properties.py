"""Internal consistency and bad input of the small-sample inference."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.inference import DDFWarning


@pytest.fixture(scope="module")
def fev():
    d = lmm.datasets.load("fev_data")
    return d


def fit_fev(data, reml=True):
    return lmm.mixedlm(
        "FEV1 ~ ARMCD * AVISIT + FEV1_BL",
        data,
        groups="USUBJID",
        re_formula="1",
        cov_struct=lmm.AR1(time="VISITN"),
        missing="drop",
    ).fit(reml=reml)


@pytest.fixture(scope="module")
def res(fev):
    return fit_fev(fev)


def test_kr_df_equal_satterthwaite_df_for_one_row_with_same_w(res):
    L = np.eye(len(res.fe_params))
    for info in ("observed", "expected"):
        kr = res.t_test(L, ddf="kenward-roger", information=info)
        sat = res.t_test(L, ddf="satterthwaite", information=info)
        assert_allclose(kr.df_denom, sat.df_denom, rtol=1e-10)
        f = res.f_test(L[:1], ddf="kenward-roger", information=info)
        assert_allclose(f.df_denom, kr.df_denom[0], rtol=1e-8)
        assert_allclose(f.scaling, 1.0, rtol=1e-8)


def test_kr_invariant_to_row_order(res, fev):
    shuffled = fit_fev(fev.sample(frac=1.0, random_state=7))
    L = np.eye(len(res.fe_params))
    a = res.t_test(L, ddf="kenward-roger")
    b = shuffled.t_test(L, ddf="kenward-roger")
    assert_allclose(a.sd, b.sd, rtol=1e-5)
    assert_allclose(a.df_denom, b.df_denom, rtol=1e-4)
    assert_allclose(
        res.anova(ddf="kenward-roger").values,
        shuffled.anova(ddf="kenward-roger").values,
        rtol=1e-4,
    )


@pytest.mark.parametrize(
    "ddf", ["satterthwaite", "kenward-roger", "kenward-roger-linear", "residual"]
)
def test_t_and_f_agree_for_one_row(res, ddf):
    L = np.zeros((1, len(res.fe_params)))
    L[0, 1] = 1.0
    t = res.t_test(L, ddf=ddf)
    f = res.f_test(L, ddf=ddf)
    assert_allclose(f.fvalue, np.ravel(t.tvalue)[0] ** 2, rtol=1e-10)
    assert_allclose(f.df_denom, np.ravel(t.df_denom)[0], rtol=1e-10)
    assert_allclose(f.pvalue, np.ravel(t.pvalue)[0], rtol=1e-8)


def test_residual_and_asymptotic(res):
    L = np.eye(len(res.fe_params))[:2]
    r = res.t_test(L, ddf="residual")
    assert_allclose(r.df_denom, res.nobs - len(res.fe_params))
    a = res.t_test(L, ddf="asymptotic")
    wald = res.t_test(L)  # statsmodels' default: normal
    assert_allclose(a.pvalue, wald.pvalue, rtol=1e-10)
    assert_allclose(a.sd, r.sd)
    assert np.all(np.isinf(a.df_denom))
    # asymptotic F: chi-square(q) of q F, as statsmodels' wald_test
    f = res.f_test(L, ddf="asymptotic")
    w = res.wald_test(L, use_f=False, scalar=True)
    assert_allclose(f.fvalue * 2, w.statistic, rtol=1e-10)
    assert_allclose(f.pvalue, w.pvalue, rtol=1e-8)
    table = res.anova(ddf="asymptotic")
    assert np.all(np.isfinite(table["PR(>F)"]))


def test_summary_with_ddf(res):
    text = res.summary(ddf="kenward-roger").as_text()
    assert "kenward-roger" in text and "P>|t|" in text and " df " in text


def test_constraint_strings_and_rhs(res):
    t1 = res.t_test("ARMCD[T.TRT] = 1", ddf="satterthwaite")
    L = (res.model.exog_names.index("ARMCD[T.TRT]") == np.arange(len(res.fe_params))) * 1.0
    t2 = res.t_test((L[None], [1.0]), ddf="satterthwaite")
    assert_allclose(t1.tvalue, t2.tvalue)
    assert_allclose(t1.effect, res.fe_params["ARMCD[T.TRT]"])
    f = res.f_test("ARMCD[T.TRT] = 1", ddf="kenward-roger")
    tk = res.t_test("ARMCD[T.TRT] = 1", ddf="kenward-roger")
    assert_allclose(f.fvalue, tk.tvalue[0] ** 2, rtol=1e-10)


def test_unknown_ddf(res):
    with pytest.raises(ValueError, match="unknown ddf method 'kr2'"):
        res.t_test(np.eye(len(res.fe_params))[:1], ddf="kr2")
    with pytest.raises(ValueError, match="information must be one of"):
        res.t_test(np.eye(len(res.fe_params))[:1], ddf="satterthwaite", information="fisher")


def test_wrong_L(res):
    with pytest.raises(ValueError, match="has 3 columns; the model has"):
        lmm.f_test(res, np.ones((1, 3)), ddf="satterthwaite")
    L = np.eye(len(res.fe_params))[:2]
    with pytest.raises(ValueError, match="linearly dependent"):
        lmm.f_test(res, np.vstack([L, L[0] + L[1]]), ddf="kenward-roger")


def test_kenward_roger_refuses_ml(fev):
    ml = fit_fev(fev, reml=False)
    with pytest.raises(ValueError, match="defined for REML fits.*refit it with reml=True"):
        ml.t_test(np.eye(len(ml.fe_params))[:1], ddf="kenward-roger")
    with pytest.raises(ValueError, match="REML"):
        lmm.kenward_roger_test(ml, np.eye(len(ml.fe_params))[1:2])
    # Satterthwaite is fine on ML fits (lmerTest allows it)
    t = ml.t_test(np.eye(len(ml.fe_params))[:1], ddf="satterthwaite")
    assert np.isfinite(t.df_denom).all()


def test_krmodcomp_nested_check():
    d = lmm.datasets.load("sleepstudy")
    big = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()
    other = lmm.mixedlm("Reaction ~ I(Days ** 2)", d, groups="Subject").fit()
    with pytest.raises(ValueError, match="not nested"):
        lmm.kenward_roger_test(big, other)
    with pytest.raises(ValueError, match="same fixed effects"):
        lmm.kenward_roger_test(big, big)


def test_boundary_fit_warns_and_returns_finite_df():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100)})
    d["y"] = d["x"] + rng.normal(size=100)
    d["y"] -= d.groupby("g")["y"].transform("mean") * 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmm.mixedlm("y ~ x", d, groups="g").fit()
    with pytest.warns(DDFWarning, match="g Var estimated at zero"):
        t = res.t_test(np.eye(2), ddf="satterthwaite")
    assert np.all(np.isfinite(t.df_denom) & (t.df_denom > 0))


def test_undefined_satterthwaite_df_warns():
    # three groups, a random slope: df for the slope are tiny; multi-df F may be undefined
    d = lmm.datasets.load("sleepstudy")
    d = d[d.Subject.isin(d.Subject.unique()[:3])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="1 + Days").fit()
        t = res.t_test(np.eye(2), ddf="satterthwaite")
    assert np.all(t.df_denom < 3)
    with pytest.warns(DDFWarning):
        f = res.f_test(np.eye(2), ddf="satterthwaite")
    assert np.isnan(f.df_denom)


def test_plain_statsmodels_results():
    d = lmm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("Reaction ~ Days", d, groups="Subject").fit(method=["bfgs"], gtol=1e-10)
    ours = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()
    a = lmm.anova(sm, ddf="kenward-roger")
    b = ours.anova(ddf="kenward-roger")
    assert_allclose(a.values, b.values, rtol=1e-5)
    cov = lmm.kenward_roger(sm).cov_params()
    assert list(cov.columns) == ["Intercept", "Days"]


def test_every_test_result_has_the_one_shape():
    """t/F tests, Type III rows, KR model comparison, LRT and PB tests share TestResult."""
    from statsmodels_lmm_ext.inference import TestResult

    d = lmm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        large = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit(reml=False)
        small = lmm.mixedlm("Reaction ~ 1", d, groups="Subject").fit(reml=False)
        reml = lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()
        tests = [
            reml.t_test(np.eye(2), ddf="satterthwaite"),
            reml.f_test(np.eye(2), ddf="kenward-roger"),
            reml.anova(ddf="kenward-roger").tests["Days"],
            lmm.kenward_roger_test(reml, np.array([[0.0, 1.0]])),
            lmm.lrt(small, large),
            lmm.pb_lrt(large, small, nsim=5, seed=1),
        ]
    for t in tests:
        assert isinstance(t, TestResult)
        assert t.valid and t.reason is None
        assert np.all(np.isfinite(t.statistic)) and np.all(np.isfinite(t.pvalue))
        assert np.all(np.asarray(t.df_denom) > 0) and str(t)


def test_undefined_df_is_an_explicit_invalid_result():
    d = lmm.datasets.load("sleepstudy")
    d = d[d.Subject.isin(d.Subject.unique()[:3])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="1 + Days").fit()
        f = res.f_test(np.eye(2), ddf="satterthwaite")
    assert not f.valid and "Satterthwaite df undefined" in f.reason


# ------------------------------------------------------------------ printouts and notes ----

OBSERVED_NOTE = (
    "Information matrix: observed (default for models with a residual structure, "
    "as SAS PROC MIXED, mmrm)"
)
EXPECTED_NOTE = (
    "Information matrix: expected (default for models with independent residuals, "
    "as pbkrtest and lmerTest)"
)


def test_t_test_prints_df_and_information(res):
    L = np.eye(len(res.fe_params))[:2]
    t = res.t_test(L, ddf="kenward-roger")
    text = str(t)
    assert text.startswith("t tests of linear hypotheses (denominator df: kenward-roger)")
    header = text.splitlines()[1].split()
    assert header[:5] == ["coef", "std", "err", "t", "df"]
    for df in t.df_denom:
        assert f"{df:.6g}" in text
    assert OBSERVED_NOTE in text and "np.float64" not in text and repr(t) == text
    assert list(t.summary_frame().columns[:4]) == ["coef", "std err", "t", "df"]
    assert_allclose(t.summary_frame()["df"], t.df_denom)


def test_f_test_prints_plain_numbers(res):
    L = np.eye(len(res.fe_params))[1:3]
    f = res.f_test(L, ddf="kenward-roger", information="expected")
    text = str(f)
    assert "np.float64" not in text and "array(" not in text
    assert text.splitlines()[0] == "F test of a linear hypothesis (denominator df: kenward-roger)"
    assert (
        f"F = {f.fvalue:.6g}, df_num = 2, df_denom = {f.df_denom:.6g}, p-value = {f.pvalue:.6g}"
        in text
    )
    assert f"unscaled F = {f.fvalue_unscaled:.6g}" in text
    assert "Information matrix: expected (set by information=)" in text
    one = str(res.f_test(L[:1], ddf="satterthwaite"))
    assert "scaled" not in one
    assert "Information matrix: observed (default as in lmerTest and SAS PROC MIXED)" in one
    assert "Information matrix" not in str(res.f_test(L, ddf="residual"))


def test_anova_table_prints_title_and_notes(res):
    table = res.anova(ddf="kenward-roger")
    text = str(table)
    lines = text.splitlines()
    assert lines[0] == table.attrs["title"] and "Kenward-Roger" in lines[0]
    assert lines[-1] == OBSERVED_NOTE and table.attrs["notes"] == [OBSERVED_NOTE]
    assert table.attrs["information"] == "observed"
    assert all(t.information == "observed" for t in table.tests.values())
    assert OBSERVED_NOTE in str(table.tests["ARMCD"])
    assert "Information matrix" not in str(res.anova(ddf="asymptotic"))


def test_summary_with_ddf_names_the_information(res):
    text = res.summary(ddf="kenward-roger").as_text()
    assert re.search(r"Information:\s+observed", text)
    text = res.summary(ddf="kenward-roger", information="expected").as_text()
    assert re.search(r"Information:\s+expected", text)
    assert "Information:" not in res.summary(ddf="residual").as_text()


def test_g_side_models_keep_the_expected_information():
    """pbkrtest's choice for models with independent residuals (tests/test_inference_r.py
    compares the numbers)."""
    d = lmm.datasets.load("sleepstudy")
    r = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="1 + Days").fit()
    assert not r.variance_model.has_residual_structure
    t = r.t_test(np.eye(2), ddf="kenward-roger")
    assert t.information == "expected" and EXPECTED_NOTE in str(t)
    assert r.anova(ddf="kenward-roger").attrs["notes"] == [EXPECTED_NOTE]
    kr = lmm.kenward_roger_test(r, np.array([[0.0, 1.0]]))
    assert kr.information == "expected" and EXPECTED_NOTE in str(kr)
    assert lmm.kenward_roger(r).information == "expected"
    assert r.t_test(np.eye(2), ddf="satterthwaite").information == "observed"
    em = lmm.emmeans(r, "Days", at={"Days": [0.0, 9.0]})
    assert EXPECTED_NOTE in em.summary_frame().attrs["notes"]


def test_ddf_methods_choose_the_information_by_model_class(res):
    vm = res.variance_model
    assert vm.has_residual_structure
    kr = lmm.DDF_METHODS["kenward-roger"]
    assert kr.information(None, vm) == "observed" and kr.information(None) == "expected"
    assert kr.information("expected", vm) == "expected"
    assert lmm.DDF_METHODS["kenward-roger-linear"].information(None, vm) == "observed"
    assert lmm.DDF_METHODS["satterthwaite"].information(None, vm) == "observed"
    assert lmm.DDF_METHODS["residual"].information(None, vm) is None
    assert lmm.DDF_METHODS["residual"].information_note(None, vm) == ""
