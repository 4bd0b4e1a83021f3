"""Bootstrap statistics: one registry, and the generic parametric bootstrap (lme4's ``bootMer``).

A bootstrap statistic is an object that knows what one batch of replicates computes: it
simulates responses from a fitted model (one random stream per replicate), refits what it needs
and returns one value per replicate.  Subclasses of :class:`BootstrapStatistic` that set a
``name`` are registered in :data:`STATISTICS` as they are defined:

* ``"fixed_effects"``: the refitted fixed effects ``beta*``;
* ``"covariance_parameters"``: the refitted natural covariance parameters (``G``, variance
  components, ``sigma^2``, the residual structure's parameters);
* ``"lrt"``: ``LRT* = 2 (l*_large - l*_small)`` (:func:`~statsmodels_lmm_ext.bootstrap.pb_lrt`);
* ``"prediction_error"``: errors of predicting new observations
  (:func:`~statsmodels_lmm_ext.bootstrap.bootstrap_predict`).

:func:`parametric_bootstrap` runs any of them by name, or a callable ``statistic(refits)`` of
the :class:`Refits` of the model (the statistic is an argument, as ``FUN`` of ``bootMer``).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..adapters import Fitted
from .failures import ReplicateFailures, summarise, summarise_warnings, warn_failures
from .parallel import check_n_jobs, run_replicates
from .progress import check_progress
from .random import check_nsim, normals
from .simulation import fitted_for, spec_of

#: bootstrap statistics by name (filled as :class:`BootstrapStatistic` subclasses are defined)
STATISTICS: dict[str, type[BootstrapStatistic]] = {}


class BootstrapStatistic:
    """Base class of bootstrap statistics.

    A subclass declares ``name`` in its class statement (``class S(BootstrapStatistic,
    name="s")``), which registers it in :data:`STATISTICS`; its constructor takes the fitted
    model that responses are simulated from and keyword options, and sets

    * ``specs``: the simulation-and-refit specs it uses (they size the batches and are prepared
      before workers share them);
    * ``observed``: the statistic at the data (None where it has no observed value);
    * ``names``: labels of the statistic's components (or None).

    :meth:`batch` computes the replicates of a batch of seeds from the attributes listed in
    ``batch_state`` (the statistic is pickled with only those for worker processes).  It may
    raise: the runner then computes the batch's replicates one at a time, and a replicate that
    raises fails alone, with the exception as its reason.
    """

    name: ClassVar[str] = ""
    #: the attributes :meth:`batch` uses: all that is sent to worker processes
    batch_state: ClassVar[tuple[str, ...]] = ("specs",)
    specs: tuple = ()
    observed: np.ndarray | None = None
    names: list[str] | None = None

    def __init_subclass__(cls, name: str = "", **kwargs):
        super().__init_subclass__(**kwargs)
        if name:
            cls.name = name
            STATISTICS[name] = cls

    def __getstate__(self) -> dict:
        # workers get what batch() needs; the rest (e.g. fitted views, which refer to the
        # user's results by weak reference) stays in this process
        return {k: v for k, v in self.__dict__.items() if k in self.batch_state}

    def __sizeof__(self) -> int:
        # the bytes a worker receives (the pickled batch state, measured once), so that
        # joblib's Dask backend, which scatters large arguments, sends the statistic to the
        # cluster once per run instead of with every batch
        size = self.__dict__.get("_pickled_size")
        if size is None:
            try:
                size = len(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:  # e.g. a lambda statistic: unpicklable, counted as empty
                size = 0
            self.__dict__["_pickled_size"] = size  # not in batch_state: never sent
        return object.__sizeof__(self) + size

    @property
    def value_shape(self) -> tuple:
        """Shape of one replicate's value (of ``observed``, else one value per name)."""
        if self.observed is not None:
            return np.shape(self.observed)
        return (len(self.names),) if self.names is not None else ()

    def batch(self, seeds) -> dict:
        """Replicates for ``seeds`` (one per replicate): ``values`` (B, ...) (NaN for a failed
        replicate), ``ok`` (B,) and ``reasons`` (B,): why each replicate failed, "" where it
        succeeded.  A value that is not finite fails its replicate."""
        raise NotImplementedError


