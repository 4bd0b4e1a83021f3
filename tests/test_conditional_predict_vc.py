"""Conditional prediction (``res.predict(newdata, conditional=True)``) with variance components.

References:

- ``tests/results/vc_predict.json``, written by ``tests/results/vc_predict.R`` (lme4 1.1.31,
  nlme 3.1-162, R 4.2.2): nlme's Oats with six responses removed (two single rows and one
  whole plot that no fitted row has), ``yield ~ nitro + (1 | Block/Variety)`` (REML).  With
  independent residuals the conditional mean of a row without response is the BLUP prediction
  ``x'beta + z'u``: lme4's ``predict(fit, newdata, allow.new.levels = TRUE)``, nlme's
  ``predict(level = 2)`` (level 1 for the unseen plot).
- a dense-matrix definition (the full ``N x N`` covariance, built here in the test from the
  fitted parameters) for an AR(1) residual structure with a random intercept and a variance
  component.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm

RESULTS = Path(__file__).resolve().parent / "results"
REF = json.loads((RESULTS / "vc_predict.json").read_text())


def oats():
    d = pd.DataFrame(REF["data"])
    d["y"] = pd.to_numeric(d["y"])
    return d


def oats_fit(data):
    model = lmm.mixedlm(
        "y ~ nitro",
        data,
        groups="Block",
        re_formula="1",
        vc_formula={"Variety": "0 + C(Variety)"},
        missing="drop",
    )
    return model.fit(reml=True)


def test_equals_the_blup_prediction_of_lme4_and_nlme():
    data = oats()
    res = oats_fit(data)
    assert_allclose(res.llf, REF["loglik"], rtol=1e-9)
    assert_allclose(res.fe_params.values, list(REF["coef"].values()), rtol=1e-6)
    assert_allclose(res.vcomp[0], REF["vcomp"]["Variety:Block"], rtol=1e-5)
    rows = REF["missing_rows"]
    assert data.y.iloc[rows].isna().all()
    pred = res.predict(data, conditional=True)
    # lme4's optimum (bobyqa, rhoend 1e-12) is ours to 1e-9 in the log-likelihood; predictions
    # ~100 agree to 1e-7 relative
    assert_allclose(pred.prediction.iloc[rows], REF["pred_lme4"], rtol=1e-7)
    # nlme stops a little earlier (its predictions are 1e-9..4e-9 relative from lme4's)
    assert_allclose(pred.prediction.iloc[rows], REF["pred_nlme"], rtol=1e-7)
    observed = np.setdiff1d(np.arange(len(data)), rows)
    assert_allclose(pred.prediction.iloc[observed], data.y.iloc[observed])
    assert (pred.se.iloc[observed] == 0).all()
    assert (pred.se.iloc[rows] > 0).all() and (pred.se_pred.iloc[rows] > pred.se.iloc[rows]).all()


def test_does_not_depend_on_row_order_or_labels():
    data = oats()
    ref = oats_fit(data).predict(data, conditional=True)
    other = data.sample(frac=1.0, random_state=5)
    other["Block"] = "b-" + other["Block"]  # relabelled subjects
    other["Variety"] = other["Variety"].map(lambda v: v[::-1])  # relabelled components
    pred = oats_fit(other).predict(other, conditional=True)
    assert_allclose(pred.loc[ref.index].to_numpy(), ref.to_numpy(), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------- dense definition
def ar1_vc_data(seed=3, n=40):
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(n), 6)
    t = np.tile(np.arange(1, 7), n)
    side = np.where(t <= 3, "L", "R")
    x = rng.normal(size=len(sub))
    e = np.zeros(len(sub))
    for i in range(n):  # AR(1) errors, correlation 0.6
        z = rng.normal(size=6)
        for k in range(6):
            e[6 * i + k] = z[k] if k == 0 else 0.6 * e[6 * i + k - 1] + 0.8 * z[k]
    u = 1.5 * rng.normal(size=n)[sub]
    v = rng.normal(size=2 * n)[2 * sub + (side == "R")]
    y = 1 + 0.5 * x + u + 0.8 * v + e
    return pd.DataFrame({"y": y, "x": x, "t": t, "side": side, "subject": [f"S{s}" for s in sub]})


def test_ar1_with_variance_component_matches_the_dense_definition():
    data = ar1_vc_data()
    data.loc[[2, 3, 4, 5, 11, 30, 31, 32, 33, 34, 35], "y"] = np.nan  # last subject: no rows
    res = lmm.mixedlm(
        "y ~ x",
        data,
        groups="subject",
        re_formula="1",
        vc_formula={"side": "0 + C(side)"},
        cov_struct=lmm.AR1(time="t"),
        missing="drop",
    ).fit()
    assert res.converged
    assert res.cov_re.iloc[0, 0] > 0.5 and res.vcomp[0] > 0.3  # both away from zero
    pred = res.predict(data, conditional=True)

    # the definition, with the whole N x N covariance
    rho = res.cov_struct_params["rho"]
    same = data.subject.to_numpy()[:, None] == data.subject.to_numpy()[None, :]
    t = data.t.to_numpy(float)
    side = data.side.to_numpy()
    V = same * (
        res.scale * rho ** np.abs(t[:, None] - t[None, :])
        + res.cov_re.iloc[0, 0]
        + res.vcomp[0] * (side[:, None] == side[None, :])
    )
    X = np.column_stack([np.ones(len(data)), data.x])
    beta = res.fe_params.to_numpy()
    Phi = np.asarray(res.cov_params())[:2, :2]
    y = data.y.to_numpy()
    o, n = np.flatnonzero(np.isfinite(y)), np.flatnonzero(~np.isfinite(y))
    W = V[np.ix_(n, o)] @ np.linalg.inv(V[np.ix_(o, o)])
    mean = X[n] @ beta + W @ (y[o] - X[o] @ beta)
    A = X[n] - W @ X[o]
    se = np.sqrt(np.diag(A @ Phi @ A.T))
    cvar = np.diag(V[np.ix_(n, n)] - W @ V[np.ix_(o, n)])
    assert_allclose(pred.prediction.iloc[n], mean, rtol=1e-10)
    assert_allclose(pred.se.iloc[n], se, rtol=1e-8)
    assert_allclose(pred.se_pred.iloc[n], np.sqrt(se**2 + cvar), rtol=1e-8)
    # rows 2..5 share side R with no observed row of subject S0: the component adds nothing
    # there, but the random intercept and AR(1) do; the fully missing subject S5 is marginal
    assert_allclose(pred.prediction.iloc[30:36], X[30:36] @ beta, rtol=1e-12)


def test_variance_components_without_vc_formula_are_refused():
    data = ar1_vc_data(n=10)
    formula_model = lmm.mixedlm(
        "y ~ x", data, groups="subject", vc_formula={"side": "0 + C(side)"}, re_formula="1"
    )
    model = lmm.MixedLM(
        formula_model.endog,
        formula_model.exog,
        groups=data.subject,
        exog_re=formula_model.exog_re,
        exog_vc=formula_model.exog_vc,
    )
    model._group_column = "subject"  # as if it had the subject column: only vc is missing
    res = model.fit()
    with pytest.raises(ValueError, match="vc_formula"):
        res.predict(data, conditional=True)
