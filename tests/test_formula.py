"""The formula layer (statsmodels_lmm_ext._formula): names a formula refers to, column checks,
term columns, design specs of both engines, and the memoised Type III hypotheses."""

import gc
import weakref

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext import _formula
from statsmodels_lmm_ext._formula import (
    categories,
    check_columns,
    design_info,
    design_rows,
    formula_names,
    model_spec,
    names_in,
    term_columns,
    type3_contrasts,
)


@pytest.fixture(scope="module")
def tf():
    return lmm.datasets.load("twofactor_unbalanced")


# ------------------------------------------------------------------ names -------------------


@pytest.mark.parametrize(
    "formula, names",
    [
        ("y ~ x", {"y", "x"}),
        ("y ~ C(x) + z - 1", {"y", "C", "x", "z"}),
        ("y ~ 0 + a * b + a:c", {"y", "a", "b", "c"}),
        ("y ~ I(x - 1) + np.log(w)", {"y", "I", "x", "np", "w"}),
        ("y ~ C(A, Sum) / B", {"y", "C", "A", "Sum", "B"}),
        # a quoted column is a name too (checked and used for missing values)
        ('y ~ Q("a b") + x', {"y", "Q", "x", "a b"}),
        ('Q("yield") ~ C(g, Treatment(reference="b"))', {"Q", "yield", "C", "g", "Treatment"}),
        ("0 + visit", {"visit"}),
    ],
)
def test_formula_names(formula, names):
    assert formula_names(formula) == names


def test_check_columns_accepts_patsy_names_and_builtins():
    data = pd.DataFrame({"y": [1.0], "x": [2.0], "w": [3.0], "a b": [4.0]})
    for f in ["y ~ C(x) + I(x - 1)", "y ~ np.log(w) + abs(x)", 'y ~ Q("a b")', "y ~ C(x, Sum)"]:
        check_columns(data, {"formula": sorted(formula_names(f))})


def test_check_columns_names_the_missing_column_and_where():
    data = pd.DataFrame({"y": [1.0], "x": [2.0]})
    with pytest.raises(ValueError, match=r"unknown column\(s\) 'z' in re_formula") as err:
        check_columns(data, {"formula": ["y", "x"], "re_formula": sorted(formula_names("~ z"))})
    assert "['x', 'y']" in str(err.value)
    with pytest.raises(ValueError, match="'dose', 'q' in formula"):
        check_columns(data, {"formula": sorted(formula_names("y ~ np.log(dose) + C(q)"))})


def test_names_in_skips_calls_and_attributes():
    cols = ["x", "A", "log", "scale"]
    assert names_in("np.log(x) + C(A) + I(x - 1) + scale(x)", cols) == ["x", "A"]
    assert names_in("A[T.a2]:x", cols) == ["A", "x"]
    # code that does not tokenize: whole-word matches, in column order
    assert names_in("x + (A", cols) == ["x", "A"]


# ------------------------------------------------------------------ design specs ------------


def test_term_columns_partition_the_design(tf):
    model = smf.ols("y ~ A * B + x", tf)
    cols = term_columns(model)
    assert list(cols) == ["Intercept", "A", "B", "A:B", "x"]
    assert [len(c) for c in cols.values()] == [1, 2, 3, 6, 1]
    assert_allclose(np.sort(np.concatenate(list(cols.values()))), np.arange(13))
    names = model.exog_names
    assert all(":" in names[j] for j in cols["A:B"]) and names[cols["x"][0]] == "x"


def test_specs_of_both_engines(tf):
    """Design rows through patsy's DesignInfo and formulaic's ModelSpec equal the models'
    own design matrices; categories() reads the level order either spec used; term-wise
    helpers ask for patsy."""
    d = tf.assign(A=pd.Categorical(tf.A, categories=["a3", "a1", "a2"]))
    formula = "y ~ A * C(B, Sum) + np.log(x + 1)"
    patsy_model = smf.ols(formula, d)
    old = statsmodels.formula.options.formula_engine
    try:
        statsmodels.formula.options.formula_engine = "formulaic"
        formulaic_model = smf.ols(formula, d)
    finally:
        statsmodels.formula.options.formula_engine = old
    for model in (patsy_model, formulaic_model):
        spec = model_spec(model)
        assert_allclose(design_rows(spec, d.iloc[:7]), model.exog[:7], rtol=1e-14)
        assert categories(spec, "A") == ["a3", "a1", "a2"]
        assert categories(spec, "B") == ["b1", "b2", "b3", "b4"]
        assert categories(spec, "x") is None
    assert design_info(patsy_model) is model_spec(patsy_model)
    with pytest.raises(NotImplementedError, match="patsy"):
        design_info(formulaic_model)


