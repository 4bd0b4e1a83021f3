"""Intervals for covariance parameters (``res.conf_int_cov``) and intraclass correlations
(``res.icc``).

Reference values: tests/results/conf_int_cov.json, produced by tests/results/conf_int_cov.R
(R 4.2.2, lme4 1.1.31, nlme 3.1.162):

* lme4 ``confint(method = "profile")``: lme4 interpolates its profile with splines, so its
  limits carry an interpolation error of about 1e-4 relative; tolerance 1e-3 relative.
* nlme ``intervals()``: nlme's standard errors come from a numerical Hessian (``fdHess``, step
  1e-4 set in the script); ours from the exact observed information.  They agree to about
  1e-4 relative on the small models and 5e-4 on the ten-parameter unstructured gls;
  tolerance 1e-3 relative.
* REML profile of sleepstudy (lme4 profiles only ML): the REML deviance written out in R and
  profiled with optim / uniroot: they agree to 1e-9; tolerance 1e-6 relative.
* ICC: the REML profile likelihood of the ICC written out with dense matrices in R (optimize /
  uniroot to 1e-12): tolerance 1e-5 absolute; the Wald interval from nlme's apVar (delta
  method on the logit scale): 1e-4 absolute.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from tests.conftest import load_reference

REF = load_reference("conf_int_cov.json")


def _fit(data, formula, groups, reml=True, **kw):
    return lmm.mixedlm(formula, data, groups=groups, **kw).fit(reml=reml)


def _dyestuff(key):
    return pd.DataFrame(REF[key]["data"])


@pytest.fixture(scope="module")
def sleep():
    d = lmm.datasets.load("sleepstudy")
    return _fit(d, "Reaction ~ Days", "Subject", re_formula="~Days")


@pytest.fixture(scope="module")
def sleep_profile_ml(sleep):
    return sleep.conf_int_cov(reml=False)


# ---------------------------------------------------------------- lme4 profile intervals
def test_profile_sleepstudy_matches_lme4(sleep_profile_ml):
    ref = REF["sleepstudy"]
    ci = sleep_profile_ml
    # lme4's rows: sd_(Intercept), cor_Days.(Intercept), sd_Days, sigma
    assert list(ci.index) == ["Subject SD", "Subject x Days Corr", "Days SD", "Residual SD"]
    assert_allclose(ci["lower"], ref["profile"]["lower"], rtol=1e-3)
    assert_allclose(ci["upper"], ref["profile"]["upper"], rtol=1e-3)
    # reml=False reports the ML estimates (lme4 profiles the ML refit)
    ml = ref["ml_estimate"]
    est = [ml["Subject (Intercept) NA"], ml["Subject (Intercept) Days"],
           ml["Subject Days NA"], ml["Residual NA NA"]]  # fmt: skip
    assert_allclose(ci["estimate"], est, rtol=1e-4)


def test_profile_reml_sleepstudy_matches_written_out_reml_profile(sleep):
    """The default profiles the REML deviance (lme4 cannot); reference: the REML deviance of
    the random-slope model written out group by group in R and profiled with optim and
    uniroot (conf_int_cov.R); they agree to 1e-9, tolerance 1e-6 for R's optimiser."""
    ref = REF["sleepstudy_reml_profile"]
    rows = ["Subject x Days Corr", "Days SD"]  # R's rows 2 and 3
    ci = sleep.conf_int_cov(parm=rows)
    assert_allclose(ci["lower"], ref["lower"], rtol=1e-6)
    assert_allclose(ci["upper"], ref["upper"], rtol=1e-6)
    assert_allclose(ci["estimate"], np.asarray(ref["estimate"])[[1, 2]], rtol=1e-5)


@pytest.mark.parametrize("key", ["dyestuff", "dyestuff2"])
def test_profile_variance_components_match_lme4(key):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dyestuff2: the batch variance is estimated at zero
        res = _fit(_dyestuff(key), "Yield ~ 1", "Batch")
    ci = res.conf_int_cov(reml=False)
    ref = REF[key]["profile"]
    assert list(ci.index) == ["Batch SD", "Residual SD"]
    assert_allclose(ci["lower"], ref["lower"], rtol=1e-3)
    assert_allclose(ci["upper"], ref["upper"], rtol=1e-3)
    if key == "dyestuff2":
        assert ci.loc["Batch SD", "lower"] == 0.0  # lme4: the profile at 0 is below the cut-off
        assert ci.attrs["notes"][-1].startswith("Singular fit")
        icc = res.icc()
        assert icc["lower"].iloc[0] == 0.0 and 0 < icc["upper"].iloc[0] < 1
        assert res.icc(method="wald")[["lower", "upper"]].isna().all(axis=None)


