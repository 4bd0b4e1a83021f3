"""The parametric-bootstrap likelihood-ratio test (``pbkrtest::PBmodcomp``).

The chi-square reference distribution of the likelihood-ratio statistic is replaced by the
distribution of ``LRT*`` over responses ``y*`` simulated from the fitted small model, each
refitted by both models (warm-started at the original estimates).

References
----------
Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*. CUP.
Halekoh, U. and Hojsgaard, S. (2014). A Kenward-Roger approximation and parametric bootstrap
methods for tests in linear mixed models - the R package pbkrtest. *J. Stat. Softw.* 59(9).
"""

from __future__ import annotations

import time
import warnings
from collections import Counter

import numpy as np
import pandas as pd
from scipy import stats

from ..inference.tests import TestResult
from .comparison import LRTResult, prepare, zero_tol
from .parallel import BootstrapWarning, run_replicates
from .random import check_nsim, normals
from .simulation import spec_of
from .statistics import BootstrapStatistic, failed_batch


class LikelihoodRatio(BootstrapStatistic, name="lrt"):
    """``LRT* = 2 (l*_large - l*_small)`` of responses simulated from the small model.

    Parameters
    ----------
    results : fitted model
        The small model (the null hypothesis; responses are simulated from it).
    large : fitted model
        The model it is nested in.
    reml : bool, optional
        As for :func:`~statsmodels_lmm_ext.bootstrap.lrt`.
    """

    batch_state = ("specs", "tol")

    def __init__(self, results, *, large, reml: bool | None = None):
        small, large_, same_fe, notes = prepare(large, results, reml=reml, ordered=True)
        self.test = LRTResult(small, large_, same_fe, notes)
        self.observed = np.asarray(self.test.lrt)
        self.specs = (spec_of(small), spec_of(large_))
        self.tol = zero_tol(small.llf, large_.llf)

    def batch(self, seeds) -> dict:
        small, large = self.specs
        Z, _ = normals(seeds, small.nobs)
        Y = small.simulate(Z)
        try:
            fs = small.fit_many(Y)
            fl = large.fit_many(Y)
        except Exception as exc:  # the batch as a whole failed: every replicate is a failure
            return failed_batch(len(seeds), (), exc)
        raw = 2.0 * (fl["llf"] - fs["llf"])
        ok = fs["converged"] & fl["converged"] & np.isfinite(raw)
        lrt_ = np.where(np.abs(raw) < self.tol, 0.0, raw)
        return {
            "values": np.where(ok, lrt_, np.nan),
            "ok": ok,
            "messages": fs["messages"] + fl["messages"],
        }


def moment_pvalues(lrt_: float, df: int, mean: float, var: float) -> dict:
    """pbkrtest's moment approximations (Halekoh and Hojsgaard 2014) from the mean and variance
    of the reference values: Bartlett ``LRT * df / mean`` against chi2(df), and a Gamma with
    that mean and variance (scale ``var / mean``, shape ``mean / scale``)."""
    bart = lrt_ * df / mean
    scale = var / mean
    return {
        "bartlett": float(bart),
        "p_bartlett": float(stats.chi2.sf(bart, df)),
        "p_gamma": float(stats.gamma.sf(lrt_, mean / scale, scale=scale)),
    }


def gamma_bartlett(lrt_: float, df: int, ref: np.ndarray) -> dict:
    """:func:`moment_pvalues` from the *positive* reference values (as pbkrtest; variance
    with denominator ``n - 1``); NaN with fewer than two."""
    pos = ref[ref > 0]
    if pos.size < 2:
        return {"bartlett": np.nan, "p_bartlett": np.nan, "p_gamma": np.nan}
    return moment_pvalues(lrt_, df, pos.mean(), pos.var(ddof=1))


def _top(messages) -> str:
    return "; ".join(f"{m} ({c}x)" for m, c in Counter(messages).most_common(3))


