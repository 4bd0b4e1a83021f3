"""Parametric-bootstrap prediction intervals for new observations of a mixed model.

References
----------
Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*. CUP.
Hall, P. and Maiti, T. (2006). On parametric bootstrap methods for small area prediction.
*JRSS B* 68, 221-238.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..adapters import Fitted
from .failures import ReplicateFailures, summarise, summarise_warnings, warn_failures
from .parallel import check_n_jobs, run_replicates
from .progress import check_progress
from .random import check_nsim, normals
from .simulation import fitted_for, spec_of
from .statistics import BootstrapStatistic


class BootstrapPrediction(ReplicateFailures):
    """Parametric-bootstrap prediction intervals (see :func:`bootstrap_predict`).

    Attributes
    ----------
    predicted : Series
        Point predictions of the original fit: ``x'beta_hat`` for a new group, plus the
        group's predicted random effect ``z'b_hat_g`` for a known group.
    errors : ndarray (m, nsim_ok)
        Bootstrap prediction errors ``y_new* - y_hat*``.
    samples : ndarray (m, nsim_ok)
        ``predicted + errors``: draws of the new observations.
    lower, upper : Series
        Percentiles ``alpha / 2`` and ``1 - alpha / 2`` of ``samples`` (NaN if no replicate
        succeeded: the result is then not valid, ``valid`` is False and ``reason`` says why).
    nsim, nsim_ok, nsim_failed : int
    failed : ndarray of int
        Indices of the failed replicates.
    failures : DataFrame
        The failed replicates (index ``replicate``) and the ``reason`` of each.
    valid : bool
    reason : str or None
    new_group : bool
    alpha : float
    notes : list of str
    """

    def __init__(self, predicted, run, index, alpha, new_group):
        self.index = index
        self.predicted = pd.Series(predicted, index=index, name="predicted")
        self.errors = np.ascontiguousarray(run.values[run.ok].T)  # (m, nsim_ok)
        self.samples = np.asarray(predicted)[:, None] + self.errors
        self.alpha = alpha
        self.new_group = new_group
        self._count_failures(run)
        if self.nsim_ok:
            lo, hi = np.quantile(self.samples, [alpha / 2, 1 - alpha / 2], axis=1)
        else:
            lo = hi = np.full(len(index), np.nan)
        self.lower = pd.Series(lo, index=index, name="pi_lower")
        self.upper = pd.Series(hi, index=index, name="pi_upper")
        self.notes = []
        if self.nsim_failed:
            self.notes.append(
                f"{self.nsim_failed} of {self.nsim} refits failed and were left out "
                f"({summarise(self.failures['reason'])})"
            )
        if run.warnings:
            self.notes.append(f"warnings during the refits: {summarise_warnings(run.warnings)}")

    def summary_frame(self) -> pd.DataFrame:
        """Prediction, bootstrap SD of the prediction error and the interval, per new row."""
        if self.nsim_ok > 1:
            se = self.errors.std(axis=1, ddof=1)
        else:  # too few successful replicates for a spread
            se = np.full(len(self.index), np.nan)
        return pd.DataFrame(
            {
                "predicted": self.predicted,
                "se_pred": se,
                "pi_lower": self.lower,
                "pi_upper": self.upper,
            },
            index=self.index,
        )

    def summary(self) -> str:
        """The table of :meth:`summary_frame` with replicate counts and notes."""
        kind = "a new group" if self.new_group else "known groups"
        head = (
            f"Bootstrap {100 * (1 - self.alpha):g}% prediction intervals for {kind} "
            f"(nsim = {self.nsim}, used = {self.nsim_ok}, failed = {self.nsim_failed})"
        )
        lines = [head, self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}")]
        lines += [f"Note: {n}" for n in self.notes]
        if not self.valid:
            lines.append(f"Not valid: {self.reason}")
        return "\n".join(lines)

    __str__ = summary


# ---------------------------------------------------------------------------------------------
# The new rows
# ---------------------------------------------------------------------------------------------


def _new_design(res, exog_new) -> tuple[np.ndarray, pd.Index]:
    """Fixed-effects design (m, k_fe) of the new rows and their index."""
    if isinstance(exog_new, pd.DataFrame | pd.Series | dict):
        X, index = res._transform_predict_exog(exog_new, transform=True)
        X = np.asarray(X, float)
        index = exog_new.index if isinstance(exog_new, pd.DataFrame | pd.Series) else range(len(X))
    else:
        X = np.atleast_2d(np.asarray(exog_new, float))
        index = range(X.shape[0])
    k_fe = res.model.exog.shape[1]
    if X.shape[1] != k_fe:
        raise ValueError(f"exog_new gives {X.shape[1]} fixed-effect columns; the model has {k_fe}")
    return X, pd.Index(index)


def _new_re_design(fit: Fitted, exog_re_new, m: int) -> np.ndarray:
    """Random-effects design (m, q) of the new rows; a random intercept can be inferred."""
    q = fit.k_re
    if exog_re_new is None:
        if q == 1 and np.all(fit.exog_re == 1.0):
            return np.ones((m, 1))
        if q == 0:
            return np.zeros((m, 0))
        raise ValueError(
            f"the model has random effects {list(fit.lmm_model.data.exog_re_names)}: pass "
            "exog_re_new, the random-effects design (m, q) of the new rows"
        )
    Zn = np.asarray(exog_re_new, float)
    if Zn.size != m * q:
        raise ValueError(f"exog_re_new must have shape ({m}, {q}); got {Zn.shape}")
    return Zn.reshape(m, q)


def _known_groups(fit: Fitted, groups, Zn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group codes of the new rows' known groups and their predicted random effects ``z'b_g``."""
    m, q = Zn.shape
    if groups is None:
        raise ValueError("new_group=False needs groups=, the known group of each new row")
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != m:
        raise ValueError(f"groups has {len(groups)} labels for {m} new rows")
    labels = list(fit.lmm_model.group_labels)
    pos = {g: i for i, g in enumerate(labels)}
    unknown = [g for g in groups if g not in pos]
    if unknown:
        raise ValueError(
            f"unknown group(s) {unknown[:3]}; known groups are e.g. {labels[:5]} "
            "(use new_group=True for a group not in the data)"
        )
    re = fit.results.random_effects
    b = np.array([np.asarray(re[g])[:q] for g in groups]).reshape(m, q)
    return np.array([pos[g] for g in groups]), np.einsum("ia,ia->i", Zn, b)