def test_profile_reml_contains_estimates_and_reaches_cutoff():
    """The default profiles the fit's criterion: its estimates are the fit's, and the
    deviance re-optimised at each limit exceeds the minimum by chi2_1(0.95)."""
    from scipy import stats

    from statsmodels_lmm_ext.diagnostics.intervals import _estimate
    from statsmodels_lmm_ext.diagnostics.profile import _Profile, parameter_target
    from statsmodels_lmm_ext.diagnostics.sdscale import SdScale

    res = _fit(_dyestuff("dyestuff"), "Yield ~ 1", "Batch")
    ci = res.conf_int_cov()
    cp = res.covariance_parameters()
    assert_allclose(ci["estimate"] ** 2, cp["Estimate"], rtol=1e-6)
    sds = SdScale(res.cov_params_spec, res.model.engine, True)
    phi, dmin = _estimate(sds, res)
    assert_allclose(dmin, -2 * res.llf, rtol=1e-10)
    crit = stats.chi2.ppf(0.95, 1)
    for j, name in enumerate(ci.index):
        prof = _Profile(sds, parameter_target(sds, j, phi), phi, dmin)
        for side in ("lower", "upper"):
            assert_allclose(prof.deviance(ci.loc[name, side]) - dmin, crit, rtol=1e-5)


# ---------------------------------------------------------------- nlme Wald intervals
def _nlme_rows(ref, parts):
    lower, est, upper = [], [], []
    for p in parts:
        r = ref[p]
        lower += np.atleast_1d(r["lower"]).tolist()
        est += np.atleast_1d(r["est"]).tolist()
        upper += np.atleast_1d(r["upper"]).tolist()
    return np.array(lower), np.array(est), np.array(upper)


def _check_wald(ci, ref, parts, order, rtol, est_rtol=1e-4):
    lower, est, upper = _nlme_rows(ref, parts)
    assert_allclose(ci["estimate"].to_numpy()[order], est, rtol=est_rtol)
    assert_allclose(ci["lower"].to_numpy()[order], lower, rtol=rtol)
    assert_allclose(ci["upper"].to_numpy()[order], upper, rtol=rtol)


def test_wald_lme_ar1_matches_nlme():
    o = lmm.datasets.load("orthodont")
    res = _fit(o, "distance ~ age * Sex", "Subject", cov_struct=lmm.AR1(time="visit"))
    ci = res.conf_int_cov("wald")
    assert list(ci.index) == ["Subject SD", "Residual SD", "rho (AR1)"]
    # nlme: reStruct sd, corAR1 Phi, sigma
    _check_wald(ci, REF["orthodont_lme_ar1"], ["reStruct", "corStruct", "sigma"],
                [0, 2, 1], rtol=1e-4)  # fmt: skip


def test_wald_random_slope_matches_nlme(sleep):
    """Standard deviations and the correlation of a random intercept and slope (nlme's
    pdLogChol intervals on its natural scale: log sd, log((1 + r) / (1 - r))).  nlme stops
    its optimiser 2e-4 (relative) short of the REML maximum in the correlation (ours agrees
    with the REML deviance written out in R to 1e-7, see above), hence 1e-3."""
    ci = sleep.conf_int_cov("wald")
    reml_cor = REF["sleepstudy_reml_profile"]["estimate"][1]
    assert_allclose(ci["estimate"].iloc[1], reml_cor, rtol=1e-6)
    # nlme: sd((Intercept)), sd(Days), cor((Intercept),Days), sigma
    _check_wald(ci, REF["sleepstudy_lme"], ["reStruct", "sigma"], [0, 2, 1, 3], rtol=1e-3,
                est_rtol=1e-3)  # fmt: skip


def test_wald_gls_unstructured_matches_nlme():
    """gls with corSymm and varIdent(~ 1 | visit) = our Unstructured (nlme's corNatural
    scale: Fisher z of each correlation; log of each sd ratio)."""
    o = lmm.datasets.load("orthodont")
    res = _fit(o, "distance ~ age * Sex", "Subject", re_formula="0",
               cov_struct=lmm.Unstructured(time="visit"))  # fmt: skip
    ci = res.conf_int_cov("wald")
    # ours: Residual SD, rho2_1, rho3_1, rho3_2, rho4_1, rho4_2, rho4_3, ratios 2..4;
    # nlme: cor(1,2), cor(1,3), cor(1,4), cor(2,3), cor(2,4), cor(3,4), ratios, sigma
    order = [1, 2, 4, 3, 5, 6, 7, 8, 9, 0]
    _check_wald(ci, REF["orthodont_gls_un"], ["corStruct", "varStruct", "sigma"], order,
                rtol=1e-3)  # fmt: skip


