"""Minimising profiled deviances: the optimiser chain, batched BFGS, and ONE saddle policy.

A fit minimises the profiled deviance ``-2 l`` over the optimiser coordinates of
:class:`~statsmodels_lmm_ext.params.CovParams`.  The convergence criterion is
``max |gradient| / gradient_scale(nobs) <= gtol``: the deviance and its curvature grow with the
number of observations, so an absolute bound would be unreachable in floating point for large
data.

The square-root map of variances has a stationary point at zero whatever the data, so an
optimiser can stop there although the deviance falls as the variance grows (a saddle).  The
policy, used by single fits, batched bootstrap refits and warm starts alike: a variance
coordinate found at such a point (or a warm start at zero) restarts at
:func:`saddle_restart` and the optimisation resumes; a point that still has one after
``SADDLE_ROUNDS`` restarts is not converged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

__all__ = [
    "GTOL",
    "METHODS",
    "OPTIMIZERS",
    "SADDLE_ROUNDS",
    "bfgs_many",
    "gradient_scale",
    "minimize_chain",
    "restrict",
    "saddle_restart",
]

#: default convergence criterion (max |gradient| / gradient_scale(nobs))
GTOL = 1e-6
#: optimisers of the default chain, tried in turn until the criterion holds
METHODS = ("lbfgs", "bfgs", "nm")
#: restarts allowed to leave saddle points before a fit counts as not converged
SADDLE_ROUNDS = 3
_RESTART_FACTORS = (1.0, 0.3, 3.0)


def gradient_scale(nobs: int) -> float:
    """Divisor of the gradient in the convergence criterion."""
    return float(max(nobs, 100))


def saddle_restart(u_ref: np.ndarray, round_: int = 0) -> np.ndarray:
    """Where a variance coordinate restarts after a saddle (round ``round_``): its reference
    value (the start of the fit), at least 0.1, times 1, 0.3, 3 in successive rounds."""
    return _RESTART_FACTORS[round_ % 3] * np.maximum(np.abs(np.asarray(u_ref, float)), 0.1)


#: optimisers ``minimize_chain`` knows (statsmodels' names)
OPTIMIZERS = ("lbfgs", "bfgs", "cg", "nm", "powell")


def _minimize_one(method: str, fg, f, u0: np.ndarray, maxiter: int, disp: bool = False):
    """One scipy optimiser from ``u0``; returns ``(u, info)`` (``u0`` if it did not improve)."""
    if method == "lbfgs":
        opts = {"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-9, "maxcor": 20}
        r = optimize.minimize(fg, u0, jac=True, method="L-BFGS-B", options=opts)
    elif method == "bfgs":
        opts = {"maxiter": maxiter, "gtol": 1e-7, "disp": disp}
        r = optimize.minimize(fg, u0, jac=True, method="BFGS", options=opts)
    elif method == "cg":
        opts = {"maxiter": maxiter, "gtol": 1e-7, "disp": disp}
        r = optimize.minimize(fg, u0, jac=True, method="CG", options=opts)
    elif method == "nm":
        opts = {"maxiter": maxiter * 5, "xatol": 1e-8, "fatol": 1e-10, "disp": disp}
        r = optimize.minimize(f, u0, method="Nelder-Mead", options=opts)
        r2 = optimize.minimize(
            fg, r.x, jac=True, method="BFGS", options={"maxiter": maxiter, "gtol": 1e-7}
        )
        r = r2 if r2.fun <= r.fun else r
    elif method == "powell":
        opts = {"maxiter": maxiter * 5, "disp": disp}
        r = optimize.minimize(f, u0, method="Powell", options=opts)
    else:
        raise ValueError(
            f"unknown optimiser {method!r}; choose from {', '.join(map(repr, OPTIMIZERS))}"
        )
    u = r.x if np.isfinite(r.fun) and r.fun <= f(u0) else u0
    return u, {"success": bool(r.success), "nit": int(getattr(r, "nit", 0))}


def restrict(fg, f, saddles, u0: np.ndarray, free: np.ndarray | None):
    """The functions of the free coordinates ``v = u[free]`` with the others held at ``u0``.

    Returns ``(fg_v, f_v, saddles_v, v0, expand)``; ``expand(v)`` is the full ``u``.  With
    ``free=None`` everything is returned unchanged (``expand`` is the identity).
    """
    u0 = np.asarray(u0, float)
    if free is None or free.all():
        return fg, f, saddles, u0, lambda v: np.asarray(v, float)
    free = np.asarray(free, bool)

    def expand(v):
        u = u0.copy()
        u[free] = v
        return u

    def fg_v(v):
        val, grad = fg(expand(v))
        return val, np.asarray(grad)[free]

    return (
        fg_v,
        lambda v: f(expand(v)),
        lambda v: np.asarray(saddles(expand(v)))[free],
        u0[free],
        expand,
    )


def minimize_chain(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    u0: np.ndarray,
    *,
    f: Callable[[np.ndarray], float] | None = None,
    saddles: Callable[[np.ndarray], np.ndarray],
    gscale: float,
    methods: Sequence[str] = METHODS,
    maxiter: int = 2000,
    gtol: float = GTOL,
    disp: bool = False,
):
    """Minimise a function (values and gradients ``fg(u)``, values alone ``f(u)`` if given;
    ``inf`` where undefined) from ``u0``.

    The optimisers run in turn until ``max |gradient| / gscale <= gtol``.  A point that meets
    it with a coordinate on a saddle (``saddles(u)``: a boolean mask) restarts that coordinate
    at :func:`saddle_restart` and the first optimiser runs again.

    Returns ``(u, f, converged, gmax, hist)``.
    """
    methods = list(methods)

    if f is None:

        def f(u):
            return fg(u)[0]

    def fg_finite(u):
        val, grad = fg(u)
        return (val, grad) if np.isfinite(val) else (1e300, np.zeros_like(u))

    hist = []
    u = np.asarray(u0, float).copy()
    u_ref = u.copy()
    val = f(u)
    gmax = 0.0
    if not len(u):
        return u, val, bool(np.isfinite(val)), gmax, hist
    rounds = 0
    queue = [*methods, *methods[:1]]
    while queue:
        m = queue.pop(0)
        u, info = _minimize_one(m, fg_finite, f, u, maxiter, disp)
        val, grad = fg_finite(u)
        gmax = float(np.max(np.abs(grad))) / gscale
        hist.append({"method": m, "dev": val, "max|grad|/n": gmax, **info})
        if gmax <= gtol and val < 1e300:
            stuck = np.flatnonzero(saddles(u))
            if not len(stuck) or rounds == SADDLE_ROUNDS:
                return u, val, not len(stuck), gmax, hist
            u = u.copy()
            u[stuck] = saddle_restart(u_ref[stuck], rounds)
            hist[-1]["saddle"] = stuck.tolist()
            rounds += 1
            if not queue:
                queue.append(methods[0])
    return u, val, False, gmax, hist


def _bfgs_update(Hi, fresh, idx, s, y, eye):
    """BFGS update of the inverse Hessians ``Hi[idx]`` from steps ``s`` and gradient changes
    ``y``; a fresh metric is first rescaled to ``s'y / y'y``."""
    sy = np.einsum("bi,bi->b", s, y)
    yy = np.einsum("bi,bi->b", y, y)
    upd = sy > 1e-12 * np.sqrt(np.einsum("bi,bi->b", s, s) * yy)
    if not upd.any():
        return
    iu = idx[upd]
    su, yu, r = s[upd], y[upd], 1.0 / sy[upd]
    first = fresh[iu]
    H = Hi[iu]
    H[first] = eye * (sy[upd][first] / yy[upd][first])[:, None, None]
    V = eye - r[:, None, None] * su[:, :, None] * yu[:, None, :]
    Hi[iu] = V @ H @ np.swapaxes(V, 1, 2) + r[:, None, None] * su[:, :, None] * su[:, None]
    fresh[iu] = False


def _line_search(fg, U, f, idx, d, slope):
    """Armijo backtracking for the replicates ``idx`` along ``d``: returns the accepted mask
    and the new points, values and gradients (rows of the rejected ones are unchanged)."""
    t = np.minimum(1.0, 3.0 / np.abs(d).max(axis=1))  # a moderate first step in u
    newU, newf, newg = U[idx].copy(), f[idx].copy(), None
    accepted = np.zeros(idx.size, bool)
    pending = np.arange(idx.size)
    for _ in range(40):
        Ut = U[idx[pending]] + t[pending, None] * d[pending]
        ft, gt = fg(Ut, idx[pending])
        if newg is None:
            newg = np.zeros((idx.size, gt.shape[1]))
        ok = np.isfinite(ft) & (ft <= f[idx[pending]] + 1e-4 * t[pending] * slope[pending])
        acc = pending[ok]
        newU[acc], newf[acc], newg[acc] = Ut[ok], ft[ok], gt[ok]
        accepted[acc] = True
        pending = pending[~ok]
        if pending.size == 0:
            break
        t[pending] *= 0.5
    return accepted, newU, newf, newg


def bfgs_many(fg, U0: np.ndarray, gscale: float, gtol: float, maxiter: int = 200, Hinv0=None):
    """Minimise ``B`` independent smooth functions at once by BFGS with Armijo backtracking.

    ``fg(U, idx)`` returns values ``(m,)`` and gradients ``(m, k)`` of the functions ``idx`` at
    the rows of ``U`` (``m = len(idx)``).  ``Hinv0`` (k, k) is an initial inverse Hessian
    (default: the identity, rescaled after the first step).  Each function is frozen as soon
    as its criterion ``max |g| / gscale <= gtol`` holds.  Returns ``(U, f, converged)``;
    functions whose line search stalls stay unconverged.
    """
    B, k = U0.shape
    U = U0.copy()
    f, g = fg(U, np.arange(B))
    conv = np.isfinite(f) & (np.abs(g).max(axis=1, initial=0.0) / gscale <= gtol)
    active = np.isfinite(f) & ~conv
    eye = np.eye(k)
    Hi = np.broadcast_to(eye if Hinv0 is None else Hinv0, (B, k, k)).copy()
    fresh = np.full(B, Hinv0 is None)
    for _ in range(maxiter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        gi = g[idx]
        d = -np.einsum("bij,bj->bi", Hi[idx], gi)
        slope = np.einsum("bi,bi->b", gi, d)
        reset = ~(slope < 0)
        if reset.any():
            d[reset] = -gi[reset]
            slope[reset] = -np.einsum("bi,bi->b", gi[reset], gi[reset])
            Hi[idx[reset]] = eye
            fresh[idx[reset]] = True
        accepted, newU, newf, newg = _line_search(fg, U, f, idx, d, slope)
        active[idx[~accepted]] = False  # stalled: left to the fallback optimisers
        a = np.flatnonzero(accepted)
        ia = idx[a]
        s, y = newU[a] - U[ia], newg[a] - g[ia]
        U[ia], f[ia], g[ia] = newU[a], newf[a], newg[a]
        _bfgs_update(Hi, fresh, ia, s, y, eye)
        done = np.abs(g[ia]).max(axis=1, initial=0.0) / gscale <= gtol
        conv[ia[done]] = True
        active[ia[done]] = False
    return U, f, conv


def leave_saddles_many(fg, saddles, U, f, conv, u_ref, gscale: float, gtol: float = GTOL):
    """The saddle policy for a batch: converged rows with a coordinate on a saddle
    (``saddles(U_rows, idx)`` -> mask) restart it at :func:`saddle_restart` with an identity
    first metric (the original curvature can send the first step straight back to zero) and
    are minimised again; a restart is kept only if it lowers ``f``.  Rows still on a saddle
    after ``SADDLE_ROUNDS`` restarts become unconverged (left to the fallback optimisers).
    """
    for r in range(SADDLE_ROUNDS + 1):
        idx = np.flatnonzero(conv)
        if idx.size == 0:
            break
        mask = saddles(U[idx], idx)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            break
        sub = idx[rows]
        if r == SADDLE_ROUNDS:
            conv[sub] = False
            break
        U1 = U[sub].copy()
        restart = np.broadcast_to(saddle_restart(u_ref, r), U1.shape)
        U1[mask[rows]] = restart[mask[rows]]
        U2, f2, conv2 = bfgs_many(lambda V, i, sub=sub: fg(V, sub[i]), U1, gscale, gtol)
        better = np.isfinite(f2) & (f2 <= f[sub] + 1e-12 * np.abs(f[sub]))
        U[sub[better]], f[sub[better]] = U2[better], f2[better]
        conv[sub] = better & conv2
    return U, f, conv