# ---------------------------------------------------------------------------------------------
# The statistic and the intervals
# ---------------------------------------------------------------------------------------------


class PredictionError(BootstrapStatistic, name="prediction_error"):
    """Errors ``y_new* - y_hat*`` of predicting new observations (one column per new row).

    Parameters
    ----------
    results : fitted mixed model
    exog_new, new_group, groups, exog_re_new
        As for :func:`bootstrap_predict`.

    Attributes
    ----------
    predicted : ndarray (m,)
        Predictions of the original fit.
    index : Index
        Labels of the new rows.
    """

    batch_state = ("specs", "spec", "Xn", "Zn", "gcodes", "new_group")

    def __init__(self, results, exog_new, *, new_group=True, groups=None, exog_re_new=None):
        fit = fitted_for(results)
        if fit.kind != "lmm":
            raise TypeError("bootstrap_predict needs a mixed model (for OLS use get_prediction)")
        if fit.vc_names:
            raise NotImplementedError("bootstrap_predict does not support variance components")
        self.Xn, self.index = _new_design(fit.results, exog_new)
        self.Zn = _new_re_design(fit, exog_re_new, len(self.Xn))
        self.spec = spec_of(fit)
        self.specs = (self.spec,)
        self.new_group = bool(new_group)
        self.gcodes = np.zeros(0, int)
        self.predicted = self.Xn @ fit.beta
        if not new_group:
            self.gcodes, blup = _known_groups(fit, groups, self.Zn)
            self.predicted = self.predicted + blup
        self.names = [str(i) for i in self.index]

    def batch(self, seeds) -> dict:
        spec, Xn, Zn, gcodes = self.spec, self.Xn, self.Zn, self.gcodes
        m, q = Zn.shape
        n_groups = spec.engine.n_groups
        Z, E = normals(seeds, spec.nobs, extra=n_groups * q + m * (q + 1))
        B = Z.shape[1]
        b_true = spec.random_effects_draw(E[: n_groups * q])  # (B, n_groups, q)
        Y = spec.simulate_given_effects(Z, b_true)
        fits = spec.fit_many(Y, want_params=True)
        ok = fits["converged"]
        F = E[n_groups * q :].reshape(m, q + 1, B)
        # the new observations in the bootstrap world (whose truth is the original fit) ...
        truth = (Xn @ spec.beta)[:, None] + np.sqrt(spec.scale) * F[:, q, :]
        if self.new_group:
            Lg = np.linalg.cholesky(spec.scale * spec.psi + 1e-300 * np.eye(q)) if q else None
            if q:
                truth += np.einsum("ia,ab,ibB->iB", Zn, Lg, F[:, :q, :])
        else:
            truth += np.einsum("ia,Bia->iB", Zn, b_true[:, gcodes, :])
        # ... and their predictions from the refits
        pred = np.einsum("ia,Ba->iB", Xn, fits["beta"])
        if not self.new_group:
            pred += np.einsum("ia,Bia->iB", Zn, spec.blups(Y, fits, gcodes, ok))
        err = np.where(ok[None, :], truth - pred, np.nan)
        return {"values": err.T, "ok": ok, "reasons": fits["reasons"]}


