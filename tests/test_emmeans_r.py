"""Estimated marginal means and contrasts against R's emmeans.

Reference values: tests/results/emmeans_refs.json, produced by tests/results/emmeans_refs.R
(emmeans 1.8.4-1, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, nlme 3.1-162, R 4.2.2).  Each
table is ``summary(<emmGrid>, infer = c(TRUE, TRUE))``; the R call is stored with it.

Tolerances (the issue's): estimates 1e-6 relative to the table's largest estimate (a contrast
near zero inherits the absolute error of the means, which come from lme4's optimum vs ours);
SE, df, t and confidence half-widths 1e-4; p-values 1e-4 relative, or 1e-4 relative on the log
scale for small p (as in test_inference_r: p = 6e-7 on 8.9 df turns a 2e-5 relative difference
in the Satterthwaite df into 3e-4 in p), plus 1e-10 absolute (R's ``ptukey`` and scipy's
``studentized_range`` are numerical integrals with absolute errors ~1e-12, visible only in
Tukey p-values below 1e-11).  Looser, and why, where it applies:

* ``mvt``: emmeans integrates the multivariate t by mvtnorm's randomised Monte Carlo (seeded,
  ~1e-3 reproducible; for the balanced pairwise family, where mvt equals Tukey exactly, R's
  interval half-width is 7e-4 off the exact Tukey value): p-values 1e-3 absolute, half-widths
  2e-3 relative.  Our integration (Genz's method on fixed Sobol points) is within 2e-4 of the
  exact value on that family (test_mvt_equals_tukey_when_balanced).
* ``dunnettx``: emmeans finds the critical value by ``uniroot(tol = 5e-4)``: half-widths 1e-3.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from tests._fits import fit_mixed
from tests.conftest import load_reference

CASES = load_reference("emmeans_refs.json")["cases"]


def _fit_mixed(case, data, how):
    py = case["python"]
    kw = dict(groups=py["groups"], re_formula=py["re_formula"], vc_formula=py["vc_formula"])
    return fit_mixed(py["formula"], data, how, **kw)


@pytest.fixture(scope="module", params=["ours", "statsmodels"])
def oats(request):
    return _fit_mixed(CASES["oats_splitplot"], lmm.datasets.load("oats"), request.param)


@pytest.fixture(scope="module", params=["ours", "statsmodels"])
def twofactor(request):
    case = CASES["twofactor_block"]
    return _fit_mixed(case, lmm.datasets.load("twofactor_unbalanced"), request.param)


@pytest.fixture(scope="module")
def twofactor_ols():
    return smf.ols(
        CASES["twofactor_ols"]["python"]["formula"], lmm.datasets.load("twofactor_unbalanced")
    ).fit()


@pytest.fixture(scope="module")
def fev():
    data = lmm.datasets.load("fev_data")
    return lmm.mixedlm(
        "FEV1 ~ ARMCD * AVISIT + FEV1_BL",
        data,
        groups="USUBJID",
        re_formula="0",
        cov_struct=lmm.AR1(time="VISITN"),
        missing="drop",
    ).fit(reml=True)


def assert_p_close(actual, desired, rtol, atol):
    actual, desired = np.asarray(actual, float), np.asarray(desired, float)
    ok = np.isclose(actual, desired, rtol=rtol, atol=atol)
    with np.errstate(divide="ignore"):  # p = 0 in double precision (t = 89 on 527 df)
        ok |= np.isclose(np.log(actual), np.log(desired), rtol=1e-4)
    assert ok.all(), np.c_[actual, desired][~ok]


def compare(frame, table, *, p_atol=1e-10, p_rtol=1e-4, hw_rtol=1e-4, se_rtol=1e-4, df=True):
    """Compare one of our frames with one emmeans table, row by row in emmeans' order."""
    ref = pd.DataFrame(table["rows"])
    keys = [c for c in ref.columns if ref[c].dtype == object and c != ".group"]
    assert len(frame) == len(ref), table["call"]
    for k in keys:  # same rows, same order, same labels
        assert list(frame[k].astype(str)) == list(ref[k]), (k, table["call"])
    est = "emmean" if "emmean" in ref else "estimate"
    assert_allclose(frame[est], ref[est], rtol=1e-6, atol=1e-6 * ref[est].abs().max())
    assert_allclose(frame["se"], ref["SE"], rtol=se_rtol)
    if "t.ratio" in ref:
        assert_allclose(frame["t"], ref["t.ratio"], rtol=se_rtol)
    if not df:
        return
    assert_allclose(frame["df"], ref["df"], rtol=1e-4)
    half = (frame["upper"] - frame["lower"]) / 2
    assert_allclose(half, (ref["upper.CL"] - ref["lower.CL"]) / 2, rtol=hw_rtol)
    if "t.ratio" in ref:
        assert_p_close(frame["p_value"], ref["p.value"], rtol=p_rtol, atol=p_atol)


