"""Exact (restricted) likelihood-ratio tests for one variance component: ``exact_rlrt`` and
``exact_lrt``, as RLRsim's ``exactRLRT`` and ``exactLRT``.

The observed statistic is ``2 (l_1 - l_0)`` (REML log-likelihoods for the RLRT, ML for the
LRT; 0 if negative); its null distribution is simulated from the spectral representation of
Crainiceanu and Ruppert (2004) (:mod:`statsmodels_lmm_ext.selection._spectral`), which is
exact in finite samples for a model whose only random effect is one variance component and
whose residuals are independent with constant variance.  The p-value is the share of simulated
values above the observed one (RLRsim's definition; 1 when the statistic is 0).
"""

from __future__ import annotations

import time

import numpy as np

from ..adapters import Fitted, as_fitted
from ..bootstrap.comparison import check_pair, with_method, zero_tol
from ..covstruct import Independence
from ..inference.tests import TestResult, _num
from ._spectral import eigenvalues, lambda_grid, simulate_null

__all__ = ["ExactLRTResult", "exact_lrt", "exact_rlrt"]


class ExactLRTResult(TestResult):
    """Result of :func:`exact_rlrt` or :func:`exact_lrt`.

    Attributes
    ----------
    statistic : float
        Observed RLRT or LRT (``2 (l_1 - l_0)``, 0 if negative).
    pvalue : float
        Share of the simulated null values above ``statistic`` (1 if ``statistic`` is 0).
    nsim : int
    sample : ndarray (nsim,)
        Simulated values of the statistic under the null hypothesis.
    lambda_sample : ndarray (nsim,)
        The maximising variance ratio of each simulated value (on RLRsim's scale: the
        eigenvalues divided by their maximum).
    method : str
        ``"RLRT"`` or ``"LRT"``.
    q : int
        Fixed effects removed under the null (LRT only).
    mu, xi : ndarray
        Eigenvalues of ``Z' P0 Z`` and ``Z'Z``.
    seconds : float
        Time of the simulation.
    notes : list of str
    """

    df = np.nan

    def __init__(self, method, statistic, sample, lam, mu, xi, q, seconds, notes):
        self.method = method
        self.title = f"Exact {'restricted ' if method == 'RLRT' else ''}likelihood-ratio test"
        self.statistic = float(statistic)
        self.sample = sample
        self.lambda_sample = lam
        self.nsim = int(sample.size)
        self.mu, self.xi, self.q = mu, xi, int(q)
        self.seconds = seconds
        self.notes = list(notes)
        if self.statistic > 0:
            self.pvalue = float(np.mean(sample > self.statistic))
        else:
            self.pvalue = 1.0
        self.mcse = float(np.sqrt(self.pvalue * (1 - self.pvalue) / max(self.nsim, 1)))

    def _lines(self) -> list[str]:
        lines = [
            f"{self.method} = {_num(self.statistic)}",
            f"p-value = {_num(self.pvalue)} (Monte Carlo SE {_num(self.mcse)}, "
            f"{self.nsim} simulated values)",
        ]
        if self.method == "LRT":
            lines.append(f"fixed effects removed under the null: {self.q}")
        return lines + [f"Note: {n}" for n in self.notes]

    def __str__(self) -> str:
        return "\n".join([self.title, *self._lines()])

    def __repr__(self) -> str:
        return (
            f"<ExactLRTResult {self.method}={self.statistic:.6g}, pvalue={self.pvalue:.4g}, "
            f"nsim={self.nsim}>"
        )


def _one_component(fit: Fitted, role: str) -> np.ndarray:
    """The per-row columns ``z`` of the model's single variance component (refusing others)."""
    if fit.kind != "lmm":
        raise TypeError(
            f"{role} must be a fitted mixed model with one variance component; got a "
            f"{type(fit.model).__name__} regression result"
        )
    cs = fit.cov_struct
    if type(cs) is not Independence:
        raise ValueError(
            f"the exact test assumes independent residuals with constant variance; {role} has "
            f"the residual structure {cs!r} (use pb_lrt for a parametric-bootstrap test)"
        )
    m, eng = fit.lmm_model, fit.engine
    k_re, k_vc = m.k_re, len(fit.vc_names)
    if (k_re, k_vc) == (1, 0):
        return eng.Z
    if (k_re, k_vc) == (0, 1):
        return eng.Zvc[0]
    re = list(m.data.exog_re_names) if k_re else []
    raise ValueError(
        f"the exact test needs exactly one variance component (one random-effect column, or "
        f"one variance component and no random effects); {role} has random effects {re} and "
        f"variance components {list(fit.vc_names)} (use pb_lrt for a parametric-bootstrap "
        "test)"
    )


def _check_nsim(nsim) -> int:
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer; got {nsim!r}")
    return int(nsim)


def _reml_at_zero(fit: Fitted) -> float:
    """REML log-likelihood of the model with the variance component set to 0 (the linear
    model), from the same engine as the fit (same constants)."""
    psi0 = np.zeros_like(fit.psi)
    vc0 = np.zeros_like(fit.vc)
    prof = fit.engine.profile_one(fit.params.lin(psi0, vc0), fit.rho, True)
    return -0.5 * float(np.asarray(prof["dev"]).ravel()[0])