def test_wald_gls_ar1_varident_matches_nlme():
    o = lmm.datasets.load("orthodont")
    res = _fit(o, "distance ~ age * Sex", "Subject", re_formula="0",
               cov_struct=lmm.AR1(time="visit"), variance=lmm.VarIdent("Sex"))  # fmt: skip
    ci = res.conf_int_cov("wald")
    _check_wald(ci, REF["orthodont_gls_ar1_varident"], ["corStruct", "varStruct", "sigma"],
                [1, 2, 0], rtol=1e-4)  # fmt: skip


def test_profile_and_wald_agree_roughly_on_gls():
    """Residual-structure parameters are profiled too; for 108 rows the profile and Wald
    intervals of AR(1) rho and the sd ratio differ by a few hundredths only."""
    o = lmm.datasets.load("orthodont")
    res = _fit(o, "distance ~ age * Sex", "Subject", re_formula="0",
               cov_struct=lmm.AR1(time="visit"), variance=lmm.VarIdent("Sex"))  # fmt: skip
    prof, wald = res.conf_int_cov(), res.conf_int_cov("wald")
    assert_allclose(prof["estimate"], wald["estimate"], rtol=1e-5)
    assert_allclose(prof[["lower", "upper"]], wald[["lower", "upper"]], rtol=0.05)
    assert (prof["lower"] < prof["estimate"]).all() and (prof["estimate"] < prof["upper"]).all()


# ---------------------------------------------------------------- ICC
@pytest.mark.parametrize("key", ["icc_dyestuff", "icc_oneway"])
def test_icc_matches_dense_profile_and_nlme_wald(key):
    ref = REF[key]
    res = _fit(pd.DataFrame(ref["data"]), "y ~ 1", "g")
    out = res.icc()
    assert list(out.index) == ["g"]
    assert_allclose(out["estimate"].iloc[0], ref["estimate"], atol=1e-6)
    assert_allclose(out[["lower", "upper"]].iloc[0], ref["profile"], atol=1e-5)
    wald = res.icc(method="wald")
    assert_allclose(wald[["lower", "upper"]].iloc[0], ref["wald_logit"], atol=1e-4)
    if key == "icc_oneway":
        assert out["lower"].iloc[0] == 0.0  # the profile at ICC = 0 stays below the cut-off


def test_icc_two_components_definition_and_cutoff():
    """ICC_k = sigma_k^2 / (sum_j sigma_j^2 + sigma^2) for each variance component (Oats
    split plot: blocks and whole plots); at each profile limit the REML deviance,
    re-optimised with the ICC held there, exceeds its minimum by chi2_1(0.95)."""
    from scipy import stats

    from statsmodels_lmm_ext.diagnostics.intervals import _estimate, _icc_target
    from statsmodels_lmm_ext.diagnostics.profile import _Profile
    from statsmodels_lmm_ext.diagnostics.sdscale import SdScale

    d = lmm.datasets.load("oats")
    res = _fit(d, "grain_yield ~ nitro_f + Variety", "Block", re_formula="1",
               vc_formula={"plot": "0 + C(Variety)"})  # fmt: skip
    cp = res.covariance_parameters()["Estimate"]
    out = res.icc()
    assert list(out.index) == ["Block", "plot"]
    assert_allclose(out["estimate"], cp.iloc[:2].to_numpy() / cp.sum(), rtol=1e-6)
    assert_allclose(res.icc(method="wald")["estimate"], out["estimate"], rtol=1e-6)
    sds = SdScale(res.cov_params_spec, res.model.engine, True)
    phi, dmin = _estimate(sds, res)
    crit = stats.chi2.ppf(0.95, 1)
    for k, name in zip([0, 1], out.index, strict=True):
        prof = _Profile(sds, _icc_target(k, [0, 1], sds.k_lin), phi, dmin)
        for side in ("lower", "upper"):
            assert_allclose(prof.deviance(out.loc[name, side]) - dmin, crit, rtol=1e-5)


def test_icc_refuses_random_slopes_and_no_random_effects(sleep):
    with pytest.raises(ValueError, match="slopes"):
        sleep.icc()
    o = lmm.datasets.load("orthodont")
    gls = _fit(o, "distance ~ age", "Subject", re_formula="0", cov_struct=lmm.AR1(time="visit"))
    with pytest.raises(ValueError, match="random intercept or a variance component"):
        gls.icc()
    cs = _fit(o, "distance ~ age", "Subject", re_formula="0", cov_struct=lmm.CompoundSymmetry())
    with pytest.raises(ValueError, match="rho row of conf_int_cov"):
        cs.icc()
    d = lmm.datasets.load("oats")
    slope_vc = _fit(d, "grain_yield ~ nitro_f", "Block", re_formula="1",
                    vc_formula={"n": "0 + nitro"})  # fmt: skip
    with pytest.raises(ValueError, match="indicator designs"):
        slope_vc.icc()