def test_a_model_without_formula_is_refused(tf):
    model = sm.OLS(tf.y.to_numpy(), np.ones((len(tf), 1)))
    with pytest.raises(ValueError, match="build the model from a formula"):
        model_spec(model)


# ------------------------------------------------------------------ Type III ----------------


def test_type3_memo_leaves_the_model_alone_and_dies_with_it(tf):
    """The memo is keyed by the model in a WeakKeyDictionary: nothing is written onto the
    model, a second call returns the memoised matrices, and the entry goes with the model."""
    gc.collect()
    n_before = len(_formula._TYPE3_CACHE)
    model = smf.ols("y ~ A * B + x", tf)
    before = dict(model.__dict__)
    L = type3_contrasts(model)
    assert model.__dict__.keys() == before.keys()
    assert all(model.__dict__[k] is v for k, v in before.items())
    assert type3_contrasts(model) is L
    assert len(_formula._TYPE3_CACHE) == n_before + 1
    assert list(L) == ["A", "B", "A:B", "x"]
    assert [Lt.shape[0] for Lt in L.values()] == [2, 3, 6, 1]
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    assert len(_formula._TYPE3_CACHE) == n_before


def test_type3_on_a_subset_of_rows_equals_all_rows(tf):
    """The hypotheses depend on the distinct design rows only: a small ``max_rows`` that
    keeps the rank gives the same matrices as all rows; one that loses it falls back."""
    model = smf.ols("y ~ A * B + x", tf)
    full = type3_contrasts(model, max_rows=len(tf))
    for max_rows in (40, 5):
        sub = type3_contrasts(model, max_rows=max_rows, seed=3)
        for term, Lt in full.items():
            assert_allclose(sub[term], Lt, atol=1e-10)


def test_type3_refuses_a_rank_deficient_design(tf):
    d = tf[~((tf.A == "a3") & (tf.B == "b4"))]
    with pytest.raises(ValueError, match="rank deficient"):
        type3_contrasts(smf.ols("y ~ A * B", d))


# ------------------------------------------------------------------ the caller's namespace ----


def _ctr(x):
    return x - np.mean(x)


def test_formulas_resolve_names_through_the_callers_namespace():
    """Functions and variables of the caller (``ctr(x)``, ``I(x - ref)``) resolve as with
    ``smf.mixedlm``, in every formula and through every entry point."""
    d = lmm.datasets.load("sleepstudy")
    ref = 4.5
    ctr = _ctr
    f, re = "Reaction ~ ctr(Days)", "~ I(Days - ref)"
    ours = [
        lmm.mixedlm(f, d, groups="Subject", re_formula=re).fit(),
        lmm.MixedLM.from_formula(f, d, groups="Subject", re_formula=re).fit(),
        lmm.mixedlm(
            f, d, groups="Subject", re_formula=re, eval_env={"ctr": ctr, "ref": ref}
        ).fit(),
    ]
    theirs = smf.mixedlm(f, d, groups="Subject", re_formula=re).fit()
    for res in ours:
        assert list(res.model.exog_names) == ["Intercept", "ctr(Days)"]
        assert_allclose(res.llf, theirs.llf, rtol=1e-6)
    vc = lmm.mixedlm("Reaction ~ 1", d, groups="Subject", vc_formula={"s": "0 + I(Days - ref)"})
    assert_allclose(vc.exog_vc.mats[0][0].ravel(), d["Days"].iloc[:10] - ref)
    with pytest.raises(ValueError, match="unknown column.*'ctr'.*calling namespace"):
        lmm.mixedlm(f, d, groups="Subject", eval_env=-1)
    with pytest.raises(ValueError, match="unknown column.*'ctr2'"):
        lmm.mixedlm("Reaction ~ ctr2(Days)", d, groups="Subject")


def test_quoted_response_is_checked_and_used_for_missing_values():
    d = lmm.datasets.load("oats").rename(columns={"grain_yield": "yield"})
    res = lmm.mixedlm('Q("yield") ~ nitro', d, groups="Block").fit()
    assert res.model.endog_names == 'Q("yield")'
    d.loc[3, "yield"] = np.nan
    with pytest.raises(
        ValueError, match=r"missing values in column\(s\) 'yield' \(first at row 3"
    ):
        lmm.mixedlm('Q("yield") ~ nitro', d, groups="Block")
    m = lmm.mixedlm('Q("yield") ~ nitro', d, groups="Block", missing="drop")
    assert m.nobs == len(d) - 1
    with pytest.raises(ValueError, match="unknown column.*'yeld'"):
        lmm.mixedlm('Q("yeld") ~ nitro', d, groups="Block")
