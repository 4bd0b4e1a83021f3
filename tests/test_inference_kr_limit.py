"""Kenward-Roger where its df formula has a removable singularity, against pbkrtest 0.5.2 and
lmerTest 3.1-3 (tests/results/kr_limit.json, script tests/results/kr_limit.R; the data sets
are in the JSON).

Balanced designs give exact F tests, and the textbook form of Kenward and Roger's m divides
by zero at m = 4 and m = 2 (see ``statsmodels_lmm_ext.inference.kenward_roger._df_and_scaling``):

- irrigation (faraway): split plot, ``yield ~ irrigation * variety + (1 | field)``; lmerTest's
  KR anova has DenDF 4, 4, 4 (m = 4 for the three-row terms, and the one-row term);
- beets (pbkrtest's README): ``KRmodcomp`` of ``harvest``, ddf 2, F.scaling 1, p 0.0599, and
  the KR anova, DenDF 2, 20, 2 (m = 2 for the two-row ``block`` term);
- Machines (nlme), ``score ~ Machine + (0 + Machine | Worker)``: a Hotelling T^2 test of 2
  rows on 6 workers, m = 4, F.scaling 0.8.

Tolerances: df rtol 1e-6 (the exact-F df are integers; lmerTest prints 3.99999999999997);
scaling rtol 1e-8; F rtol 1e-6 and p on the log scale at 1e-6 on irrigation and beets, whose
REML estimates are closed-form (ours and lme4's agree to 1e-9 in the log-likelihood).  On
Machines lme4 stops 7e-8 short of the REML maximum (our log-likelihood is higher) with the
random-effects covariance 4e-4 relative away from ours, and pbkrtest's F is 1.8e-4 below ours:
there the F is checked against the exact Hotelling T^2 computed from the data (rtol 1e-7),
and against pbkrtest at rtol 5e-4.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext._formula import type3_contrasts
from statsmodels_lmm_ext.inference.kenward_roger import _df_and_scaling
from tests._fits import fit_mixed
from tests.conftest import load_reference

REF = load_reference("kr_limit.json")


def frame(case: str) -> pd.DataFrame:
    data = REF[case]["data"]
    f = pd.DataFrame(data["columns"])
    for col, levels in data["levels"].items():
        f[col] = pd.Categorical(f[col], categories=levels)
    assert len(f) == data["n"]
    return f


def irrigation(how="ours", formula="yld ~ irrigation * variety"):
    d = frame("irrigation").rename(columns={"yield": "yld"})  # `yield` is a Python keyword
    return fit_mixed(formula, d, how, groups="field")


def beets(how="ours", formula="sugpct ~ block + sow + harvest"):
    d = frame("beets")
    d["block_harvest"] = d["block"].astype(str) + ":" + d["harvest"].astype(str)
    return fit_mixed(formula, d, how, groups="block_harvest")


def machines(how="ours", formula="score ~ Machine"):
    return fit_mixed(formula, frame("Machines"), how, groups="Worker", re_formula="0 + Machine")


FITS = {"irrigation": irrigation, "beets": beets, "Machines": machines}
HOWS = ("ours", "statsmodels")


def assert_p(actual, desired, rtol):
    assert_allclose(np.log(actual), np.log(desired), rtol=rtol)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("case", sorted(FITS))
def test_kr_anova_in_the_limit(case, how):
    """lmerTest's ``anova(ddf = "Kenward-Roger", type = 3)``: no NaN, pbkrtest's limits."""
    res = FITS[case](how)
    table = lmm.anova(res, ddf="kenward-roger")
    ref = REF[case]["anova_KR_typeIII"]
    assert list(table.index) == list(ref)
    assert all(t.valid for t in table.tests.values())
    assert_allclose(table["num_df"], [r["NumDF"] for r in ref.values()])
    assert_allclose(table["den_df"], [r["DenDF"] for r in ref.values()], rtol=1e-6)
    rtol = 5e-4 if case == "Machines" else 1e-6  # lme4's optimum on Machines: see the top
    assert_allclose(table["F"], [r["F"] for r in ref.values()], rtol=rtol)
    assert_p(table["PR(>F)"], [r["p"] for r in ref.values()], rtol=rtol)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("case", sorted(FITS))
def test_satterthwaite_anova_in_the_limit(case, how):
    """lmerTest's ``anova(type = 3)``: beets' two-row ``block`` test has nu_m = 2 for both
    rows, whose ddf is their common value 2 (not undefined).  lmerTest's numerical Hessian
    puts its df 1e-8 from the integers; on Machines lme4's optimum moves them 4.5e-5 (and F
    1.8e-4, as above)."""
    res = FITS[case](how)
    table = lmm.anova(res, ddf="satterthwaite")
    ref = REF[case]["anova_Satterthwaite_typeIII"]
    assert list(table.index) == list(ref)
    assert all(t.valid for t in table.tests.values())
    machines_ = case == "Machines"
    assert_allclose(table["den_df"], [r["DenDF"] for r in ref.values()],
                    rtol=1e-4 if machines_ else 1e-6)  # fmt: skip
    rtol = 5e-4 if machines_ else 1e-6
    assert_allclose(table["F"], [r["F"] for r in ref.values()], rtol=rtol)
    assert_p(table["PR(>F)"], [r["p"] for r in ref.values()], rtol=rtol)


def test_krmodcomp_beets_readme():
    """pbkrtest's README: KRmodcomp(beet0, beet_no.harv) gives F 15.21 on 1 and 2.00 df,
    F.scaling 1, p 0.0599 (pbkrtest refits the ML fits by REML; so does the JSON's REML row)."""
    ref = REF["beets"]["KRmodcomp_harvest"]
    assert ref == REF["beets"]["KRmodcomp_harvest_REMLfits"]
    for how in HOWS:
        kr = lmm.kenward_roger_test(beets(how), beets(how, "sugpct ~ block + sow"))
        assert kr.valid
        assert kr.df_num == ref["Ftest"]["ndf"]
        assert_allclose(kr.df_denom, ref["Ftest"]["ddf"], rtol=1e-6)
        assert_allclose(kr.scaling, ref["Ftest"]["F_scaling"], rtol=1e-8)
        assert_allclose(kr.fvalue, ref["Ftest"]["F"], rtol=1e-6)
        assert_allclose(kr.fvalue_unscaled, ref["FtestU"]["F"], rtol=1e-6)
        assert_p(kr.pvalue, ref["Ftest"]["p"], rtol=1e-6)


@pytest.mark.parametrize(
    "case, small, key",
    [
        ("irrigation", "yld ~ irrigation + variety", "KRmodcomp_interaction"),
        ("Machines", "score ~ 1", "KRmodcomp_Machine"),
    ],
)
def test_krmodcomp_at_m_equal_4(case, small, key):
    ref = REF[case][key]
    kr = lmm.kenward_roger_test(FITS[case](), FITS[case](formula=small))
    assert kr.valid and kr.df_num == ref["Ftest"]["ndf"]
    assert_allclose(kr.df_denom, ref["Ftest"]["ddf"], rtol=1e-6)
    assert_allclose(kr.scaling, ref["Ftest"]["F_scaling"], rtol=1e-8)
    rtol = 5e-4 if case == "Machines" else 1e-6  # lme4's optimum on Machines: see the top
    assert_allclose(kr.fvalue, ref["Ftest"]["F"], rtol=rtol)
    assert_allclose(kr.fvalue_unscaled, ref["FtestU"]["F"], rtol=rtol)
    assert_p(kr.pvalue, ref["Ftest"]["p"], rtol=rtol)


def test_machines_is_hotellings_t2():
    """On Machines the KR test is exact (Kenward and Roger 1997): with d_i the worker means'
    differences B - A and C - A (6 workers, q = 2), T^2 = n dbar' S^-1 dbar, the unscaled
    F = T^2/q and the scaled one (n-q)/(q(n-1)) T^2 ~ F(q, n-q), scaling (n-q)/(n-1)."""
    d = frame("Machines")
    cell = d.groupby(["Worker", "Machine"], observed=True)["score"].mean().unstack()
    D = np.column_stack([cell["B"] - cell["A"], cell["C"] - cell["A"]])
    n, q = D.shape
    dbar = D.mean(axis=0)
    t2 = n * dbar @ np.linalg.solve(np.cov(D.T), dbar)
    kr = lmm.kenward_roger_test(machines(), machines(formula="score ~ 1"))
    assert_allclose(kr.df_denom, n - q, rtol=1e-10)
    assert_allclose(kr.scaling, (n - q) / (n - 1), rtol=1e-10)
    assert_allclose(kr.fvalue_unscaled, t2 / q, rtol=1e-7)
    assert_allclose(kr.fvalue, (n - q) / (q * (n - 1)) * t2, rtol=1e-7)
    assert_allclose(kr.pvalue, stats.f.sf((n - q) / (q * (n - 1)) * t2, q, n - q), rtol=1e-6)


@pytest.mark.parametrize("case, term", [("irrigation", "variety"), ("beets", "harvest")])
def test_one_row_df_agree_across_functions(case, term):
    """t_test, f_test, anova and kenward_roger_test give one df (and F = t^2, one p-value)
    for one one-row hypothesis: the term's Type III row, which pbkrtest/lmerTest put at the
    limit m = 4 (irrigation) and m = 2 (beets)."""
    res = FITS[case]()
    L = type3_contrasts(res.model)[term]
    assert L.shape[0] == 1
    t = res.t_test(L, ddf="kenward-roger")
    f = res.f_test(L, ddf="kenward-roger")
    kr = lmm.kenward_roger_test(res, L)
    row = res.anova(ddf="kenward-roger").loc[term]
    df = [t.df_denom[0], f.df_denom, kr.df_denom, row["den_df"]]
    assert_allclose(df, REF[case]["anova_KR_typeIII"][term]["DenDF"], rtol=1e-6)
    assert_allclose(df, t.df_denom[0], rtol=1e-10)
    assert_allclose([f.fvalue, kr.fvalue, row["F"]], np.ravel(t.tvalue)[0] ** 2, rtol=1e-10)
    assert_allclose([f.pvalue, kr.pvalue, row["PR(>F)"]], np.ravel(t.pvalue)[0], rtol=1e-8)
    assert f.scaling == kr.scaling == 1.0


def _exact_families():
    """``(q, A1, A2, m, lambda)`` of exact F tests (Kenward and Roger 1997, section 5): a test
    inside one error stratum with d df (A1 = 2q^2/d, A2 = 2q/d: m = d, lambda = 1) and
    Hotelling's T^2 on n subjects (A1 = 2q/(n-1), A2 = q(q+1)/(n-1): m = n - q,
    lambda = (n-q)/(n-1)), through the singular points m = 2 and m = 4 and around them."""
    for q in (1, 2, 3, 5):
        for d in (1.0, 2.0, 2.0 + 1e-7, 3.0, 4.0, 4.0 - 1e-7, 7.0, 40.0):
            yield q, 2 * q * q / d, 2 * q / d, d, 1.0
            n = d + q
            yield q, 2 * q / (n - 1), q * (q + 1) / (n - 1), d, d / (n - 1)


@pytest.mark.parametrize("q, A1, A2, m, lam", list(_exact_families()))
def test_df_and_scaling_of_exact_tests(q, A1, A2, m, lam):
    got_m, got_lam = _df_and_scaling(q, A1, A2)
    # 1e-6 near the singular points, where the textbook formula loses half the digits
    assert_allclose([got_m, got_lam], [m, lam], rtol=1e-6)
