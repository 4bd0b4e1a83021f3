"""Fixed-effects designs kept in the engine's form (``_lazy_exog``, issue 13).

The formula fast path keeps ``y ~ C(visit) * trt`` as the cells' design rows and each row's
code (``DesignCells``), and a design with numeric covariates (``y ~ base + C(visit) * trt``)
as tables of the cells times the covariates (``DesignTerms``); ``model.exog`` is expanded on
first access.  Checked here: the expanded design is patsy's (through statsmodels' own
``smf.mixedlm``, exactly), fitting and the usual results never expand it, the fit equals the
fit of the same model from the dense matrix, and the statsmodels protocols (``remove_data``,
pickling, assigning ``exog``) keep working.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose, assert_array_equal

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext._engine.designs import GatheredRows
from statsmodels_lmm_ext._lazy_exog import DesignCells, DesignTerms, LazyExogData

FORMULA = "y ~ C(visit) * trt"
# (formula, kind of design kept): categorical only; a subject-level covariate, alone and
# interacting with a factor; a numeric visit (few distinct rows despite numeric factors)
FORMULAS = [
    (FORMULA, DesignCells),
    ("y ~ base + C(visit) * trt", DesignTerms),
    ("y ~ base * C(visit) + trt", DesignTerms),
    ("y ~ visit * trt", DesignTerms),
]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(20261130)
    n_sub, n_vis = 60, 5
    g = np.repeat(np.arange(n_sub), n_vis)
    visit = np.tile(np.arange(1, n_vis + 1), n_sub)
    trt = np.where(rng.random(n_sub) < 0.5, "active", "placebo")[g]
    e = rng.normal(size=(n_sub, n_vis))
    e[:, 1:] += 0.5 * e[:, :-1]
    base = rng.normal(50.0, 10.0, n_sub)[g]
    y = 2.0 + 0.3 * visit + (trt == "active") + 0.05 * base + rng.normal(size=n_sub)[g]
    y = y + e.ravel()
    df = pd.DataFrame({"subject": g, "visit": visit, "trt": trt, "base": base, "y": y})
    keep = rng.random(len(df)) > 0.1  # unbalanced: some visits missing
    return df[keep].sample(frac=1.0, random_state=1)  # rows not in subject order


def _model(df, formula=FORMULA, **kw):
    return lmm.mixedlm(formula, df, groups="subject", cov_struct=lmm.AR1(time="visit"), **kw)


def _expanded(mod) -> bool:
    return mod.data.__dict__.get("_exog") is not None


@pytest.mark.parametrize(("formula", "kind"), FORMULAS)
def test_design_is_kept_and_expands_to_patsys(data, formula, kind):
    mod = _model(data, formula)
    cells = mod._exog_cells
    assert type(cells) is kind and isinstance(mod.data, LazyExogData)
    assert cells.inverse.dtype == np.int32
    assert not _expanded(mod)
    # expanded on access: exactly patsy's matrix, names, index and constant (statsmodels)
    ref = smf.mixedlm(formula, data, groups="subject")
    assert_array_equal(mod.exog, ref.exog)
    assert _expanded(mod)
    assert mod.exog is mod.data.exog
    assert list(mod.exog_names) == list(ref.exog_names)
    assert mod.data.orig_exog.equals(ref.data.orig_exog)
    assert (mod.k_constant, mod.data.const_idx) == (ref.k_constant, ref.data.const_idx)


def test_kept_designs_products_and_sums(data):
    # every operation the engine uses, against the expanded matrix
    X = _model(data, "y ~ base * C(visit) + trt")._exog_cells
    D = np.asarray(X)
    rng = np.random.default_rng(0)
    g, G, e = (
        rng.normal(size=X.shape[1]),
        rng.normal(size=(X.shape[1], 3)),
        rng.normal(size=len(D)),
    )
    rows = rng.integers(0, len(D), size=(7, 4))
    assert_array_equal(X[rows], D[rows])
    assert_allclose(X @ g, D @ g, rtol=1e-13)
    assert_allclose(X @ G, D @ G, rtol=1e-13)
    assert_allclose(X.tdot(e), D.T @ e, rtol=1e-12)
    assert_allclose(X.gram(), D.T @ D, rtol=1e-12)
    A = rng.normal(size=(X.shape[1], X.shape[1]))
    assert_allclose(np.asarray(X.map_columns(A)), D @ A, rtol=1e-12)


@pytest.mark.parametrize("formula", ["y ~ 0 + C(visit) + trt", "y ~ 0 + C(visit) + base"])
def test_without_intercept_statsmodels_finds_the_implicit_constant(data, formula):
    mod = lmm.mixedlm(formula, data, groups="subject")
    ref = smf.mixedlm(formula, data, groups="subject")
    assert mod._exog_cells is not None
    found = (mod.k_constant, mod.data.const_idx)
    assert found == (ref.k_constant, ref.data.const_idx) == (1, None)


@pytest.mark.parametrize(("formula", "kind"), FORMULAS)
def test_fit_and_results_do_not_expand_the_design(data, formula, kind):
    mod = _model(data, formula)
    res = mod.fit()
    res.fittedvalues, res.resid, res.bse, res.summary()  # noqa: B018
    res.anova(ddf="kenward-roger")
    res.anova(ddf="satterthwaite")
    lmm.emmeans(res, "trt")
    res.residuals(kind="marginal", type="normalized")
    assert not _expanded(mod)
    assert mod.engine.X is mod._exog_cells


@pytest.mark.parametrize(("formula", "kind"), FORMULAS)
def test_fit_equals_the_dense_design(data, formula, kind):
    lazy = _model(data, formula)
    res = lazy.fit()
    X = np.asarray(lazy.exog)
    dense = lmm.MixedLM(
        lazy.endog,
        pd.DataFrame(X, columns=lazy.exog_names),
        data["subject"].to_numpy(),
        cov_struct=lmm.AR1(time="visit"),
        positions=data["visit"].to_numpy(),
    )
    assert dense.__dict__.get("_exog_cells") is None
    ref = dense.fit()
    assert_allclose(res.llf, ref.llf, rtol=1e-12)
    # the two designs sum in different orders, so the optimiser stops at points that differ
    # by rounding: the covariance parameters agree to its tolerance, the rest closer
    assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(), rtol=1e-8)
    assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-6)
    assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    assert_allclose(res.fittedvalues, ref.fittedvalues, rtol=1e-8)
    L = np.eye(len(res.fe_params))
    kr, kr_ref = res.t_test(L, ddf="kenward-roger"), ref.t_test(L, ddf="kenward-roger")
    assert_allclose(kr.df_denom, kr_ref.df_denom, rtol=1e-6)
    assert_allclose(kr.sd, kr_ref.sd, rtol=1e-6)


def test_statsmodels_protocols(data):
    res = _model(data).fit()
    clone = pickle.loads(pickle.dumps(res))
    assert_allclose(clone.llf, res.llf, rtol=0)
    assert_array_equal(clone.model.exog, res.model.exog)
    res.remove_data()
    assert res.model.exog is None and res.model.data.exog is None
    assert res.model.data.orig_exog is None
    mod = _model(data)
    mod.exog = np.asarray(mod.exog) * 1.0  # an assigned matrix replaces the cells
    assert mod._exog_cells is None and isinstance(mod.exog, np.ndarray)


def test_designs_that_stay_dense(data):
    d = data.assign(x=np.linspace(0, 1, len(data)))
    assert _model_of("y ~ C(visit) + base:x", d)._exog_cells is None  # a product of covariates
    # used cells (subject x visit) more than a quarter of the rows
    assert _model_of("y ~ C(subject) + C(visit) + x", d)._exog_cells is None
    # too few rows per distinct row (10 cells, 30 rows): the design is expanded at once
    few = data[data["subject"] < 12].groupby("subject").filter(lambda g: len(g) == 5)
    few = few[few["subject"].isin(few["subject"].unique()[:6])]
    assert len(few) == 30 and few["trt"].nunique() == 2
    assert _model_of(FORMULA, few)._exog_cells is None


def test_numeric_visit_factors_through_its_distinct_rows(data):
    # numeric factors, yet 10 distinct rows: the conditioning sums over them
    mod = _model(data, "y ~ visit * trt")
    assert isinstance(mod._exog_cells, DesignTerms)
    assert isinstance(mod.engine.Xc, GatheredRows) and mod.engine.cond.row_codes is not None


def test_nonfinite_covariate_is_named(data):
    d = data.assign(base=data["base"].where(data.index != data.index[3], np.inf))
    with pytest.raises(ValueError, match="base"):
        _model(d, "y ~ base + C(visit) * trt")


def _model_of(formula, df):
    return lmm.mixedlm(formula, df, groups="subject")


def test_missing_drop_and_order_invariance(data):
    d = data.copy()
    d.loc[d.index[:5], "y"] = np.nan
    res = _model(d, missing="drop").fit()
    ref = _model(d.dropna()).fit()
    assert_allclose(res.llf, ref.llf, rtol=1e-12)
    shuffled = _model(d.dropna().sample(frac=1.0, random_state=7)).fit()
    assert_allclose(shuffled.llf, ref.llf, rtol=1e-11)
    assert_allclose(shuffled.params.to_numpy(), ref.params.to_numpy(), rtol=1e-8, atol=1e-10)


def test_rank_deficiency_is_named_as_for_the_matrix(data):
    # a covariate that is a multiple of another: the blockwise factor cannot show full rank,
    # so the design is factored row by row and the error is the matrix's
    d = data.assign(base2=2.0 * data["base"])
    with pytest.raises(ValueError) as kept:
        _model(d, "y ~ base + base2 + C(visit)")
    X = patsy.dmatrix("base + base2 + C(visit)", d, return_type="dataframe")
    with pytest.raises(ValueError) as matrix:
        lmm.MixedLM(d["y"].to_numpy(), X, d["subject"].to_numpy())
    assert "rank deficient" in str(kept.value)
    assert str(kept.value) == str(matrix.value)


def test_changing_the_data_afterwards_does_not_change_the_model(data):
    # the response and covariates are shared with the DataFrame only where pandas'
    # copy-on-write protects them; otherwise copied
    d = data.copy()
    mod = _model(d, "y ~ base + C(visit) * trt")
    X0, y0 = np.asarray(mod._exog_cells), np.array(mod.endog)
    d.loc[d.index[0], "base"] = 1e6
    d["y"] *= 2.0
    base = d["base"].to_numpy()
    if base.flags.writeable:  # pandas without copy-on-write: an in-place change as well
        base[1:3] = -1.0
    assert_array_equal(np.asarray(mod._exog_cells), X0)
    assert_array_equal(mod.endog, y0)
