"""The covariance-parameter object: packing, names, optimiser coordinates, start values."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.regression.mixed_linear_model import MixedLMParams

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.params import CovParams, bounded_interval


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


def _spec(cov_struct=None, k_re=2, k_vc=1, free=None):
    return CovParams(
        k_re,
        k_vc,
        cov_struct or lmm.AR1(time="t"),
        max_group_size=5,
        re_names=["G Var", "G x x Cov", "x Var"][: k_re * (k_re + 1) // 2],
        vc_names=["plot"][:k_vc],
        free=free,
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


def test_bounded_interval_uses_the_scale_of_each_range():
    z = 1.96
    est, se = np.array([2.0, 0.5, -0.5, 0.3, 1.0, 0.5]), np.array([0.5, 0.2, 0.3, 0.1, 0.0, 0.1])
    bounds = [(0, np.inf), (-1, 1), (-np.inf, np.inf), (0, 1), (0, np.inf), (-np.inf, 1.0)]
    lo, hi = bounded_interval(est, se, z, bounds)
    assert_allclose([lo[0], hi[0]], 2.0 * np.exp([-z * 0.5 / 2, z * 0.5 / 2]))
    assert_allclose([lo[1], hi[1]], np.tanh(np.arctanh(0.5) + np.array([-z, z]) * 0.2 / 0.75))
    assert_allclose([lo[2], hi[2]], [-0.5 - z * 0.3, -0.5 + z * 0.3])
    logit = np.log(0.3 / 0.7) + np.array([-z, z]) * 0.1 / 0.21
    assert_allclose([lo[3], hi[3]], 1 / (1 + np.exp(-logit)))
    assert np.isnan([lo[4], hi[4]]).all()  # no SE (a fixed or boundary parameter)
    assert_allclose([lo[5], hi[5]], 1 - 0.5 * np.exp([z * 0.2, -z * 0.2]))
    assert (lo < est)[np.isfinite(lo)].all() and (hi > est)[np.isfinite(hi)].all()


def test_free_mask_and_the_estimated_basis():
    spec = _spec()
    assert spec.free_mask is None and spec.estimated_basis(np.eye(2), [1.0], 2.0) is None
    free = MixedLMParams.from_components(np.ones(2), cov_re=np.eye(2), vcomp=np.ones(1))
    spec_f = _spec(free=free)
    assert_allclose(spec_f.free_mask, [True, False, True, True, True])
    assert spec_f.n_free() == 4 and spec_f.fixed_variances == []
    G, vc, s2 = np.diag([1.2, 0.5]), np.array([0.3]), 2.0
    J = spec_f.estimated_basis(G, vc, s2)
    assert J.shape == (6, 5)
    assert not J[1].any()  # the covariance cannot move
    # with every parameter free the basis spans all of theta: J (J'IJ)^-1 J' = I^-1
    spec_all = _spec(free=MixedLMParams.from_components(np.ones(2), np.ones((2, 2)), None,
                                                        np.ones(1)))  # fmt: skip
    J = spec_all.estimated_basis(np.array([[1.2, 0.3], [0.3, 0.5]]), vc, s2)
    info = np.random.default_rng(0).normal(size=(6, 6))
    info = info @ info.T + 6 * np.eye(6)
    assert_allclose(J @ np.linalg.inv(J.T @ info @ J) @ J.T, np.linalg.inv(info), rtol=1e-10)
    held = _spec(free=MixedLMParams.from_components(np.ones(2), cov_re=np.diag([0.0, 1.0]),
                                                    vcomp=np.ones(1)))  # fmt: skip
    assert held.fixed_variances == ["G Var"]
