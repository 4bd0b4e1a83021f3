"""Residuals, semivariograms, ACF and the diagnostic figure (issue 14).

Reference values: tests/results/residuals_nlme.json, written by tests/results/residuals_nlme.R
(nlme 3.1.162, R 4.2.2): ``residuals(fit, level, type)``, ``Variogram`` and ``ACF`` of four
REML fits (lme with a random intercept, corAR1 and varIdent; gls with corSymm and varIdent;
lme with a random intercept and corExp; gls with corGaus and a nugget on one field, where only
raw and Pearson residuals are compared: normalized ones and the ACF depend on the order of the
rows within the one group: ours sort them by coordinates, nlme's follow the data's order).

Every comparison is made twice (``at``):

* ``"optimum"``: at our own REML estimates.  Our fits and nlme's reach the same optimum to
  about 1e-7 in the estimates (our REML log-likelihoods are equal or higher: differences
  -1e-13 .. +2e-9), which moves the residuals and their summaries by up to 7e-6 of their
  largest absolute value (the 10-parameter corSymm + varIdent fit is the flattest); they are
  therefore compared with ``atol = 1e-5 * max|reference|``.
* ``"nlme"``: at nlme's estimates (written by the R script): the covariance parameters are
  mapped to ours (random-intercept variance / sigma^2 as the relative variance, corAR1 Phi as
  ``rho``, corExp / corGaus range and nugget as such, the corSymm matrix's lower triangle as
  ``rho{j}_{k}``, the varIdent ratios divided by the reference stratum's), the fit is evaluated
  there without optimising (``fit(start_params=..., do_cg=False)``), and the profiled fixed
  effects and scale must then equal nlme's.  The residuals, variograms and ACFs agree to about
  3e-13 of their largest value (all kinds, types and cases); the tolerance,
  ``atol = 1e-8 * max|reference|``, is 100 times tighter than the issue's 1e-6 and far above
  rounding.

Distances and pair counts are exact.
"""

import functools
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.diagnostics import residuals as diag_residuals
from tests.conftest import load_reference

matplotlib.use("Agg")

REF = load_reference("residuals_nlme.json")["cases"]
TYPES = ("response", "pearson", "normalized")
# relative to the largest absolute reference value; see the module docstring
RTOL = {"optimum": 1e-5, "nlme": 1e-8}
AT = tuple(RTOL)


def _orthodont_model(data=None):
    return lmm.mixedlm(
        "distance ~ age * Sex",
        lmm.datasets.load("orthodont") if data is None else data,
        groups="Subject",
        cov_struct=lmm.AR1(time="visit"),
        variance=lmm.VarIdent("Sex"),
        missing="drop",
    )


def _orthodont(data=None):
    return _orthodont_model(data).fit()


def _model(name):
    """The model of a reference case."""
    if name == "wheat2_gls_gaus_nugget":
        return lmm.mixedlm(
            "grain_yield ~ 0 + variety",
            lmm.datasets.load("wheat2"),
            groups=None,
            re_formula="0",
            cov_struct=lmm.Gaussian(coords=["latitude", "longitude"], nugget=True),
        )
    if name == "orthodont_lme_ar1_varident":
        return _orthodont_model()
    if name == "orthodont_gls_symm_varident":
        return lmm.mixedlm(
            "distance ~ age * Sex",
            lmm.datasets.load("orthodont"),
            groups="Subject",
            re_formula="0",
            cov_struct=lmm.Unstructured(time="visit"),
        )
    return lmm.mixedlm(
        "weight ~ Time * C(Diet)",
        lmm.datasets.load("bodyweight"),
        groups="Rat",
        cov_struct=lmm.Exponential(coords=["Time"]),
    )


@functools.cache
def _fit(name):
    """Our REML fit of a reference case (cached: the tests only read results)."""
    return _model(name).fit()


