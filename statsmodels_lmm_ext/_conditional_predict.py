"""Conditional prediction of unobserved rows given a subject's observed ones.

For the rows of one subject in ``newdata``, split into observed ``o`` (response present) and
new ``n`` (response missing), with the fitted ``V = Z G Z' + R``::

    E[y_n | y_o] = X_n beta + V_no V_oo^-1 (y_o - X_o beta)

(the best linear unbiased predictor; random effects and variance components enter through
``V``, a variance component's design rebuilt from ``vc_formula`` on the subject's rows of
``newdata``, so that rows at a level no observed row has share nothing through it).  Its
standard error (``se``, as mmrm's
``predict(fit, newdata, se.fit = TRUE, interval = "confidence")``) is that of the estimated
conditional mean, including the uncertainty of ``beta_hat`` (covariance
``Phi``); ``se_pred`` adds the conditional variance of the new response (a prediction
interval's SE; mmrm simulates it)::

    se^2 = diag(A Phi A'),   se_pred^2 = se^2 + diag(V_nn - V_no V_oo^-1 V_on),
    A = X_n - V_no V_oo^-1 X_o.

Observation weights of ``newdata`` enter ``V`` as at the fit (mmrm 0.3.11 predicts with unit
weights).  A subject without observed rows gets the marginal ``X_n beta``.
Observed rows are returned as they are (their prediction is the response, with SEs 0).

References
----------
Henderson, C. R. (1975). Best linear unbiased estimation and prediction under a selection
model. *Biometrics* 31, 423-447.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from ._formula import design_rows, model_spec
from ._residual_terms import encode_positions, known_codes

__all__ = ["conditional_predict"]


def _random_design(model, newdata: pd.DataFrame) -> np.ndarray:
    """``Z`` of the new rows' random effects (random intercept, ``re_formula``, or none)."""
    if model.k_re == 0:
        return np.zeros((len(newdata), 0))
    re_formula = getattr(model, "_re_formula", None)
    if re_formula is None:
        return np.ones((len(newdata), 1))
    return np.asarray(patsy.dmatrix(re_formula, newdata, NA_action="raise"), dtype=float)


def _vc_formulas(model) -> list[str]:
    """The ``vc_formula`` of each variance component, in the model's order (its names)."""
    if not model.k_vc:
        return []
    formulas = getattr(model, "_vc_formula", None)
    if formulas is None:
        raise ValueError(
            "conditional prediction with variance components needs them as vc_formula: "
            "fit the model with lmm.mixedlm(..., vc_formula={name: formula}) (an exog_vc "
            "array cannot be rebuilt for new rows)"
        )
    return [formulas[name] for name in model.exog_vc.names]


def _subject_blocks(res, pos: np.ndarray, Z: np.ndarray, Zvc: list[np.ndarray]):
    """``V`` of the rows of one subject: positions ``pos`` (n, d), random-effects design
    ``Z`` (n, q) and one design per variance component (n, m_j), each column an independent
    effect of variance ``vcomp_j``."""
    cs = res.model.cov_struct
    visit = cs.visit_index(np.concatenate([res.model.positions, pos]))[-len(pos) :]
    geom = cs.geometry(pos[None], visit[None])
    R = cs.residual(np.asarray(res._rho, float), geom).value[0]
    V = res.scale * R + Z @ np.asarray(res.cov_re, float) @ Z.T
    for vc, Zj in zip(np.atleast_1d(res.vcomp), Zvc, strict=True):
        V += vc * (Zj @ Zj.T)
    return V


def conditional_predict(res, newdata: pd.DataFrame) -> pd.DataFrame:
    """``prediction``, ``se`` and ``se_pred`` of every row of ``newdata`` (module docstring)."""
    model = res.model
    group_col = getattr(model, "_group_column", None)
    if group_col is None or group_col not in newdata.columns:
        raise ValueError(
            "conditional prediction needs the model's subject column in newdata; fit the "
            "model with the formula interface and groups='<column>'"
        )
    yname = model.endog_names
    y = (
        pd.to_numeric(newdata[yname], errors="coerce").to_numpy(float)
        if yname in newdata.columns
        else np.full(len(newdata), np.nan)
    )
    coded = _visit_codes(newdata, getattr(model, "position_labels", None) or {})
    pos = encode_positions(model.cov_struct, coded, newdata[group_col].to_numpy())
    vc_forms = _vc_formulas(model)
    X = design_rows(model_spec(model), newdata)
    Z = _random_design(model, newdata)
    beta = np.asarray(res.fe_params, float)
    Phi = np.asarray(res._cov_fe, float)
    fit = X @ beta
    se = np.sqrt(np.einsum("ia,ab,ib->i", X, Phi, X))
    se_pred = se.copy()
    groups = newdata[group_col].to_numpy()
    for g in pd.unique(groups):
        rows = np.flatnonzero(groups == g)
        obs = rows[np.isfinite(y[rows])]
        new = rows[~np.isfinite(y[rows])]
        fit[obs], se[obs], se_pred[obs] = y[obs], 0.0, 0.0
        if new.size == 0:
            continue
        idx = np.concatenate([obs, new])
        sub = newdata.iloc[idx]
        Zvc = [np.asarray(patsy.dmatrix(f, sub, NA_action="raise"), float) for f in vc_forms]
        V = _subject_blocks(res, pos[idx], Z[idx], Zvc)
        k = obs.size
        Voo, Vno, Vnn = V[:k, :k], V[k:, :k], V[k:, k:]
        W = np.linalg.solve(Voo, Vno.T).T if k else np.zeros((new.size, 0))  # V_no V_oo^-1
        fit[new] += W @ (y[obs] - X[obs] @ beta)
        A = X[new] - W @ X[obs]
        var = np.einsum("ia,ab,ib->i", A, Phi, A)
        se[new] = np.sqrt(np.clip(var, 0.0, None))
        se_pred[new] = np.sqrt(np.clip(var + np.diag(Vnn - W @ Vno.T), 0.0, None))
    return pd.DataFrame({"prediction": fit, "se": se, "se_pred": se_pred}, index=newdata.index)


def _visit_codes(data: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """``data`` with its visit columns (categorical or string at the fit) as the fitted codes;
    an error names a visit the fitted model does not know."""
    out = {col: known_codes(data, col, levels) for col, levels in labels.items()}
    return data.assign(**out) if out else data