def test_bad_arguments(sleep):
    with pytest.raises(ValueError, match="method must be one of"):
        sleep.conf_int_cov("bootstrap")
    with pytest.raises(ValueError, match="alpha must be in"):
        sleep.conf_int_cov("wald", alpha=1.5)
    with pytest.raises(ValueError, match="method must be one of"):
        sleep.icc(method="exact")
    with pytest.raises(ValueError, match="needs a refit"):
        sleep.conf_int_cov("wald", reml=False)


# ---------------------------------------------------------------- invariances (DESIGN 9)
def test_invariant_to_rows_labels_and_units():
    d = _dyestuff("dyestuff")
    base = _fit(d, "Yield ~ 1", "Batch")
    ci, icc = base.conf_int_cov(), base.icc()
    rng = np.random.default_rng(14)
    e = d.iloc[rng.permutation(len(d))].copy()
    e["Batch"] = e["Batch"].map(lambda b: f"lot-{ord(b) * 7 % 11}")
    for unit in (1e-5, 1e4):
        e["Yield"] = 1000.0 + unit * d["Yield"].loc[e.index]  # offset and unit change
        other = _fit(e, "Yield ~ 1", "Batch")
        ci2 = other.conf_int_cov()
        assert_allclose(ci2.to_numpy(), unit * ci.to_numpy(), rtol=1e-5)
        assert_allclose(other.icc().to_numpy(), icc.to_numpy(), rtol=1e-5, atol=1e-7)
        w, w2 = base.conf_int_cov("wald"), other.conf_int_cov("wald")
        assert_allclose(w2.to_numpy(), unit * w.to_numpy(), rtol=1e-6)


def test_correlation_rows_are_unit_free(sleep_profile_ml):
    d = lmm.datasets.load("sleepstudy")
    d["Days"] = 24.0 * d["Days"]  # hours instead of days
    d["Subject"] = "s" + d["Subject"].astype(str)
    res = _fit(d, "Reaction ~ Days", "Subject", re_formula="~Days")
    ci = res.conf_int_cov("wald")
    base = _fit(lmm.datasets.load("sleepstudy"), "Reaction ~ Days", "Subject",
                re_formula="~Days").conf_int_cov("wald")  # fmt: skip
    assert_allclose(ci.iloc[[0, 1, 3]].to_numpy(), base.iloc[[0, 1, 3]].to_numpy(), rtol=1e-5)
    assert_allclose(ci.iloc[2].to_numpy(), base.iloc[2].to_numpy() / 24.0, rtol=1e-5)


def test_wald_standard_errors_are_the_exact_hessian():
    """The Wald SEs on the interval scale equal those of a central-difference Hessian of the
    REML deviance in that scale (nlme differentiates numerically; the 5e-4 differences to it
    on the unstructured gls are nlme's)."""
    from scipy import stats

    from statsmodels_lmm_ext.diagnostics.sdscale import SdScale, from_line, to_line

    o = lmm.datasets.load("orthodont")
    res = _fit(o, "distance ~ age * Sex", "Subject", re_formula="0",
               cov_struct=lmm.Unstructured(time="visit"))  # fmt: skip
    sds = SdScale(res.cov_params_spec, res.model.engine, True)
    b = sds.bounds
    t0 = to_line(sds.from_theta(res.variance_model.theta)[None], b)[0]
    k, h = len(t0), 1e-4
    E = np.eye(k) * h
    pts = [t0 + si * E[i] + sj * E[j] for i in range(k) for j in range(k)
           for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))]  # fmt: skip
    d = sds.deviance(from_line(np.array(pts), b)).reshape(k, k, 4)
    H = (d[..., 0] - d[..., 1] - d[..., 2] + d[..., 3]) / (4 * h * h)
    se_fd = np.sqrt(np.diag(np.linalg.inv(H / 2)))
    ci = res.conf_int_cov("wald")
    z = stats.norm.ppf(0.975)
    se = (to_line(ci[["upper"]].to_numpy().T, b) - to_line(ci[["lower"]].to_numpy().T, b))[0]
    assert_allclose(se / (2 * z), se_fd, rtol=1e-5)


def test_parm_selects_rows(sleep, sleep_profile_ml):
    one = sleep.conf_int_cov(reml=False, parm=["Days SD"])
    assert list(one.index) == ["Days SD"]
    assert_allclose(one.to_numpy(), sleep_profile_ml.loc[["Days SD"]].to_numpy(), rtol=1e-6)
    wald = sleep.conf_int_cov("wald", parm="Residual SD")
    assert list(wald.index) == ["Residual SD"]
    with pytest.raises(ValueError, match="unknown parameter"):
        sleep.conf_int_cov("wald", parm=["Subject Var"])
