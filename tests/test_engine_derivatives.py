"""Natural-parameter derivatives of V, the analytic gradient and the information matrix,
checked against central finite differences."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm

# Hand-picked cases on orthodont's columns (a negative AR1 rho, nuggets) ...
STRUCTS = {
    "independence": lambda: lmm.Independence(),
    "cs": lambda: lmm.CompoundSymmetry(),
    "ar1": lambda: lmm.AR1(time="visit"),
    "power": lambda: lmm.Power(time="age"),
    "exp_nugget": lambda: lmm.Exponential(coords=["age", "jitter"], nugget=True),
    "gauss_nugget": lambda: lmm.Gaussian(coords=["age"], nugget=True),
}
RHO = {
    "independence": [],
    "cs": [0.3],
    "ar1": [-0.4],
    "power": [0.7],
    "exp_nugget": [2.5, 0.2],
    "gauss_nugget": [3.0, 0.15],
}
# ... and every other registered structure at its conformance example (orthodont carries the
# examples' standard columns), so that a new structure is checked here without an edit.
for _cls in dict.fromkeys(lmm.COV_STRUCTS.values()):
    if not any(type(make()) is _cls for make in STRUCTS.values()):
        STRUCTS[_cls.name] = _cls.example
        RHO[_cls.name] = list(_cls.example_params)


def orthodont():
    d = lmm.datasets.load("orthodont")
    d["jitter"] = np.random.default_rng(0).normal(size=len(d))
    # the standard columns of CovStruct.example(): visit (already there), time, x, y
    d["time"], d["x"], d["y"] = d["age"] / 2.0, d["age"] / 4.0, d["jitter"]
    return d.iloc[5:]  # unbalanced: the first subject loses a visit


def model(name, re_formula="1 + age"):
    return lmm.mixedlm(
        "distance ~ age * Sex",
        orthodont(),
        groups="Subject",
        re_formula=re_formula,
        cov_struct=STRUCTS[name](),
    )


def V_at(eng, theta, k_re2, k_vc):
    q = eng.k_re
    G = np.zeros((q, q))
    G[np.tril_indices(q)] = theta[:k_re2]
    G = G + np.tril(G, -1).T
    vc = theta[k_re2 : k_re2 + k_vc]
    s2 = theta[k_re2 + k_vc]
    rho = theta[k_re2 + k_vc + 1 :]
    return eng.V_and_derivatives(G, vc, s2, rho)


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_dV_d2V_match_finite_differences(name):
    eng = model(name).engine
    theta = np.array([4.0, -0.3, 0.1, 1.7] + RHO[name])
    base = V_at(eng, theta, 3, 0)
    for k in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[k]))
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        up, um = V_at(eng, tp, 3, 0), V_at(eng, tm, 3, 0)
        for (_, _V, dV, d2V), (_, Vp, dVp, _), (_, Vm, dVm, _) in zip(base, up, um, strict=True):
            assert_allclose(dV[k], (Vp - Vm) / (2 * h), rtol=1e-6, atol=1e-7)
            assert_allclose(d2V[k], (dVp - dVm) / (2 * h), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_profile_gradient_matches_finite_differences(name, reml):
    m = model(name)
    m.reml = reml
    eng = m.engine
    tr = m.cov_params_spec
    rng = np.random.default_rng(1)
    u = tr.unconstrained(
        np.array([[0.8, -0.02], [-0.02, 0.01]]), np.zeros(0), np.asarray(RHO[name], float)
    )
    u = u + 0.05 * rng.normal(size=len(u))

    def dev(u):
        psi, vc, rho = tr.natural(u)
        return eng.profile_one(tr.lin(psi, vc), rho, reml)["dev"]

    psi, vc, rho = tr.natural(u)
    out = eng.profile_one(tr.lin(psi, vc), rho, reml, gradient=True)
    g = tr.chain_many(u[None], out["grad_lin"][None], out["grad_rho"][None])[0]
    num = np.array([(dev(u + h) - dev(u - h)) / 2e-6 for h in 1e-6 * np.eye(len(u))])
    assert_allclose(g, num, rtol=1e-5, atol=1e-5)


def minus2_loglik_theta(eng, theta, reml):
    """-2 log-likelihood (not profiled) at natural theta, with beta at its GLS estimate."""
    q2 = eng.k_re2
    s2 = theta[q2 + eng.k_vc]
    lam = theta[: q2 + eng.k_vc] / s2
    out = eng.profile_one(lam, theta[q2 + eng.k_vc + 1 :], reml)
    N, p = eng.nobs, eng.k_fe
    dfr = N - p if reml else N
    Q = out["scale"] * dfr
    val = N * np.log(s2) + out["logdet"] + Q / s2 + dfr * np.log(2 * np.pi)
    if reml:
        val += np.linalg.slogdet(out["A"])[1] - p * np.log(s2)
    return val


IDENTIFIED = {
    "orthodont_ri_ar1": (
        "orthodont",
        "distance ~ age * Sex",
        "Subject",
        "1",
        lambda: lmm.AR1(time="visit"),
    ),
    "orthodont_cs": (
        "orthodont",
        "distance ~ age * Sex",
        "Subject",
        "0",
        lambda: lmm.CompoundSymmetry(),
    ),
    "bodyweight_ri_exp": (
        "bodyweight",
        "weight ~ Time * C(Diet)",
        "Rat",
        "1",
        lambda: lmm.Exponential(coords="Time"),
    ),
    "wheat2_gauss_nugget": (
        "wheat2",
        "grain_yield ~ 0 + variety",
        None,
        "0",
        lambda: lmm.Gaussian(coords=["latitude", "longitude"], nugget=True),
    ),
}


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("name", sorted(IDENTIFIED))
def test_observed_information_is_the_hessian(name, reml):
    data, formula, groups, re_formula, struct = IDENTIFIED[name]
    res = lmm.mixedlm(
        formula, lmm.datasets.load(data), groups=groups, re_formula=re_formula, cov_struct=struct()
    ).fit(reml=reml)
    vm = res.variance_model
    theta = vm.theta
    eng = res.model.engine
    k = len(theta)
    H = np.zeros((k, k))
    hs = 1e-3 * np.maximum(np.abs(theta), 0.3)  # smaller steps drown in rounding error
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * hs[i], np.eye(k)[j] * hs[j]
            f = lambda t: minus2_loglik_theta(eng, t, reml)  # noqa: E731
            H[i, j] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * hs[i] * hs[j])
    # observed information of -l is half the Hessian of -2l
    assert_allclose(vm.information("observed"), H / 2, rtol=2e-4, atol=1e-6)
