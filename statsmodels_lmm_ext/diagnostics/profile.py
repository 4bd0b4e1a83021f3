"""Profile-likelihood intervals on the sd / correlation scale (lme4's ``confint(method =
"profile")``).

For a scalar function ``c = g(phi)`` of the parameters (one parameter, or an intraclass
correlation), the profile deviance ``dev_p(c)`` is the smallest deviance over the parameters
with ``g(phi) = c``: one coordinate of ``phi`` is solved from ``c`` and the others
(the nuisance parameters) are re-optimised, warm-started at the nearest point already
profiled.  With lme4's signed root ``zeta(c) = sign(c - c_hat) sqrt(dev_p(c) - dev_min)`` the
``1 - alpha`` interval is where ``|zeta| <= z_{1 - alpha/2}`` (``dev_p - dev_min <=
chi2_1(1 - alpha)``); its limits are found by bracketing on the scale that maps the range of
``c`` to the real line (log for standard deviations, Fisher z for correlations) and Brent's
method.  A standard deviation (or intraclass correlation) whose profile at zero stays below
the cut-off gets the lower limit 0, as lme4; a limit that is not reached before the
parameter's bound is that bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .sdscale import COR, SD, VCSD, SdScale, from_line, to_line

__all__ = ["Target", "parameter_target", "profile_limits", "minimize_free"]

#: how far (on the real-line scale) the search walks before it takes the bound as the limit
_T_MAX = 18.0
_MAX_STEPS = 40
#: tolerance of the limits on the real-line scale (relative 1e-8 for standard deviations)
_XTOL = 1e-8


@dataclass
class Target:
    """What is profiled: ``solve`` (the coordinate of ``phi`` set from ``c``), ``fill(c, PHI)``
    (sets that coordinate in each row of ``PHI``), ``value(phi)``, the open interval
    ``bounds`` of ``c`` and whether its lower bound is attainable (``zero_ok``: a variance or
    an intraclass correlation of 0); ``raw_step`` is the first step of the search above an
    estimate on its lower bound."""

    solve: int
    fill: Callable[[float, np.ndarray], np.ndarray]
    value: Callable[[np.ndarray], float]
    bounds: tuple[float, float]
    zero_ok: bool
    raw_step: float = 0.01


def parameter_target(sds: SdScale, j: int, phi_hat: np.ndarray) -> Target:
    """The target of the ``j``-th parameter on the sd / correlation scale (at ``phi_hat``)."""

    def fill(c, PHI):
        PHI[:, j] = c
        return PHI

    sd = sds.kinds[j] in (SD, VCSD)
    raw = 0.05 * float(phi_hat[sds.k_lin]) if sd else 0.01  # a twentieth of sigma
    return Target(j, fill, lambda phi: float(phi[j]), tuple(sds.bounds[j]), sd, raw)


class _Free:
    """The nuisance coordinates: standard deviations as they are (``|w|``, so that zero is an
    interior point of the search), other parameters on the real-line scale of their range."""

    def __init__(self, sds: SdScale, solve: int | None):
        self.idx = np.array([j for j in range(sds.k) if j != solve], int)
        self.raw = np.array([sds.kinds[j] in (SD, VCSD) for j in self.idx], bool)
        self.cor = np.array([sds.kinds[j] == COR for j in self.idx], bool)
        self.bounds = [sds.bounds[j] for j in self.idx]
        self.k_lin = sds.k_lin

    def scales(self, phi_hat: np.ndarray) -> tuple[np.ndarray, tuple]:
        """The size of each coordinate at the estimate ``phi_hat`` (standard deviations: their
        estimate, at least a twentieth of sigma; others 1) and the restart rule of
        :func:`minimize_free` (a standard deviation stuck at zero restarts at a tenth of its
        size)."""
        x = np.abs(np.asarray(phi_hat, float)[self.idx])
        sigma = float(phi_hat[self.k_lin])
        size = np.where(self.raw, np.maximum(x, 0.05 * sigma), 1.0)
        return size, (self.raw, np.where(self.raw, 0.1 * size, 0.0))

    def to_w(self, phi: np.ndarray) -> np.ndarray:
        x = np.asarray(phi, float)[self.idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = to_line(x[None], self.bounds)[0]
        return np.where(self.raw, x, np.clip(w, -_T_MAX, _T_MAX))

    def to_phi(self, W: np.ndarray, template: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(W)
        PHI = np.repeat(np.asarray(template, float)[None], W.shape[0], axis=0)
        PHI[:, self.idx] = np.where(self.raw, np.abs(W), from_line(W, self.bounds))
        return PHI


def minimize_free(fun: Callable[[np.ndarray], np.ndarray], w0: np.ndarray, restart=None,
                  scale=None):  # fmt: skip
    """Minimise ``fun`` (batched: rows of ``W`` -> values) from ``w0`` with L-BFGS-B and central
    differences evaluated in one batch, in the coordinates ``w / scale`` (``scale``: the size
    of each coordinate, so that steps and the stopping rule do not depend on the data's
    units); a coordinate of ``restart`` (mask, value) found at zero (a stationary point of
    ``|w|``) is restarted once there.  Returns ``(value, w)``."""
    w0 = np.asarray(w0, float)
    m = len(w0)
    if m == 0:
        return float(fun(w0[None])[0]), w0
    s = np.ones(m) if scale is None else np.asarray(scale, float)

    def fg(v):
        h = 1e-5 * np.maximum(1.0, np.abs(v))
        P = np.vstack([v, v + np.diag(h), v - np.diag(h)])
        d = fun(P * s)
        f0, fp, fm = d[0], d[1 : m + 1], d[m + 1 :]
        if not np.isfinite(f0):
            return 1e300, np.zeros(m)
        g = np.where(np.isfinite(fp) & np.isfinite(fm), (fp - fm) / (2 * h),
                     np.where(np.isfinite(fp), (fp - f0) / h, (f0 - fm) / h))  # fmt: skip
        g = np.where(np.isfinite(g), g, 0.0)
        return float(f0), g

    opts = {"ftol": 1e-13, "gtol": 1e-7, "maxiter": 1000, "maxcor": 20}
    best = optimize.minimize(fg, w0 / s, jac=True, method="L-BFGS-B", options=opts)
    if restart is not None:
        mask, value = restart
        v_restart = np.asarray(value, float) / s
        stuck = mask & (np.abs(best.x) < 1e-6 * np.maximum(np.abs(v_restart), 1e-300))
        if stuck.any():
            v1 = best.x.copy()
            v1[stuck] = v_restart[stuck]
            again = optimize.minimize(fg, v1, jac=True, method="L-BFGS-B", options=opts)
            if again.fun < best.fun:
                best = again
    return float(best.fun), best.x * s


class _Profile:
    """The profile deviance of one target, with warm starts from the points already done."""

    def __init__(self, sds: SdScale, target: Target, phi_hat: np.ndarray, dev_min: float):
        self.sds, self.target = sds, target
        self.phi_hat = np.asarray(phi_hat, float)
        self.dev_min = dev_min
        self.free = _Free(sds, target.solve)
        self.done: list[tuple[float, np.ndarray]] = [
            (target.value(self.phi_hat), self.free.to_w(self.phi_hat))
        ]
        self._scale, self._restart = self.free.scales(self.phi_hat)

    def _start(self, c: float, fun) -> np.ndarray:
        """Warm start at ``c``: the nuisance parameters extrapolated linearly from the two
        nearest points done (if finite there), else those of the nearest."""
        near = sorted(self.done, key=lambda cw: abs(cw[0] - c))[:2]
        w0 = near[0][1]
        if len(near) == 2 and near[0][0] != near[1][0]:
            (c1, w1), (c2, w2) = near
            w = w1 + (c - c1) * (w1 - w2) / (c1 - c2)
            if np.isfinite(fun(w[None])[0]):
                return w
        if np.isfinite(fun(w0[None])[0]) or not self.free.cor.any():
            return w0
        # the other correlations with this value make no positive definite matrix (a
        # singular fit): shrink them towards zero until they do
        W = np.repeat(w0[None], 5, axis=0)
        W[:, self.free.cor] *= np.array([0.9, 0.7, 0.4, 0.1, 0.0])[:, None]
        ok = np.flatnonzero(np.isfinite(fun(W)))
        return W[ok[0]] if ok.size else w0

    def deviance(self, c: float) -> float:
        def fun(W):
            return self.sds.deviance(self.target.fill(c, self.free.to_phi(W, self.phi_hat)))

        dev, w = minimize_free(fun, self._start(c, fun), self._restart, self._scale)
        if np.isfinite(dev):
            self.done.append((c, w))
        return dev

    def zeta(self, c: float, sign: float) -> float:
        """Signed root of the profile deviance; ``sign`` is the side of the estimate."""
        return sign * np.sqrt(max(self.deviance(c) - self.dev_min, 0.0))


def _line(target: Target, c):
    return float(to_line(np.array([[c]], float), [target.bounds])[0, 0])


def _unline(target: Target, t):
    return float(from_line(np.array([[t]], float), [target.bounds])[0, 0])


def _limit(prof: _Profile, c_hat: float, sign: float, z: float, step: float) -> float:
    """One limit: walk out from the estimate on the real-line scale until ``|zeta| > z``, then
    Brent's method between the last two points."""
    tg = prof.target
    lo, hi = tg.bounds
    # a standard deviation (or ICC) estimated at zero: search above it on the raw scale
    at_lo = c_hat <= lo or (tg.zero_ok and c_hat - lo < 1e-6 * tg.raw_step)
    if sign < 0 and tg.zero_ok:
        if at_lo or abs(prof.zeta(lo, -1.0)) <= z:
            return lo  # the profile at zero stays below the cut-off (lme4: lower limit 0)
    if at_lo:
        f = lambda c: prof.zeta(c, 1.0) - z  # noqa: E731
        a, b = lo, tg.raw_step
        for _ in range(_MAX_STEPS):
            if f(b) > 0:
                return optimize.brentq(f, a, b, xtol=_XTOL * b, rtol=1e-12)
            a, b = b, 2.0 * b
        return hi
    t0 = _line(tg, c_hat)
    f = lambda t: prof.zeta(_unline(tg, t), sign) - sign * z  # noqa: E731
    # the signed root is close to linear on this scale: the first try is the Wald limit, the
    # next ones extrapolate the signed root linearly (with a margin), then grow the step
    a, d = t0, z * step
    for _ in range(_MAX_STEPS):
        b = a + sign * d
        if abs(b - t0) > _T_MAX + abs(t0):
            break
        fb = f(b)
        if sign * fb > 0:
            t = optimize.brentq(f, min(a, b), max(a, b), xtol=_XTOL, rtol=1e-12)
            return _unline(tg, t)
        slope = abs(fb + sign * z) / abs(b - t0)  # |zeta(b)| / distance
        a = b
        d = max(1.2 * (z - abs(fb + sign * z)) / slope, d) if slope > 0 else 2.0 * d
    if sign < 0 and tg.zero_ok:  # below any log-scale step: bracket on the raw scale
        g = lambda c: prof.zeta(c, -1.0) + z  # noqa: E731
        return optimize.brentq(g, lo, _unline(tg, a), xtol=1e-14, rtol=1e-12)
    return lo if sign < 0 else hi


def profile_limits(sds: SdScale, target: Target, phi_hat: np.ndarray, dev_min: float,
                   z: float, step: float) -> tuple[float, float]:  # fmt: skip
    """``(lower, upper)`` of the profile interval of ``target``: where the signed root of the
    profile deviance crosses ``-z`` and ``z``; ``step`` is the first step of the search on the
    real-line scale (a Wald standard error there, or a default)."""
    prof = _Profile(sds, target, phi_hat, dev_min)
    c_hat = target.value(np.asarray(phi_hat, float))
    if not (np.isfinite(step) and step > 0):
        step = 0.25
    step = float(np.clip(step, 1e-3, 2.0))
    return (_limit(prof, c_hat, -1.0, z, step), _limit(prof, c_hat, 1.0, z, step))
