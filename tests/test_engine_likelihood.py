"""The engine's one likelihood: a batch of B responses and parameter sets equals B batches of
one on engines rebuilt from scratch, and non-positive-definite rows are flagged."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext._engine import Engine

from .conftest import fev_data


def _models():
    fev = fev_data()
    return [
        lmm.mixedlm("y ~ 1", lmm.datasets.load("oneway"), groups="group"),
        lmm.mixedlm(
            "Reaction ~ Days",
            lmm.datasets.load("sleepstudy"),
            groups="Subject",
            re_formula="~Days",
        ),
        lmm.mixedlm(
            "FEV1 ~ ARMCD * AVISIT", fev, groups="USUBJID", cov_struct=lmm.AR1(time="VISITN")
        ),
        lmm.mixedlm(
            "FEV1 ~ ARMCD * AVISIT",
            fev,
            groups="USUBJID",
            cov_struct=lmm.AR1(time="VISITN"),
            engine="group",
        ),
        lmm.mixedlm("FEV1 ~ ARMCD", fev, groups="USUBJID", re_formula="0"),
        lmm.mixedlm(
            "grain_yield ~ Variety * nitro_f",
            lmm.datasets.load("oats"),
            groups="Block",
            vc_formula={"Variety": "0 + C(Variety)"},
        ),
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.endog_names}-{m.engine.mode}")
def test_profile_many_equals_profile(model):
    """The batched deviance and gradient for B responses equal B single evaluations on engines
    rebuilt from scratch with each response."""
    eng = model.engine
    rng = np.random.default_rng(0)
    B = 4
    Y = model.endog[:, None] + rng.normal(size=(model.nobs, B)) * model.endog.std() * 0.3
    lam = np.abs(rng.normal(size=(B, eng.k_lin))) * 0.5
    if eng.k_re == 2:
        lam[:, 1] = 0.01
    rho = rng.uniform(0.1, 0.5, size=(B, eng.k_corr))
    stats_ = eng.endog_stats(Y)
    for reml in (True, False):
        out = eng.profile(lam, rho, reml, stats_, gradient=True)
        assert out["ok"].all()
        for b in range(B):
            fresh = Engine(
                Y[:, b],
                eng.X,
                eng.groups,
                eng.Z,
                eng.Zvc,
                eng.positions,
                eng.cov_struct,
                mode=eng.mode,
            )
            grad = eng.k_lin + eng.k_corr > 0
            ref = fresh.profile_one(lam[b], rho[b], reml, gradient=grad)
            fast = eng.with_endog(Y[:, b]).profile_one(lam[b], rho[b], reml, gradient=grad)
            assert_allclose(out["dev"][b], ref["dev"], rtol=1e-11)
            assert_allclose(out["beta"][b], ref["beta"], rtol=1e-8, atol=1e-10)
            assert_allclose(out["scale"][b], ref["scale"], rtol=1e-10)
            assert_allclose(fast["dev"], ref["dev"], rtol=1e-12)
            if grad:
                assert_allclose(out["grad_lin"][b], ref["grad_lin"], rtol=1e-7, atol=1e-8)
                assert_allclose(out["grad_rho"][b], ref["grad_rho"], rtol=1e-7, atol=1e-8)
                assert_allclose(fast["grad_lin"], ref["grad_lin"], rtol=1e-9, atol=1e-10)


def test_profile_many_flags_non_positive_definite_rows():
    m = lmm.mixedlm("y ~ 1", lmm.datasets.load("oneway"), groups="group")
    eng = m.engine
    st = eng.endog_stats(np.column_stack([m.endog, m.endog]))
    out = eng.profile(np.array([[-0.9], [0.3]]), np.zeros((2, 0)), False, st, gradient=True)
    assert list(out["ok"]) == [False, True]
    assert np.isinf(out["dev"][0]) and np.isfinite(out["dev"][1])
    assert_allclose(out["dev"][1], eng.profile_one(np.array([0.3]), np.zeros(0), False)["dev"])
