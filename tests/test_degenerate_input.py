"""Degenerate input (issue 11, item 5): each case is refused with a ValueError that names the
problem and the fix, before any optimisation (the table in docs/numerical_conditioning.rst)."""

import numpy as np
import pandas as pd
import pytest

import statsmodels_lmm_ext as lmm


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "g": np.repeat(np.arange(12), 5).astype(float),
            "t": np.tile(np.arange(5), 12).astype(float),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


def _set(d, **cols):
    d = d.copy()
    for k, v in cols.items():
        d[k] = v(d) if callable(v) else v
    return d


def _at(d, row, col, value):
    d = d.copy()
    d.loc[row, col] = value
    return d


def _fit(d, cs=None, missing="none", formula="y ~ x"):
    return lmm.mixedlm(formula, d, groups="g", cov_struct=cs, missing=missing).fit()


CASES = {
    "constant y": (lambda d: _fit(_set(d, y=3.0)), r"the response 'y' is constant"),
    "y exactly linear in X": (
        lambda d: _fit(_set(d, y=lambda d: 1 + 2 * d.x)),
        r"'y' is an exact linear function of the covariates .*no variance can be estimated",
    ),
    "empty DataFrame": (lambda d: _fit(d.iloc[:0]), r"the model has no observations"),
    "n <= p": (
        lambda d: _fit(d.iloc[:2]),
        r"2 observation\(s\) cannot estimate 2 fixed effects \('Intercept', 'x'\)",
    ),
    "inf in groups": (
        lambda d: _fit(_at(d, 3, "g", np.inf)),
        r"missing or infinite values in column\(s\) groups \(g\) \(first at row 3\)",
    ),
    "NaN only in groups": (
        lambda d: _fit(_at(d, 3, "g", np.nan)),
        r"^missing values in column\(s\) groups \(g\) \(first at row 3\)",
    ),
    "non-integer AR1 time": (
        lambda d: _fit(_at(d, 3, "t", 1 + 1e-15), cs=lmm.AR1(time="t")),
        r"found 1.000000000000001\. Use Power",
    ),
    "duplicated coordinates, no nugget": (
        lambda d: _fit(
            _set(d, c=0.0, u=lambda d: d.t // 2), cs=lmm.Exponential(coords=["c", "u"])
        ),
        r"group 0.0 has two rows at the same coordinates \(c=0, u=0\).*use nugget=True",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_degenerate_input_is_refused(case):
    build, message = CASES[case]
    with pytest.raises(ValueError, match=message):
        build(_data())


def test_inf_in_y_is_dropped_with_missing_drop():
    d = _at(_data(), 3, "y", np.inf)
    res = lmm.mixedlm("y ~ x", d, groups="g", missing="drop").fit()
    assert res.nobs == 59
    with pytest.raises(ValueError, match=r"missing or infinite values in column\(s\) 'y'"):
        lmm.mixedlm("y ~ x", d, groups="g").fit()


def test_negative_seed():
    res = lmm.mixedlm("y ~ x", _data(), groups="g").fit()
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer .* got -1"):
        res.simulate(2, seed=-1)


def test_array_interface_refuses_infinite_group_labels():
    d = _data()
    g = d.g.to_numpy().copy()
    g[4] = np.inf
    with pytest.raises(ValueError, match=r"missing or infinite group label inf \(row 4\)"):
        lmm.MixedLM(d.y, np.column_stack([np.ones(60), d.x]), g)
    mod = lmm.MixedLM(d.y, np.column_stack([np.ones(60), d.x]), g, missing="drop")
    assert mod.nobs == 59
