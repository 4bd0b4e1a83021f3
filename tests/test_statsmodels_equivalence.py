"""Independence() must reproduce statsmodels MixedLM (llf to 1e-6)."""

import warnings

import numpy as np
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm

MODELS = [
    ("sleepstudy", "Reaction ~ Days", "Subject", "1", None),
    ("sleepstudy", "Reaction ~ Days", "Subject", "1 + Days", None),
    ("oats", "grain_yield ~ Variety * nitro_f", "Block", "1", {"Variety": "0 + C(Variety)"}),
    ("orthodont", "distance ~ age * Sex", "Subject", None, None),
]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("spec", MODELS, ids=lambda s: f"{s[0]}-{s[3]}-{bool(s[4])}")
def test_independence_matches_statsmodels(spec, reml):
    name, formula, groups, re_formula, vc = spec
    data = lmm.datasets.load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.mixedlm(formula, data, groups=groups, re_formula=re_formula, vc_formula=vc).fit(
            reml=reml, method=["lbfgs"]
        )
    ours = lmm.mixedlm(formula, data, groups=groups, re_formula=re_formula, vc_formula=vc).fit(
        reml=reml
    )
    assert ours.converged
    # ours may find a (slightly) higher optimum than statsmodels' optimiser, never a lower one
    assert ours.llf >= ref.llf - 1e-6 * abs(ref.llf)
    assert_allclose(ours.llf, ref.llf, rtol=1e-6)
    assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-4)
    assert_allclose(ours.bse_fe, ref.bse_fe, rtol=1e-3)
    assert_allclose(np.asarray(ours.cov_re), np.asarray(ref.cov_re), rtol=2e-3, atol=1e-6)
    assert_allclose(ours.vcomp, ref.vcomp, rtol=2e-3, atol=1e-6)
    assert_allclose(ours.scale, ref.scale, rtol=1e-3)
    assert list(ours.params.index) == list(ref.params.index)
    # BLUPs under independence agree with statsmodels'
    g = ref.model.group_labels[0]
    assert_allclose(
        ours.random_effects[g].values,
        ref.random_effects[g].values,
        rtol=2e-3,
        atol=1e-3 * np.sqrt(ref.scale),
    )
    assert_allclose(ours.fittedvalues, ref.fittedvalues, rtol=1e-4, atol=1e-4)


def test_no_random_effects_is_ols():
    """re_formula="0" with Independence() is ordinary least squares."""
    d = lmm.datasets.load("orthodont")
    ols = smf.ols("distance ~ age * Sex", d).fit()
    res = lmm.mixedlm("distance ~ age * Sex", d, groups="Subject", re_formula="0").fit(reml=True)
    assert_allclose(res.fe_params, ols.params, rtol=1e-10)
    assert_allclose(res.scale, ols.scale, rtol=1e-10)
    assert_allclose(res.bse_fe, ols.bse, rtol=1e-10)
    ml = lmm.mixedlm("distance ~ age * Sex", d, groups="Subject", re_formula="0").fit(reml=False)
    assert_allclose(ml.llf, ols.llf, rtol=1e-10)
