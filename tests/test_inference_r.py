"""Satterthwaite and Kenward-Roger against lmerTest 3.1-3 / pbkrtest 0.5.2.

Reference values: tests/results/lmertest_kr.json (script tests/results/lmertest_kr.R).  Each
model is fitted both through statsmodels' smf.mixedlm and through our class.  lmerTest's
Satterthwaite uses the observed information, pbkrtest's Kenward-Roger the expected
information: our defaults.  Tolerance rtol 1e-4 (the issue's), which also absorbs the
differences between lme4's optimum and ours (about 1e-6 relative in the variance parameters).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from tests._fits import fit_mixed
from tests.conftest import load_reference


def assert_pvalues(actual, desired):
    """p-values: rtol 1e-4, on the log scale (p as small as 1e-27 magnifies a 1e-5 relative
    difference in F or df into 1e-4 in p; log p keeps the same 1e-4 budget)."""
    assert_allclose(np.log(actual), np.log(desired), rtol=1e-4)


CASES = load_reference("lmertest_kr.json")["cases"]


def fit(case, how):
    py = case["python"]
    data = lmm.datasets.load(py["dataset"].removesuffix(".csv"))
    kw = dict(groups=py["groups"], re_formula=py["re_formula"], vc_formula=py["vc_formula"])
    return fit_mixed(py["formula"], data, how, **kw)


@pytest.fixture(
    scope="module",
    params=[(c, h) for c in sorted(CASES) for h in ("ours", "statsmodels")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def fitted(request):
    name, how = request.param
    return CASES[name], fit(CASES[name], how), how


@pytest.mark.parametrize(
    "ddf,key", [("satterthwaite", "satterthwaite_coef"), ("kenward-roger", "kenward_roger_coef")]
)
def test_coefficient_table(fitted, ddf, key):
    """lmerTest's summary() coefficient table: estimate, SE, df, t, p for every coefficient."""
    case, res, _ = fitted
    ref = case[key]
    tt = lmm.t_test(res, np.eye(len(case["fe_names"])), ddf=ddf)
    assert_allclose(tt.effect, ref["estimate"], rtol=1e-5)
    assert_allclose(tt.sd, ref["se"], rtol=1e-4)
    assert_allclose(tt.df_denom, ref["df"], rtol=1e-4)
    assert_allclose(tt.tvalue, ref["t_value"], rtol=1e-4)
    assert_pvalues(tt.pvalue, ref["p_value"])


def test_vcov_adj(fitted):
    case, res, _ = fitted
    cov = lmm.kenward_roger(res).cov_params()
    assert list(cov.index) == case["fe_names"]
    ref = np.asarray(case["vcovAdj"])
    assert_allclose(cov.values, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize(
    "ddf,key", [("satterthwaite", "anova_satterthwaite"), ("kenward-roger", "anova_kr")]
)
def test_type3_anova(fitted, ddf, key):
    case, res, how = fitted
    ref = case[key]
    table = lmm.anova(res, ddf=ddf) if how == "statsmodels" else res.anova(ddf=ddf)
    assert list(table.index) == ref["term_patsy"]
    assert_allclose(table["num_df"], ref["num_df"])
    assert_allclose(table["F"], ref["F_value"], rtol=1e-4)
    assert_allclose(table["den_df"], ref["den_df"], rtol=1e-4)
    assert_pvalues(table["PR(>F)"], ref["p_value"])


def test_contests(fitted):
    case, res, _ = fitted
    for name, c in case["contests"].items():
        L = np.asarray(c["L"], float)
        for ddf, key in (("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")):
            f = lmm.f_test(res, L, ddf=ddf)
            assert_allclose(f.fvalue, c[key]["F_value"], rtol=1e-4, err_msg=name)
            assert_allclose(f.df_denom, c[key]["den_df"], rtol=1e-4, err_msg=name)
            assert_pvalues(f.pvalue, c[key]["p_value"])
            if L.shape[0] == 1:
                t = lmm.t_test(res, L, ddf=ddf)
                ref = c[key]["contest1D"]
                assert_allclose(t.effect, ref["estimate"], rtol=1e-4)
                assert_allclose(t.sd, ref["se"], rtol=1e-4)
                assert_allclose(t.df_denom, ref["df"], rtol=1e-4)
                # one row: F equals t^2
                assert_allclose(f.fvalue, t.tvalue**2, rtol=1e-10)


def test_krmodcomp(fitted):
    case, res, how = fitted
    kr = case.get("krmodcomp")
    if not kr:
        pytest.skip("no KRmodcomp reference for this case")
    py = case["python"]
    data = lmm.datasets.load(py["dataset"].removesuffix(".csv"))
    small_case = dict(case, python=dict(py, formula=kr["small_python_formula"]))
    small = fit(small_case, how)
    out = lmm.kenward_roger_test(res, small)
    ref = kr["test"]
    assert_allclose(out.fvalue, ref["Ftest"]["stat"], rtol=1e-4)
    assert_allclose(out.df_denom, ref["Ftest"]["ddf"], rtol=1e-4)
    assert out.df_num == ref["Ftest"]["ndf"]
    assert_allclose(out.scaling, kr["stats"]["F.scaling"], rtol=1e-4)
    assert_pvalues(out.pvalue, ref["Ftest"]["p.value"])
    assert_allclose(out.fvalue_unscaled, ref["FtestU"]["stat"], rtol=1e-4)
    assert len(data) == res.nobs


@pytest.mark.parametrize("name", ["oats_nested", "oats_unbal"])
def test_type3_does_not_depend_on_coding(name):
    case = CASES[name]
    py = case["python"]
    data = lmm.datasets.load(py["dataset"].removesuffix(".csv"))
    kw = dict(groups=py["groups"], re_formula=py["re_formula"], vc_formula=py["vc_formula"])
    treat = lmm.mixedlm(py["formula"], data, **kw).fit()
    summ = lmm.mixedlm("grain_yield ~ C(Variety, Sum) * C(nitro_f, Sum)", data, **kw).fit()
    for ddf in ("satterthwaite", "kenward-roger"):
        a, b = treat.anova(ddf=ddf), summ.anova(ddf=ddf)
        assert_allclose(a.values, b.values, rtol=1e-5)
        # lmerTest's own sum-coded table (same hypotheses)
        ref = case[
            "anova_satterthwaite_sumcoding" if ddf == "satterthwaite" else "anova_kr_sumcoding"
        ]
        assert_allclose(b["F"], ref["F_value"], rtol=1e-4)
        assert_allclose(b["den_df"], ref["den_df"], rtol=1e-4)