class PBTestResult(TestResult):
    """Parametric-bootstrap likelihood-ratio test (``pbkrtest::PBmodcomp``).

    Attributes
    ----------
    lrt, df : float, int
        Observed statistic and the parameter difference.
    pvalue : float
        Bootstrap p-value ``(1 + #{LRT* >= LRT}) / (1 + nsim_ok)``.
    pvalue_chi2 : float
        Upper tail of chi2(df).
    pvalue_bartlett, pvalue_gamma : float
        Moment approximations from the positive ``LRT*`` (pbkrtest's convention): chi2(df) of
        ``LRT * df / mean(LRT*)``, and a Gamma with the mean and variance of ``LRT*``.
    pvalue_mixture : float
        50:50 chi-square mixture for one added variance on the boundary; NaN otherwise.
    nsim, nsim_ok, nsim_failed : int
        Replicates asked for, used, and failed (refit not converged or raised).
    ref_distribution : ndarray
        The ``nsim_ok`` values of ``LRT*`` (replicate order); a failed replicate is left out.
    failed : ndarray of int
        Indices of the failed replicates.
    seed_entropy : int
        Entropy of the root ``SeedSequence`` (reproduces a run with ``seed=None``).
    joblib_prefer : str or None
        The backend hint given to joblib after timing the first batch (``"threads"`` or
        ``"processes"``; None with ``n_jobs=1`` or a single batch).  A backend set with
        ``joblib.parallel_config`` takes precedence.
    elapsed : float
        Wall-clock seconds.
    test : LRTResult
        The observed likelihood-ratio test.
    notes : list of str
    """

    def __init__(self, test: LRTResult, ref_all: np.ndarray, messages, seed_entropy, elapsed):
        self.test = test
        self.lrt, self.df = test.lrt, test.df
        self.statistic, self.df_denom = self.lrt, np.inf  # the package's test-result shape
        self.method = test.method
        ok = np.isfinite(ref_all)
        self.nsim = len(ref_all)
        self.nsim_ok = int(ok.sum())
        self.nsim_failed = self.nsim - self.nsim_ok
        self.failed = np.flatnonzero(~ok)
        self.ref_distribution = ref_all[ok]
        self.seed_entropy = seed_entropy
        self.elapsed = elapsed
        self.joblib_prefer = None
        ref = self.ref_distribution
        self.n_extreme = int((ref >= self.lrt).sum())
        self.pvalue = (1.0 + self.n_extreme) / (1.0 + self.nsim_ok)
        self.pvalue_chi2 = test.pvalue
        self.pvalue_mixture = test.pvalue_mixture
        gb = gamma_bartlett(self.lrt, self.df, ref)
        self.bartlett_stat = gb["bartlett"]
        self.pvalue_bartlett = gb["p_bartlett"]
        self.pvalue_gamma = gb["p_gamma"]
        self.notes = list(test.notes) + self._reference_notes(messages)

    def _reference_notes(self, messages) -> list[str]:
        ref = self.ref_distribution
        notes = []
        n0 = int((ref == 0).sum())
        if n0:
            notes.append(
                f"{n0} of {self.nsim_ok} LRT* are 0 (equal likelihoods to numerical precision, "
                "e.g. the large refit on the boundary); the Bartlett and Gamma approximations "
                "use the positive LRT* only"
            )
        nneg = int((ref < 0).sum())
        if nneg:
            notes.append(
                f"{nneg} LRT* < 0: the large model's refit stayed below the small model's "
                "likelihood (a local optimum); kept as computed"
            )
        if self.nsim_failed:
            notes.append(
                f"{self.nsim_failed} of {self.nsim} replicates failed and were left out "
                f"({_top(messages)})"
            )
        elif messages:
            notes.append(f"warnings during the refits: {_top(messages)}")
        return notes

    @property
    def mc_se(self) -> float:
        """Monte-Carlo standard error of ``pvalue``: ``sqrt(p (1 - p) / nsim_ok)``."""
        p = self.pvalue
        return float(np.sqrt(p * (1 - p) / max(self.nsim_ok, 1)))

    def summary_frame(self) -> pd.DataFrame:
        """``stat``, ``df`` and ``p-value`` per method (rows as pbkrtest's summary)."""
        rows = {
            "LRT (chi2)": [self.lrt, self.df, self.pvalue_chi2],
            "PBtest": [self.lrt, np.nan, self.pvalue],
            "Bartlett": [self.bartlett_stat, self.df, self.pvalue_bartlett],
            "Gamma": [self.lrt, np.nan, self.pvalue_gamma],
        }
        if self.test.mixture is not None:
            rows["Mixture"] = [self.lrt, np.nan, self.pvalue_mixture]
        return pd.DataFrame.from_dict(rows, orient="index", columns=["stat", "df", "p-value"])

    def summary(self) -> str:
        """The table of :meth:`summary_frame` with the models, replicate counts and notes."""
        lines = [
            f"Parametric bootstrap likelihood-ratio test ({self.method}); "
            f"nsim = {self.nsim}, used = {self.nsim_ok}, failed = {self.nsim_failed}",
            f"  small: {self.test.models[0]}",
            f"  large: {self.test.models[1]}",
            self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}"),
        ]
        if self.test.mixture is not None:
            lines.append(f"Mixture: {self.test.mixture}")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self):
        return (
            f"<PBTestResult chi2={self.lrt:.6g}, df={self.df}, pvalue={self.pvalue:.4g}, "
            f"nsim_ok={self.nsim_ok}, nsim_failed={self.nsim_failed}>"
        )