@dataclass(frozen=True)
class Refits:
    """``B`` fits of a model (arrays with the replicates first), given to statistics.

    Attributes
    ----------
    endog : ndarray (B, N)
        The simulated responses.
    beta : ndarray (B, p)
    scale : ndarray (B,)
        Residual variances ``sigma^2``.
    cov_re : ndarray (B, q, q)
        Random-effects covariances ``G`` (q = 0 for an OLS model).
    vcomp : ndarray (B, k_vc)
    rho : ndarray (B, k_corr)
        Residual-structure parameters.
    llf : ndarray (B,)
    converged : ndarray of bool (B,)
    """

    endog: np.ndarray
    beta: np.ndarray
    scale: np.ndarray
    cov_re: np.ndarray
    vcomp: np.ndarray
    rho: np.ndarray
    llf: np.ndarray
    converged: np.ndarray

    @classmethod
    def of_fit(cls, fit: Fitted) -> Refits:
        """The fit to the data itself, as a batch of one."""
        one = (fit.endog, fit.beta, fit.scale, fit.G, fit.vcomp, fit.rho, fit.llf, fit.converged)
        return cls(*(np.asarray(a)[None] for a in one))

    @classmethod
    def of_many(cls, Y: np.ndarray, fits: dict) -> Refits:
        """From simulated responses ``Y`` (N, B) and ``fit_many(Y, want_params=True)``."""
        B = Y.shape[1]
        scale = fits["scale"]
        psi = fits.get("psi", np.zeros((B, 0, 0)))
        vc = fits.get("vc", np.zeros((B, 0)))
        cov_re, vcomp = scale[:, None, None] * psi, scale[:, None] * vc
        rho = fits.get("rho", np.zeros((B, 0)))
        return cls(Y.T, fits["beta"], scale, cov_re, vcomp, rho, fits["llf"], fits["converged"])


class RefitStatistic(BootstrapStatistic):
    """Simulate from a fitted model, refit it, and compute ``fun(refits)``.

    Parameters
    ----------
    results : fitted model
        Ours, a statsmodels MixedLM result or a statsmodels OLS result.
    fun : callable, optional
        ``fun(refits: Refits) -> array`` with the replicates first (a named subclass
        implements :meth:`compute` instead).
    """

    batch_state = ("specs", "spec", "params", "fun")

    def __init__(self, results, fun: Callable[[Refits], np.ndarray] | None = None):
        fit = fitted_for(results)
        self.fun = fun
        self.params = fit.params  # None for an OLS model
        self.spec = spec_of(fit)
        self.specs = (self.spec,)
        self.observed = self._values(Refits.of_fit(fit), 1)[0]
        self.names = self.component_names(fit)

    def compute(self, refits: Refits) -> np.ndarray:
        return self.fun(refits)

    def component_names(self, fit: Fitted) -> list[str] | None:
        return None

    def _values(self, refits: Refits, B: int) -> np.ndarray:
        values = np.asarray(self.compute(refits), dtype=float)
        if values.shape[:1] != (B,):
            raise ValueError(
                f"the bootstrap statistic returned an array of shape {values.shape}; expected "
                f"one value (or row) per replicate first, shape ({B}, ...)"
            )
        return values

    def batch(self, seeds) -> dict:
        spec = self.spec
        Z, _ = normals(seeds, spec.nobs)
        Y = spec.simulate(Z)
        fits = spec.fit_many(Y, want_params=True)
        values = self._values(Refits.of_many(Y, fits), Y.shape[1])
        return {"values": values, "ok": fits["converged"], "reasons": fits["reasons"]}


class FixedEffects(RefitStatistic, name="fixed_effects"):
    """The refitted fixed effects ``beta*`` (one column per fixed effect)."""

    def __init__(self, results):
        super().__init__(results)

    def compute(self, refits: Refits) -> np.ndarray:
        return refits.beta

    def component_names(self, fit: Fitted) -> list[str]:
        return list(fit.fe_names)


