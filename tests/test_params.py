"""The covariance-parameter object: packing, names, optimiser coordinates, start values."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.params import CovParams


def test_batch_transform_matches_transform():
    rng = np.random.default_rng(1)
    tr = CovParams(2, 1, lmm.Exponential(coords="x", nugget=True), max_group_size=4)
    U = rng.normal(size=(5, 6))
    g_lin, g_rho = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    lam, rho, psi, vc = tr.natural_many(U)
    G = tr.chain_many(U, g_lin, g_rho)
    for b in range(5):
        p, v, r = tr.natural(U[b])
        assert_allclose(psi[b], p)
        assert_allclose(vc[b], v)
        assert_allclose(rho[b], r)
        assert_allclose(lam[b], tr.lin(p, v))
        assert_allclose(G[b], tr.chain_many(U[b : b + 1], g_lin[b : b + 1], g_rho[b : b + 1])[0])


def _spec(cov_struct=None, k_re=2, k_vc=1):
    return CovParams(
        k_re,
        k_vc,
        cov_struct or lmm.AR1(time="t"),
        max_group_size=5,
        re_names=["G Var", "G x x Cov", "x Var"][: k_re * (k_re + 1) // 2],
        vc_names=["plot"][:k_vc],
    )


def test_pack_unpack_and_names():
    spec = _spec()
    psi = np.array([[1.5, 0.2], [0.2, 0.4]])
    packed = spec.pack(psi, [0.3], [0.6])
    assert spec.packed_names() == ["G Var", "G x x Cov", "x Var", "plot Var", "rho"]
    assert_allclose(packed, [1.5, 0.2, 0.4, 0.3, 0.6])
    p, v, r = spec.unpack(packed)
    assert_allclose(p, psi)
    assert_allclose(v, [0.3])
    assert_allclose(r, [0.6])
    assert spec.theta_names()[-2:] == ["scale", "rho"]
    assert spec.theta_names("table")[-2:] == ["Residual", "rho (AR1)"]
    with pytest.raises(ValueError, match="expected 5 covariance parameters"):
        spec.unpack(packed[:-1])


def test_packed_jacobian_matches_finite_differences():
    spec = _spec()
    theta = np.array([2.0, 0.3, 0.8, 0.5, 1.7, 0.4])

    def packed(t):
        G, vc, s2, rho = spec.split_theta(t)
        return spec.pack(G / s2, vc / s2, rho)

    num = np.column_stack(
        [(packed(theta + h) - packed(theta - h)) / 2e-6 for h in 1e-6 * np.eye(len(theta))]
    )
    assert_allclose(spec.packed_jacobian(theta), num, rtol=1e-7, atol=1e-9)


def test_optimiser_coordinates_round_trip_and_chain_rule():
    spec = _spec(lmm.Exponential(coords=["x", "y"], nugget=True))
    psi = np.array([[1.5, 0.2], [0.2, 0.4]])
    u = spec.unconstrained(psi, [0.3], [2.0, 0.25])
    p, v, r = spec.natural(u)
    assert_allclose(p, psi, rtol=1e-12)
    assert_allclose(v, [0.3])
    assert_allclose(r, [2.0, 0.25])
    # the chain rule against finite differences of a linear function of (lam, rho)
    rng = np.random.default_rng(0)
    g_lin, g_rho = rng.normal(size=spec.k_lin), rng.normal(size=spec.k_corr)

    def f(u_):
        lam, rho, _, _ = spec.natural_many(u_[None])
        return lam[0] @ g_lin + rho[0] @ g_rho

    num = np.array([(f(u + h) - f(u - h)) / 2e-6 for h in 1e-6 * np.eye(len(u))])
    assert_allclose(spec.chain_many(u[None], g_lin[None], g_rho[None])[0], num, rtol=1e-6)


def test_boundary_saddles_and_zero_starts():
    spec = _spec()
    G = np.array([[0.0, 0.0], [0.0, 2.0]])
    mask = spec.boundary(G, [1e-12], 1.0)
    assert list(mask) == [True, True, False, True, False, False]
    u = spec.unconstrained(np.diag([0.0, 1.0]), [0.5], [0.3])
    assert list(np.flatnonzero(spec.at_zero(u))) == [0]
    # the deviance falls as the zero variance grows: a saddle of the square-root map
    g_lin = np.array([-5.0, 0.0, 0.0, 0.0])
    assert list(np.flatnonzero(spec.saddles_many(u[None], g_lin[None], 100.0)[0])) == [0]
    assert not spec.saddles_many(u[None], -g_lin[None], 100.0).any()


def test_parse_start_forms_and_errors():
    spec = _spec(k_re=1, k_vc=0)
    geoms = []
    a = spec.parse_start([0.5, 0.3], k_fe=2, var_y=1.0, geoms=geoms)
    b = spec.parse_start([9.0, 9.0, 0.5, 0.3], k_fe=2, var_y=1.0, geoms=geoms)  # with betas
    c = spec.parse_start({"cov_re": [[1.0]], "scale": 2.0, "rho": 0.3}, 2, 1.0, geoms)
    assert_allclose(a, b)
    assert_allclose(a, c)
    with pytest.raises(ValueError, match="expected 2 covariance parameters"):
        spec.parse_start([1.0, 2.0, 3.0], k_fe=2, var_y=1.0, geoms=geoms)
    with pytest.raises(ValueError, match="unknown start_params key"):
        spec.parse_start({"range": 1.0}, 2, 1.0, geoms)
