"""Spectral representation of the null distribution of the (restricted) likelihood-ratio
statistic for one variance component (Crainiceanu and Ruppert 2004).

Model ``y = X beta + Z b + e``, ``b ~ N(0, lambda sigma^2 I_K)``, ``e ~ N(0, sigma^2 I_n)``,
``H0: lambda = 0``.  With ``mu_s`` the eigenvalues of ``Z' P0 Z`` (``P0 = I - X (X'X)^-1 X'``),
``xi_s`` those of ``Z'Z``, and independent ``w_s, u_s ~ N(0, 1)``, under ``H0``::

    RLRT = sup_{l >= 0} (n - p) log(1 + N(l) / D(l)) - sum_s log(1 + l mu_s)
    LRT  = sup_{l >= 0} n log(1 + N(l) / D(l)) - sum_s log(1 + l xi_s)
           + n log(1 + sum_{s<=q} u_s^2 / sum_{s<=n-p} w_s^2)

    N(l) = sum_{s<=K} l mu_s / (1 + l mu_s) w_s^2,
    D(l) = sum_{s<=K} w_s^2 / (1 + l mu_s) + sum_{K<s<=n-p} w_s^2

(``q``: fixed effects removed under ``H0``).  Only the ``w_s^2`` enter: eigenvalues that are
equal (a balanced design) share one chi-square with their multiplicity as df, and the ``w_s^2``
beyond ``K`` are one chi-square on ``n - p - K`` df, which is exact and makes a simulation cost
``nsim x (distinct eigenvalues) x (grid length)``.  The maximum is taken over the grid of
RLRsim (``0`` and ``exp`` of ``gridlength - 1`` points equally spaced from ``log_grid_lo`` to
``log_grid_hi``) after scaling the eigenvalues by their maximum (RLRsim's convention).  With
``search="first"`` (RLRsim's rule: walk up the grid from ``lambda = 0`` and stop at the first
decrease) the simulated statistic has the same law as RLRsim's; ``search="global"`` takes the
largest value on the whole grid, which is never smaller (the observed statistic is a global
maximum too, so this null distribution is the more faithful one when the profile has several
local maxima).  The eigenvalues come from sums over groups: ``Z`` (block diagonal by
group) is sparse, ``Z'Z`` and ``Q'Z`` (``Q`` an orthonormal basis of the columns of ``X``) are
``K x K`` and ``K x p``; no ``n x n`` matrix is formed.

References
----------
Crainiceanu, C. M. and Ruppert, D. (2004). Likelihood ratio tests in linear mixed models with
one variance component. *JRSS B* 66, 165-185.
Scheipl, F., Greven, S. and Kuechenhoff, H. (2008). Size and power of tests for a zero random
effect variance or polynomial regression in additive and linear mixed models. *CSDA* 52,
3283-3299 (the R package RLRsim).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["MAX_LEVELS", "eigenvalues", "lambda_grid", "simulate_null"]

#: largest number of random-effect columns K (the K x K matrices stay below ~130 MB)
MAX_LEVELS = 4000
#: simulated values per block (memory: block x gridlength doubles, a few MB)
_BLOCK = 4096


def lambda_grid(log_grid_lo: float = -10.0, log_grid_hi: float = 8.0, gridlength: int = 200):
    """RLRsim's grid of ``lambda``: 0 and ``gridlength - 1`` log-spaced values."""
    if gridlength < 2 or not log_grid_lo < log_grid_hi:
        raise ValueError(
            f"the grid needs gridlength >= 2 and log_grid_lo < log_grid_hi; got {gridlength}, "
            f"{log_grid_lo}, {log_grid_hi}"
        )
    return np.concatenate([[0.0], np.exp(np.linspace(log_grid_lo, log_grid_hi, gridlength - 1))])


def _block_design(z: np.ndarray, codes: np.ndarray, n_groups: int) -> sparse.csc_matrix:
    """The block-diagonal ``Z`` (n, n_groups * w) of per-row columns ``z`` (n, w), without the
    columns that are zero (padding of groups with fewer levels)."""
    n, w = z.shape
    rows = np.repeat(np.arange(n), w)
    cols = (codes[:, None] * w + np.arange(w)[None, :]).ravel()
    Z = sparse.csc_matrix((z.ravel(), (rows, cols)), shape=(n, n_groups * w))
    Z.eliminate_zeros()
    keep = np.flatnonzero(np.diff(Z.indptr) > 0)
    return Z[:, keep]


