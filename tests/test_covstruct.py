"""Conformance tests of the residual-covariance contract (statsmodels_lmm_ext.covstruct).

Every structure in the registry is checked through its ``example()`` instance at its
``example_params``, so a newly registered structure is tested without editing this file.  A small
heterogeneous structure defined here (AR(1) with one relative standard deviation per visit)
checks the base class's ``S C S`` composition that heterogeneous structures rely on.

Finite-difference tolerances: central differences with step ``h = 1e-5 max(1, |p|)`` have a
truncation error ``h^2 |f'''| / 6 ~ 1e-10`` and a rounding error ``eps |f| / h ~ 2e-11`` for the
O(1) entries here, so ``rtol=1e-6, atol=1e-8`` leaves two orders of magnitude of headroom
without hiding a wrong derivative (which is off by O(1)).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from statsmodels_lmm_ext.covstruct import (
    AR1,
    COV_STRUCTS,
    Blocks,
    CompoundSymmetry,
    CovStruct,
    Exponential,
    Gaussian,
    GroupSpecific,
    Heteroscedastic,
    Independence,
    Power,
    make_cov_struct,
)

H_REL = 1e-5
FD_TOL = {"rtol": 1e-6, "atol": 1e-8}
N_VISITS = 5


class _HeteroAR1(CovStruct, register=False):
    """AR(1) over the visits with relative sds ``s(v)``, ``s(first visit) = 1`` (SAS ARH(1)
    with the first variance profiled out).  Natural parameters: ``rho`` and ``s_2 .. s_T``."""

    name = "test_hetero_ar1"
    homogeneous = False
    unique_positions = True
    example_params = (0.6, 1.3, 0.8, 1.6, 0.9)

    def __init__(self, time: str = "visit", n_visits: int = N_VISITS):
        self.inner = AR1(time=time)
        self.n_visits = n_visits

    @classmethod
    def example(cls):
        return cls()

    @property
    def param_names(self):
        return ("rho",) + tuple(f"sd_ratio{v}" for v in range(2, self.n_visits + 1))

    @property
    def position_columns(self):
        return self.inner.position_columns

    def geometry(self, pos, visit):
        return self.inner.geometry(pos, visit), np.asarray(visit)

    def batch_shape(self, geom):
        return geom[1].shape

    def bounds(self, max_group_size):
        return [(-1.0, 1.0)] + [(0.0, np.inf)] * (self.n_visits - 1)

    def correlation(self, params, geom, order=0):
        c = self.inner.correlation(params[:1], geom[0], order)
        k = self.k_params
        u, n = self.batch_shape(geom)
        d1 = d2 = None
        if order >= 1:
            d1 = np.zeros((k, u, n, n))
            d1[0] = c.d1[0]
        if order >= 2:
            d2 = np.zeros((k, k, u, n, n))
            d2[0, 0] = c.d2[0, 0]
        return Blocks(c.value, d1, d2)

    def scales(self, params, geom, order=0):
        visit = geom[1]
        s = np.concatenate([[1.0], params[1:]])[visit]
        k = self.k_params
        d1 = d2 = None
        if order >= 1:
            # visit code v >= 1 has its sd ratio at parameter index v
            d1 = (np.arange(k)[:, None, None] == visit[None]) & (visit[None] > 0)
            d1 = d1.astype(float)
        if order >= 2:
            d2 = np.zeros((k, k) + visit.shape)
        return Blocks(s, d1, d2)


def _distinct(classes):
    return list(dict.fromkeys(classes))


REGISTERED = _distinct(COV_STRUCTS.values())
# the composites of covstruct.composite (group=, variance functions, weights) wrap a registered
# structure and are built by the formula interface, not the registry
CLASSES = REGISTERED + [_HeteroAR1, GroupSpecific, Heteroscedastic]
IDS = [cls.__name__ for cls in CLASSES]


def conformance_data(seed: int = 0) -> dict:
    """Six groups of 1 to 5 rows out of visits 1..5 (gaps included), rows shuffled.

    Columns: ``group``, ``visit`` (integer 1..5), ``time`` (visit + U(-0.3, 0.3)), ``x`` and
    ``y`` (U(0, 3)); every visit occurs somewhere, so visit codes are 0..4.
    """
    rng = np.random.default_rng(seed)
    sizes = [3, 1, 5, 2, 3, 4]
    cols = {k: [] for k in ("group", "visit", "time", "x", "y")}
    for g, m in enumerate(sizes):
        visits = np.arange(1, N_VISITS + 1) if m == N_VISITS else rng.choice(5, m, False) + 1
        for v in visits:
            cols["group"].append(g)
            cols["visit"].append(float(v))
            cols["time"].append(v + rng.uniform(-0.3, 0.3))
            cols["x"].append(rng.uniform(0, 3))
            cols["y"].append(rng.uniform(0, 3))
    order = rng.permutation(len(cols["group"]))
    return {k: np.asarray(v)[order] for k, v in cols.items()}


DATA = conformance_data()
MAX_SIZE = int(np.bincount(DATA["group"]).max())


def positions(cs: CovStruct, data: dict) -> np.ndarray:
    cols = cs.position_columns
    n = len(data["group"])
    return np.column_stack([data[c] for c in cols]) if cols else np.zeros((n, 0))


def batches(cs: CovStruct, data: dict = DATA) -> list:
    """``(rows (U, n), geometry)`` per group size, rows of a group in data order (shuffled)."""
    pos = positions(cs, data)
    visit = cs.visit_index(pos)
    sizes = np.bincount(data["group"])
    out = []
    for n in np.unique(sizes):
        rows = np.stack([np.flatnonzero(data["group"] == g) for g in np.flatnonzero(sizes == n)])
        out.append((rows, cs.geometry(pos[rows], visit[rows])))
    return out


def params_of(cls) -> np.ndarray:
    return np.asarray(cls.example_params, dtype=float)


def fd(f, p, a):
    """Central difference of ``f`` in parameter ``a`` at ``p``."""
    h = H_REL * max(1.0, abs(p[a]))
    up, dn = p.copy(), p.copy()
    up[a] += h
    dn[a] -= h
    return (f(up) - f(dn)) / (2 * h)


# ------------------------------------------------------------------ the example instances
@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_example_params_fit_the_example(cls):
    cs = cls.example()
    assert isinstance(cs, cls)
    assert len(cls.example_params) == cs.k_params == len(cs.bounds(MAX_SIZE))
    for p, (lo, hi) in zip(cls.example_params, cs.bounds(MAX_SIZE), strict=True):
        assert lo < p < hi
    assert set(cs.position_columns) <= set(DATA)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_correlation_is_symmetric_with_unit_diagonal(cls):
    cs = cls.example()
    for _, geom in batches(cs):
        C = cs.correlation(params_of(cls), geom, order=2)
        n = C.value.shape[-1]
        assert_allclose(C.value, np.swapaxes(C.value, -1, -2), rtol=0, atol=1e-15)
        assert_allclose(np.diagonal(C.value, axis1=-2, axis2=-1), 1.0, rtol=0, atol=1e-15)
        for D in (C.d1, C.d2):
            assert_allclose(D, np.swapaxes(D, -1, -2), rtol=0, atol=1e-15)
            assert_allclose(D[..., np.arange(n), np.arange(n)], 0.0, atol=1e-15)
        assert_allclose(C.d2, np.swapaxes(C.d2, 0, 1), rtol=0, atol=1e-15)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_residual_is_positive_definite(cls):
    cs = cls.example()
    for rows, geom in batches(cs):
        R = cs.residual(params_of(cls), geom).value
        assert R.shape == rows.shape + rows.shape[-1:]
        assert np.all(np.linalg.eigvalsh(R) > 1e-8)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_orders_agree(cls):
    cs = cls.example()
    p = params_of(cls)
    k = cs.k_params
    for rows, geom in batches(cs):
        U, n = rows.shape
        for method in (cs.residual, cs.correlation):
            r0, r1, r2 = (method(p, geom, order=o) for o in (0, 1, 2))
            assert r0.d1 is None and r0.d2 is None and r1.d2 is None
            assert r1.d1.shape == (k, U, n, n) and r2.d2.shape == (k, k, U, n, n)
            assert_array_equal(r0.value, r1.value)
            assert_array_equal(r0.value, r2.value)
            assert_array_equal(r1.d1, r2.d1)
        s = cs.scales(p, geom, order=2)
        assert s.value.shape == (U, n) and s.d1.shape == (k, U, n)
        assert s.d2.shape == (k, k, U, n)


def check_derivatives(cs: CovStruct, p: np.ndarray, method: str) -> None:
    f = getattr(cs, method)
    for _, geom in batches(cs):
        out = f(p, geom, order=2)
        for a in range(cs.k_params):
            assert_allclose(out.d1[a], fd(lambda q, g=geom: f(q, g).value, p, a), **FD_TOL)
            assert_allclose(out.d2[a], fd(lambda q, g=geom: f(q, g, order=1).d1, p, a), **FD_TOL)


@pytest.mark.parametrize("method", ["residual", "correlation", "scales"])
@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_derivatives_match_finite_differences(cls, method):
    check_derivatives(cls.example(), params_of(cls), method)


@pytest.mark.parametrize(
    "cs,p",
    [
        (AR1(time="visit"), [-0.4]),  # negative rho: sign ** lag
        (Power(time="time"), [0.3]),
        (CompoundSymmetry(), [-0.2]),
        (Exponential(coords="x"), [0.8]),
        (Gaussian(coords=["x", "y"]), [2.0]),
    ],
    ids=repr,
)
def test_derivatives_at_other_parameters(cs, p):
    check_derivatives(cs, np.asarray(p, dtype=float), "residual")


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_invariant_to_row_order_within_groups(cls):
    cs = cls.example()
    p = params_of(cls)
    pos = positions(cs, DATA)
    visit = cs.visit_index(pos)
    rng = np.random.default_rng(3)
    for rows, geom in batches(cs):
        U, n = rows.shape
        perms = np.stack([rng.permutation(n) for _ in range(U)])
        prows = np.take_along_axis(rows, perms, axis=1)
        pgeom = cs.geometry(pos[prows], visit[prows])
        u = np.arange(U)[:, None, None]
        R, Rp = cs.residual(p, geom, order=2), cs.residual(p, pgeom, order=2)
        for A, B in zip(R, Rp, strict=True):
            assert_allclose(A[..., u, perms[:, :, None], perms[:, None, :]], B, rtol=0, atol=1e-15)


def _shifted(data: dict, shift: dict) -> dict:
    return {k: v + shift[k] if k in shift else v for k, v in data.items()}


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_invariant_to_an_offset_of_positions(cls):
    cs = cls.example()
    p = params_of(cls)
    # integer shift of the visits (AR1 needs integer positions), a non-integer one elsewhere
    moved = _shifted(DATA, {"visit": 3.0, "time": 10.25, "x": -7.5, "y": 12.125})
    for (_, geom), (_, mgeom) in zip(batches(cs), batches(cs, moved), strict=True):
        R, Rm = cs.residual(p, geom, order=2), cs.residual(p, mgeom, order=2)
        for A, B in zip(R, Rm, strict=True):
            # coordinates ~10 lose a few bits in the differences
            assert_allclose(A, B, rtol=1e-12, atol=1e-12)


SPATIAL = [c for c in CLASSES if "range" in c.example().param_names]


@pytest.mark.parametrize("cls", SPATIAL, ids=[c.__name__ for c in SPATIAL])
def test_range_scales_with_the_unit_of_the_coordinates(cls):
    cs = cls.example()
    j = cs.param_names.index("range")
    p = params_of(cls)
    a = 250.0  # e.g. metres instead of quarter-kilometres
    units = {k: v * a if k in cs.position_columns else v for k, v in DATA.items()}
    pa = p.copy()
    pa[j] *= a
    jac = np.where(np.arange(cs.k_params) == j, a, 1.0)  # d(range_a)/d(range) = a
    for (_, geom), (_, ageom) in zip(batches(cs), batches(cs, units), strict=True):
        R, Ra = cs.residual(p, geom, order=2), cs.residual(pa, ageom, order=2)
        assert_allclose(Ra.value, R.value, rtol=1e-12, atol=1e-14)
        assert_allclose(Ra.d1 * jac[:, None, None, None], R.d1, rtol=1e-12, atol=1e-14)
        J2 = jac[:, None] * jac[None, :]
        assert_allclose(Ra.d2 * J2[..., None, None, None], R.d2, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- optimiser coordinates
@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_optimizer_map_round_trips(cls):
    cs = cls.example()
    bounds = cs.bounds(MAX_SIZE)
    p = params_of(cls)
    T = cs.to_optimizer(p, bounds)
    assert T.shape == p.shape
    assert_allclose(cs.from_optimizer(T[None], bounds)[0], p, rtol=1e-12, atol=1e-15)
    Tb = np.random.default_rng(4).normal(size=(6, cs.k_params))
    Pb = cs.from_optimizer(Tb, bounds)
    for row, t in zip(Pb, Tb, strict=True):
        assert all(lo < v < hi for v, (lo, hi) in zip(row, bounds, strict=True))
        assert_allclose(cs.to_optimizer(row, bounds), t, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_optimizer_chain_matches_finite_differences(cls):
    cs = cls.example()
    bounds = cs.bounds(MAX_SIZE)
    rng = np.random.default_rng(5)
    T = rng.normal(size=(3, cs.k_params))
    G = rng.normal(size=(3, cs.k_params))
    chain = cs.optimizer_chain(T, G, bounds)
    assert chain.shape == T.shape
    h = 1e-6
    for a in range(cs.k_params):
        e = np.zeros(cs.k_params)
        e[a] = h
        f = lambda t: np.sum(G * cs.from_optimizer(t, bounds), axis=1)  # noqa: E731
        # eps / h rounding ~ 1e-10 on O(1) values
        assert_allclose(chain[:, a], (f(T + e) - f(T - e)) / (2 * h), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_optimizer_map_is_finite_on_a_boundary(cls):
    cs = cls.example()
    bounds = cs.bounds(MAX_SIZE)
    for j, (lo, hi) in enumerate(bounds):
        if np.isfinite(lo) and np.isfinite(hi):
            for edge in (lo, hi):
                p = params_of(cls)
                p[j] = edge
                assert np.all(np.isfinite(cs.to_optimizer(p, bounds)))


def test_default_optimizer_map_is_the_scaled_logit_and_log():
    """The map of the fits before the contract: logit((p - lo) / (hi - lo)) clipped to
    [1e-12, 1 - 1e-12] on a bounded interval, log on (0, inf)."""
    cs = Exponential(coords="x", nugget=True)
    bounds = cs.bounds(4)
    T = cs.to_optimizer(np.array([2.0, 0.25]), bounds)
    assert_allclose(T, [np.log(2.0), np.log(0.25 / 0.75)], rtol=1e-15)
    assert cs.to_optimizer(np.array([2.0, 0.0]), bounds)[1] == pytest.approx(np.log(1e-12))
    lo = -1.0 / 3.0
    assert CompoundSymmetry().bounds(4) == [(lo, 1.0)]
    expit0 = CompoundSymmetry().from_optimizer(np.zeros((1, 1)), [(lo, 1.0)])
    assert_allclose(expit0, [[(lo + 1.0) / 2.0]])


def test_default_optimizer_map_on_every_kind_of_interval():
    """The base map only depends on the bounds it is given (any structure may inherit it)."""
    cs = Independence()
    bounds = [(-2.0, 3.0), (0.5, np.inf), (-np.inf, 1.0), (-np.inf, np.inf)]
    p = np.array([0.7, 2.0, -3.0, 4.5])
    T = cs.to_optimizer(p, bounds)
    assert_allclose(T, [np.log(2.7 / 2.3), np.log(1.5), -np.log(4.0), 4.5], rtol=1e-14)
    assert_allclose(cs.from_optimizer(T[None], bounds)[0], p, rtol=1e-14)
    G = np.array([[1.0, -2.0, 0.5, 3.0]])
    h = 1e-6
    num = [
        (G @ (cs.from_optimizer(T[None] + e, bounds) - cs.from_optimizer(T[None] - e, bounds)).T)
        / (2 * h)
        for e in h * np.eye(4)
    ]
    assert_allclose(cs.optimizer_chain(T[None], G, bounds)[0], np.ravel(num), rtol=1e-6)


# --------------------------------------------------------------------------- registry
def test_registry_keys():
    assert {
        "independence",
        "cs",
        "compound_symmetry",
        "ar1",
        "power",
        "exponential",
        "gaussian",
    } <= set(COV_STRUCTS)
    for key, cls in COV_STRUCTS.items():
        assert key in (cls.name, *cls.aliases)
    assert COV_STRUCTS["cs"] is COV_STRUCTS["compound_symmetry"] is CompoundSymmetry
    assert _HeteroAR1 not in COV_STRUCTS.values()


def test_make_cov_struct():
    cs = make_cov_struct("ar1", time="visit")
    assert type(cs) is AR1 and cs.time == "visit"
    assert type(make_cov_struct("compound_symmetry")) is CompoundSymmetry
    assert type(make_cov_struct("Gaussian", coords=["x", "y"])) is Gaussian
    with pytest.raises(ValueError, match="unknown residual structure 'toeplitz'") as err:
        make_cov_struct("toeplitz")
    for key in COV_STRUCTS:
        assert repr(key) in str(err.value)


def test_subclasses_register_only_with_their_own_name():
    before = dict(COV_STRUCTS)

    class _Variant(AR1):  # inherits name "ar1" but does not claim it
        pass

    class _Private(CovStruct, register=False):
        name = "test_private"

        def correlation(self, params, geom, order=0):
            return Blocks(np.eye(1)[None])

    with pytest.raises(ValueError, match="'ar1' .* already taken"):

        class _Clash(CovStruct):
            name = "ar1"

    with pytest.raises(ValueError, match="lower-case"):

        class _Upper(CovStruct):
            name = "Upper"

    assert COV_STRUCTS == before


# ------------------------------------------------------------------- nlme conventions
def one_group(cs: CovStruct, pos) -> object:
    pos = np.asarray(pos, dtype=float).reshape(len(pos), -1)
    visit = cs.visit_index(pos)
    return cs.geometry(pos[None], visit[None])


@pytest.mark.parametrize("rho", [0.6, -0.4])
def test_ar1_is_rho_to_the_lag(rho):
    t = np.array([1, 2, 4, 7])
    cs = AR1(time="visit")
    C = cs.correlation(np.array([rho]), one_group(cs, t)).value[0]
    assert_allclose(C, rho ** np.abs(t[:, None] - t[None, :]), rtol=1e-14)


def test_power_is_rho_to_the_time_difference():
    t = np.array([0.0, 0.5, 1.75, 4.0])
    cs = Power(time="time")
    C = cs.correlation(np.array([0.7]), one_group(cs, t)).value[0]
    assert_allclose(C, 0.7 ** np.abs(t[:, None] - t[None, :]), rtol=1e-14)


def test_independence_and_compound_symmetry():
    geom = one_group(Independence(), np.zeros((4, 0)))
    assert_array_equal(Independence().correlation(np.zeros(0), geom).value[0], np.eye(4))
    C = CompoundSymmetry().correlation(np.array([0.3]), geom).value[0]
    assert_allclose(C, np.where(np.eye(4) == 1, 1.0, 0.3))


@pytest.mark.parametrize("nugget", [False, True])
@pytest.mark.parametrize(
    "cls,f", [(Exponential, lambda u: np.exp(-u)), (Gaussian, lambda u: np.exp(-(u**2)))]
)
def test_spatial_kernels_and_nugget(cls, f, nugget):
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    cs = cls(coords=["x", "y"], nugget=nugget)
    p = np.array([1.5, 0.2][: cs.k_params])
    c = 0.2 if nugget else 0.0
    C = cs.correlation(p, one_group(cs, xy)).value[0]
    assert_allclose(C, np.where(d == 0, 1.0, (1 - c) * f(d / 1.5)), rtol=1e-14)


def test_spatial_flushes_negligible_correlations_to_zero():
    cs = Gaussian(coords="x")
    geom = one_group(cs, [0.0, 1.0, 100.0])
    C = cs.correlation(np.array([1.0]), geom, order=2)
    for A in C:
        assert not np.any((A != 0) & (np.abs(A) < 1e-150))
    assert C.value[0, 0, 2] == 0.0


def test_visit_index():
    cs = AR1(time="visit")
    assert_array_equal(cs.visit_index(np.array([[4.0], [1.0], [7.0], [4.0]])), [1, 0, 2, 1])
    assert_array_equal(Independence().visit_index(np.zeros((3, 0))), [0, 0, 0])


# ----------------------------------------------------- heterogeneous composition (S C S)
def test_heterogeneous_residual_is_s_c_s():
    cs = _HeteroAR1()
    p = params_of(_HeteroAR1)
    s_visit = np.concatenate([[1.0], p[1:]])
    for rows, geom in batches(cs):
        C = cs.correlation(p, geom).value
        S = s_visit[cs.visit_index(DATA["visit"][:, None])[rows]]
        assert_allclose(cs.scales(p, geom).value, S)
        expected = np.stack([np.diag(s) @ c @ np.diag(s) for s, c in zip(S, C, strict=True)])
        assert_allclose(cs.residual(p, geom).value, expected, rtol=1e-14)


def test_heterogeneous_cross_derivatives_are_nonzero():
    """The product rule's cross terms (rho x s_v and s_v x s_w) are exercised."""
    cs = _HeteroAR1()
    geom = batches(cs)[-1][1]  # the group with all five visits
    d2 = cs.residual(params_of(_HeteroAR1), geom, order=2).d2
    assert np.abs(d2[0, 1]).max() > 0.1 and np.abs(d2[1, 2]).max() > 0.1
    assert np.abs(d2[1, 1]).max() > 0.1


def test_homogeneous_scales_are_ones():
    cs = AR1.example()
    rows, geom = batches(cs)[0]
    s = cs.scales(params_of(AR1), geom, order=2)
    assert_array_equal(s.value, np.ones(rows.shape))
    assert not s.d1.any() and not s.d2.any()
    R = cs.residual(params_of(AR1), geom, order=2)
    C = cs.correlation(params_of(AR1), geom, order=2)
    for A, B in zip(R, C, strict=True):
        assert_array_equal(A, B)