class CovarianceParameters(RefitStatistic, name="covariance_parameters"):
    """The refitted natural covariance parameters: ``G`` (lower triangle), variance components,
    ``sigma^2`` and the residual structure's parameters (the rows of
    ``results.covariance_parameters()``; ``sigma^2`` alone for an OLS model)."""

    def __init__(self, results):
        super().__init__(results)

    def compute(self, refits: Refits) -> np.ndarray:
        if self.params is None:
            return refits.scale[:, None]
        lin = self.params.lin_many(refits.cov_re, refits.vcomp)
        out = np.column_stack([lin, refits.scale, refits.rho])
        hook = getattr(self.params.cov_struct, "level_variances", None)
        if hook is None:
            return out
        # group-specific structures: the per-level residual variances, as in the table
        levels = [hook(r, s)[1] for r, s in zip(refits.rho, refits.scale, strict=True)]
        return np.column_stack([out, np.asarray(levels).reshape(len(out), -1)])

    def component_names(self, fit: Fitted) -> list[str]:
        if fit.params is None:
            return ["Residual"]
        hook = getattr(fit.params.cov_struct, "level_variances", None)
        extra = hook(np.ones(fit.params.k_corr), 1.0)[0] if hook is not None else []
        return fit.params.theta_names("table") + list(extra)


# ---------------------------------------------------------------------------------------------
# The generic bootstrap
# ---------------------------------------------------------------------------------------------