def notes_of(frame):
    return "\n".join(frame.attrs["notes"])


# ------------------------------------------------------------------ split plot (Oats) --------

OATS = CASES["oats_splitplot"]["results"]


@pytest.mark.parametrize("sfx, ddf", [("kr", None), ("satt", "satterthwaite")])
def test_oats_means(oats, sfx, ddf):
    kw = {} if ddf is None else {"ddf": ddf}
    both = (True, True)
    em = lmm.emmeans(oats, "Variety", **kw)
    compare(em.summary_frame(infer=both), OATS[f"emm_Variety_{sfx}"])
    compare(lmm.emmeans(oats, "nitro_f", **kw).summary_frame(infer=both), OATS[f"emm_nitro_{sfx}"])
    em = lmm.emmeans(oats, "nitro_f", by="Variety", **kw)
    compare(em.summary_frame(infer=both), OATS[f"emm_nitro_by_Variety_{sfx}"])
    em = lmm.emmeans(oats, "nitro_f | Variety", **kw)  # emmeans' formula spelling
    compare(em.summary_frame(infer=both), OATS[f"emm_nitro_by_Variety_{sfx}"])
    em = lmm.emmeans(oats, ["Variety", "nitro_f"], **kw)
    compare(em.summary_frame(infer=both), OATS[f"emm_Variety_x_nitro_{sfx}"])
    method = "satterthwaite" if ddf else "kenward-roger"
    assert f"Degrees-of-freedom method: {method}" in notes_of(em.summary_frame())


@pytest.mark.parametrize("adjust", ["tukey", "bonferroni", "holm", "sidak", "scheffe", "none"])
def test_oats_pairs(oats, adjust):
    pw = lmm.emmeans(oats, "nitro_f").pairs(adjust=adjust)
    table = OATS[f"pairs_nitro_{adjust}_kr"]
    frame = pw.summary_frame()
    compare(frame, table)
    # the notes emmeans prints, e.g. "P value adjustment: tukey method for comparing a family
    # of 4 estimates" and "Conf-level adjustment: bonferroni method for 6 estimates" (Holm)
    for note in table["note"]:
        if note.startswith(("P value", "Conf-level", "Results are averaged")):
            assert note in notes_of(frame)


def test_oats_pairs_mvt(oats):
    pw = lmm.emmeans(oats, "nitro_f").pairs(adjust="mvt")
    compare(pw.summary_frame(), OATS["pairs_nitro_mvt_kr"], p_atol=1e-3, hw_rtol=2e-3)


def test_mvt_equals_tukey_when_balanced(oats):
    """Balanced pairwise comparisons with equal SEs: the multivariate t is the studentized
    range exactly, so mvt must reproduce Tukey (a check of the integration, R-free)."""
    em = lmm.emmeans(oats, "nitro_f")
    mvt = em.pairs(adjust="mvt").summary_frame()
    tukey = em.pairs(adjust="tukey").summary_frame()
    assert_allclose(mvt["p_value"], tukey["p_value"], atol=3e-4)
    assert_allclose(mvt["upper"] - mvt["lower"], tukey["upper"] - tukey["lower"], rtol=5e-4)


@pytest.mark.parametrize("sfx, ddf", [("kr", None), ("satt", "satterthwaite")])
def test_oats_pairs_by(oats, sfx, ddf):
    kw = {} if ddf is None else {"ddf": ddf}
    pw = lmm.emmeans(oats, "nitro_f", by="Variety", **kw).pairs()
    compare(pw.summary_frame(), OATS[f"pairs_nitro_by_Variety_tukey_{sfx}"])


def test_oats_other_contrasts(oats):
    em = lmm.emmeans(oats, "nitro_f")
    # trt.vs.ctrl defaults to emmeans' dunnettx approximation
    tvc = em.contrast("trt.vs.ctrl")
    assert tvc.adjust == "dunnettx"
    compare(tvc.summary_frame(), OATS["trtvsctrl_nitro_dunnettx_kr"], hw_rtol=1e-3)
    compare(
        em.contrast("trt.vs.ctrl", adjust="dunnett").summary_frame(),
        OATS["trtvsctrl_nitro_mvt_kr"],
        p_atol=1e-3,
        hw_rtol=2e-3,
    )
    # consec defaults to mvt, as in emmeans
    compare(
        em.contrast("consec").summary_frame(),
        OATS["consec_nitro_default_kr"],
        p_atol=1e-3,
        hw_rtol=2e-3,
    )
    compare(em.contrast("poly", adjust="none").summary_frame(), OATS["poly_nitro_none_kr"])
    lin = em.contrast({"lin": [-3, -1, 1, 3]})
    compare(lin.summary_frame(), OATS["custom_lin_nitro_kr"])