def bootstrap_predict(
    results,
    exog_new,
    nsim: int = 1000,
    *,
    seed=None,
    new_group: bool = True,
    groups=None,
    exog_re_new=None,
    alpha: float = 0.05,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> BootstrapPrediction:
    """Parametric-bootstrap prediction intervals for new observations.

    Each replicate treats the fitted model as the truth: it simulates random effects ``b*`` and
    a response ``y*``, refits the model (warm start) and predicts the new rows, and draws the
    new observations themselves, adding the new-group and residual noise:

    * ``new_group=True`` (a group not in the data): ``y_new* = x'beta_hat + z'b_new + e`` with
      ``b_new ~ N(0, G_hat)``, ``e ~ N(0, sigma_hat^2)``; prediction ``y_hat* = x'beta*``.
    * ``new_group=False`` (a known group ``g``, from ``groups``): ``y_new* = x'beta_hat +
      z'b*_g + e`` with ``b*_g`` the effect the replicate simulated for ``g``; prediction
      ``y_hat* = x'beta* + z'b_hat*_g`` with the refit's BLUP.

    The bootstrap prediction errors ``y_new* - y_hat*`` (the ``"prediction_error"`` statistic
    of :data:`~statsmodels_lmm_ext.bootstrap.STATISTICS`) are added to the original prediction
    and the interval is their ``alpha/2`` and ``1 - alpha/2`` percentiles (Davison and
    Hinkley 1997, Algorithm 6.4; Hall and Maiti 2006, for random-effects models).  They
    account for the estimation of ``beta`` and, for a known group, for the prediction error
    of its random effect.

    Parameters
    ----------
    results : fitted model (ours or a statsmodels MixedLM result)
    exog_new : DataFrame or array_like (m, k_fe)
        New rows: a DataFrame with the formula's columns, or the fixed-effects design.
    nsim : int
    seed : None, int, SeedSequence or Generator
    new_group : bool
    groups : array_like (m,), optional
        Group labels of the new rows (required when ``new_group=False``).
    exog_re_new : array_like (m, q), optional
        Random-effects design of the new rows; default a random intercept (a column of ones),
        the only design that can be inferred.
    alpha : float
    n_jobs, progress
        As for :func:`pb_lrt`.

    Returns
    -------
    BootstrapPrediction

    Notes
    -----
    The residual of a new observation is drawn independently of the group's observed
    residuals (a correlation with them, e.g. AR(1), is not used), and each row is a separate
    prediction (the intervals are marginal).  Models with variance components are not
    supported.

    A replicate whose refit raises or does not converge is counted in ``nsim_failed``, listed
    with its reason in ``failures`` and left out (one :class:`BootstrapWarning` per call); if
    every replicate fails, the intervals are NaN and the result is not valid (``reason``).

    References
    ----------
    Hall, P. and Maiti, T. (2006). On parametric bootstrap methods for small area prediction.
    *JRSS B* 68, 221-238.
    """
    nsim = check_nsim(nsim)
    n_jobs = check_n_jobs(n_jobs)
    progress = check_progress(progress)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    stat = PredictionError(
        results, exog_new, new_group=new_group, groups=groups, exog_re_new=exog_re_new
    )
    run = run_replicates(stat, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    out = BootstrapPrediction(stat.predicted, run, stat.index, alpha, new_group)
    warn_failures(out)
    return out
