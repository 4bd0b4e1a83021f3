"""Bad input: clear errors naming what is wrong; missing data dropped or refused."""

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import statsmodels_lmm_ext as lmm


@pytest.fixture
def ortho():
    return lmm.datasets.load("orthodont")


def test_unknown_formula_column(ortho):
    with pytest.raises(ValueError, match=r"unknown column\(s\) 'agee' in formula"):
        lmm.mixedlm("distance ~ agee", ortho, groups="Subject")


def test_unknown_groups_column(ortho):
    with pytest.raises(ValueError, match=r"'Subjct' in groups"):
        lmm.mixedlm("distance ~ age", ortho, groups="Subjct")


def test_unknown_time_column(ortho):
    with pytest.raises(ValueError, match=r"'vist' in cov_struct"):
        lmm.mixedlm("distance ~ age", ortho, groups="Subject", cov_struct=lmm.AR1(time="vist"))


def test_unknown_re_formula_column(ortho):
    with pytest.raises(ValueError, match=r"'slope' in re_formula"):
        lmm.mixedlm("distance ~ age", ortho, groups="Subject", re_formula="1 + slope")


def test_non_numeric_time(ortho):
    with pytest.raises(ValueError, match=r"position column 'Sex' .* must be numeric"):
        lmm.mixedlm("distance ~ age", ortho, groups="Subject", cov_struct=lmm.AR1(time="Sex"))


def test_non_integer_time_for_ar1(ortho):
    ortho["t"] = ortho["age"] / 3.0
    with pytest.raises(ValueError, match=r"AR1 needs integer time positions in column 't'"):
        lmm.mixedlm("distance ~ age", ortho, groups="Subject", cov_struct=lmm.AR1(time="t"))
    # the continuous-time structure accepts it
    res = lmm.mixedlm(
        "distance ~ age", ortho, groups="Subject", cov_struct=lmm.Power(time="t")
    ).fit()
    assert res.converged


@pytest.mark.parametrize("struct", [lmm.AR1, lmm.Power])
def test_duplicated_time_point(ortho, struct):
    ortho.loc[ortho.index[2], "visit"] = 2  # second row of M01 is at visit 2 already
    with pytest.raises(
        ValueError,
        match=r"group 'M01' has two rows at the same position "
        r"visit=2",
    ):
        lmm.mixedlm("distance ~ age", ortho, groups="Subject", cov_struct=struct(time="visit"))


@pytest.mark.parametrize("column", ["distance", "age", "Subject", "visit"])
def test_missing_values_raise_or_drop(ortho, column):
    ortho.loc[ortho.index[[3, 10]], column] = np.nan
    kw = dict(groups="Subject", cov_struct=lmm.AR1(time="visit"))
    with pytest.raises(ValueError, match=rf"missing values in column\(s\) .*'?{column}"):
        lmm.mixedlm("distance ~ age", ortho, missing="raise", **kw)
    with pytest.raises(ValueError, match=r"missing='drop'"):
        lmm.mixedlm("distance ~ age", ortho, **kw)  # missing="none" refuses too
    model = lmm.mixedlm("distance ~ age", ortho, missing="drop", **kw)
    assert model.nobs == len(ortho) - 2
    res = model.fit()
    assert res.converged and np.isfinite(res.llf)
    # the kept rows keep their labels
    assert list(res.fittedvalues.index) == list(ortho.index.delete([3, 10]))


def test_missing_in_unused_column_is_ignored(ortho):
    ortho["unused"] = np.nan
    model = lmm.mixedlm("distance ~ age", ortho, groups="Subject", missing="raise")
    assert model.nobs == len(ortho)


def test_single_row_group_is_fine(ortho):
    d = ortho.iloc[[0] + list(range(4, len(ortho)))]  # M01 keeps one row
    res = lmm.mixedlm(
        "distance ~ age * Sex", d, groups="Subject", cov_struct=lmm.AR1(time="visit")
    ).fit()
    assert res.converged
    assert res.random_effects["M01"].shape == (1,)


def test_rank_deficient_fixed_effects(ortho):
    ortho["age2"] = 2 * ortho["age"]
    with pytest.raises(ValueError, match=r"rank deficient .* 'age2'|rank deficient .* 'age'"):
        lmm.mixedlm("distance ~ age + age2", ortho, groups="Subject")


def test_rank_deficient_array_interface():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 1))
    X = pd.DataFrame({"const": 1.0, "x": x[:, 0], "x_copy": x[:, 0]})
    with pytest.raises(ValueError, match=r"'x_copy'|'x'"):
        lmm.MixedLM(rng.normal(size=20), X, np.repeat(np.arange(5), 4))


def test_wrong_cov_struct_type(ortho):
    with pytest.raises(TypeError, match="cov_struct must be a CovStruct"):
        lmm.mixedlm("distance ~ age", ortho, groups="Subject", cov_struct="ar1")


def test_non_convergence_warns_and_flags(ortho):
    model = lmm.mixedlm(
        "distance ~ age * Sex", ortho, groups="Subject", cov_struct=lmm.AR1(time="visit")
    )
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = model.fit(method="lbfgs", maxiter=1)
    assert res.converged is False
    assert "No" in res.summary().as_text().split("Converged:")[1][:20]


def test_boundary_fit_warns():
    # no between-subject variation: the random-intercept variance is estimated at zero
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"g": np.repeat(np.arange(30), 4), "x": rng.normal(size=120)})
    d["y"] = d["x"] + rng.normal(size=120)
    d.loc[:, "y"] -= d.groupby("g")["y"].transform("mean") * 0.9
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = lmm.mixedlm("y ~ x", d, groups="g").fit()
    assert any("boundary" in str(x.message) for x in w)
    assert res.cov_re.iloc[0, 0] < 1e-6


def test_array_interface_with_positions():
    d = lmm.datasets.load("orthodont")
    X = np.column_stack([np.ones(len(d)), d["age"]])
    model = lmm.MixedLM(
        d["distance"].to_numpy(),
        X,
        d["Subject"].to_numpy(),
        exog_re=np.ones(len(d)),
        cov_struct=lmm.AR1(time="visit"),
        positions=d["visit"].to_numpy(),
    )
    res = model.fit()
    ref = lmm.mixedlm(
        "distance ~ age", d, groups="Subject", re_formula="1", cov_struct=lmm.AR1(time="visit")
    ).fit()
    np.testing.assert_allclose(res.llf, ref.llf, rtol=1e-10)
    with pytest.raises(ValueError, match="needs 1 position column"):
        lmm.MixedLM(
            d["distance"].to_numpy(), X, d["Subject"].to_numpy(), cov_struct=lmm.AR1(time="visit")
        )


def test_array_interface_missing_drop():
    d = lmm.datasets.load("orthodont")
    y = d["distance"].to_numpy().copy()
    y[5] = np.nan
    X = np.column_stack([np.ones(len(d)), d["age"]])
    with pytest.raises(ValueError, match="missing or non-finite value in endog"):
        lmm.MixedLM(y, X, d["Subject"].to_numpy())
    m = lmm.MixedLM(y, X, d["Subject"].to_numpy(), missing="drop")
    assert m.nobs == len(d) - 1
