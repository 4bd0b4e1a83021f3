"""The fixed-effects design spec of a formula model: terms, their columns, Type III contrasts.

Works with the patsy ``DesignInfo`` that statsmodels keeps at ``model.data.model_spec``
(statsmodels >= 0.15) or ``model.data.design_info`` (older versions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["design_info", "model_spec", "term_columns", "type3_contrasts"]


def model_spec(model):
    """The formula design spec of a model (patsy ``DesignInfo`` or formulaic ``ModelSpec``)."""
    data = model.data
    spec = getattr(data, "model_spec", None) or getattr(data, "design_info", None)
    if spec is None:
        raise ValueError(
            "this needs the model's formula (term-wise tests, marginal means): build the model "
            "from a formula (lmm.mixedlm, smf.mixedlm, smf.ols ...)"
        )
    return spec


def design_info(model):
    """The patsy DesignInfo of a formula model, or a clear error."""
    spec = model_spec(model)
    if not hasattr(spec, "term_codings"):
        raise NotImplementedError(
            f"term-wise tests support patsy design specs; got {type(spec).__name__} "
            "(statsmodels' formulaic engine); use the patsy engine"
        )
    return spec


def term_columns(model) -> dict[str, np.ndarray]:
    """Column indices of each model term (``Intercept`` included), in formula order."""
    di = design_info(model)
    return {name: np.arange(sl.start, sl.stop) for name, sl in di.term_name_slices.items()}


def _factor_columns(factor, info, frame, NA):
    """Evaluated columns of one factor: level codes (categorical) or values (numeric)."""
    from patsy.categorical import categorical_to_int

    value = factor.eval(info.state, frame)
    if info.type == "categorical":
        return categorical_to_int(value, info.categories, NA)
    return np.asarray(value, dtype=float).reshape(len(frame), -1)


def _coded_design(di, frame: pd.DataFrame, coding: str):
    """Design of ``di`` on ``frame`` with every categorical factor re-coded.

    ``coding="treatment"``: reduced-rank contrasts become treatment contrasts (first level
    dropped), full-rank codings stay indicators — the design R builds with contr.treatment.
    ``coding="full"``: every categorical factor as indicators of all its levels (R's
    ``model.matrix(~ 0 + term)`` per term, lmerTest's "rank-deficient" design).

    Returns the matrix, one label per column ``(term, ((factor, level or column), ...))`` and
    the column indices of each term.
    """
    from patsy.missing import NAAction

    NA = NAAction(NA_types=[])
    evaluated = {f: _factor_columns(f, fi, frame, NA) for f, fi in di.factor_infos.items()}
    n = len(frame)
    blocks, labels, cols, start = [], [], {}, 0
    for term, subterms in di.term_codings.items():
        name = term.name()
        width = 0
        for st in subterms:
            if coding == "full" and st is not subterms[0]:
                continue  # all of the term's columns come from one fully coded block
            block = np.ones((n, 1))
            lab = [()]
            factors = term.factors if coding == "full" else st.factors
            for f in factors:
                fi = di.factor_infos[f]
                if fi.type == "categorical":
                    k = len(fi.categories)
                    full = coding == "full" or st.contrast_matrices[f].matrix.shape[1] == k
                    levels = list(range(k)) if full else list(range(1, k))
                    part = np.eye(k)[evaluated[f]][:, levels]
                    keys = [(f.name(), fi.categories[j]) for j in levels]
                else:
                    part = evaluated[f]
                    keys = [(f.name(), j) for j in range(part.shape[1])]
                block = (block[:, :, None] * part[:, None, :]).reshape(n, -1)
                lab = [a + (b,) for a in lab for b in keys]
            blocks.append(block)
            labels += [(name, key) for key in lab]
            width += block.shape[1]
        cols[name] = np.arange(start, start + width)
        start += width
    return np.hstack(blocks), labels, cols


def _contained_in(di) -> dict[str, list[str]]:
    """For each term, the terms containing it: a superset of its categorical factors with the
    same numeric covariates (SAS / lmerTest containment)."""
    sets = {}
    for term in di.terms:
        cat = {f.name() for f in term.factors if di.factor_infos[f].type == "categorical"}
        num = {f.name() for f in term.factors if di.factor_infos[f].type != "categorical"}
        sets[term.name()] = (cat, num)
    out = {}
    for t, (cat, num) in sets.items():
        out[t] = [
            u for u, (cu, nu) in sets.items() if u != t and cat <= cu and num == nu and cat != cu
        ]
    return out


def type3_contrasts(model, max_rows: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Type III hypothesis matrices ``L`` (one per term but the intercept) on ``beta``.

    lmerTest's construction (Kuznetsova et al. 2017, ``get_contrasts_type3``), which follows
    SAS: with ``X`` the treatment-coded design and ``X_full`` the over-parameterised design of
    all level indicators, ``L0 = (X^+ X_full)'``; each term's columns of ``L0`` are made
    orthogonal to those of the terms containing it (higher-order terms first); the rows for the
    model's coefficients are kept, and mapped to the user's coding by ``X^+ X_user``.  The
    hypotheses do not depend on the contrast coding the user chose.  (The F statistics do not
    depend on the choice of rows either; the multi-df Satterthwaite ddf does, which is why the
    rows are built exactly as lmerTest builds them.)
    """
    cache = model.__dict__.setdefault("_type3_cache", {})
    if "L" in cache:
        return cache["L"]
    di = design_info(model)
    frame = model.data.frame
    if frame is None:
        raise ValueError("the model keeps no data frame; cannot build Type III contrasts")
    # The hypotheses depend on the design's distinct rows only: use those (a random subset of
    # them when there are many, falling back to all rows if that loses rank).
    exog = np.asarray(model.exog)
    rng = np.random.default_rng(seed)
    pool = np.arange(len(exog))
    if len(pool) > 50 * max_rows:
        pool = np.sort(rng.choice(pool, 50 * max_rows, replace=False))
    _, first = np.unique(exog[pool], axis=0, return_index=True)
    rows = pool[first]
    if len(rows) > max_rows:
        rows = rng.choice(rows, max_rows, replace=False)
    if max_rows >= len(frame):
        rows = np.arange(len(frame))
    frame = frame.iloc[np.sort(rows)]
    from patsy import build_design_matrices

    X_user = np.asarray(build_design_matrices([di], frame, NA_action="drop")[0])
    X, labels, cols = _coded_design(di, frame, "treatment")
    Xf, labels_f, cols_f = _coded_design(di, frame, "full")
    if X_user.shape[0] != X.shape[0]:
        raise ValueError("missing values in the model's data frame; refit with missing='drop'")
    p = X.shape[1]
    if np.linalg.matrix_rank(X) < p:
        if len(frame) < len(model.data.frame):
            del model.__dict__["_type3_cache"]
            return type3_contrasts(model, max_rows=len(model.data.frame))
        raise ValueError(
            "the fixed-effects design is rank deficient; Type III tests need full rank"
        )
    Xpinv = np.linalg.pinv(X)
    L = (Xpinv @ Xf).T  # rows: full-design columns; columns: treatment coefficients
    L[np.abs(L) < 1e-10] = 0.0
    contained = _contained_in(di)
    order = sorted(di.terms, key=lambda t: len(t.factors), reverse=True)
    for term in order:
        t = term.name()
        if contained[t]:
            A = L[:, np.concatenate([cols[u] for u in contained[t]])]
            B = L[:, cols[t]]
            coef, *_ = np.linalg.lstsq(A, B, rcond=None)
            R = B - A @ coef
            R[np.abs(R) < 1e-10] = 0.0
            L[:, cols[t]] = R
    row_of = {lab: i for i, lab in enumerate(labels_f)}
    L = L[[row_of[lab] for lab in labels]]  # rows of the model's coefficients
    to_user = Xpinv @ X_user  # beta_trt = to_user @ beta_user
    out = {}
    for name, c in cols.items():
        if name == "Intercept":
            continue
        Lt = L[:, c].T
        Lt = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
        out[name] = Lt @ to_user
    cache["L"] = out
    return out