def _nlme_start(name) -> dict:
    """nlme's covariance estimates as our ``start_params`` (see the module docstring)."""
    est = REF[name]["estimates"]
    start = {"scale": est["sigma"] ** 2}
    if "re_var" in est:  # lme: the random-intercept variance
        start["cov_re"] = np.array([[est["re_var"]]])
    corr = dict(est.get("corr", {}))
    if "Phi" in corr:  # corAR1
        corr["rho"] = corr.pop("Phi")
    start.update(corr)  # corExp / corGaus: range (and nugget) in the same units as ours
    if "corr_matrix" in est:  # corSymm: rows and columns are visits 1..4
        m = np.asarray(est["corr_matrix"])
        start.update({f"rho{j + 1}_{k + 1}": m[j, k] for j in range(4) for k in range(j)})
    ratios = est.get("var_ratios", {})
    if "Male" in ratios:  # varIdent(~ 1 | Sex): ours is relative to the first level, Female
        start["sd_ratio[Sex=Male]"] = ratios["Male"] / ratios["Female"]
    elif ratios:  # varIdent(~ 1 | visit) in corSymm: ours is relative to visit 1
        start.update({f"sd_ratio{v}": ratios[str(v)] / ratios["1"] for v in (2, 3, 4)})
    return start


def _our_name(r_name: str) -> str:
    """R's name of a fixed effect as patsy's (the factor levels are the same)."""
    if r_name == "(Intercept)":
        return "Intercept"
    name = re.sub(r"SexMale", "Sex[T.Male]", r_name)
    name = re.sub(r"Diet(\d)", r"C(Diet)[T.\1]", name)
    return re.sub(r"^variety(.+)$", r"variety[\1]", name)


@functools.cache
def _at_nlme(name):
    """Our results evaluated at nlme's estimates, without optimising."""
    start = _nlme_start(name)
    model = _model(name)
    assert set(start) - {"scale", "cov_re"} == set(model.cov_params_spec.corr_names)
    res = model.fit(start_params=start, do_cg=False)
    est = REF[name]["estimates"]
    # the profiled scale and GLS fixed effects at nlme's parameters are nlme's
    assert_allclose(res.scale, est["sigma"] ** 2, rtol=1e-10)
    fixef = pd.Series(est["fixef"]).rename(index=_our_name)
    assert_allclose(res.fe_params.loc[fixef.index], fixef, rtol=1e-10, atol=1e-10)
    assert len(fixef) == len(res.fe_params)
    assert abs(res.llf - REF[name]["loglik"]) < 1e-9
    return res


def _results(name, at):
    return _fit(name) if at == "optimum" else _at_nlme(name)


@pytest.fixture(scope="module", params=[(n, at) for n in sorted(REF) for at in AT], ids="-".join)
def case(request):
    name, at = request.param
    ref = REF[name]
    res = _results(name, at)
    assert res.llf >= ref["loglik"] - 1e-8  # the same optimum (or a better one) as nlme
    return name, ref, res, RTOL[at]


def _types(name):
    return TYPES[:2] if name == "wheat2_gls_gaus_nugget" else TYPES


def _close(ours, ref, rtol):
    ref = np.asarray(ref, float)
    assert_allclose(np.asarray(ours, float), ref, rtol=0, atol=rtol * np.abs(ref).max())


# --------------------------------------------------------------------------- nlme values
def test_residuals_match_nlme(case):
    name, ref, res, rtol = case
    for kind, by_type in ref["residuals"].items():
        for type_ in _types(name):
            _close(res.residuals(kind, type_), by_type[type_], rtol)
    if "conditional" not in ref["residuals"]:  # gls: both kinds are y - X beta
        for type_ in TYPES:
            assert_allclose(res.residuals("conditional", type_), res.residuals("marginal", type_))


def _variogram_distance(name):
    # lme/gls on Orthodont: nlme's Variogram(fit, form = ~ visit | Subject); corExp: the
    # structure's own covariate (our default: the structure's positions)
    return "visit" if name.startswith("orthodont") else None


def test_variogram_matches_nlme(case):
    name, ref, res, rtol = case
    for type_ in _types(name):
        vg = res.variogram(type_, _variogram_distance(name))
        exp = ref["variogram"][type_]
        # 2-D coordinates: medians of Euclidean distances, equal up to rounding
        assert_allclose(vg["dist"], exp["dist"], rtol=1e-13)
        assert_array_equal(vg["n_pairs"], exp["n_pairs"])
        _close(vg["variog"], exp["variog"], rtol)


# one group in wheat2: its ACF depends on the order of the rows (see the module docstring)
@pytest.mark.parametrize("at", AT)
@pytest.mark.parametrize("name", sorted(set(REF) - {"wheat2_gls_gaus_nugget"}))
def test_acf_matches_nlme(name, at):
    ref, res, rtol = REF[name], _results(name, at), RTOL[at]
    for type_ in TYPES:
        a = res.acf(type_)
        exp = ref["acf"][type_]
        assert_array_equal(a["lag"], exp["lag"])
        assert_array_equal(a["n_pairs"], exp["n_used"])
        _close(a["ACF"], exp["ACF"], rtol)
    a = res.acf("normalized", max_lag=2)
    exp = ref["acf"]["normalized_maxlag_2"]
    assert_array_equal(a["n_pairs"], exp["n_used"])
    _close(a["ACF"], exp["ACF"], rtol)