def _exact_test(kind, fit, z, stat, notes, nsim, seed, grid, search, q=0) -> ExactLRTResult:
    """The exact test's result: eigenvalues of the fit's design, ``nsim`` simulated values of
    the null distribution (RLRT: ``kind == "RLRT"``; LRT: ``q`` fixed effects removed)."""
    eng = fit.engine
    n, p = eng.X.shape
    mu, xi = eigenvalues(eng.X, z, eng.groups)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if kind == "RLRT":
        sample, lam = simulate_null(mu, n, p, nsim, rng, grid=grid, search=search)
    else:
        sample, lam = simulate_null(
            mu, n, p, nsim, rng, reml=False, xi=xi, q=q, grid=grid, search=search
        )
    return ExactLRTResult(kind, stat, sample, lam, mu, xi, q, time.perf_counter() - t0, notes)


def exact_rlrt(
    results,
    *,
    nsim: int = 10000,
    seed=None,
    log_grid_lo: float = -10.0,
    log_grid_hi: float = 8.0,
    gridlength: int = 200,
    search: str = "first",
) -> ExactLRTResult:
    """Exact restricted likelihood-ratio test of ``H0: variance = 0`` for one variance
    component (RLRsim's ``exactRLRT(m)``).

    Parameters
    ----------
    results : fitted MixedLM
        Our results or statsmodels' ``MixedLMResults`` of a model whose only random effect is
        one random-effect column (e.g. a random intercept) or one variance component, with
        independent residuals.  An ML fit is refitted by REML (with a note).
    nsim : int
        Simulated values of the null distribution.
    seed : int or numpy Generator, optional
    log_grid_lo, log_grid_hi, gridlength
        The grid of the variance ratio over which the simulated statistics are maximised
        (RLRsim's defaults).
    search : {"first", "global"}
        ``"first"`` (default): each simulated value is the first local maximum along the grid
        from 0, RLRsim's rule (the same null distribution as RLRsim); ``"global"``: the
        largest value on the grid (never smaller; slightly larger p-values).

    Returns
    -------
    ExactLRTResult

    Notes
    -----
    ``RLRT = 2 (l_R(fit) - l_R(lambda = 0))``, the null distribution by the spectral
    representation of Crainiceanu and Ruppert (2004) (see
    :mod:`statsmodels_lmm_ext.selection._spectral`).  Residual structures other than
    independence are refused: the representation assumes ``e ~ N(0, sigma^2 I)``.
    """
    nsim = _check_nsim(nsim)
    fit = as_fitted(results)
    z = _one_component(fit, "the model")
    fit, notes = with_method(fit, True, "the exact RLRT compares REML likelihoods")
    l0 = _reml_at_zero(fit)
    stat = 2.0 * (fit.llf - l0)
    stat = 0.0 if stat < zero_tol(fit.llf, l0) else stat
    grid = lambda_grid(log_grid_lo, log_grid_hi, gridlength)
    return _exact_test("RLRT", fit, z, stat, notes, nsim, seed, grid, search)


def exact_lrt(
    results,
    small,
    *,
    nsim: int = 10000,
    seed=None,
    log_grid_lo: float = -10.0,
    log_grid_hi: float = 8.0,
    gridlength: int = 200,
    search: str = "first",
) -> ExactLRTResult:
    """Exact likelihood-ratio test of a model with one variance component against the model
    without it (RLRsim's ``exactLRT(m, m0)``).

    Parameters
    ----------
    results : fitted MixedLM
        The model with one variance component and independent residuals (as
        :func:`exact_rlrt`); a REML fit is refitted by ML (with a note).
    small : fitted model
        The model without the random effect, with the same or fewer fixed effects (nested):
        a statsmodels OLS result, or our MixedLM fit with ``re_formula="0"`` and independent
        residuals (refitted by ML if needed).
    nsim, seed, log_grid_lo, log_grid_hi, gridlength, search
        As :func:`exact_rlrt`.

    Returns
    -------
    ExactLRTResult
        ``q`` is the number of fixed effects the small model removes.

    Notes
    -----
    ``LRT = 2 (l(results) - l(small))`` (ML); the null distribution adds to the supremum over
    the variance ratio the term ``n log(1 + chi2_q / chi2_(n-p))`` of the removed fixed effects
    (Crainiceanu and Ruppert 2004, Theorem 1).
    """
    nsim = _check_nsim(nsim)
    large = as_fitted(results)
    z = _one_component(large, "the large model")
    s = as_fitted(small)
    if s.kind == "lmm" and (s.uses_groups or s.k_re or s.vc_names):
        raise ValueError(
            "the small model must have no random effects and independent residuals (a "
            f"statsmodels OLS fit or a MixedLM with re_formula='0'); got {s.label}"
        )
    check_pair(s, large)
    notes = []
    large, n1 = with_method(large, False, "the exact LRT compares ML likelihoods")
    s, n0 = with_method(s, False, "the exact LRT compares ML likelihoods")
    notes += [f"large model: {x}" for x in n1] + [f"small model: {x}" for x in n0]
    q = int(np.linalg.matrix_rank(large.exog) - np.linalg.matrix_rank(s.exog))
    if q == 0:
        notes.append("same fixed effects in both models: the exact RLRT is preferable")
    stat = 2.0 * (large.llf - s.llf)
    stat = 0.0 if stat < zero_tol(large.llf, s.llf) else stat
    grid = lambda_grid(log_grid_lo, log_grid_hi, gridlength)
    return _exact_test("LRT", large, z, stat, notes, nsim, seed, grid, search, q=q)
