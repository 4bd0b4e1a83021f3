"""The optimiser module: batched BFGS, the optimiser chain and the one saddle policy."""

import numpy as np
from numpy.testing import assert_allclose

from statsmodels_lmm_ext.optimize import (
    bfgs_many,
    leave_saddles_many,
    minimize_chain,
    restrict,
    saddle_restart,
)


def test_batched_bfgs_on_independent_quadratics():
    """Each row converges to its own minimiser, whatever the rest of the batch does."""
    rng = np.random.default_rng(2)
    A = [np.array([[1.0, 3.0], [3.0, 100.0]]) * (1 + k) for k in range(6)]
    c = rng.normal(size=(6, 2))

    def fg(U, idx):
        d = U - c[idx]
        f = np.array([0.5 * d[i] @ A[j] @ d[i] for i, j in enumerate(idx)])
        g = np.array([A[j] @ d[i] for i, j in enumerate(idx)])
        return f, g

    U, f, conv = bfgs_many(fg, np.zeros((6, 2)), 1.0, 1e-10)
    assert conv.all()
    assert_allclose(U, c, atol=1e-8)
    U1, _, _ = bfgs_many(lambda U_, idx: fg(U_, idx + 3), np.zeros((1, 2)), 1.0, 1e-10)
    assert_allclose(U1[0], U[3], rtol=0, atol=1e-14)


def test_saddle_restart_policy():
    assert_allclose(saddle_restart(np.array([0.0, 0.5, -2.0])), [0.1, 0.5, 2.0])
    assert_allclose(saddle_restart(np.array([0.0]), 1), [0.03])
    assert_allclose(saddle_restart(np.array([1.0]), 2), [3.0])


def test_minimize_chain_leaves_a_saddle_of_the_square_root_map():
    """f(u) = (u^2 - 1)^2: u = 0 is a stationary point (a maximum in u, where the 'variance'
    u^2 = 0 and f falls as it grows); the chain restarts there and finds u^2 = 1."""

    def fg(u):
        v = u[0] ** 2
        return (v - 1.0) ** 2, np.array([4.0 * u[0] * (v - 1.0)])

    def saddles(u):
        return np.array([abs(u[0]) < 1e-4])

    u, f, conv, gmax, hist = minimize_chain(fg, np.array([0.0]), saddles=saddles, gscale=1.0)
    assert conv and abs(u[0] ** 2 - 1.0) < 1e-6 and f < 1e-10
    assert any("saddle" in h for h in hist)
    # a start that is already at the minimum converges at once
    u, f, conv, _, hist = minimize_chain(fg, np.array([1.0]), saddles=saddles, gscale=1.0)
    assert conv and len(hist) == 1


def test_minimize_chain_reports_non_convergence():
    def fg(u):  # unbounded below: no optimiser meets the criterion
        return -float(u[0]), np.array([-1.0])

    u, f, conv, gmax, _ = minimize_chain(
        fg, np.array([0.0]), saddles=lambda u: np.zeros(1, bool), gscale=1.0, maxiter=5
    )
    assert not conv and gmax > 0


def test_leave_saddles_many_restarts_only_the_stuck_rows():
    def fg(U, idx):
        v = U[:, 0] ** 2
        return (v - 1.0) ** 2, (4.0 * U[:, 0] * (v - 1.0))[:, None]

    def saddles(U, idx):
        return np.abs(U) < 1e-4

    U = np.array([[0.0], [1.0]])
    f = fg(U, np.arange(2))[0]
    conv = np.array([True, True])
    U, f, conv = leave_saddles_many(fg, saddles, U, f, conv, np.array([0.0]), gscale=1.0)
    assert conv.all()
    assert_allclose(U[:, 0] ** 2, [1.0, 1.0], atol=1e-6)


def test_restrict_holds_coordinates_and_cg_minimises_the_rest():
    """free=...: the optimiser sees the free coordinates only; the others keep their start."""
    c = np.array([1.0, -2.0, 3.0])

    def fg(u):
        return float(np.sum((u - c) ** 2)), 2 * (u - c)

    def f(u):
        return fg(u)[0]

    def saddles(u):
        return np.zeros(len(u), bool)

    free = np.array([True, False, True])
    fg_v, f_v, saddles_v, v0, expand = restrict(fg, f, saddles, np.zeros(3), free)
    assert v0.shape == (2,) and saddles_v(v0).shape == (2,)
    v, val, conv, _, hist = minimize_chain(
        fg_v, v0, f=f_v, saddles=saddles_v, gscale=1.0, methods=["cg"]
    )
    assert conv and hist[0]["method"] == "cg"
    assert_allclose(expand(v), [1.0, 0.0, 3.0], atol=1e-6)
    assert_allclose(val, 4.0)
    same = restrict(fg, f, saddles, np.zeros(3), None)
    assert same[0] is fg and same[3].shape == (3,)