class BootstrapResult(ReplicateFailures):
    """Replicates of a bootstrap statistic (see :func:`parametric_bootstrap`).

    Attributes
    ----------
    statistic : str
        The registered name, or ``"callable"``.
    observed : ndarray or None
        The statistic at the data.
    replicates : ndarray (nsim_ok, ...)
        The values of the successful replicates, in replicate order.
    names : list of str or None
        Labels of the components.
    nsim, nsim_ok, nsim_failed : int
    failed : ndarray of int
        Indices of the failed replicates (refit not converged, raised, or a non-finite value).
    failures : DataFrame
        The failed replicates (index ``replicate``) and the ``reason`` of each.
    valid : bool
        False if no replicate succeeded (``std``, ``conf_int`` and the summary are then NaN);
        ``reason`` says why.
    reason : str or None
    seed_entropy : int
    joblib_prefer : str or None
    elapsed : float
    notes : list of str
        The most common reasons of failures, and warnings raised during the refits.
    """

    def __init__(self, stat: BootstrapStatistic, run, elapsed: float):
        self.statistic = stat.name or "callable"
        self.observed = stat.observed
        self.names = stat.names
        self.replicates = run.values[run.ok]
        self._count_failures(run)
        self.seed_entropy = run.seed_entropy
        self.joblib_prefer = run.joblib_prefer
        self.elapsed = elapsed
        self.notes = []
        if self.nsim_failed:
            self.notes.append(f"failed replicates: {summarise(self.failures['reason'])}")
        if run.warnings:
            self.notes.append(f"warnings during the refits: {summarise_warnings(run.warnings)}")

    @property
    def std(self) -> np.ndarray:
        """Bootstrap standard deviation of each component (the bootstrap standard error); NaN
        with fewer than two successful replicates."""
        if self.nsim_ok < 2:
            return np.full(self.replicates.shape[1:], np.nan)
        return self.replicates.std(axis=0, ddof=1)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Percentile intervals: rows ``alpha / 2`` and ``1 - alpha / 2`` of the replicates
        (NaN if none succeeded)."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        if self.nsim_ok == 0:
            return np.full((2, *self.replicates.shape[1:]), np.nan)
        return np.quantile(self.replicates, [alpha / 2, 1 - alpha / 2], axis=0)

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Observed value, bootstrap mean, SD and percentile interval per component."""
        flat = self.replicates.reshape(self.nsim_ok, int(np.prod(self.replicates.shape[1:])))
        k = flat.shape[1]
        obs = np.full(k, np.nan) if self.observed is None else np.ravel(self.observed)
        cols = {"observed": obs}
        lo, hi = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
        if self.nsim_ok > 1:
            q = np.quantile(flat, [alpha / 2, 1 - alpha / 2], axis=0)
            cols.update({"mean": flat.mean(axis=0), "std": flat.std(axis=0, ddof=1)})
            cols.update({lo: q[0], hi: q[1]})
        else:  # too few successful replicates for a spread
            cols.update(dict.fromkeys(("mean", "std", lo, hi), np.full(k, np.nan)))
        index = self.names if self.names is not None and len(self.names) == k else range(k)
        return pd.DataFrame(cols, index=index)

    def summary(self) -> str:
        """The table of :meth:`summary_frame` with replicate counts and notes."""
        head = (
            f"Parametric bootstrap of {self.statistic!r}; nsim = {self.nsim}, "
            f"used = {self.nsim_ok}, failed = {self.nsim_failed}"
        )
        table = self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}")
        lines = [head, table] + [f"Note: {n}" for n in self.notes]
        if not self.valid:
            lines.append(f"Not valid: {self.reason}")
        return "\n".join(lines)

    __str__ = summary


def parametric_bootstrap(
    results,
    statistic: str | Callable[[Refits], np.ndarray],
    nsim: int = 1000,
    *,
    seed=None,
    n_jobs: int | None = None,
    progress: bool | None = None,
    **options,
) -> BootstrapResult:
    """Parametric bootstrap of any statistic of a fitted model (lme4's ``bootMer``).

    Each replicate simulates a response from the fitted model (new random effects and
    residuals, as :func:`~statsmodels_lmm_ext.bootstrap.simulate`), refits the model
    (warm-started at its estimates) and evaluates the statistic.

    Parameters
    ----------
    results : fitted model
        Ours, a statsmodels MixedLM result or a statsmodels OLS result.
    statistic : str, BootstrapStatistic subclass or callable
        A name of :data:`STATISTICS` (``"fixed_effects"``, ``"covariance_parameters"``,
        ``"lrt"``, ``"prediction_error"``) or a :class:`BootstrapStatistic` subclass, with its
        ``options`` (``"lrt"`` needs ``large=``; ``"prediction_error"`` needs
        ``exog_new=``), or a callable ``statistic(refits)`` receiving the :class:`Refits` of
        a batch of replicates and returning an array with one value (or row) per replicate
        first.
    nsim, seed, n_jobs, progress
        As for :func:`~statsmodels_lmm_ext.bootstrap.pb_lrt`.
    **options
        Keyword options of a named statistic.

    Returns
    -------
    BootstrapResult

    Notes
    -----
    A replicate whose refit does not converge, raises, or gives a non-finite value is counted
    in ``nsim_failed``, listed with its reason in ``failures`` and left out (one
    :class:`BootstrapWarning` per call).  If no replicate succeeds, the result is not valid
    (``valid`` False, ``reason`` says why) and its summaries are NaN.

    Examples
    --------
    >>> boot = parametric_bootstrap(res, "fixed_effects", nsim=500, seed=1)  # doctest: +SKIP
    >>> boot.std  # bootstrap standard errors of beta_hat                     # doctest: +SKIP
    """
    nsim = check_nsim(nsim)
    n_jobs = check_n_jobs(n_jobs)
    progress = check_progress(progress)
    t0 = time.perf_counter()
    stat = _statistic(results, statistic, options)
    run = run_replicates(stat, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    out = BootstrapResult(stat, run, time.perf_counter() - t0)
    warn_failures(out)
    return out


def _statistic(results, statistic, options: dict) -> BootstrapStatistic:
    """The statistic object: a registered one by name, a statistic class, or a callable of
    the refits."""
    if isinstance(statistic, type) and issubclass(statistic, BootstrapStatistic):
        return statistic(results, **options)
    if callable(statistic):
        if options:
            raise TypeError(f"unexpected option(s) for a callable statistic: {sorted(options)}")
        return RefitStatistic(results, statistic)
    if statistic not in STATISTICS:
        raise ValueError(
            f"unknown bootstrap statistic {statistic!r}; choose one of {sorted(STATISTICS)} or "
            "pass a callable statistic(refits)"
        )
    return STATISTICS[statistic](results, **options)
