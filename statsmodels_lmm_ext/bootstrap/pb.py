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

import numpy as np
import pandas as pd
from scipy import stats

from ..inference.tests import TestResult
from .comparison import LRTResult, prepare, zero_tol
from .failures import ReplicateFailures, summarise, summarise_warnings, warn_failures
from .parallel import check_n_jobs, run_replicates
from .progress import check_progress
from .random import check_nsim, normals
from .simulation import spec_of
from .statistics import BootstrapStatistic


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
        fs = small.fit_many(Y)
        fl = large.fit_many(Y)
        raw = 2.0 * (fl["llf"] - fs["llf"])
        ok = fs["converged"] & fl["converged"]
        lrt_ = np.where(np.abs(raw) < self.tol, 0.0, raw)
        reasons = [
            "; ".join(f"{model} model: {r}" for model, r in (("small", a), ("large", b)) if r)
            for a, b in zip(fs["reasons"], fl["reasons"], strict=True)
        ]
        return {"values": np.where(ok, lrt_, np.nan), "ok": ok, "reasons": reasons}


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


class PBTestResult(TestResult, ReplicateFailures):
    """Parametric-bootstrap likelihood-ratio test (``pbkrtest::PBmodcomp``).

    Attributes
    ----------
    lrt, df : float, int
        Observed statistic and the parameter difference.
    pvalue : float
        Bootstrap p-value ``(1 + #{LRT* >= LRT}) / (1 + nsim_ok)``; NaN if no replicate
        succeeded (the result is then not valid: ``valid`` is False and ``reason`` says
        why).
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
    failures : DataFrame
        The failed replicates (index ``replicate``) and the ``reason`` of each (which model's
        refit failed, and how).
    valid : bool
    reason : str or None
    seed_entropy : int
        Entropy of the root ``SeedSequence`` (reproduces a run with ``seed=None``).
    joblib_prefer : str or None
        The backend hint given to joblib after timing the first batch (``"threads"`` or
        ``"processes"``; None when every batch ran in this process: one worker or a single
        batch).  A backend set with
        ``joblib.parallel_config`` takes precedence.
    elapsed : float
        Wall-clock seconds.
    test : LRTResult
        The observed likelihood-ratio test.
    notes : list of str
    """

    def __init__(self, test: LRTResult, run, elapsed: float):
        self.test = test
        self.lrt, self.df = test.lrt, test.df
        self.statistic, self.df_denom = self.lrt, np.inf  # the package's test-result shape
        self.method = test.method
        self._count_failures(run)
        self.ref_distribution = run.values[run.ok]
        self.seed_entropy = run.seed_entropy
        self.elapsed = elapsed
        self.joblib_prefer = run.joblib_prefer
        ref = self.ref_distribution
        self.n_extreme = int((ref >= self.lrt).sum())
        self.pvalue = (1.0 + self.n_extreme) / (1.0 + self.nsim_ok) if self.nsim_ok else np.nan
        self.pvalue_chi2 = test.pvalue
        self.pvalue_mixture = test.pvalue_mixture
        gb = gamma_bartlett(self.lrt, self.df, ref)
        self.bartlett_stat = gb["bartlett"]
        self.pvalue_bartlett = gb["p_bartlett"]
        self.pvalue_gamma = gb["p_gamma"]
        self.notes = list(test.notes) + self._reference_notes(run.warnings)

    def _reference_notes(self, warnings_) -> list[str]:
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
                f"({summarise(self.failures['reason'])})"
            )
        if warnings_:
            notes.append(f"warnings during the refits: {summarise_warnings(warnings_)}")
        return notes

    @property
    def mc_se(self) -> float:
        """Monte-Carlo standard error of ``pvalue``: ``sqrt(p (1 - p) / nsim_ok)`` (NaN without
        successful replicates)."""
        if not self.nsim_ok:
            return float("nan")
        p = self.pvalue
        return float(np.sqrt(p * (1 - p) / self.nsim_ok))

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
        if not self.valid:
            lines.append(f"Not valid: {self.reason}")
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
    n_jobs: int | None = None,
    progress: bool | None = None,
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
        Number of bootstrap replicates.  A run whose replicates (their seeds and values) would
        not fit in the available memory is refused at once with a ValueError.
    seed : None, int, SeedSequence or Generator
        Root of ``numpy.random.SeedSequence(seed).spawn(nsim)``: replicate ``j`` uses its own
        generator, so the result is identical for any ``n_jobs`` and backend, and replicate ``j``
        is ``simulate(small, nsim, seed=seed)[:, j]``.
    n_jobs : int or None
        joblib workers: a nonzero integer, negative as in joblib (``-1``: all cores, ``-2``:
        all but one), or None (the default) for joblib's default: 1 (this process), unless
        ``joblib.parallel_config`` sets ``n_jobs`` or a backend such as Dask.  ``n_jobs=1``
        always runs every replicate in this process.  The first batch of replicates runs in
        this process and is timed; joblib is then asked to prefer processes if the rest would
        take more than a few seconds, threads otherwise.  Any backend set with
        ``joblib.parallel_config`` (``"loky"``, ``"dask"``, ...) is used instead; with Dask
        the cluster's worker threads, not ``n_jobs``, decide how many batches run at once.
    progress : bool or None
        ``True`` shows a tqdm progress bar (one warning per session, with the command that
        installs tqdm, if it is missing; the run goes on), ``False`` never; ``None`` (the
        default) shows one only when the first batch shows that the rest would take more than
        5 seconds and stderr is a terminal or a Jupyter notebook.  The bar advances as batches
        of replicates complete and never changes the results.
    reml : bool, optional
        As for :func:`lrt`.

    Returns
    -------
    PBTestResult

    Notes
    -----
    A replicate whose refit (of either model) does not meet the convergence criterion of
    :meth:`MixedLM.fit` after the fallback optimisers, or raises, is counted in ``nsim_failed``,
    listed with its reason in ``failures`` and left out (one :class:`BootstrapWarning` per
    call); warnings from refits are collected into ``notes``.  If every replicate fails, the
    p-values of the bootstrap are NaN and the result is not valid (``valid``, ``reason``).
    ``|LRT*|`` below ``max(1e-6, 1e-10 |llf|)`` is set to 0 (two fits on the same boundary).
    """
    nsim = check_nsim(nsim)
    n_jobs = check_n_jobs(n_jobs)
    progress = check_progress(progress)
    t0 = time.perf_counter()
    stat = LikelihoodRatio(small, large=large, reml=reml)
    run = run_replicates(stat, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    out = PBTestResult(stat.test, run, time.perf_counter() - t0)
    warn_failures(out)
    return out
