"""The fast formula designs (``statsmodels_lmm_ext._design``) against patsy and formulaic.

The reference is the design patsy builds through statsmodels' ``FormulaManager`` (exactly the
call ``from_formula`` makes): every matrix, column name, index, response and the parts of the
``DesignInfo`` that downstream code reads must be identical (``array_equal``, no tolerance:
both fill the same contrast-matrix entries and products).  formulaic is a second, independent
source of the same matrices (columns matched by name).  Models built through the fast path
must give the same fit, Type III tests, marginal means and predictions as through patsy.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import patsy.builtins
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from statsmodels.formula._manager import FormulaManager

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext import _design, model_formula
from statsmodels_lmm_ext._engine.conditioning import Conditioning, pivoted_qr
from statsmodels_lmm_ext._lazy_exog import LAZY_DESIGNS, DesignCells
from statsmodels_lmm_ext._validation import check_rank, distinct_rows


def _frame(exog) -> pd.DataFrame:
    """The fast path's design as a DataFrame (a design of few cells comes in the engine's form,
    ``_lazy_exog.DesignCells`` or ``DesignTerms``, and is expanded here)."""
    if isinstance(exog, LAZY_DESIGNS):
        return pd.DataFrame(np.asarray(exog), index=exog.index, columns=exog.names)
    return exog


def _data(n_groups: int = 40, n_visits: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_groups * n_visits
    g = np.repeat(np.arange(n_groups), n_visits)
    visit = np.tile(np.arange(1, n_visits + 1), n_groups)
    trt = np.where(rng.random(n_groups) < 0.5, "active", "placebo")[g]
    site = pd.Categorical(
        rng.choice(["north", "south", "east"], n_groups)[g], categories=["south", "north", "east"]
    )
    df = pd.DataFrame(
        {
            "g": g,
            "visit": visit,
            "trt": pd.array(trt, dtype="str"),
            "arm": np.asarray(trt, dtype=object),
            "site": site,
            "smoker": (rng.random(n_groups) < 0.4)[g],
            "x": rng.normal(size=n),
            "age": rng.integers(20, 70, n_groups)[g],
            "dose level": rng.choice([0.5, 1.0, 2.0], n),
        }
    )
    df["y"] = (
        1.0 + 0.2 * visit + (df["trt"] == "active") + 0.5 * df["x"] + rng.normal(size=n_groups)[g]
    )
    df["y"] += rng.normal(size=n)
    return df


# formulas the fast path builds itself
FAST_FORMULAS = [
    "y ~ 1",
    "y ~ x",
    "y ~ 0 + x",
    "y ~ x - 1",
    "y ~ trt",
    "y ~ 0 + trt",
    "y ~ arm",
    "y ~ site",
    "y ~ 0 + site",
    "y ~ smoker",
    "y ~ C(visit)",
    "y ~ 0 + C(visit)",
    "y ~ C(visit) * trt",
    "y ~ C(visit) + trt + C(visit):trt",
    "y ~ C(visit):trt",
    "y ~ 0 + C(visit):trt",
    "y ~ trt:x",
    "y ~ trt + trt:x",
    "y ~ 0 + trt:x",
    "y ~ x * trt * site",
    "y ~ trt * site * smoker",
    "y ~ visit * trt",
    "y ~ C(visit) + visit",
    "y ~ x + age + x:age",
    "y ~ C(visit, Treatment(3)) + trt",
    "y ~ C(visit, Treatment(reference=2)) * trt",
    "y ~ C(trt, Treatment('placebo')) + x",
    "y ~ C(site, Sum) + x",
    "y ~ C(visit, Helmert) + C(site, Diff)",
    "y ~ C(visit, Poly)",
    "y ~ C(age) + trt",
    "y ~ Q('dose level') + trt",
    "y ~ C(Q('dose level')) * smoker",
    "y ~ site:smoker + x",
    "y ~ (trt + site + smoker) ** 2",
    "y ~ x:site:trt",
    "age ~ trt + x",
    "y ~ site / x",
    "y ~ C(visit) * trt - trt",
    "y ~ 1 + smoker:trt + x:smoker",
    # more cells of the categorical factors than rows: built subterm by subterm
    "y ~ C(g) + trt:C(visit) + x:site",
]

# formulas that need patsy (the fast path returns None)
FALLBACK_FORMULAS = [
    "y ~ np.log(age)",
    "y ~ I(x ** 2) + trt",
    "y ~ center(x)",
    "y ~ standardize(x) + trt",
    "y ~ bs(x, df=4)",
    "y ~ C(trt, levels=['placebo', 'active'])",
    "np.log(age) ~ x",
    "y ~ twice(x)",
    "y ~ C(site, Treatment(ref))",
]


def _patsy(formula, data, env=None):
    mgr = FormulaManager()
    y, X = mgr.get_matrices(
        formula, data, eval_env=env or {}, pandas=True, na_action=mgr.get_na_action("raise")
    )
    return y, X, mgr.spec


def _assert_same_spec(a, b):
    assert a.column_names == b.column_names
    assert a.term_names == b.term_names
    assert list(a.term_name_slices.items()) == list(b.term_name_slices.items())
    fa = {f.code: fi for f, fi in a.factor_infos.items()}
    fb = {f.code: fi for f, fi in b.factor_infos.items()}
    assert fa.keys() == fb.keys()
    for code, fi in fa.items():
        assert fi.type == fb[code].type
        assert fi.num_columns == fb[code].num_columns
        if fi.type == "categorical":
            assert fi.categories == fb[code].categories
            assert [type(c) for c in fi.categories] == [type(c) for c in fb[code].categories]
    for (ta, sa), (tb, sb) in zip(a.term_codings.items(), b.term_codings.items(), strict=True):
        assert ta.name() == tb.name()
        for x, z in zip(sa, sb, strict=True):
            assert [f.code for f in x.factors] == [f.code for f in z.factors]
            for f, cm in x.contrast_matrices.items():
                other = {g.code: c for g, c in z.contrast_matrices.items()}[f.code]
                assert_array_equal(cm.matrix, other.matrix)
                assert cm.column_suffixes == other.column_suffixes


@pytest.mark.parametrize("formula", FAST_FORMULAS)
def test_fast_design_equals_patsy(formula):
    df = _data()
    fast = _design.fast_design(formula, df, {})
    assert fast is not None, "the fast path should build this formula"
    y, X, spec = _patsy(formula, df)
    exog = _frame(fast.exog)
    assert list(exog.columns) == list(X.columns)
    assert_array_equal(exog.to_numpy(), X.to_numpy())
    assert exog.index.equals(X.index)
    assert list(fast.endog.columns) == list(y.columns)
    assert_array_equal(fast.endog.to_numpy(), y.to_numpy())
    _assert_same_spec(fast.spec, spec)


@pytest.mark.parametrize("formula", ["y ~ C(visit) * trt", "y ~ x * site + smoker", "y ~ arm:x"])
def test_fast_design_rows_and_labels(formula):
    # shuffled rows, a non-default index and missing values dropped beforehand: still patsy's
    df = _data(seed=3)
    df.loc[df.sample(frac=0.2, random_state=1).index, "x"] = np.nan
    df = df.dropna().sample(frac=1.0, random_state=2)
    df.index = [f"r{i}" for i in range(len(df))]
    fast = _frame(_design.fast_design(formula, df, {}).exog)
    _, X, _ = _patsy(formula, df)
    assert fast.index.equals(X.index)
    assert_array_equal(fast.to_numpy(), X.to_numpy())


def test_category_order_and_unused_categories():
    # a Categorical's own order (not sorted) and an unused category, as patsy
    df = _data()
    df["site"] = df["site"].cat.add_categories(["west"])
    for formula in ("y ~ site", "y ~ 0 + site:trt"):
        fast = _design.fast_design(formula, df, {})
        _, X, spec = _patsy(formula, df)
        assert list(_frame(fast.exog).columns) == list(X.columns)
        assert_array_equal(_frame(fast.exog).to_numpy(), X.to_numpy())
        _assert_same_spec(fast.spec, spec)


@pytest.mark.parametrize("re_formula", ["1 + visit", "0 + x", "1 + C(visit)", "0 + trt", "site"])
def test_fast_re_design_equals_patsy(re_formula):
    df = _data()
    Z, names = _design.fast_re_design(re_formula, df, {})
    ref = FormulaManager().get_matrices(re_formula, df, eval_env={}, pandas=True)
    assert names == list(ref.columns)
    assert_array_equal(Z, ref.to_numpy())


@pytest.mark.parametrize("formula", FALLBACK_FORMULAS)
def test_fallback_to_patsy(formula):
    df = _data()
    env = {"twice": lambda v: 2 * v, "ref": "north", "np": np}
    assert _design.fast_design(formula, df, env) is None
    if formula.startswith("y ~ C(site, Treatment(ref))") or "twice" in formula:
        return
    mod = lmm.mixedlm(formula, df, groups="g")  # built by patsy, silently
    _, X, _ = _patsy(formula, df, {"np": np})
    assert_array_equal(mod.exog, X.to_numpy())


def test_fallback_dtypes_and_shadowing():
    df = _data()
    df["n"] = pd.array(df["age"], dtype="Int64")
    df["when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(df["visit"], unit="D")
    assert _design.fast_design("y ~ n", df, {}) is None
    assert _design.fast_design("y ~ C(when)", df, {}) is None
    assert _design.fast_design("y ~ C(visit)", df, {"C": lambda v: v}) is None
    # the caller's own import of patsy's C and Treatment is patsy's: no shadowing
    env = {"C": patsy.builtins.C, "Treatment": patsy.builtins.Treatment}
    assert _design.fast_design("y ~ C(site, Treatment('east'))", df, env) is not None
    assert _design.fast_design("y ~ trt", df.rename(columns={"x": "C"}), {}) is None
    assert _design.fast_design("trt ~ x", df, {}) is None  # a string response: patsy's error


def test_formulaic_is_a_second_source():
    # formulaic builds the same columns (matched by name: it orders terms differently)
    formulaic = pytest.importorskip("formulaic")
    df = _data()
    for formula in ("y ~ C(visit) * trt", "y ~ 0 + trt:C(visit)", "y ~ trt + trt:x", "y ~ site"):
        fast = _frame(_design.fast_design(formula, df, {}).exog)
        ref = formulaic.model_matrix(formula, df).rhs
        assert sorted(ref.columns) == sorted(fast.columns)
        assert_array_equal(fast[list(ref.columns)].to_numpy(), np.asarray(ref, float))


def test_formulaic_engine_is_left_to_statsmodels(monkeypatch):
    import statsmodels.formula

    monkeypatch.setattr(statsmodels.formula.options, "_formula_engine", "formulaic")
    assert _design.fast_design("y ~ C(visit) * trt", _data(), {}) is None


# --------------------------------------------------------------------------------------------
# Models: fast path versus patsy
# --------------------------------------------------------------------------------------------


def _both(monkeypatch, *args, **kwargs):
    fast = lmm.mixedlm(*args, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(model_formula, "fast_design", lambda *a: None)
        slow = lmm.mixedlm(*args, **kwargs)
    return fast, slow


def _assert_same_model(a, b):
    assert a.data.model_spec.column_names == b.data.model_spec.column_names
    for name in ("exog", "endog", "exog_re", "groups", "positions"):
        assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("param_names", "exog_re_names", "exog_re_names_full", "xnames", "ynames"):
        assert getattr(a.data, name) == getattr(b.data, name)
    assert a.data.row_labels.equals(b.data.row_labels)
    assert a.data.frame.equals(b.data.frame)
    assert a.formula == b.formula


def test_model_fit_anova_emmeans_predict_equal(monkeypatch):
    df = _data(n_groups=30, n_visits=4, seed=5)
    df.loc[[3, 17, 40], "x"] = np.nan
    fast, slow = _both(
        monkeypatch,
        "y ~ C(visit) * trt + x",
        df,
        groups="g",
        re_formula="1 + visit",
        cov_struct=lmm.AR1(time="visit"),
        missing="drop",
    )
    _assert_same_model(fast, slow)
    assert fast.nobs == len(df) - 3
    ra, rb = fast.fit(), slow.fit()
    # same arrays in, same engine: equal up to the rounding of the conditioning QR
    assert_allclose(ra.llf, rb.llf, rtol=1e-12)
    assert_allclose(ra.params, rb.params, rtol=1e-8, atol=1e-10)
    assert ra.params.index.equals(rb.params.index)
    ta, tb = ra.anova(ddf="kenward-roger"), rb.anova(ddf="kenward-roger")
    assert ta.index.equals(tb.index)
    assert_allclose(ta.to_numpy(float), tb.to_numpy(float), rtol=1e-7)
    ea = lmm.emmeans(ra, "trt").summary_frame()
    eb = lmm.emmeans(rb, "trt").summary_frame()
    assert_allclose(ea["emmean"], eb["emmean"], rtol=1e-9)
    assert_allclose(ea["se"], eb["se"], rtol=1e-7)
    new = df.dropna().iloc[:7]
    assert_allclose(ra.predict(new), rb.predict(new), rtol=1e-9)


def test_missing_raise_and_relabelled_groups(monkeypatch):
    df = _data(n_groups=20, n_visits=4, seed=7)
    df.loc[5, "trt"] = None
    with pytest.raises(ValueError, match="missing values in column.*'trt'"):
        lmm.mixedlm("y ~ trt", df, groups="g", missing="raise")
    df = df.dropna()
    df["g2"] = df["g"].map(lambda v: f"subject-{(v * 7) % 20}")
    a = lmm.mixedlm("y ~ C(visit) + trt", df, groups="g").fit()
    b = lmm.mixedlm("y ~ C(visit) + trt", df, groups="g2").fit()
    assert_allclose(a.llf, b.llf, rtol=1e-10)
    assert_allclose(a.fe_params, b.fe_params, rtol=1e-8)
    c = lmm.mixedlm("y ~ C(visit) + trt", df.sample(frac=1.0, random_state=3), groups="g").fit()
    assert_allclose(c.llf, a.llf, rtol=1e-10)
    assert_allclose(c.fe_params, a.fe_params, rtol=1e-8)


# --------------------------------------------------------------------------------------------
# The rank check through distinct rows
# --------------------------------------------------------------------------------------------


def test_distinct_rows_qr_matches_row_by_row():
    df = _data(n_groups=60)
    cells = _design.fast_design("y ~ C(visit) * trt + site", df, {}).exog
    assert isinstance(cells, DesignCells)
    X = np.asarray(cells)
    rows = distinct_rows(X)
    assert rows is not None
    U, inverse, counts = rows
    assert_array_equal(U[inverse], X)
    assert len(U) == len(cells.rows)
    assert counts.sum() == len(X)
    y = df["y"].to_numpy()
    a = Conditioning(X, y, qr=pivoted_qr(X, rows))
    b = Conditioning(X, y, qr=pivoted_qr(X))
    # the same factorisation up to column signs and rounding: compare sign-free quantities
    Xa = np.asarray(a.Xt)  # kept as its distinct rows
    assert_allclose(Xa @ a.T, b.Xt @ b.T, atol=1e-10)
    assert_allclose(Xa.T @ Xa / len(X), np.eye(X.shape[1]), atol=1e-12)
    assert_allclose(a.Xt @ a.g0, Xa @ a.g0, rtol=1e-14)
    assert_allclose(a.Xt.tdot(y), Xa.T @ y, rtol=1e-12)
    assert_allclose(abs(a.logdet_T), abs(b.logdet_T), rtol=1e-12)
    assert_allclose(a.s, b.s, rtol=1e-12)
    # a continuous covariate: too many distinct rows, factored row by row
    assert distinct_rows(np.asarray(_design.fast_design("y ~ x", df, {}).exog)) is None
    # the cells give the factorisation directly: the same R as the hashed distinct rows
    c = Conditioning(cells, y, qr=pivoted_qr(cells))
    assert_allclose(np.asarray(c.Xt) @ c.T, b.Xt @ b.T, atol=1e-10)
    assert_allclose(c.s, b.s, rtol=1e-12)


def test_rank_deficient_same_error_as_row_by_row():
    df = _data()
    df["arm2"] = df["arm"]
    cells = _design.fast_design("y ~ trt + C(arm2) + C(visit)", df, {}).exog
    assert isinstance(cells, DesignCells)
    names, X = cells.names, np.asarray(cells)
    with pytest.raises(ValueError) as slow:
        check_rank(X, names, pivoted_qr(X))
    with pytest.raises(ValueError) as fast:
        check_rank(X, names, pivoted_qr(X, distinct_rows(X)))
    with pytest.raises(ValueError) as kept:
        check_rank(cells, names, pivoted_qr(cells))
    assert str(fast.value) == str(slow.value) == str(kept.value)
    assert "rank deficient" in str(fast.value)


def test_engine_pattern_sums_through_distinct_designs():
    # S_XX and S_Xy summed over the groups' distinct designs equal the sums over all groups
    df = _data(n_groups=80, n_visits=4, seed=11)
    mod = lmm.mixedlm("y ~ C(visit) * trt", df, groups="g", cov_struct=lmm.AR1(time="visit"))
    eng = mod.engine
    assert eng.cond.row_codes is not None and eng.mode == "pattern"
    plain = copy.copy(eng)
    plain.cond = copy.copy(eng.cond)
    plain.cond.row_codes = None
    for n, gids in eng._size_buckets():
        rows = eng.group_rows(gids, n)
        for a, b in zip(eng._pattern_sums(rows), plain._pattern_sums(rows), strict=True):
            assert_allclose(a, b, rtol=1e-12, atol=1e-9)
