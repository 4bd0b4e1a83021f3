"""Model comparison tables and covariance-structure selection.

Reference: tests/results/compare_nlme.json from tests/results/compare_nlme.R (nlme 3.1.162,
R 4.2.2): logLik, AIC, BIC and ``anova()`` tables of gls / lme fits of several structures on
Orthodont, REML and ML, and SAS PROC MIXED's AICC definition evaluated on nlme's logLik.
Log-likelihoods and criteria agree to 1e-6 (relative; both fits are converged tightly);
likelihood-ratio statistics are differences of them (1e-5 relative, 1e-6 absolute).
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from joblib import parallel_config
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.selection.compare import criteria
from tests.conftest import load_reference

REF = load_reference("compare_nlme.json")
FORMULA = "distance ~ age * Sex"
SPECS = {
    "cs": (lambda: lmm.CompoundSymmetry(), "0"),
    "ar1": (lambda: lmm.AR1(time="visit"), "0"),
    "un": (lambda: lmm.Unstructured(time="visit"), "0"),
    "ri": (lambda: None, "1"),
    "rs": (lambda: None, "1 + age"),
    "ri_ar1": (lambda: lmm.AR1(time="visit"), "1"),
}
TABLES = {"structures": ["cs", "ar1", "un"], "random": ["ri", "rs", "ri_ar1"]}


def _fit(name, reml, data=None, formula=FORMULA):
    data = lmm.datasets.load("orthodont") if data is None else data
    cs, re = SPECS[name]
    return lmm.mixedlm(formula, data, groups="Subject", re_formula=re, cov_struct=cs()).fit(
        reml=reml
    )


@pytest.fixture(scope="module")
def fits():
    return {m: {n: _fit(n, m == "REML") for n in SPECS} for m in ("REML", "ML")}


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("table", sorted(TABLES))
def test_table_equals_nlme_anova(fits, method, table):
    names = TABLES[table]
    t = lmm.compare(*(fits[method][n] for n in names), names=names)
    ref = REF["tables"][method][table]
    assert list(t.index) == names
    assert list(t["n_params"]) == ref["df"]
    assert_allclose(t["llf"], ref["logLik"], rtol=1e-6)
    assert_allclose(t["aic"], ref["AIC"], rtol=1e-6)
    assert_allclose(t["bic"], ref["BIC"], rtol=1e-6)
    for i in range(1, len(names)):
        if ref["L.Ratio"][i] is None:  # nlme gives no test when the df are equal
            assert np.isnan(t["lr_stat"].iloc[i]) and "same number" in t["note"].iloc[i]
        else:
            assert_allclose(t["lr_stat"].iloc[i], ref["L.Ratio"][i], rtol=1e-5, atol=1e-6)
            assert_allclose(t["pvalue"].iloc[i], ref["p.value"][i], rtol=1e-5, atol=1e-8)
            assert t["test"].iloc[i] == ref["test"][i]
    assert t["method"].eq(method).all()


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_aicc_is_sas_definition(fits, method):
    # SAS PROC MIXED, "Information Criteria": AICC = -2l + 2 d n*/(n* - d - 1), d = covariance
    # parameters (REML) or + rank(X) (ML), n* = N - rank(X) (REML) or N (ML); the R script
    # evaluates it on nlme's logLik (same formula, independent code).
    names = list(SPECS)
    t = lmm.compare(*(fits[method][n] for n in names), names=names)
    ref = [REF["fits"][method][n]["aicc_sas"] for n in names]
    assert_allclose(t["aicc"], ref, rtol=1e-6)
    # by hand for one REML fit: CS has d = 2 (sigma^2, rho); N = 108, rank(X) = 4
    c = criteria(-216.878624600568, 6, 108, 4, True)
    assert_allclose(c["aicc"], 433.757249201136 + 2 * 2 * 104 / 101, rtol=1e-12)


def test_ml_different_fixed_effects(fits):
    d = lmm.datasets.load("orthodont")
    add = _fit("ri", False, d, "distance ~ age + Sex")
    t = lmm.compare(add, fits["ML"]["ri"], names=["add", "int"])
    ref = REF["tables"]["ML"]["fixed"]
    assert_allclose(t["llf"], ref["logLik"], rtol=1e-6)
    assert_allclose(t["lr_stat"].iloc[1], ref["L.Ratio"][1], rtol=1e-5)
    assert_allclose(t["pvalue"].iloc[1], ref["p.value"][1], rtol=1e-5)


def test_reml_different_fixed_effects_gives_no_test(fits):
    add = _fit("ri", True, None, "distance ~ age + Sex")
    t = lmm.compare(add, fits["REML"]["ri_ar1"])
    assert np.isnan(t["lr_stat"].iloc[1]) and "different fixed effects" in t["note"].iloc[1]
    # ML fits whose fixed effects are not nested: no test either
    a = _fit("ri", False, None, "distance ~ age")
    b = _fit("rs", False, None, "distance ~ Sex")
    t = lmm.compare(a, b)
    assert np.isnan(t["pvalue"].iloc[1]) and "not nested" in t["note"].iloc[1]


def test_ols_rows(fits):
    d = lmm.datasets.load("orthodont")
    ols = smf.ols(FORMULA, d).fit()
    t = lmm.compare(ols, fits["ML"]["ri"])
    assert_allclose(t["llf"].iloc[0], ols.llf, rtol=1e-10)
    assert t["structure"].iloc[0].startswith("OLS")
    # with REML fits, the OLS row gets its REML likelihood: that of our independence model
    indep = lmm.mixedlm(FORMULA, d, groups="Subject", re_formula="0").fit()
    t = lmm.compare(ols, fits["REML"]["ri"])
    assert_allclose(t["llf"].iloc[0], indep.llf, rtol=1e-8)
    assert_allclose(t["llf"].iloc[1], REF["fits"]["REML"]["ri"]["loglik"], rtol=1e-6)
    wls = smf.wls(FORMULA, d, weights=d["age"]).fit()
    with pytest.raises(ValueError, match="WLS fit: its REML likelihood is not available"):
        lmm.compare(wls, fits["REML"]["ri"])


def test_invariant_to_row_order_and_labels(fits):
    d = lmm.datasets.load("orthodont").sample(frac=1.0, random_state=3)
    d["Subject"] = "id" + d["Subject"].str[::-1]
    names = TABLES["structures"]
    base = lmm.compare(*(fits["REML"][n] for n in names), names=names)
    t = lmm.compare(*(_fit(n, True, d) for n in names), names=names)
    cols = ["n_params", "llf", "aic", "aicc", "bic", "lr_stat", "pvalue"]
    assert_allclose(t[cols].to_numpy(float), base[cols].to_numpy(float), rtol=1e-6)


def test_refuses_different_data_and_methods(fits):
    d = lmm.datasets.load("orthodont")
    sub = lmm.mixedlm(FORMULA, d.iloc[:100], groups="Subject").fit()
    with pytest.raises(ValueError, match="different data.*108 rows.*100"):
        lmm.compare(fits["REML"]["ri"], sub)
    other = lmm.mixedlm("I(distance + 1) ~ age * Sex", d, groups="Subject").fit()
    with pytest.raises(ValueError, match="different responses.*row 0"):
        lmm.compare(fits["REML"]["ri"], other)
    with pytest.raises(ValueError, match="different methods.*REML.*ML"):
        lmm.compare(fits["REML"]["ri"], fits["ML"]["rs"])
    with pytest.raises(ValueError, match="at least two"):
        lmm.compare(fits["REML"]["ri"])
    listed = lmm.compare([fits["REML"]["ri"], fits["REML"]["rs"]])
    assert list(listed.index) == ["model 1", "model 2"]


# ------------------------------------------------------------------------ select_cov_struct


def test_select_ranks_and_lists_failures():
    d = lmm.datasets.load("orthodont")
    cands = {
        "CS": lmm.CompoundSymmetry(),
        "AR1": lmm.AR1(time="visit"),
        "UN": lmm.Unstructured(time="visit"),
        "RI+AR1": {"re_formula": "1", "cov_struct": lmm.AR1(time="visit")},
        # compound symmetry duplicates a random intercept: fit() refuses it
        "RI+CS": {"re_formula": "1", "cov_struct": lmm.CompoundSymmetry()},
    }
    # the joblib path with threads (process workers cost seconds to start on a busy machine;
    # benchmarks/bench_select.py runs loky)
    with parallel_config(backend="threading"):
        sel = lmm.select_cov_struct(FORMULA, d, groups="Subject", candidates=cands, n_jobs=2)
    t = sel.table
    ok = t.index[:4]
    assert list(t.index[4:]) == ["RI+CS"] and "fit failed" in t.loc["RI+CS", "note"]
    assert set(sel.failures) == {"RI+CS"}
    assert np.all(np.diff(t.loc[ok, "aic"].to_numpy(float)) >= 0)
    assert sel.best is sel.results[ok[0]] and ok[0] == "CS"
    assert_allclose(t.loc["CS", "llf"], REF["fits"]["REML"]["cs"]["loglik"], rtol=1e-6)
    assert_allclose(t.loc["UN", "llf"], REF["fits"]["REML"]["un"]["loglik"], rtol=1e-6)
    assert t.loc["CS", "delta"] == 0 and t.loc[ok, "converged"].all()
    # the same ranking sequentially, by BIC and with ML fits (fit keywords pass through)
    seq = lmm.select_cov_struct(
        FORMULA, d, groups="Subject", candidates=cands, criterion="bic", reml=False
    )
    assert_allclose(seq.table.loc["UN", "llf"], REF["fits"]["ML"]["un"]["loglik"], rtol=1e-6)
    assert np.all(np.diff(seq.table["bic"].iloc[:4].to_numpy(float)) >= 0)


def test_select_names_and_bad_input():
    d = lmm.datasets.load("orthodont")
    sel = lmm.select_cov_struct(
        FORMULA, d, groups="Subject", candidates=[lmm.CompoundSymmetry(), lmm.AR1(time="visit")]
    )
    assert set(sel.table.index) == {"CompoundSymmetry()", "AR1('visit')"}
    with pytest.raises(ValueError, match="criterion must be one of"):
        lmm.select_cov_struct(FORMULA, d, groups="Subject", candidates=[lmm.AR1("visit")],
                              criterion="hqic")  # fmt: skip
    with pytest.raises(TypeError, match="each candidate must be a CovStruct"):
        lmm.select_cov_struct(FORMULA, d, groups="Subject", candidates=["ar1"])
    with pytest.raises(ValueError, match="not allowed"):
        lmm.select_cov_struct(FORMULA, d, groups="Subject", candidates=[{"formula": "y ~ 1"}])
    with pytest.raises(ValueError, match="empty"):
        lmm.select_cov_struct(FORMULA, d, groups="Subject", candidates=[])


def test_select_uses_the_callers_namespace():
    d = lmm.datasets.load("orthodont")
    ref_age = 11.0  # noqa: F841 - used by the formula
    sel = lmm.select_cov_struct(
        "distance ~ I(age - ref_age) * Sex", d, groups="Subject",
        candidates=[lmm.CompoundSymmetry()], n_jobs=1,
    )  # fmt: skip
    assert_allclose(sel.best.llf, REF["fits"]["REML"]["cs"]["loglik"], rtol=1e-6)
    assert isinstance(sel.table, pd.DataFrame) and len(sel.table) == 1


def test_statsmodels_results_are_accepted(fits):
    d = lmm.datasets.load("orthodont")
    sm = smf.mixedlm(FORMULA, d, groups="Subject").fit(reml=True)
    t = lmm.compare(sm, fits["REML"]["ri_ar1"], names=["sm", "ours"])
    assert_allclose(t.loc["sm", "llf"], REF["fits"]["REML"]["ri"]["loglik"], rtol=1e-6)
    assert t.loc["sm", "n_params"] == REF["fits"]["REML"]["ri"]["df"]


def test_select_string_columns_behave_as_in_mixedlm():
    # select_cov_struct builds each candidate as mixedlm does: homogeneous AR(1) refuses a
    # string time column, and the other fits equal the direct ones
    d = lmm.datasets.load("orthodont")
    d["vis"] = "v" + d["visit"].astype(str)
    f = "distance ~ vis * Sex"
    cands = {"AR1": lmm.AR1(time="vis"), "UN": lmm.Unstructured(time="vis")}
    sel = lmm.select_cov_struct(f, d, groups="Subject", candidates=cands)
    assert "must be numeric" in sel.failures["AR1"]
    direct = lmm.mixedlm(f, d, groups="Subject", re_formula="0", cov_struct=cands["UN"]).fit()
    assert_allclose(sel.results["UN"].llf, direct.llf, rtol=1e-10)
    assert list(sel.results["UN"].fe_params.index) == list(direct.fe_params.index)
    assert d["vis"].dtype != "category"  # the caller's data are not modified


def test_select_passes_missing_to_every_model():
    # missing="drop" reaches the model construction of each candidate (fev_data has missing
    # FEV1), the fits equal direct ones, and a run where every candidate fails warns
    fev = lmm.datasets.load("fev_data")
    f = "FEV1 ~ ARMCD * AVISIT"
    cands = {"CSH": lmm.CompoundSymmetry(time="AVISIT", heterogeneous=True)}
    with pytest.warns(RuntimeWarning, match="all 1 candidates failed"):
        failed = lmm.select_cov_struct(f, fev, groups="USUBJID", candidates=cands)
    assert failed.best is None and "missing='drop'" in failed.failures["CSH"]
    sel = lmm.select_cov_struct(f, fev, groups="USUBJID", candidates=cands, missing="drop")
    direct = lmm.mixedlm(
        f, fev, groups="USUBJID", re_formula="0", cov_struct=cands["CSH"], missing="drop"
    ).fit()
    assert sel.results["CSH"].nobs == direct.nobs == fev["FEV1"].notna().sum()
    assert_allclose(sel.best.llf, direct.llf, rtol=1e-10)