def test_oats_cld(oats):
    table = OATS["cld_nitro_tukey_kr"]
    ref = pd.DataFrame(table["rows"])
    cld = lmm.emmeans(oats, "nitro_f").pairs().cld(sort=False)
    assert list(cld["group"]) == list(ref[".group"])
    assert list(cld["nitro_f"]) == list(ref["nitro_f"])
    # intervals of the means: Sidak for a family of 4, as emmeans reports
    assert_allclose(cld["upper"] - cld["lower"], ref["upper.CL"] - ref["lower.CL"], rtol=1e-4)
    assert "Conf-level adjustment: sidak method for 4 estimates" in notes_of(cld)


# ------------------------------------------------- unbalanced two-factor, random block ------

TF = CASES["twofactor_block"]["results"]


def test_twofactor_weights_and_at(twofactor):
    both = (True, True)
    compare(lmm.emmeans(twofactor, "A").summary_frame(infer=both), TF["emm_A_equal_kr"])
    em = lmm.emmeans(twofactor, "A", weights="proportional")
    compare(em.summary_frame(infer=both), TF["emm_A_proportional_kr"])
    em = lmm.emmeans(twofactor, "A", at={"x": 1.5})
    compare(em.summary_frame(infer=both), TF["emm_A_at_x1.5_kr"])
    em = lmm.emmeans(twofactor, "B", by="A")
    compare(em.summary_frame(infer=both), TF["emm_B_by_A_kr"])


@pytest.mark.parametrize("adjust", ["tukey", "holm", "none"])
def test_twofactor_pairs(twofactor, adjust):
    pw = lmm.emmeans(twofactor, "A").pairs(adjust=adjust)
    compare(pw.summary_frame(), TF[f"pairs_A_{adjust}_kr"])


def test_twofactor_pairs_by(twofactor):
    compare(
        lmm.emmeans(twofactor, "B", by="A").pairs().summary_frame(), TF["pairs_B_by_A_tukey_kr"]
    )


def test_ols(twofactor_ols):
    ref = CASES["twofactor_ols"]["results"]
    em = lmm.emmeans(twofactor_ols, "A")
    compare(em.summary_frame(infer=(True, True)), ref["emm_A"])
    compare(em.pairs().summary_frame(), ref["pairs_A_tukey"])
    assert "Results are averaged over the levels of: B, block" in notes_of(em.summary_frame())


# ------------------------------------------------------ FEV, gls with AR(1) residuals ------

FEV = CASES["fev_gls_ar1"]["results"]


def test_fev_gls_satterthwaite(fev):
    """Estimates, SEs and t against emmeans' default for nlme::gls.  Not the df: emmeans'
    "satterthwaite" mode for gls is its own construction — the Jacobian of nlme's
    ``glsEstimate`` covariance (sigma re-estimated at each correlation value) combined with
    nlme's numerical ``apVar`` — and gives 523-528 here where the Satterthwaite df of SAS
    (ddfm=satterthwaite) and lmerTest, which we compute and check against both elsewhere,
    give 498-527; see docs/emmeans.rst."""
    for name, spec in [
        ("emm_ARMCD_by_AVISIT_satt", "ARMCD | AVISIT"),
        ("emm_ARMCD_satt", "ARMCD"),
    ]:
        em = lmm.emmeans(fev, spec, ddf="satterthwaite")
        compare(em.summary_frame(infer=(True, True)), FEV[name], df=False)


def test_fev_gls_df_error(fev):
    """emmeans' mode = "df.error" for gls: N - p - (number of correlation parameters)."""
    case = CASES["fev_gls_ar1"]
    df_error = case["n_obs"] - len(case["fe_names_r"]) - 1
    em = lmm.emmeans(fev, "ARMCD | AVISIT", ddf=df_error)
    compare(em.summary_frame(infer=(True, True)), FEV["emm_ARMCD_by_AVISIT_dferror"])
    compare(em.pairs().summary_frame(), FEV["pairs_ARMCD_by_AVISIT_dferror"])
    em = lmm.emmeans(fev, "ARMCD", ddf=df_error)
    compare(em.summary_frame(infer=(True, True)), FEV["emm_ARMCD_dferror"])
