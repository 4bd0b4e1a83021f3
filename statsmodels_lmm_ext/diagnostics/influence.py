"""Influence of groups: deletion diagnostics from exact leave-one-group-out refits.

As SAS PROC MIXED's ``MODEL / INFLUENCE(EFFECT=subject ITER=n ESTIMATES)``: every group is
left out in turn, all parameters are re-estimated (:mod:`._deletion`), and the changes are
summarised per group.  With ``beta``, ``theta`` the full-data estimates, ``beta_(i)``,
``theta_(i)`` those without group ``i``, ``p = rank(X)``,
``Var(beta) = sigma^2 (X'H^-1X)^-1`` of the full data and ``Var(beta_(i))`` the same of the
reduced data at its own estimates, ``Var(theta)`` the inverse observed information:

- ``cookd = (beta - beta_(i))' Var(beta)^-1 (beta - beta_(i)) / p``;
- ``mdffits``: the same with ``Var(beta_(i))``;
- ``covratio = det Var(beta_(i)) / det Var(beta)``;
- ``covtrace = |tr(Var(beta)^-1 Var(beta_(i))) - p|``;
- ``cookd_cov = (theta - theta_(i))' Var(theta)^- (theta - theta_(i))`` (generalised inverse:
  variances estimated at zero are held fixed, as in ``cov_theta``);
- ``rld`` (REML) or ``ld`` (ML): ``2 (l(psi) - l(psi_(i)))``, the full data's (restricted)
  log-likelihood at the full and at the deleted estimates (``psi = theta`` for REML,
  ``(beta, theta)`` for ML; ``sigma^2`` is not profiled);
- ``press``: ``sum_j (y_ij - x_ij' beta_(i))^2`` over the group's rows.

References
----------
SAS Institute Inc., SAS/STAT User's Guide, The MIXED Procedure: "Residuals and Influence
Diagnostics" (Influence Diagnostics; Iterative Analysis).
Christensen, R., Pearson, L. M. and Johnson, W. (1992). Case-deletion diagnostics for mixed
models. *Technometrics* 34, 38-45.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .._display import NotedFrame
from .._threads import blas_threads
from ._deletion import DeletionFits

__all__ = ["InfluenceWarning", "influence"]

STATISTICS = ("cookd", "mdffits", "covratio", "covtrace", "cookd_cov")


#: threads running deletion batches (their BLAS limited to one thread each), and the
#: number of groups from which the refits are split into at least that many batches
_THREADS = 2
_SPLIT_MIN = 64
#: numeric work per parameter set (sum of units x n x n) from which threads pay
#: (measured: 2,135 (random intercept + AR(1), 1,000 subjects) 1.9 -> 1.3 s; 80 (UN over few
#: visit patterns) 1.9 -> 2.3 s)
_THREAD_WORK = 500


class InfluenceWarning(UserWarning):
    """Some groups' deletion fits could not be computed or did not converge (the rows say
    why in their ``reason`` column)."""


@blas_threads()
def influence(res, groups=None) -> pd.DataFrame:
    """Deletion diagnostics of groups from exact leave-one-group-out refits.

    Parameters
    ----------
    res : MixedLMResults
        Results of :class:`~statsmodels_lmm_ext.MixedLM` (REML or ML).
    groups : sequence, optional
        Labels of the groups to leave out (default: all).

    Returns
    -------
    DataFrame
        One row per group (index: group labels) with ``nobs``, the statistics of the module
        docstring, ``converged``, ``reason`` (why a row is NaN or not converged, ``""`` if
        neither) and ``change[<name>]`` = deleted minus full estimate of every fixed effect
        and covariance parameter (``covariance_parameters()`` names and scale).
    """
    model = res.model
    eng, spec = model.engine, res.cov_params_spec
    if spec.free_mask is not None and not spec.free_mask.all():
        raise NotImplementedError(
            "influence() refits every parameter; fits with free=... (parameters held fixed) "
            "are not supported: refit without free="
        )
    labels = list(model.group_labels)
    gids = _group_ids(groups, labels)
    fits = DeletionFits(eng, spec, res.reml)
    reasons = _unidentified(res, fits, gids, labels)
    todo = gids[reasons == ""]
    est = _refit_all(res, fits, todo)
    reasons[reasons == ""] = np.where(est["converged"], "", "the deletion refit did not converge")
    out = _frame(res, fits, gids, todo, est, reasons, labels)
    bad = out["reason"] != ""
    if bad.any():
        first = out.index[bad][0]
        warnings.warn(
            f"{int(bad.sum())} of {len(out)} deletion fits failed or did not converge (their "
            f"rows say why in 'reason'); group {first!r}: {out.loc[first, 'reason']}",
            InfluenceWarning,
            stacklevel=4,  # the results method, the blas_threads wrapper, then the caller
        )
    return out


def _group_ids(groups, labels: list) -> np.ndarray:
    if groups is None:
        return np.arange(len(labels), dtype=np.intp)
    index = {g: i for i, g in enumerate(labels)}
    groups = [groups] if isinstance(groups, str) or np.ndim(groups) == 0 else list(groups)
    missing = [g for g in groups if g not in index]
    if missing:
        raise KeyError(
            f"groups {missing!r} are not groups of the model; its groups are labelled like "
            f"{labels[:5]!r}"
        )
    return np.array([index[g] for g in groups], dtype=np.intp)


def _group_rows(eng, g: int) -> np.ndarray:
    return eng.order[eng.starts[g] : eng.starts[g] + eng.sizes[g]]


def _unidentified(res, fits: DeletionFits, gids: np.ndarray, labels: list) -> np.ndarray:
    """Why the data without each group do not identify the model ("" where they do): too few
    rows, a rank-deficient fixed-effects design, or covariance parameters that only the group
    informs (``dH/dtheta_k`` zero in every other group: a visit only it has, a pair of visits
    only it has together, a variance component level only it has)."""
    eng = fits.eng
    N, p = eng.nobs, eng.k_fe
    names = _support_names(res)
    support, counts = _support(res, fits)
    out = np.full(len(gids), "", dtype=object)
    for j, g in enumerate(gids):
        rows = _group_rows(eng, g)
        n_left = N - len(rows)
        Xg = eng.Xc[rows]
        # the conditioned design has X'X = N I (DESIGN.md section 9)
        w, v = np.linalg.eigh(N * np.eye(p) - Xg.T @ Xg)
        lone = np.flatnonzero(support[g] & (counts == 1))
        if n_left - p <= 0:
            why = f"only {n_left} rows would be left for {p} fixed effects"
        elif p and w[0] <= 1e-9 * N:
            null = eng.cond.T_solve(v[:, 0])
            cols = [
                res.model.exog_names[k]
                for k in np.flatnonzero(np.abs(null) > 1e-6 * np.abs(null).max())
            ]
            why = (
                "the fixed-effects design would lose rank (a column or level only this group "
                f"has; columns involved: {', '.join(cols)})"
            )
        elif lone.size:
            why = (
                f"the covariance parameters {', '.join(names[k] for k in lone)} are informed by "
                "this group alone (e.g. a visit only it has)"
            )
        else:
            continue
        out[j] = f"without group {labels[g]!r}, {why}"
    return out


def _support_names(res) -> list[str]:
    spec = res.cov_params_spec
    names = spec.theta_names("table")
    return names[: spec.k_lin] + names[spec.k_lin + 1 :]


def _support(res, fits: DeletionFits):
    """Which covariance parameters each group informs: ``(support (G, k) bool, counts (k,))``
    from the nonzero pattern of ``dH/dtheta_k`` of its unit at the estimates."""
    eng, spec = fits.eng, fits.spec
    lam = spec.lin(res.cov_re_unscaled, res.vcomp / res.scale)[None]
    rho = np.asarray(res._rho, float)[None]
    k = eng.k_lin + eng.k_corr
    support = np.zeros((eng.n_groups, k), bool)
    for ci, ch in enumerate(eng.chunks):
        _, dR, _ = eng.H(ch, lam, rho, order=1)
        nz = np.concatenate([ch.K, dR[0]], axis=0) if eng.k_corr else ch.K
        nz = (np.abs(nz) > 0).any(axis=(-1, -2)).T  # (U, k)
        members = np.flatnonzero(fits.chunk_of == ci)
        support[members] = nz[fits.unit_of[members]]
    return support, support.sum(axis=0)


def _refit_all(res, fits: DeletionFits, todo: np.ndarray) -> dict:
    """Batched deletion refits of the groups ``todo``, and the reduced and full data's
    likelihood quantities at their estimates."""
    eng, spec = fits.eng, fits.spec
    u0 = fits.start(res.cov_re_unscaled, res.vcomp / res.scale, res._rho)
    hinv0 = fits.full_inverse_hessian(u0) if spec.k else None
    step = fits.batch_size()
    # per parameter set, the refits' numeric work is the units' n x n blocks; where it is
    # large, numpy (which releases the GIL) dominates and a second thread pays for the
    # Python overhead of a second batch; where it is small (few visit patterns), it does not
    work = sum(len(ch.weight) * ch.n * ch.n for ch in eng.chunks)
    threads = _THREADS if len(todo) >= _SPLIT_MIN and work >= _THREAD_WORK else 1
    step = min(step, -(-len(todo) // threads))

    def one(gids):
        U, _, conv, est = fits.refit(gids, u0, hinv0)
        _, rho, psi, vc = spec.natural_many(U)
        return {**est, "converged": conv, "psi": psi, "vc": vc, "rho": rho}

    batches = [todo[a : a + step] for a in range(0, len(todo), step)]
    # the batches are independent and their work is numpy's (which releases the GIL, each
    # thread's BLAS limited to one thread): two threads use both cores of a small machine
    parts = Parallel(n_jobs=min(threads, len(batches)) or 1, prefer="threads")(
        delayed(one)(g) for g in batches
    )
    if not parts:
        return {"converged": np.zeros(0, bool), "beta": np.zeros((0, eng.k_fe))}
    return {key: np.concatenate([d[key] for d in parts]) for key in parts[0]}


def _likelihood_distance(res, est: dict, beta_i, scale_i) -> np.ndarray:
    """``-2 l`` of the full data at the deleted estimates minus ``-2 l`` at the full ones
    (``sigma^2`` not profiled; ML: at the deleted ``beta`` too)."""
    N, p = res.model.nobs, res.k_fe
    s_hat = est["full_scale"]  # the full data's profiled sigma^2 at theta_(i)
    if res.reml:
        dfr = N - p
        m2l = est["full_dev"] + dfr * (np.log(scale_i / s_hat) + s_hat / scale_i - 1.0)
    else:
        d = beta_i - est["full_beta"]
        quad = np.einsum("ba,bac,bc->b", d, est["full_A"], d)
        m2l = est["full_dev"] + N * (np.log(scale_i / s_hat) - 1.0) + (N * s_hat + quad) / scale_i
    return m2l + 2.0 * res.llf


def _statistics(res, fits: DeletionFits, est: dict) -> dict:
    """The deletion statistics (arrays over the refitted groups)."""
    spec = fits.spec
    p = res.k_fe
    beta_i, scale_i = est["beta"], est["scale"]
    V_full = np.asarray(res._cov_fe)
    V_i = scale_i[:, None, None] * est["Ainv"]
    d = np.asarray(res.fe_params) - beta_i
    out = {
        "cookd": np.einsum("ba,ba->b", d, np.linalg.solve(V_full, d.T).T) / p,
        "mdffits": np.einsum("ba,ba->b", d, np.linalg.solve(V_i, d[..., None])[..., 0]) / p,
        "covratio": np.exp(np.linalg.slogdet(V_i)[1] - np.linalg.slogdet(V_full)[1]),
        "covtrace": np.abs(np.trace(np.linalg.solve(V_full, V_i), axis1=1, axis2=2) - p),
    }
    theta = spec.theta(res.cov_re, res.vcomp, res.scale, res._rho)
    lam_i = spec.lin_many(est["psi"] * scale_i[:, None, None], est["vc"] * scale_i[:, None])
    theta_i = np.concatenate([lam_i, scale_i[:, None], est["rho"]], axis=1)
    dt = theta_i - theta
    W = res.variance_model.cov_theta("observed")
    out["cookd_cov"] = np.einsum("ba,ba->b", dt, dt @ np.linalg.pinv(W, hermitian=True))
    out["ld"] = _likelihood_distance(res, est, beta_i, scale_i)
    out["change_beta"], out["change_theta"] = -d, dt
    return out


def _press(eng, gids: np.ndarray, beta_i: np.ndarray) -> np.ndarray:
    out = np.empty(len(gids))
    for j, g in enumerate(gids):
        rows = _group_rows(eng, g)
        out[j] = np.sum((eng.y[rows] - eng.X[rows] @ beta_i[j]) ** 2)
    return out


def _frame(res, fits, gids, todo, est, reasons, labels) -> pd.DataFrame:
    eng, spec = fits.eng, fits.spec
    ld_name = "rld" if res.reml else "ld"
    fe_names = list(res.model.exog_names)
    th_names = spec.theta_names("table")
    cols = ["nobs", *STATISTICS, ld_name, "press"]
    cols += [f"change[{n}]" for n in fe_names + th_names]
    values = np.full((len(gids), len(cols)), np.nan)
    values[:, 0] = eng.sizes[gids]
    done = np.isin(gids, todo)
    if todo.size:
        s = _statistics(res, fits, est)
        block = [s[c] for c in STATISTICS] + [s["ld"], _press(eng, todo, est["beta"])]
        values[done, 1 : 1 + len(block)] = np.column_stack(block)
        values[done, 1 + len(block) :] = np.column_stack([s["change_beta"], s["change_theta"]])
    index = pd.Index([labels[g] for g in gids], name="group")
    out = NotedFrame(values, index=index, columns=cols)
    out["nobs"] = out["nobs"].astype(int)
    conv = np.zeros(len(gids), bool)
    conv[done] = est["converged"]
    out.insert(len(STATISTICS) + 3, "converged", conv)
    out.insert(len(STATISTICS) + 4, "reason", reasons.astype(str))
    method = "REML" if res.reml else "ML"
    out.attrs["title"] = f"Influence of groups (deletion refits by {method})"
    out.attrs["notes"] = [
        "cookd, mdffits, covratio, covtrace: fixed effects; cookd_cov: covariance parameters; "
        f"{ld_name}: {'restricted ' if res.reml else ''}likelihood distance",
        "change[...]: estimate without the group minus the full-data estimate",
    ]
    return out