def pb_lrt(
    large,
    small,
    nsim: int = 1000,
    *,
    seed=None,
    n_jobs: int = 1,
    progress: bool = False,
    reml: bool | None = None,
) -> PBTestResult:
    """Parametric-bootstrap likelihood-ratio test of ``small`` within ``large``.

    As ``pbkrtest::PBmodcomp(large, small)``: ``nsim`` responses are simulated from the fitted
    small model, both models are refitted to each (warm-started at their estimates), and the
    observed ``LRT`` is referred to the ``LRT*`` (the ``"lrt"`` statistic of
    :data:`~statsmodels_lmm_ext.bootstrap.STATISTICS`).

    Parameters
    ----------
    large, small : fitted models
        As for :func:`lrt` (order matters here: large first, as pbkrtest).
    nsim : int
        Number of bootstrap replicates.
    seed : None, int, SeedSequence or Generator
        Root of ``numpy.random.SeedSequence(seed).spawn(nsim)``: replicate ``j`` uses its own
        generator, so the result is identical for any ``n_jobs`` and backend, and replicate ``j``
        is ``simulate(small, nsim, seed=seed)[:, j]``.
    n_jobs : int
        joblib workers (``-1``: all cores).  The first batch of replicates runs in this process
        and is timed; joblib is then asked to prefer processes if the rest would take more
        than a few seconds, threads otherwise.  Any backend set with
        ``joblib.parallel_config`` (``"loky"``, ``"dask"``, ...) is used instead.
    progress : bool
        Show a tqdm progress bar (a warning if tqdm is not installed).
    reml : bool, optional
        As for :func:`lrt`.

    Returns
    -------
    PBTestResult

    Notes
    -----
    A replicate whose refit (of either model) does not meet the convergence criterion of
    :meth:`MixedLM.fit` after the fallback optimisers, or raises, is counted in ``nsim_failed``
    and left out; warnings from refits are collected into ``notes``.  ``|LRT*|`` below
    ``max(1e-6, 1e-10 |llf|)`` is set to 0 (two fits on the same boundary).
    """
    nsim = check_nsim(nsim)
    t0 = time.perf_counter()
    stat = LikelihoodRatio(small, large=large, reml=reml)
    run = run_replicates(stat, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    elapsed = time.perf_counter() - t0
    out = PBTestResult(stat.test, run.values, run.messages, run.seed_entropy, elapsed)
    out.joblib_prefer = run.joblib_prefer
    if out.nsim_failed:
        warnings.warn(
            f"{out.nsim_failed} of {nsim} bootstrap replicates failed and were left out "
            "(see .notes and .failed)",
            BootstrapWarning,
            stacklevel=2,
        )
    return out
