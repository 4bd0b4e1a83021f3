"""The composite structures of covstruct.composite (group=, variance functions, weights) and
their binding to data (statsmodels_lmm_ext._residual_terms).

The contract (derivatives, invariances, optimiser maps) of the composites' ``example()`` is
checked by the conformance suite (tests/test_covstruct.py); here: the variance functions that
the conformance examples leave out (VarPower, VarExp: not invariant to an offset of their
covariate), the engine's dV/d2V of composite models, the engine's batching, and bad input.
Finite-difference tolerances as in tests/test_covstruct.py.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.covstruct import (
    AR1,
    CompoundSymmetry,
    FixedWeights,
    GroupSpecific,
    Heteroscedastic,
    VarExp,
    VarIdent,
    VarPower,
)

FD_TOL = {"rtol": 1e-6, "atol": 1e-8}


def batch(seed=0, U=4, n=3):
    rng = np.random.default_rng(seed)
    visit = np.stack([np.sort(rng.choice(5, n, replace=False)) for _ in range(U)])
    pos = np.stack(
        [visit + 1.0, rng.uniform(0.5, 3, (U, n)), rng.normal(size=(U, n)),
         rng.uniform(0.5, 2, (U, n))],
        axis=-1,
    )  # fmt: skip
    return pos, visit


def fd_check(cs, p, geom, method="residual"):
    f = getattr(cs, method)
    out = f(p, geom, order=2)
    for a in range(len(p)):
        h = 1e-5 * max(1.0, abs(p[a]))
        up, dn = p.copy(), p.copy()
        up[a] += h
        dn[a] -= h
        assert_allclose(out.d1[a], (f(up, geom).value - f(dn, geom).value) / (2 * h), **FD_TOL)
        num2 = (f(up, geom, order=1).d1 - f(dn, geom, order=1).d1) / (2 * h)
        assert_allclose(out.d2[a], num2, **FD_TOL)


@pytest.mark.parametrize("method", ["residual", "scales", "correlation"])
def test_power_exp_and_weights_derivatives(method):
    pos, visit = batch()
    cs = Heteroscedastic(AR1(time="t"), [VarPower("x"), VarExp("z"), FixedWeights("w")])
    assert cs.position_columns == ["t", "x", "z", "w"]
    p = np.array([0.5, 0.7, -0.4])
    fd_check(cs, p, cs.geometry(pos, visit), method)


def test_grouped_heteroscedastic_derivatives():
    pos, visit = batch(1)
    pos = np.concatenate([pos[..., :1], np.repeat([[0.0], [1.0], [2.0], [1.0]], 3, 1)[..., None],
                          pos[..., 1:2]], axis=-1)  # fmt: skip
    inner = GroupSpecific(AR1(time="t"), "arm", ["a", "b", "c"])
    cs = Heteroscedastic(inner, [VarPower("x")])
    p = np.array([0.3, -0.2, 0.6, 1.4, 0.8, 0.5])
    fd_check(cs, p, cs.geometry(pos, visit))
    names = cs.param_names
    assert names[:3] == ("rho[arm=a]", "rho[arm=b]", "rho[arm=c]")
    assert names[3:] == ("var_ratio[arm=b]", "var_ratio[arm=c]", "power[x]")


def test_scaled_residual_is_the_product():
    pos, visit = batch(2)
    cs = Heteroscedastic(AR1(time="t"), [VarExp("z"), FixedWeights("w")])
    p = np.array([0.4, 0.3])
    geom = cs.geometry(pos[..., [0, 2, 3]], visit)
    s = np.exp(0.3 * pos[..., 2]) / np.sqrt(pos[..., 3])
    C = AR1(time="t").residual(p[:1], geom[0]).value
    assert_allclose(cs.residual(p, geom).value, s[:, :, None] * C * s[:, None, :], rtol=1e-14)


def test_optimizer_map_of_real_line_parameters():
    cs = Heteroscedastic(AR1(time="t"), [VarIdent("f").bound("abc"), VarPower("x")])
    bounds = cs.bounds(4)
    assert bounds == [(-1.0, 1.0), (0.0, np.inf), (0.0, np.inf), (-np.inf, np.inf)]
    p = np.array([0.3, 1.2, 0.7, -0.5])
    T = cs.to_optimizer(p, bounds)
    assert_allclose(T[1:], [np.log(1.2), np.log(0.7), -0.5], rtol=1e-14)
    assert_allclose(cs.from_optimizer(T[None], bounds)[0], p, rtol=1e-12)


# ------------------------------------------------------------------------- engine
def fev_model(cov_struct, engine="auto", **kw):
    d = lmm.datasets.load("fev_data").iloc[:240]
    return lmm.mixedlm("FEV1 ~ ARMCD * AVISIT", d, groups="USUBJID", re_formula="1",
                       cov_struct=cov_struct, missing="drop", engine=engine, **kw)  # fmt: skip


COMPOSITES = {
    "ar1_group": (lambda: AR1(time="VISITN", group="ARMCD"), {}, [0.4, 0.2, 1.3]),
    "varident": (lambda: AR1(time="VISITN"), {"variance": VarIdent("AVISIT")},
                 [0.3, 1.2, 0.9, 1.4]),
    "varpower_weights": (lambda: CompoundSymmetry(group="ARMCD"),
                         {"variance": [VarPower("FEV1_BL")], "weights": "WEIGHT"},
                         [0.2, 0.1, 1.2, -0.3]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_engine_dV_d2V_match_finite_differences(name):
    make, kw, rho = COMPOSITES[name]
    eng = fev_model(make(), **kw).engine
    theta = np.array([3.0, 20.0, *rho])

    def V(t):
        return eng.V_and_derivatives(np.array([[t[0]]]), np.zeros(0), t[1], t[2:])

    base = V(theta)
    for k in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[k]))
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        for (_, _, dV, d2V), (_, Vp, dVp, _), (_, Vm, dVm, _) in zip(base, V(tp), V(tm),
                                                                      strict=True):  # fmt: skip
            assert_allclose(dV[k], (Vp - Vm) / (2 * h), rtol=1e-6, atol=1e-6)
            assert_allclose(d2V[k], (dVp - dVm) / (2 * h), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_pattern_and_group_engines_agree(name):
    """The group factor and variance covariates split the visit patterns."""
    make, kw, rho = COMPOSITES[name]
    devs = []
    for mode in ("pattern", "group"):
        eng = fev_model(make(), engine=mode, **kw).engine
        devs.append(eng.profile_one([0.2], rho, reml=True)["dev"])
    assert_allclose(devs[0], devs[1], rtol=1e-12)


# ---------------------------------------------------------------------- bad input
def test_bad_variance_argument():
    with pytest.raises(TypeError, match="variance= takes a variance function"):
        fev_model(AR1(time="VISITN"), variance="AVISIT")


def test_varpower_refuses_zero():
    d = lmm.datasets.load("fev_data").iloc[:40].copy()
    d.loc[3, "FEV1_BL"] = 0.0
    with pytest.raises(ValueError, match=r"VarPower\('FEV1_BL'\).*row 3 has 0"):
        lmm.mixedlm("FEV1 ~ ARMCD", d, groups="USUBJID", re_formula="0", missing="drop",
                    variance=VarPower("FEV1_BL"))  # fmt: skip


def test_prediction_refuses_an_unknown_level():
    d = lmm.datasets.load("fev_data")
    res = lmm.mixedlm("FEV1 ~ ARMCD", d, groups="USUBJID", re_formula="0", missing="drop",
                      cov_struct=CompoundSymmetry(group="ARMCD")).fit()  # fmt: skip
    new = d.iloc[:4].assign(ARMCD="XYZ")
    with pytest.raises(ValueError, match="'ARMCD' has the level 'XYZ', unknown"):
        res.predict(new, conditional=True)


def test_duplicate_times_are_found_through_a_variance_function():
    d = lmm.datasets.load("fev_data").iloc[:40].dropna().copy()
    d.loc[3, "VISITN"] = 2
    with pytest.raises(ValueError, match="group 'PT1' has two rows at the same position"):
        lmm.mixedlm("FEV1 ~ ARMCD", d, groups="USUBJID", re_formula="0",
                    cov_struct=AR1(time="VISITN"), variance=VarPower("FEV1_BL"))  # fmt: skip


def test_group_must_name_a_column():
    with pytest.raises(TypeError, match="group= takes a column name"):
        AR1(time="VISITN", group=3)


# ------------------------------------------------------------- the rest of the package
def test_bootstrap_covariance_parameters_include_level_variances():
    """The bootstrap statistic has the rows of covariance_parameters() (per-level variances
    of a group-specific structure included)."""
    d = lmm.datasets.load("fev_data")
    cs = CompoundSymmetry(group="ARMCD")
    res = lmm.mixedlm("FEV1 ~ ARMCD * AVISIT", d, groups="USUBJID", re_formula="0",
                      missing="drop", cov_struct=cs).fit()  # fmt: skip
    boot = lmm.parametric_bootstrap(res, "covariance_parameters", nsim=8, seed=1)
    table = res.covariance_parameters()
    assert boot.names == list(table.index)
    assert_allclose(boot.observed, table["Estimate"], rtol=1e-12)
    ratio = boot.replicates[:, boot.names.index("var_ratio[ARMCD=TRT] (GroupSpecific)")]
    assert_allclose(boot.replicates[:, -1], boot.replicates[:, -2] * ratio, rtol=1e-12)
    sim = res.simulate(2, seed=3)
    assert np.isfinite(res.refit(sim[:, 0]).llf)
