"""The engine on pattern statistics (``_engine/reduced.py``) equals the engine on the rows.

Statistics of pieces of the data (whole groups, rows in any order) add up to the likelihood,
gradient and derivative blocks of :class:`Engine` on all rows (the reference, itself validated
against R in the engine and structure tests).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext._engine import Engine
from statsmodels_lmm_ext._engine.reduced import ReducedEngine, _distinct_rows, pattern_stats


def _data(seed=1, G=60, T=4):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), T)
    t = np.tile(np.arange(T), G).astype(float)
    keep = rng.random(len(g)) > 0.15  # missing visits: several patterns per size
    g, t = g[keep], t[keep]
    X = np.column_stack([np.ones(len(g)), t, rng.normal(size=len(g))])
    y = X @ [50.0, 1.0, 2.0] + rng.normal(size=len(g)) + rng.normal(size=G)[g]
    return g, t, X, y, rng


@pytest.mark.parametrize("make", [lambda: lmm.AR1(time="t"), lambda: lmm.Unstructured(time="t")])
def test_pieces_add_up_to_the_engine(make):
    g, t, X, y, rng = _data()
    Z = np.ones((len(g), 1))
    eng = Engine(y, X, g, Z, [], t[:, None], make(), mode="pattern")
    W = np.column_stack([X, y])
    stats = None
    for i in range(3):
        r = rng.permutation(np.flatnonzero(g % 3 == i))  # rows in any order
        codes = np.unique(g[r], return_inverse=True)[1]
        s = pattern_stats(W[r], Z[r], t[r][:, None], codes)
        stats = s if stats is None else stats + s
    red = ReducedEngine(stats, make(), 1)
    assert red.nobs == eng.nobs and red.n_groups_total == eng.n_groups
    start = red.cov_struct.start_params([ch.geom for ch in red.chunks])[0]
    rho = np.asarray(start, float) + 0.1  # away from the start values' symmetries
    for reml in (True, False):
        a = eng.profile_one([0.5], rho, reml, gradient=True)
        b = red.profile_one([0.5], rho, reml, gradient=True)
        assert_allclose(b["dev"], a["dev"], rtol=1e-12)
        for k in ("beta", "scale", "Ainv", "grad_lin", "grad_rho"):
            assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12 * (1 + np.abs(a[k]).max()))
    A = eng.derivative_blocks(np.eye(1) * 0.5, [], 1.2, rho, a["beta"])
    B = red.derivative_blocks(np.eye(1) * 0.5, [], 1.2, rho, a["beta"])
    for k in A:
        assert_allclose(B[k], A[k], rtol=1e-8, atol=1e-10 * (1 + np.abs(A[k]).max()))


def test_distinct_rows_groups_equal_rows_exactly():
    rng = np.random.default_rng(0)
    F = np.repeat(rng.integers(0, 3, (7, 8)).astype(float), 5, axis=0)[rng.permutation(35)]
    first, inv = _distinct_rows(F)
    assert len(first) == len(np.unique(F, axis=0))
    assert_allclose(F[first][inv], F)


def test_two_rows_at_one_position_are_named():
    W = np.ones((3, 2)) + np.arange(3)[:, None]
    with pytest.raises(ValueError, match="group 'b' has two rows at the same position"):
        pattern_stats(W, np.ones((3, 1)), np.array([[1.0], [1.0], [2.0]]), np.array([0, 0, 1]),
                      labels=np.array(["b", "c"]))  # fmt: skip