@pytest.fixture(
    scope="module",
    params=[(n, at) for n in ("bodyweight_lme_exp", "wheat2_gls_gaus_nugget") for at in AT],
    ids="-".join,
)
def spatial(request):
    """The corSpatial fits: nlme's default distances are the structure's (ours too)."""
    name, at = request.param
    return REF[name]["variogram"], _results(name, at), RTOL[at]


@pytest.mark.parametrize(
    "key,kwargs",
    [
        ("nint_10", {"nint": 10}),  # quantile classes (right-closed, lowest distance left out)
        ("fixed_nint_10", {"nint": 10, "collapse": "fixed"}),
        ("robust", {"robust": True}),
        ("maxdist_30", {"max_dist": 30}),
    ],
)
def test_variogram_options_match_nlme(spatial, key, kwargs):
    ref, res, rtol = spatial
    vg = res.variogram(**kwargs)
    # distances of 2-D coordinates are medians of Euclidean distances: equal to rounding
    assert_allclose(vg["dist"], ref[key]["dist"], rtol=1e-13)
    assert_array_equal(vg["n_pairs"], ref[key]["n_pairs"])
    _close(vg["variog"], ref[key]["variog"], rtol)


def test_variogram_model_matches_nlme(spatial):
    """nlme's ``Variogram(corStruct, distance = d, sig2 = 1)``: ``1 - C(d)`` (with the nugget
    for corGaus), at the distances of single pairs."""
    ref, res, rtol = spatial
    pairs = res.variogram(collapse="none")
    assert (pairs["n_pairs"] == 1).all()
    exp = ref["model_pearson_pairs"]
    for d, m in zip(exp["dist"], exp["variog"], strict=True):
        at = pairs.loc[np.isclose(pairs["dist"], d, rtol=1e-12, atol=0), "model"]
        assert len(at) >= 1
        # at our optimum: the fits' correlation parameters agree to ~1e-6
        assert_allclose(at, m, rtol=rtol)


@pytest.mark.parametrize("at", AT)
def test_variogram_per_pair_matches_nlme(at):
    ref = REF["bodyweight_lme_exp"]["variogram"]
    res, rtol = _results("bodyweight_lme_exp", at), RTOL[at]
    # every class is one distance here: the class mean of the model is nlme's model at it
    vg = res.variogram()
    assert_array_equal(vg["dist"], ref["model_pearson"]["dist"])
    _close(vg["model"], ref["model_pearson"]["variog"], rtol)
    pairs = res.variogram(collapse="none")
    assert len(pairs) == len(ref["collapse_none"]["dist"])
    # nlme lists the pairs in another order within groups: compare the sorted values
    assert_array_equal(np.sort(pairs["dist"]), np.sort(ref["collapse_none"]["dist"]))
    _close(np.sort(pairs["variog"]), np.sort(ref["collapse_none"]["variog"]), rtol)


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("name", sorted(REF))
def test_definitions_hold(name):
    """Pearson = response / (sigma s_ij); normalized = L^-1 Pearson with C = L L'."""
    res = _fit(name)
    for kind in ("marginal", "conditional"):
        raw = res.residuals(kind, "response").to_numpy()
        pearson = res.residuals(kind, "pearson").to_numpy()
        normal = res.residuals(kind, "normalized").to_numpy()
        for b in diag_residuals.within_group_blocks(res):
            assert_allclose(pearson[b.rows] * b.sd, raw[b.rows], rtol=1e-12, atol=1e-12)
            back = np.einsum("uts,us->ut", b.chol, normal[b.rows])
            assert_allclose(back, pearson[b.rows], rtol=1e-10, atol=1e-10)
            assert_allclose(np.diagonal(b.corr, axis1=1, axis2=2), 1.0, rtol=1e-12)


def test_group_specific_structure_divides_by_each_levels_sd():
    """SAS GROUP=: Pearson residuals use the residual variance of the subject's level."""
    data = lmm.datasets.load("orthodont")
    res = lmm.mixedlm(
        "distance ~ age * Sex",
        data,
        groups="Subject",
        re_formula="0",
        cov_struct=lmm.AR1(time="visit", group="Sex"),
    ).fit()
    sd = res.residuals("marginal") / res.residuals("marginal", "pearson")
    cp = res.covariance_parameters()["Estimate"]
    for level in ("Female", "Male"):
        assert_allclose(sd[data["Sex"] == level] ** 2, cp[f"Residual[Sex={level}]"], rtol=1e-10)


