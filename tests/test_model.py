"""MixedLM construction: the statsmodels cloning protocol and the parameter packing."""

import numpy as np
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm


def test_clone_the_statsmodels_way_refits_identically():
    # statsmodels clones a model as type(m)(m.endog, m.exog, **m._get_init_kwds()); "engine"
    # once returned the Engine object instead of the batching mode and fit() failed
    d = lmm.datasets.load("orthodont")
    m = lmm.mixedlm("distance ~ age", d, groups="Subject", cov_struct=lmm.AR1(time="visit"))
    res = m.fit()
    kw = m._get_init_kwds()
    assert kw["engine"] == "auto"
    clone = type(m)(m.endog, m.exog, **kw)
    again = clone.fit()
    assert_allclose(again.llf, res.llf, rtol=1e-10)
    assert_allclose(np.asarray(again.params), np.asarray(res.params), rtol=1e-6)


def test_packed_names_and_params_come_from_one_place():
    d = lmm.datasets.load("sleepstudy")
    res = lmm.mixedlm(
        "Reaction ~ Days", d, groups="Subject", re_formula="1 + Days", cov_struct=lmm.AR1("Days")
    ).fit()
    spec = res.model.cov_params_spec
    assert list(res.params.index) == ["Intercept", "Days", *spec.packed_names()]
    psi, vc, rho = spec.unpack(np.asarray(res.params)[2:])
    assert_allclose(psi, res.cov_re_unscaled)
    assert_allclose(rho, res.cov_struct_params)
    assert spec.theta_names()[-2:] == ["scale", "rho"]