def eigenvalues(X: np.ndarray, z: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, xi)``: eigenvalues of ``Z' P0 Z`` and ``Z'Z`` (descending, negatives of rounding
    set to 0) for ``Z`` block diagonal by group (``codes`` 0..G-1) with rows ``z``."""
    codes = np.asarray(codes, np.int64)
    Z = _block_design(np.asarray(z, float), codes, int(codes.max()) + 1)
    K = Z.shape[1]
    if K > MAX_LEVELS:
        raise ValueError(
            f"the random effect has {K} levels; the exact test handles at most {MAX_LEVELS} "
            "(use pb_lrt for a parametric-bootstrap test)"
        )
    Q, _ = np.linalg.qr(np.asarray(X, float))
    ZtZ = (Z.T @ Z).toarray()
    QtZ = np.asarray(Z.T @ Q)  # (K, p)
    xi = np.linalg.eigvalsh(ZtZ)[::-1]
    mu = np.linalg.eigvalsh(ZtZ - QtZ @ QtZ.T)[::-1]
    tol = max(xi[0], 1.0) * K * np.finfo(float).eps * 10
    return np.where(mu > tol, mu, 0.0), np.where(xi > tol, xi, 0.0)


def _distinct(values: np.ndarray, rtol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Positive values grouped when equal up to ``rtol``: ``(values, multiplicities)``."""
    v = np.sort(values[values > 0])
    if not v.size:
        return v, np.zeros(0, int)
    new = np.concatenate([[True], np.diff(v) > rtol * v[1:]])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, v.size))
    means = np.add.reduceat(v, starts) / counts
    return means, counts


def simulate_null(
    mu: np.ndarray,
    n: int,
    p: int,
    nsim: int,
    rng: np.random.Generator,
    *,
    reml: bool = True,
    xi: np.ndarray | None = None,
    q: int = 0,
    grid: np.ndarray | None = None,
    search: str = "first",
) -> tuple[np.ndarray, np.ndarray]:
    """``nsim`` values of the null RLRT (``reml=True``) or LRT and the maximising ``lambda``
    (on the scale of the eigenvalues divided by their maximum).

    ``mu``: eigenvalues of ``Z' P0 Z``; ``xi`` (ML only): of ``Z'Z``; ``n``, ``p``: rows and
    rank of ``X``; ``q``: fixed effects removed under the null (ML only); ``search``:
    ``"first"`` (RLRsim's first local maximum along the grid) or ``"global"``.
    """
    if search not in ("first", "global"):
        raise ValueError(f"search must be 'first' (RLRsim) or 'global'; got {search!r}")
    grid = lambda_grid() if grid is None else np.asarray(grid, float)
    mu = np.asarray(mu, float)
    xi = np.zeros(0) if xi is None else np.asarray(xi, float)
    top = max(mu.max(initial=0.0), xi.max(initial=0.0) if not reml else 0.0)
    if top <= 0:
        raise ValueError("the random effect is confounded with the fixed effects (Z'P0Z = 0)")
    mu_u, m_mu = _distinct(mu / top)
    rest = n - p - int(m_mu.sum())
    if rest < 0:
        raise ValueError(f"more random-effect levels ({int(m_mu.sum())}) than n - p = {n - p}")
    # N + D = T, the sum of all n - p squares, whatever lambda: the statistic is
    # scale * (log T - log D(l)) - logdet(l), so its maximum is the minimum of
    # h(l) = D(l) * exp(logdet(l) / scale): one product and no logarithm per grid point.
    A = grid[None, :] * mu_u[:, None]  # (k, g)
    den = 1.0 / (1.0 + A)
    if reml:
        logdet = m_mu @ np.log1p(A)
    else:
        xi_u, m_xi = _distinct(xi / top)
        logdet = m_xi @ np.log1p(grid[None, :] * xi_u[:, None])
    scale = (n - p) if reml else n
    c = np.exp(logdet / scale)
    out = np.empty(nsim)
    arg = np.empty(nsim, int)
    for start in range(0, nsim, _BLOCK):
        b = min(_BLOCK, nsim - start)
        W = rng.chisquare(m_mu, size=(b, m_mu.size))
        R = rng.chisquare(rest, size=b) if rest > 0 else np.zeros(b)
        h = W @ den
        h += R[:, None]
        h *= c[None, :]
        if search == "global":
            j = h.argmin(axis=1)
        else:  # RLRsim: the first point after which the statistic decreases
            up = h[:, 1:] > h[:, :-1]
            j = np.where(up.any(axis=1), up.argmax(axis=1), h.shape[1] - 1)
        rows = np.arange(b)
        total = W.sum(axis=1) + R
        best = scale * (np.log(total) - np.log(h[rows, j]))
        best[j == 0] = 0.0
        if not reml and q > 0:
            best = best + n * np.log1p(rng.chisquare(q, size=b) / total)
        out[start : start + b] = np.maximum(best, 0.0)
        arg[start : start + b] = j
    return out, grid[arg]