def test_shuffled_rows_and_relabelled_groups_give_the_same_series():
    data = lmm.datasets.load("orthodont")
    data.loc[5, "distance"] = np.nan  # a dropped row is absent from the Series
    ref = _orthodont(data)
    shuffled = data.sample(frac=1.0, random_state=7)
    relabelled = shuffled.assign(Subject="s-" + shuffled["Subject"].str[::-1])
    for other in (_orthodont(shuffled), _orthodont(relabelled)):
        for kind in ("marginal", "conditional"):
            for type_ in TYPES:
                a = ref.residuals(kind, type_)
                b = other.residuals(kind, type_)
                assert 5 not in a.index and list(a.index) == [i for i in data.index if i != 5]
                assert list(b.index) == [i for i in shuffled.index if i != 5]
                assert_allclose(b.loc[a.index], a, rtol=1e-6, atol=1e-7)
        for type_ in TYPES:
            assert_allclose(other.variogram(type_), ref.variogram(type_), rtol=1e-6, atol=1e-8)
            assert_allclose(other.acf(type_), ref.acf(type_), rtol=1e-6, atol=1e-8)


def test_units_and_offsets():
    """y -> 10 y + 3: raw residuals scale by 10, Pearson and normalized ones do not change."""
    data = lmm.datasets.load("orthodont")
    ref = _orthodont(data)
    other = _orthodont(data.assign(distance=10 * data["distance"] + 3))
    for kind in ("marginal", "conditional"):
        assert_allclose(other.residuals(kind), 10 * ref.residuals(kind), rtol=1e-6, atol=1e-6)
        for type_ in ("pearson", "normalized"):
            assert_allclose(other.residuals(kind, type_), ref.residuals(kind, type_), atol=1e-6)
    # the time unit: distances scale, the semivariances do not
    vg = ref.variogram("pearson", np.asarray(data["visit"]) * 7.0)
    assert_allclose(vg["dist"], 7.0 * ref.variogram("pearson")["dist"])
    assert_allclose(vg["variog"], ref.variogram("pearson")["variog"])


def test_array_model_uses_a_range_index():
    data = lmm.datasets.load("orthodont")
    X = np.column_stack([np.ones(len(data)), data["age"]])
    res = lmm.MixedLM(
        data["distance"].to_numpy(),
        X,
        data["Subject"].to_numpy(),
        cov_struct=lmm.AR1(time="visit"),
        positions=data["visit"].to_numpy(),
    ).fit()
    r = res.residuals("marginal", "normalized")
    assert isinstance(r.index, pd.RangeIndex) and len(r) == len(data)
    # a structure without positions: distances are the rows' index within their group
    cs = lmm.mixedlm("distance ~ age", data, groups="Subject").fit()
    assert_array_equal(cs.variogram()["dist"], [1.0, 2.0, 3.0])


def test_bad_input_is_named():
    res = _orthodont()
    with pytest.raises(ValueError, match="kind must be one of 'conditional', 'marginal'"):
        res.residuals("level1")
    with pytest.raises(ValueError, match="type must be one of"):
        res.residuals("marginal", "studentized")
    with pytest.raises(ValueError, match=r"distance column\(s\) \['day'\] not in the data"):
        res.variogram(distance="day")
    with pytest.raises(ValueError, match="one value per row"):
        res.variogram(distance=np.arange(3))
    with pytest.raises(ValueError, match="collapse must be one of"):
        res.variogram(collapse="median")


# --------------------------------------------------------------------------- plots
def test_plot_diagnostics_returns_a_figure_and_changes_nothing():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    res = _orthodont()
    before = res.residuals("conditional", "normalized").copy()
    params = np.asarray(res.params).copy()
    fig = res.plot_diagnostics(max_groups=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert len(fig.axes[3].lines) == 2 * 5  # a fitted line and observed points per group
    assert_allclose(res.residuals("conditional", "normalized"), before, rtol=0, atol=0)
    assert_allclose(np.asarray(res.params), params, rtol=0, atol=0)
    ax = res.variogram().plot()
    assert ax.get_xlabel() == "distance" and len(ax.lines) == 2
    plt.close("all")
