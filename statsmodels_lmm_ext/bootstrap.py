"""Likelihood-ratio tests, parametric-bootstrap tests, simulation and refitting.

For nested models ``small`` (parameters ``theta_0``) and ``large`` (``theta_1``)::

    LRT = 2 (l_large - l_small),   df = dim(theta_1) - dim(theta_0)

with both models fitted by ML (REML fits of models with the same fixed effects may be compared
by their REML likelihoods, as ``nlme``'s ``anova``).  The parametric bootstrap replaces the
chi-square reference distribution by the distribution of ``LRT*`` over responses ``y*``
simulated from the fitted small model, each refitted by both models.  Simulation goes group by
group through the Cholesky factor of ``V_i = Z_i G Z_i' + sigma^2 C_i(rho)``; refits are batched
over replicates (one quasi-Newton iteration advances a whole batch of replicates with stacked
numpy operations, see :meth:`Engine.profile_many`) and warm-started at the original estimates.

References
----------
Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*. CUP.
Halekoh, U. and Hojsgaard, S. (2014). A Kenward-Roger approximation and parametric bootstrap
methods for tests in linear mixed models - the R package pbkrtest. *J. Stat. Softw.* 59(9).
Self, S. G. and Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood estimators and
likelihood ratio tests under nonstandard conditions. *JASA* 82, 605-610.
Stram, D. O. and Lee, J. W. (1994). Variance components testing in the longitudinal mixed
effects model. *Biometrics* 50, 1171-1177.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression import mixed_linear_model as sm_mlm
from statsmodels.regression.linear_model import OLS, RegressionResults
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ._engine import Engine
from .model import _maximise, _Transform

__all__ = [
    "BootstrapPrediction",
    "BootstrapWarning",
    "LRTResult",
    "PBTestResult",
    "bootstrap_predict",
    "lrt",
    "pb_lrt",
    "refit",
    "simulate",
]

# Largest number of array elements one batch of replicates may hold in its biggest temporaries.
_BATCH_ELEMENTS = 4_000_000
# Replicates per batch: the split depends only on nsim and the model (never on n_jobs), so that
# results are identical for any number of workers.
_BATCH_RANGE = (64, 256)
_GTOL = 1e-6  # as MixedLM.fit: max |gradient| / max(nobs, 100)
# Prefer worker processes when the remaining batches would take longer than this in sequence
# (starting a process pool costs about 1.5-2 s on a 2-core machine).
_PROCESS_SECONDS = 4.0


class BootstrapWarning(UserWarning):
    """Issued once per call when bootstrap replicates failed, or when ``progress=True`` cannot
    show a bar because tqdm is not installed."""


# ---------------------------------------------------------------------------------------------
# Seeds and random numbers
# ---------------------------------------------------------------------------------------------


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if seed is None or isinstance(seed, int | np.integer):
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise TypeError(
        f"seed must be None, an int, a numpy SeedSequence or Generator; got {type(seed).__name__}"
    )


def _check_nsim(nsim) -> int:
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer; got {nsim!r}")
    return int(nsim)


def _normals(seeds, n: int, extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard normals ``(n, B)`` for the responses and ``(extra, B)`` drawn after them, one
    generator per replicate (replicate ``j`` depends on ``seeds[j]`` only)."""
    Z = np.empty((n, len(seeds)))
    E = np.empty((extra, len(seeds)))
    for j, s in enumerate(seeds):
        z = np.random.default_rng(s).standard_normal(n + extra)
        Z[:, j] = z[:n]
        E[:, j] = z[n:]
    return Z, E


# ---------------------------------------------------------------------------------------------
# Lean descriptions of fitted models: simulate from them and refit them to new responses
# ---------------------------------------------------------------------------------------------


def _take(stats_: list[dict], idx: np.ndarray) -> list[dict]:
    return [{k: v[idx] for k, v in st.items()} for st in stats_]


def _bfgs_many(fg, U0: np.ndarray, gscale: float, gtol: float, maxiter: int = 200, Hinv0=None):
    """Minimise ``B`` independent smooth functions at once by BFGS with Armijo backtracking.

    ``fg(U, idx)`` returns values ``(m,)`` and gradients ``(m, k)`` of the functions ``idx`` at
    the rows of ``U`` (``m = len(idx)``).  ``Hinv0`` (k, k) is an initial inverse Hessian
    (default: the identity, rescaled after the first step).  Each replicate is frozen as soon
    as its gradient criterion ``max |g| / gscale <= gtol`` holds, so its result does not depend
    on the others.  Returns ``(U, f, converged)``; replicates whose line search stalls stay
    unconverged.
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
        # keep the first trial step moderate in the unconstrained coordinates
        t = np.minimum(1.0, 3.0 / np.abs(d).max(axis=1))
        newU, newf, newg = U[idx].copy(), f[idx].copy(), g[idx].copy()
        accepted = np.zeros(idx.size, bool)
        pending = np.arange(idx.size)
        for _ls in range(40):
            Ut = U[idx[pending]] + t[pending, None] * d[pending]
            ft, gt = fg(Ut, idx[pending])
            ok = np.isfinite(ft) & (ft <= f[idx[pending]] + 1e-4 * t[pending] * slope[pending])
            acc = pending[ok]
            newU[acc], newf[acc], newg[acc] = Ut[ok], ft[ok], gt[ok]
            accepted[acc] = True
            pending = pending[~ok]
            if pending.size == 0:
                break
            t[pending] *= 0.5
        active[idx[~accepted]] = False  # stalled: left to the fallback optimisers
        a = np.flatnonzero(accepted)
        ia = idx[a]
        s = newU[a] - U[ia]
        y = newg[a] - g[ia]
        U[ia], f[ia], g[ia] = newU[a], newf[a], newg[a]
        sy = np.einsum("bi,bi->b", s, y)
        yy = np.einsum("bi,bi->b", y, y)
        upd = sy > 1e-12 * np.sqrt(np.einsum("bi,bi->b", s, s) * yy)
        if upd.any():
            iu = ia[upd]
            su, yu, r = s[upd], y[upd], 1.0 / sy[upd]
            first = fresh[iu]
            H = Hi[iu]
            H[first] = eye * (sy[upd][first] / yy[upd][first])[:, None, None]
            V = eye - r[:, None, None] * su[:, :, None] * yu[:, None, :]
            Hi[iu] = V @ H @ np.swapaxes(V, 1, 2) + r[:, None, None] * su[:, :, None] * su[:, None]
            fresh[iu] = False
        done = np.abs(g[ia]).max(axis=1, initial=0.0) / gscale <= gtol
        conv[ia[done]] = True
        active[ia[done]] = False
    return U, f, conv


@dataclass
class _OLSSpec:
    """An ordinary least-squares fit: closed-form ML / REML log-likelihood for any response."""

    X: np.ndarray
    beta: np.ndarray
    scale: float
    reml: bool = False
    _q: np.ndarray | None = field(default=None, repr=False)
    _logdet_xtx: float = 0.0

    def __post_init__(self):
        q, r = np.linalg.qr(self.X)
        self._q = q
        self._logdet_xtx = 2.0 * np.log(np.abs(np.diag(r))).sum()

    @property
    def nobs(self) -> int:
        return self.X.shape[0]

    @property
    def mean(self) -> np.ndarray:
        return self.X @ self.beta

    def llf_many(self, Y: np.ndarray) -> np.ndarray:
        """ML (or REML) log-likelihood of the OLS fit of each column of ``Y``."""
        n, p = self.X.shape
        QY = self._q.T @ Y
        rss = np.einsum("ib,ib->b", Y, Y) - np.einsum("ib,ib->b", QY, QY)
        m = n - p if self.reml else n
        with np.errstate(divide="ignore", invalid="ignore"):
            llf = -0.5 * m * (np.log(2 * np.pi * rss / m) + 1.0)
        if self.reml:
            llf = llf - 0.5 * self._logdet_xtx
        return llf

    def simulate(self, Z: np.ndarray, conditional: bool = False) -> np.ndarray:
        return self.mean[:, None] + np.sqrt(self.scale) * Z

    def fit_many(self, Y: np.ndarray, want_params: bool = False) -> dict:
        llf = self.llf_many(Y)
        out = {"llf": llf, "converged": np.isfinite(llf), "messages": []}
        if want_params:
            beta = np.linalg.lstsq(self.X, Y, rcond=None)[0].T
            n, p = self.X.shape
            r = Y - self.X @ beta.T
            out["beta"] = beta
            out["scale"] = np.einsum("ib,ib->b", r, r) / (n - p)
        return out


@dataclass
class _LMMSpec:
    """A fitted linear mixed model reduced to what simulation and refits need (picklable)."""

    engine: Engine
    k_re: int
    k_vc: int
    reml: bool
    beta: np.ndarray
    psi: np.ndarray
    vc: np.ndarray  # vc / scale
    rho: np.ndarray
    scale: float
    fitted: np.ndarray | None = None  # X beta + Z b (BLUPs), for conditional simulation

    @property
    def nobs(self) -> int:
        return self.engine.nobs

    @property
    def transform(self) -> _Transform:
        return _Transform(self.k_re, self.k_vc, self.engine.bounds, self.engine.cov_struct)

    @property
    def lam(self) -> np.ndarray:
        return np.concatenate([self.psi[np.tril_indices(self.k_re)], self.vc])

    def start(self) -> np.ndarray:
        """Warm start in the optimiser's coordinates.  A variance estimated at zero sits on a
        stationary point of the square-root parameterisation, so it restarts from 0.1."""
        tr = self.transform
        u = tr.unconstrained(self.psi, self.vc, self.rho)
        idx = tr.variance_coords
        small = np.abs(u[idx]) < 1e-3
        u[idx[small]] = 0.1
        return u

    def start_inverse_hessian(self) -> np.ndarray | None:
        """Inverse Hessian of the deviance at :meth:`start` for the observed response (central
        differences of the analytic gradient, one batched call); None if not positive definite.

        Replicates start at the same point with a similar curvature, so this first BFGS metric
        saves most of the iterations of an identity start.  Cached."""
        if "_hinv0" in self.__dict__:
            return self._hinv0
        eng, bt = self.engine, self.transform
        u0 = self.start()
        k = len(u0)
        h = 1e-5 * np.maximum(1.0, np.abs(u0))
        U = np.concatenate([u0 + np.diag(h), u0 - np.diag(h)])
        st = eng.endog_stats(np.repeat(eng.y[:, None], 2 * k, axis=1))
        lam, rho, _, _ = bt.natural_many(U)
        with np.errstate(all="ignore"):
            out = eng.profile_many(lam, rho, self.reml, st, gradient=True)
        G = bt.chain_many(U, out["grad_lin"], out["grad_rho"])
        H = (G[:k] - G[k:]) / (2.0 * h[:, None])
        H = (H + H.T) / 2.0
        hinv = None
        if np.all(out["ok"]) and np.all(np.isfinite(H)):
            w, V = np.linalg.eigh(H)
            if w.min() > 1e-8 * max(w.max(), 1e-300):
                hinv = (V / w) @ V.T
        self._hinv0 = hinv
        return hinv

    def random_effects_draw(self, E: np.ndarray) -> np.ndarray:
        """Random effects ``b ~ N(0, G)`` (B, n_groups, q) from standard normals (n_groups q, B).

        ``G`` may be singular (a variance at zero), so its symmetric square root is used."""
        q = self.k_re
        n_groups = self.engine.n_groups
        w, V = np.linalg.eigh(self.scale * self.psi) if q else (np.zeros(0), np.zeros((0, 0)))
        root = (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T
        E = E.reshape(n_groups, q, -1)
        return np.einsum("ab,gbB->Bga", root, E)

    def _add_noise(self, Y: np.ndarray, Z: np.ndarray, cov) -> np.ndarray:
        """``Y[rows_i] += chol(sigma^2 cov(chunk))_i z_i`` group by group, in place."""
        eng = self.engine
        for ch in eng.chunks:
            L = np.linalg.cholesky(self.scale * cov(ch))
            if ch.pattern:
                rows = ch.member_rows
                L = L[np.repeat(np.arange(len(ch.weight)), np.diff(ch.member_bounds))]
            else:
                rows = ch.rows
            Y[rows] += L @ Z[rows]
        return Y

    def _residual_corr(self, ch) -> np.ndarray:
        return self.engine.cov_struct.residual(self.rho, ch.geom).value

    def simulate_given_effects(self, Z: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Responses ``X beta + Z_i b_i + chol(sigma^2 C_i) z_i`` for given random effects
        ``b`` (B, n_groups, q) (no variance components)."""
        eng = self.engine
        Y = (eng.X @ self.beta)[:, None] + np.einsum("ia,Bia->iB", eng.Z, b[:, eng.groups, :])
        return self._add_noise(Y, Z, self._residual_corr)

    def simulate(self, Z: np.ndarray, conditional: bool = False) -> np.ndarray:
        """Responses ``mean + chol(V_i) z_i`` group by group (``Z`` (N, B) in row order).

        Unconditional: ``mean = X beta`` and ``V_i = sigma^2 H_i``; conditional on the BLUPs:
        ``mean = X beta + Z b`` and ``V_i = sigma^2 C_i(rho)``.
        """
        eng = self.engine
        mean = self.fitted if conditional else eng.X @ self.beta
        Y = np.repeat(mean[:, None], Z.shape[1], axis=1)
        if conditional:
            return self._add_noise(Y, Z, self._residual_corr)
        return self._add_noise(Y, Z, lambda ch: eng.H(ch, self.lam, self.rho, order=0)[0])

    def fit_many(self, Y: np.ndarray, want_params: bool = False) -> dict:
        """Refit the model to each column of ``Y``: ``llf``, ``converged`` and, with
        ``want_params``, the estimates (``beta``, ``scale``, ``psi``, ``vc``, ``rho``)."""
        eng = self.engine
        B = Y.shape[1]
        st = eng.endog_stats(Y)
        bt = self.transform
        gscale = max(eng.nobs, 100)
        U0 = np.tile(self.start(), (B, 1))
        messages: list[str] = []

        def fg(U, idx):
            lam, rho, _, _ = bt.natural_many(U)
            out = eng.profile_many(lam, rho, self.reml, _take(st, idx), gradient=True)
            return out["dev"], bt.chain_many(U, out["grad_lin"], out["grad_rho"])

        with np.errstate(all="ignore"):
            if bt.k:
                H0 = self.start_inverse_hessian()
                U, dev, conv = _bfgs_many(fg, U0, gscale, _GTOL, Hinv0=H0)
                U, dev, conv = self._leave_saddles(fg, st, U, dev, conv, U0[0])
            else:
                U = U0
                dev = eng.profile_many(np.zeros((B, 0)), np.zeros((B, 0)), self.reml, st)["dev"]
                conv = np.isfinite(dev)
        for j in np.flatnonzero(~conv) if bt.k else ():
            try:
                u, d, ok = _fit_one(eng, bt, self.reml, Y[:, j], U0[j])
            except Exception as exc:  # a refit that raises is a failed replicate
                messages.append(f"{type(exc).__name__}: {exc}")
                continue
            U[j], dev[j], conv[j] = u, d, ok
            if not ok:
                messages.append("refit did not converge")
        out = {"llf": -0.5 * dev, "converged": conv & np.isfinite(dev), "messages": messages}
        if want_params:
            lam, rho, psi, vc = bt.natural_many(U)
            prof = eng.profile_many(lam, rho, self.reml, st)
            out.update(beta=prof["beta"], scale=prof["scale"], psi=psi, vc=vc, rho=rho, U=U)
        return out

    def _leave_saddles(self, fg, st, U, dev, conv, u_start, rounds: int = 3):
        """Restart replicates that stopped with a variance at zero although the deviance
        decreases as it grows (see :meth:`statsmodels_lmm_ext.model._Transform.saddles_many`).

        The restart puts that variance back at its starting value (at least 0.1, times 1,
        0.3, 3 in successive rounds) with an identity first metric (the original fit's
        curvature can send the first quasi-Newton step straight back to zero).  Replicates
        still at such a point after ``rounds`` restarts are left unconverged, for the fallback
        optimisers.
        """
        bt, eng = self.transform, self.engine
        gscale = max(eng.nobs, 100)
        for r in range(rounds + 1):
            idx = np.flatnonzero(conv)
            if idx.size == 0:
                break
            lam, rho, _, _ = bt.natural_many(U[idx])
            out = eng.profile_many(lam, rho, self.reml, _take(st, idx), gradient=True)
            mask = bt.saddles_many(U[idx], out["grad_lin"], gscale)
            rows = np.flatnonzero(mask.any(axis=1))
            if rows.size == 0:
                break
            sub = idx[rows]
            if r == rounds:
                conv[sub] = False
                break
            U1 = U[sub].copy()
            factor = (1.0, 0.3, 3.0)[r % 3]
            restart = factor * np.maximum(np.abs(u_start), 0.1)
            U1[mask[rows]] = np.broadcast_to(restart, U1.shape)[mask[rows]]
            U2, dev2, conv2 = _bfgs_many(lambda V, i, sub=sub: fg(V, sub[i]), U1, gscale, _GTOL)
            # leaving a saddle lowers the deviance; anything else goes to the fallback
            better = np.isfinite(dev2) & (dev2 <= dev[sub] + 1e-12 * np.abs(dev[sub]))
            U[sub[better]], dev[sub[better]] = U2[better], dev2[better]
            conv[sub] = better & conv2
        return U, dev, conv

    def blups(self, Y, fits, group_codes: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """BLUPs ``b = Psi Z_g' H_g^-1 (y_g - X_g beta)`` (B, m, q) of the groups
        ``group_codes`` (m,) for the refits ``ok`` (``fits`` from :meth:`fit_many` with
        ``want_params``); the others stay 0."""
        eng = self.engine
        B = Y.shape[1]
        out = np.zeros((B, len(group_codes), self.k_re))
        idx = np.flatnonzero(ok)
        if idx.size == 0 or self.k_re == 0:
            return out
        psi = fits["psi"][idx]
        il = np.tril_indices(self.k_re)
        lam = np.concatenate([psi[:, il[0], il[1]], fits["vc"][idx]], axis=1)
        for i, gcode in enumerate(group_codes):
            n = int(eng.sizes[gcode])
            rows = eng.group_rows(np.array([gcode]), n)  # (1, n)
            cs = eng.cov_struct
            geom = cs.geometry(eng.positions[rows], eng.visit[rows])
            if eng.k_corr:
                C = np.stack([cs.residual(r, geom).value[0] for r in fits["rho"][idx]])
            else:
                C = np.broadcast_to(cs.residual(np.zeros(0), geom).value[0], (1, n, n))
            H = C + np.einsum("bm,mts->bts", lam, eng._basis(rows)[:, 0])
            r = Y[rows[0]][:, idx].T - fits["beta"][idx] @ eng.X[rows[0]].T  # (b, n)
            Hr = np.linalg.solve(H, r[..., None])[..., 0]
            out[idx, i] = np.einsum("bac,tc,bt->ba", psi, eng.Z[rows[0]], Hr)
        return out


def _fit_one(eng: Engine, bt: _Transform, reml: bool, y: np.ndarray, u0: np.ndarray):
    """One refit by the optimiser chain of :meth:`MixedLM.fit` (the fallback of the batch):
    ``(u, dev, converged)``."""

    u, dev, ok, _, _ = _maximise(
        eng.with_endog(y), bt, reml, u0.copy(), ("lbfgs", "bfgs", "nm"), 2000, _GTOL
    )
    return u, dev, ok


# ---------------------------------------------------------------------------------------------
# Fitted models as the tests see them
# ---------------------------------------------------------------------------------------------


@dataclass
class _Fit:
    kind: str  # "ols" or "lmm"
    label: str
    endog: np.ndarray
    exog: np.ndarray
    reml: bool
    llf: float
    npar: int
    spec: _OLSSpec | _LMMSpec
    model: object = None  # our MixedLM (lmm)
    groups: np.ndarray | None = None
    exog_re: np.ndarray | None = None
    vc_names: tuple = ()
    cov_struct: object = None
    converged: bool = True
    notes: list = field(default_factory=list)
    source: object = None  # the results object this came from

    @property
    def nobs(self) -> int:
        return len(self.endog)

    @property
    def k_re(self) -> int:
        return 0 if self.exog_re is None else self.exog_re.shape[1]

    @property
    def uses_groups(self) -> bool:
        from .covstruct import Independence

        return self.kind == "lmm" and (
            self.k_re > 0
            or len(self.vc_names) > 0
            or not isinstance(self.cov_struct, Independence)
        )

    def criteria(self) -> tuple[float, float]:
        """AIC and BIC (BIC with ``N - p`` observations for REML, the nlme convention)."""
        n = self.nobs - (np.linalg.matrix_rank(self.exog) if self.reml else 0)
        return -2 * self.llf + 2 * self.npar, -2 * self.llf + np.log(n) * self.npar


def _unwrap(results):
    return getattr(results, "_results", results)


def _model_from_statsmodels(m):
    """Our MixedLM (Independence residuals) equivalent to a statsmodels MixedLM."""
    from .model import MixedLM

    endog = pd.Series(np.asarray(m.endog, float), name=m.endog_names)
    exog = pd.DataFrame(np.asarray(m.exog, float), columns=list(m.exog_names))
    exog_re = None
    if m.k_re:
        exog_re = pd.DataFrame(np.asarray(m.exog_re, float), columns=list(m.data.exog_re_names))
    out = MixedLM(endog, exog, np.asarray(m.groups), exog_re=exog_re, exog_vc=m.exog_vc)
    out.formula = getattr(m, "formula", None)
    return out


def _label(kind: str, model) -> str:
    formula = getattr(model, "formula", None) or "(arrays)"
    if kind == "ols":
        return f"OLS {formula}"
    cs = model.cov_struct
    re = ", ".join(model.data.exog_re_names) if model.k_re else "none"
    vc = f", vc: {', '.join(model.exog_vc.names)}" if model.k_vc else ""
    return f"MixedLM {formula} (re: {re}{vc}; residuals: {cs!r})"


def _lmm_fit(model, res, beta, psi, vc_s, rho, scale, reml, llf, converged) -> _Fit:
    spec = _LMMSpec(
        engine=model.engine,
        k_re=model.k_re,
        k_vc=model.k_vc,
        reml=bool(reml),
        beta=np.asarray(beta, float),
        psi=np.asarray(psi, float).reshape(model.k_re, model.k_re),
        vc=np.asarray(vc_s, float),
        rho=np.asarray(rho, float),
        scale=float(scale),
    )
    npar = model.k_fe + model.k_re2 + model.k_vc + model.cov_struct.k_params + 1
    f = _Fit(
        kind="lmm",
        label=_label("lmm", model),
        endog=np.asarray(model.endog, float),
        exog=np.asarray(model.exog, float),
        reml=bool(reml),
        llf=float(llf),
        npar=int(npar),
        spec=spec,
        model=model,
        groups=np.asarray(model.groups),
        exog_re=np.asarray(model.exog_re, float) if model.k_re else None,
        vc_names=tuple(model.exog_vc.names),
        cov_struct=model.cov_struct,
        converged=bool(converged),
        source=res,
    )
    return f


def _as_fit(results, role: str = "model") -> _Fit:
    """Adapt our results, statsmodels MixedLM results or statsmodels OLS results."""
    from .results import MixedLMResults

    res = _unwrap(results)
    if isinstance(res, MixedLMResults):
        m = res.model
        return _lmm_fit(
            m,
            res,
            np.asarray(res.fe_params),
            np.asarray(res.cov_re_unscaled),
            np.asarray(res.vcomp) / res.scale,
            res._rho,
            res.scale,
            res.reml,
            res.llf,
            res.converged,
        )
    if isinstance(res, sm_mlm.MixedLMResults):
        m = _model_from_statsmodels(res.model)
        return _lmm_fit(
            m,
            res,
            np.asarray(res.fe_params),
            np.asarray(res.cov_re) / res.scale,
            np.asarray(res.vcomp) / res.scale,
            np.zeros(0),
            res.scale,
            res.reml,
            res.llf,
            getattr(res, "converged", True),
        )
    if isinstance(res, RegressionResults) and type(res.model) is OLS:
        X = np.asarray(res.model.exog, float)
        if res.model.rank < X.shape[1]:
            raise ValueError(
                f"the OLS {role} has a rank-deficient design ({res.model.rank} of {X.shape[1]} "
                "columns); drop the redundant columns"
            )
        weights = getattr(res.model, "weights", 1.0)
        if not np.all(np.asarray(weights) == 1.0):  # pragma: no cover - OLS has unit weights
            raise TypeError("weighted least squares fits are not supported")
        spec = _OLSSpec(X=X, beta=np.asarray(res.params, float), scale=float(res.scale))
        f = _Fit(
            kind="ols",
            label=_label("ols", res.model),
            endog=np.asarray(res.model.endog, float),
            exog=X,
            reml=False,
            llf=float(res.llf),
            npar=X.shape[1] + 1,
            spec=spec,
            source=res,
        )
        return f
    raise TypeError(
        f"the {role} must be a fitted statsmodels_lmm_ext or statsmodels MixedLM, or a "
        f"statsmodels OLS result; got {type(res).__name__}"
    )


def _with_method(fit: _Fit, reml: bool, why: str) -> _Fit:
    """The same model fitted by REML (``reml=True``) or ML, refitting if necessary."""
    if fit.reml == reml:
        return fit
    if fit.kind == "ols":
        spec = copy.copy(fit.spec)
        spec.reml = reml
        new = copy.copy(fit)
        new.spec, new.reml = spec, reml
        new.llf = float(spec.llf_many(fit.endog[:, None])[0])
        return new
    model = copy.copy(fit.model)  # fit() sets model.reml: keep the user's model untouched
    spec = fit.spec
    start = np.concatenate([spec.lam, spec.rho])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(reml=reml, start_params=start)
    out = _as_fit(res)
    out.label = fit.label
    method = "REML" if reml else "ML"
    out.notes = [f"{why}: refitted by {method}"]
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            out.notes.append(f"{method} refit: {w.message}")
    if not out.converged:
        warnings.warn(
            f"the {method} refit did not converge; the likelihood-ratio statistic may be "
            "inaccurate",
            ConvergenceWarning,
            stacklevel=4,
        )
    return out


# ---------------------------------------------------------------------------------------------
# Nesting checks and the LRT
# ---------------------------------------------------------------------------------------------


def _in_span(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether the columns of ``A`` lie in the column space of ``B``."""
    if A.shape[1] == 0:
        return True
    if B.shape[1] == 0:
        return False
    c, *_ = np.linalg.lstsq(B, A, rcond=None)
    return np.allclose(B @ c, A, atol=1e-8 * max(1.0, np.abs(A).max()))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    ca = pd.factorize(a)[0]
    cb = pd.factorize(b)[0]
    pairs = len(np.unique(ca.astype(np.int64) * (cb.max() + 1) + cb))
    return pairs == ca.max() + 1 == cb.max() + 1


def _check_pair(small: _Fit, large: _Fit) -> None:
    from .covstruct import Independence

    if small.nobs != large.nobs:
        raise ValueError(
            f"the models were fitted to different data: {small.nobs} rows (small) and "
            f"{large.nobs} rows (large); fit both to the same rows"
        )
    if not np.allclose(small.endog, large.endog, rtol=1e-10, atol=0.0):
        i = int(np.flatnonzero(~np.isclose(small.endog, large.endog, rtol=1e-10, atol=0.0))[0])
        raise ValueError(
            f"the models have different responses (first difference at row {i}: "
            f"{small.endog[i]!r} vs {large.endog[i]!r}); a likelihood-ratio test needs the same "
            "response, in the same row order"
        )
    if small.npar >= large.npar:
        raise ValueError(
            f"the models are not nested: the small model has {small.npar} parameters and the "
            f"large one {large.npar}; the small model needs fewer"
        )
    if not _in_span(small.exog, large.exog):
        raise ValueError(
            "the models are not nested: the small model's fixed effects are not in the column "
            "space of the large model's"
        )
    if small.uses_groups and large.kind == "lmm":
        if not _same_partition(small.groups, large.groups):
            raise ValueError(
                "the models are not nested: they group the rows differently (the random "
                "effects / residual structure of both must use the same groups)"
            )
    if small.uses_groups and large.kind == "ols":
        raise ValueError("the models are not nested: the large model is an OLS fit")
    if small.k_re:
        if large.k_re == 0 or not _in_span(small.exog_re, large.exog_re):
            raise ValueError(
                "the models are not nested: the small model's random effects are not among the "
                "large model's"
            )
    missing_vc = set(small.vc_names) - set(large.vc_names)
    if missing_vc:
        raise ValueError(
            f"the models are not nested: variance component(s) {sorted(missing_vc)} of the "
            "small model are not in the large model"
        )
    cs_s, cs_l = small.cov_struct, large.cov_struct
    if small.kind == "lmm" and not isinstance(cs_s, Independence):
        if type(cs_s) is not type(cs_l) or cs_s.position_columns != cs_l.position_columns:
            raise ValueError(
                f"the models are not nested: residual structure {cs_s!r} (small) is not a "
                f"special case of {cs_l!r} (large)"
            )


def _mixture(small: _Fit, large: _Fit, same_fe: bool) -> tuple[float, int] | None:
    """``(weight, q)`` of the 50:50 chi2_q : chi2_(q+1) mixture (Self and Liang 1987; Stram and
    Lee 1994) when ``large`` adds one variance (with its covariances) and nothing else."""
    from .covstruct import Independence

    if not same_fe:
        return None
    cs_s = small.cov_struct if small.kind == "lmm" else Independence()
    cs_l = large.cov_struct if large.kind == "lmm" else Independence()
    if type(cs_s) is not type(cs_l) or cs_s.k_params != cs_l.k_params:
        return None
    k_vc_s, k_vc_l = len(small.vc_names), len(large.vc_names)
    if large.k_re == small.k_re + 1 and k_vc_l == k_vc_s:
        return 0.5, small.k_re
    if large.k_re == small.k_re and k_vc_l == k_vc_s + 1:
        return 0.5, 0
    return None


def _mixture_pvalue(stat: float, q: int) -> float:
    p_hi = stats.chi2.sf(stat, q + 1)
    p_lo = stats.chi2.sf(stat, q) if q > 0 else float(stat <= 0)
    return float(0.5 * p_lo + 0.5 * p_hi)


def _zero_tol(*devs: float) -> float:
    """|LRT| below this is numerical noise of two converged fits and counts as 0."""
    return max(1e-6, 1e-10 * max(abs(d) for d in devs))


def _prepare(first, second, *, reml, ordered: bool):
    a = _as_fit(first, "large model" if ordered else "first model")
    b = _as_fit(second, "small model" if ordered else "second model")
    if ordered:
        large, small = a, b
        if large.npar < small.npar:
            raise ValueError(
                f"pb_lrt(large, small): the first model has {large.npar} parameters and the "
                f"second {small.npar}; did you swap them?"
            )
    else:
        small, large = (a, b) if a.npar <= b.npar else (b, a)
    _check_pair(small, large)
    p_s = np.linalg.matrix_rank(small.exog)
    p_l = np.linalg.matrix_rank(large.exog)
    same_fe = p_s == p_l
    notes: list[str] = []
    if reml is None:
        use_reml = same_fe and large.reml and (small.reml or small.kind == "ols")
        why = ""
        if (small.reml or large.reml) and not use_reml:
            why = (
                "REML fits of models with different fixed effects are not comparable"
                if not same_fe
                else "one model was fitted by ML"
            )
    else:
        use_reml = bool(reml)
        why = "requested"
        if use_reml and not same_fe:
            raise ValueError(
                "a REML likelihood-ratio test needs the same fixed effects in both models "
                f"(the small model has {p_s}, the large {p_l} fixed-effect columns); use "
                "reml=False"
            )
    small2 = _with_method(small, use_reml, why or "method")
    large2 = _with_method(large, use_reml, why or "method")
    for name, f in (("small", small2), ("large", large2)):
        notes.extend(f"{name} model: {n}" for n in f.notes)
    if use_reml:
        notes.insert(0, "REML likelihood-ratio test (same fixed effects in both models)")
    return small2, large2, same_fe, notes


class LRTResult:
    """Likelihood-ratio test of two nested models (R's ``anova(small, large)``).

    Attributes
    ----------
    lrt : float
        ``2 (llf_large - llf_small)`` (0 if below numerical noise).
    df : int
        Difference in the number of parameters.
    pvalue : float
        Upper tail of chi2(df).
    pvalue_mixture : float
        For one added variance (with its covariances) on the boundary of its parameter space,
        the 50:50 mixture of chi2(q) and chi2(q + 1) (Self and Liang 1987; Stram and Lee 1994);
        NaN when it does not apply.
    method : str
        ``"ML"`` or ``"REML"``.
    llf_small, llf_large : float
    notes : list of str
        Refits, methods and caveats.
    """

    def __init__(self, small: _Fit, large: _Fit, same_fe: bool, notes: list[str]):
        self._small, self._large = small, large
        self.method = "REML" if large.reml else "ML"
        self.llf_small, self.llf_large = small.llf, large.llf
        self.df = int(large.npar - small.npar)
        raw = 2.0 * (large.llf - small.llf)
        self.lrt_raw = raw
        self.lrt = 0.0 if abs(raw) < _zero_tol(small.llf, large.llf) else float(raw)
        self.pvalue = float(stats.chi2.sf(max(self.lrt, 0.0), self.df))
        mix = _mixture(small, large, same_fe)
        self.mixture = None if mix is None else f"0.5 chi2({mix[1]}) + 0.5 chi2({mix[1] + 1})"
        self.pvalue_mixture = (
            float("nan") if mix is None else _mixture_pvalue(max(self.lrt, 0.0), mix[1])
        )
        self.notes = list(notes)
        if self.lrt < 0:
            self.notes.append(
                "the large model's likelihood is below the small model's: its fit did not reach "
                "the maximum (try other start_params)"
            )
        self.models = [small.label, large.label]

    def summary_frame(self) -> pd.DataFrame:
        """The comparison table: one row per model (``small``, ``large``)."""
        rows = {}
        for name, f in (("small", self._small), ("large", self._large)):
            aic, bic = f.criteria()
            rows[name] = {
                "npar": f.npar,
                "AIC": aic,
                "BIC": bic,
                "llf": f.llf,
                "deviance": -2 * f.llf,
            }
        t = pd.DataFrame.from_dict(rows, orient="index")
        t["chi2"] = [np.nan, self.lrt]
        t["df"] = [np.nan, self.df]
        t["Pr(>chi2)"] = [np.nan, self.pvalue]
        if self.mixture is not None:
            t["Pr(>chi2) mixture"] = [np.nan, self.pvalue_mixture]
        return t

    def summary(self) -> str:
        """The table of :meth:`summary_frame` with the models, the mixture p-value and notes."""
        lines = [f"Likelihood-ratio test ({self.method})"]
        lines += [f"  small: {self.models[0]}", f"  large: {self.models[1]}"]
        lines.append(self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}"))
        if self.mixture is not None:
            lines.append(
                f"Boundary: p = {self.pvalue_mixture:.4g} from the mixture {self.mixture}"
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self):
        return f"<LRTResult chi2={self.lrt:.6g}, df={self.df}, pvalue={self.pvalue:.4g}>"


def lrt(small, large, *, reml: bool | None = None) -> LRTResult:
    """Likelihood-ratio test of two nested models, like R's ``anova(small, large)``.

    Parameters
    ----------
    small, large : fitted models
        Our :class:`MixedLMResults`, statsmodels ``MixedLMResults`` or statsmodels OLS results
        (the small model only).  Either order is accepted (the model with fewer parameters is
        the small one).
    reml : bool, optional
        ``None`` (default): compare REML likelihoods when both fits are REML with the same fixed
        effects (an OLS small model then uses its REML likelihood), as nlme's ``anova`` does;
        otherwise refit REML fits by ML (with a note).  ``False`` always uses ML; ``True``
        REML (same fixed effects only).

    Returns
    -------
    LRTResult

    Notes
    -----
    ``LRT = 2 (l_large - l_small)`` on ``df = npar_large - npar_small`` degrees of freedom,
    where ``npar`` counts fixed effects, covariance parameters and ``sigma^2`` (R's ``logLik``
    df).  When the large model adds one variance the null value lies on the boundary and the
    chi-square p-value is conservative; ``pvalue_mixture`` gives the 50:50 mixture
    (Self and Liang 1987) and :func:`pb_lrt` a bootstrap p-value.
    """
    s, la, same_fe, notes = _prepare(small, large, reml=reml, ordered=False)
    return LRTResult(s, la, same_fe, notes)


# ---------------------------------------------------------------------------------------------
# Parametric bootstrap
# ---------------------------------------------------------------------------------------------


def _batch_plan(nsim: int, specs) -> list[tuple[int, int]]:
    """Replicate ranges ``[(start, stop), ...]``: about 8 batches, each within the memory budget
    (per replicate: the response, its contractions and the largest chunk's temporaries)."""
    per_rep = 0
    for sp in specs:
        per_rep += 2 * sp.nobs
        if isinstance(sp, _LMMSpec):
            k = sp.transform.k + 2
            p = sp.engine.k_fe
            temp = 0
            for ch in sp.engine.chunks:
                U, n = len(ch.weight), ch.n
                per_rep += U * n * n * (p + 1) if ch.pattern else U * n
                temp = max(temp, 3 * k * U * n * max(n, p))
            per_rep += temp
    lo, hi = _BATCH_RANGE
    size = int(np.clip(-(-nsim // 8), lo, hi))
    size = max(1, min(size, _BATCH_ELEMENTS // per_rep))
    return [(a, min(a + size, nsim)) for a in range(0, nsim, size)]


def _prepare_specs(*specs) -> None:
    """Fill lazy caches before workers (threads) share the specs."""
    for sp in specs:
        if isinstance(sp, _LMMSpec):
            sp.engine.prepare_new_endog()
            if sp.transform.k:
                sp.start_inverse_hessian()


def _run_batch(fn, args, main_pid: int):
    """Run ``fn(*args)``; in another process, record its warnings instead of printing them."""
    if os.getpid() == main_pid:
        return fn(*args), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, [f"{w.category.__name__}: {w.message}" for w in caught]


def _pb_batch(small, large, seeds, tol: float) -> dict:
    """One batch of bootstrap replicates: simulate from ``small``, refit both specs."""
    Z, _ = _normals(seeds, small.nobs)
    Y = small.simulate(Z)
    B = Y.shape[1]
    try:
        fs = small.fit_many(Y)
        fl = large.fit_many(Y)
    except Exception as exc:  # the batch as a whole failed: every replicate is a failure
        msg = f"{type(exc).__name__}: {exc}"
        return {
            "lrt": np.full(B, np.nan),
            "ok": np.zeros(B, bool),
            "messages": [msg] * B,
        }
    raw = 2.0 * (fl["llf"] - fs["llf"])
    ok = fs["converged"] & fl["converged"] & np.isfinite(raw)
    lrt_ = np.where(np.abs(raw) < tol, 0.0, raw)
    return {
        "lrt": np.where(ok, lrt_, np.nan),
        "ok": ok,
        "messages": fs["messages"] + fl["messages"],
    }


def _progress_bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if not _progress_bar.warned:
            warnings.warn(
                "progress=True needs the tqdm package (pip install tqdm); continuing without a "
                "progress bar",
                BootstrapWarning,
                stacklevel=4,
            )
            _progress_bar.warned = True
        return None
    return tqdm(total=total, desc=desc, unit="rep")


_progress_bar.warned = False


def _parallel_map(fn, arg_list, sizes, n_jobs, progress: bool, desc: str):
    """Run ``fn`` on each argument tuple with joblib, in order, with an optional progress bar.

    The first batch runs in this process and is timed.  If the others would take more than
    ``_PROCESS_SECONDS`` in sequence, joblib is asked to *prefer* processes (the refits are
    many small numpy calls that hold the GIL, so only processes run them in parallel, and
    their start-up is then paid back); otherwise threads, which start instantly.  Both are soft
    hints: a backend chosen with ``joblib.parallel_config(backend=...)`` (``"loky"``,
    ``"dask"``, ...) always wins.  Results do not depend on the backend.
    """
    import time

    from joblib import Parallel, delayed

    bar = _progress_bar(progress, sum(sizes), desc)
    main_pid = os.getpid()
    results = []
    prefer = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        results.append(_run_batch(fn, arg_list[0], main_pid))
        elapsed = time.perf_counter() - t0
        if bar is not None:
            bar.update(sizes[0])
        rest = arg_list[1:]
        if rest and n_jobs == 1:
            for size, args in zip(sizes[1:], rest, strict=True):
                results.append(_run_batch(fn, args, main_pid))
                if bar is not None:
                    bar.update(size)
        elif rest:
            prefer = "processes" if elapsed * len(rest) > _PROCESS_SECONDS else "threads"
            par = Parallel(n_jobs=n_jobs, prefer=prefer, return_as="generator")
            gen = par(delayed(_run_batch)(fn, args, main_pid) for args in rest)
            for size, out in zip(sizes[1:], gen, strict=True):
                results.append(out)
                if bar is not None:
                    bar.update(size)
    if bar is not None:
        bar.close()
    msgs = [f"{w.category.__name__}: {w.message}" for w in caught]
    for _, m in results:
        msgs.extend(m)
    return [r for r, _ in results], msgs, prefer


def _moment_pvalues(lrt_: float, df: int, mean: float, var: float) -> dict:
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


def _gamma_bartlett(lrt_: float, df: int, ref: np.ndarray) -> dict:
    """:func:`_moment_pvalues` from the *positive* reference values (as pbkrtest; variance
    with denominator ``n - 1``); NaN with fewer than two."""
    pos = ref[ref > 0]
    if pos.size < 2:
        return {"bartlett": np.nan, "p_bartlett": np.nan, "p_gamma": np.nan}
    return _moment_pvalues(lrt_, df, pos.mean(), pos.var(ddof=1))


class PBTestResult:
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
        self.method = test.method
        ok = np.isfinite(ref_all)
        self.nsim = len(ref_all)
        self.nsim_ok = int(ok.sum())
        self.nsim_failed = self.nsim - self.nsim_ok
        self.failed = np.flatnonzero(~ok)
        self.ref_distribution = ref_all[ok]
        self.seed_entropy = seed_entropy
        self.elapsed = elapsed
        ref = self.ref_distribution
        self.n_extreme = int((ref >= self.lrt).sum())
        self.pvalue = (1.0 + self.n_extreme) / (1.0 + self.nsim_ok)
        self.pvalue_chi2 = test.pvalue
        self.pvalue_mixture = test.pvalue_mixture
        gb = _gamma_bartlett(self.lrt, self.df, ref)
        self.bartlett_stat = gb["bartlett"]
        self.pvalue_bartlett = gb["p_bartlett"]
        self.pvalue_gamma = gb["p_gamma"]
        self.notes = list(test.notes)
        n0 = int((ref == 0).sum())
        if n0:
            self.notes.append(
                f"{n0} of {self.nsim_ok} LRT* are 0 (equal likelihoods to numerical precision, "
                "e.g. the large refit on the boundary); the Bartlett and Gamma approximations "
                "use the positive LRT* only"
            )
        nneg = int((ref < 0).sum())
        if nneg:
            self.notes.append(
                f"{nneg} LRT* < 0: the large model's refit stayed below the small model's "
                "likelihood (a local optimum); kept as computed"
            )
        if self.nsim_failed:
            reasons = Counter(messages)
            top = "; ".join(f"{m} ({c}x)" for m, c in reasons.most_common(3))
            self.notes.append(
                f"{self.nsim_failed} of {self.nsim} replicates failed and were left out ({top})"
            )
        elif messages:
            reasons = Counter(messages)
            top = "; ".join(f"{m} ({c}x)" for m, c in reasons.most_common(3))
            self.notes.append(f"warnings during the refits: {top}")

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
    observed ``LRT`` is referred to the ``LRT*``.

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
    import time

    nsim = _check_nsim(nsim)
    t0 = time.perf_counter()
    s, la, same_fe, notes = _prepare(large, small, reml=reml, ordered=True)
    test = LRTResult(s, la, same_fe, notes)
    ss = _seed_sequence(seed)
    seeds = ss.spawn(nsim)
    _prepare_specs(s.spec, la.spec)
    plan = _batch_plan(nsim, (s.spec, la.spec))
    tol = _zero_tol(s.llf, la.llf)
    args = [(s.spec, la.spec, seeds[a:b], tol) for a, b in plan]
    outs, msgs, prefer = _parallel_map(
        _pb_batch, args, [b - a for a, b in plan], n_jobs, progress, "bootstrap"
    )
    ref = np.concatenate([o["lrt"] for o in outs])
    messages = [m for o in outs for m in o["messages"]] + msgs
    out = PBTestResult(test, ref, messages, ss.entropy, time.perf_counter() - t0)
    out.joblib_prefer = prefer
    if out.nsim_failed:
        warnings.warn(
            f"{out.nsim_failed} of {nsim} bootstrap replicates failed and were left out "
            "(see .notes and .failed)",
            BootstrapWarning,
            stacklevel=2,
        )
    return out


# ---------------------------------------------------------------------------------------------
# simulate / refit
# ---------------------------------------------------------------------------------------------


def _spec_for_simulation(results, use_random_effects: bool):
    f = _as_fit(results)
    spec = f.spec
    if use_random_effects and isinstance(spec, _LMMSpec):
        spec = copy.copy(spec)
        spec.fitted = np.asarray(_unwrap(f.source).fittedvalues, float)
    return f, spec


def simulate(results, nsim: int = 1, *, seed=None, use_random_effects: bool = False):
    """Simulate responses from a fitted model.

    Parameters
    ----------
    results : fitted model
        Ours, a statsmodels MixedLM result or a statsmodels OLS result.
    nsim : int
    seed : None, int, SeedSequence or Generator
        Column ``j`` is drawn with ``numpy.random.default_rng(SeedSequence(seed).spawn(nsim)[j])``.
    use_random_effects : bool
        ``False``: new random effects and residuals, ``y = X beta + chol(V_i) z``.  ``True``:
        condition on the predicted random effects, ``y = X beta + Z b_hat + chol(sigma^2 C_i) z``
        (lme4's ``use.u = TRUE``).

    Returns
    -------
    ndarray (nobs, nsim)
        In the model's row order.

    Notes
    -----
    Each group is simulated through the Cholesky factor of its covariance matrix (batched over
    groups of equal size; no ``N x N`` matrix), so random effects, variance components and the
    residual correlation structure are all respected.
    """
    nsim = _check_nsim(nsim)
    _, spec = _spec_for_simulation(results, use_random_effects)
    seeds = _seed_sequence(seed).spawn(nsim)
    Z, _ = _normals(seeds, spec.nobs)
    return spec.simulate(Z, conditional=use_random_effects)


def _model_with_endog(model, y: np.ndarray):
    """A shallow copy of our MixedLM with a new response; the engine keeps its y-free parts."""
    new = copy.copy(model)
    new.endog = y
    new._engine = model.engine.with_endog(y)
    new.data = copy.copy(model.data)
    new.data.endog = y
    orig = model.data.orig_endog
    if isinstance(orig, pd.Series | pd.DataFrame):
        new.data.orig_endog = pd.Series(y, index=orig.index, name=model.endog_names)
    else:
        new.data.orig_endog = y
    return new


def refit(results, endog, *, reml: bool | None = None):
    """Refit the same model to a new response, warm-started at the current estimates.

    Parameters
    ----------
    results : fitted model
        Ours or a statsmodels MixedLM result (refitted as our model with independent
        residuals), or a statsmodels OLS result.
    endog : array_like (nobs,)
        The new response, in the model's row order (e.g. a column of :func:`simulate`).
    reml : bool, optional
        Default: the method of ``results``.

    Returns
    -------
    MixedLMResultsWrapper (or statsmodels OLS results)
    """
    res = _unwrap(results)
    f = _as_fit(results)
    y = np.asarray(endog, dtype=float)
    if y.ndim != 1 or len(y) != f.nobs:
        raise ValueError(
            f"endog must be a vector of length nobs = {f.nobs}; got shape {np.shape(endog)}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"endog has non-finite values (first at row {np.flatnonzero(~np.isfinite(y))[0]})"
        )
    if f.kind == "ols":
        exog = pd.DataFrame(res.model.exog, columns=list(res.model.exog_names))
        return OLS(pd.Series(y, name=res.model.endog_names), exog).fit()
    reml = f.reml if reml is None else bool(reml)
    model = _model_with_endog(f.model, y)
    spec = copy.copy(f.spec)
    spec.reml = reml
    # the batched refit (warm start, variances at zero restarted) finds the maximum; fit()
    # then starts there and builds the full results
    best = spec.fit_many(y[:, None], want_params=True)
    if best["converged"][0]:
        start = np.concatenate([best["psi"][0][np.tril_indices(spec.k_re)], best["vc"][0]])
        start = np.concatenate([start, best["rho"][0]])
    else:
        start = np.concatenate([spec.lam, spec.rho])
    return model.fit(reml=reml, start_params=start)


# ---------------------------------------------------------------------------------------------
# Bootstrap prediction intervals
# ---------------------------------------------------------------------------------------------


class BootstrapPrediction:
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
        Percentiles ``alpha / 2`` and ``1 - alpha / 2`` of ``samples``.
    nsim, nsim_ok, nsim_failed : int
    new_group : bool
    alpha : float
    notes : list of str
    """

    def __init__(self, predicted, errors, index, alpha, new_group, nsim, messages):
        self.index = index
        self.predicted = pd.Series(predicted, index=index, name="predicted")
        self.errors = errors
        self.samples = np.asarray(predicted)[:, None] + errors
        self.alpha = alpha
        self.new_group = new_group
        self.nsim = nsim
        self.nsim_ok = errors.shape[1]
        self.nsim_failed = nsim - self.nsim_ok
        if self.nsim_ok:
            lo, hi = np.quantile(self.samples, [alpha / 2, 1 - alpha / 2], axis=1)
        else:
            lo = hi = np.full(len(index), np.nan)
        self.lower = pd.Series(lo, index=index, name="pi_lower")
        self.upper = pd.Series(hi, index=index, name="pi_upper")
        self.notes = []
        if self.nsim_failed:
            top = "; ".join(f"{m} ({c}x)" for m, c in Counter(messages).most_common(3))
            self.notes.append(
                f"{self.nsim_failed} of {nsim} refits failed and were left out ({top})"
            )

    def summary_frame(self) -> pd.DataFrame:
        """Prediction, bootstrap SD of the prediction error and the interval, per new row."""
        return pd.DataFrame(
            {
                "predicted": self.predicted,
                "se_pred": self.errors.std(axis=1, ddof=1),
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
        return "\n".join(lines + [f"Note: {n}" for n in self.notes])

    __str__ = summary


def _new_design(res, exog_new):
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


def _pred_batch(spec: _LMMSpec, seeds, Xn, Zn, gcodes, new_group: bool) -> dict:
    """One batch of prediction-error replicates (see :func:`bootstrap_predict`)."""
    m, q = Zn.shape
    n_groups = spec.engine.n_groups
    Z, E = _normals(seeds, spec.nobs, extra=n_groups * q + m * (q + 1))
    B = Z.shape[1]
    b_true = spec.random_effects_draw(E[: n_groups * q])  # (B, n_groups, q)
    Y = spec.simulate_given_effects(Z, b_true)
    fits = spec.fit_many(Y, want_params=True)
    ok = fits["converged"]
    F = E[n_groups * q :].reshape(m, q + 1, B)
    # the new observations in the bootstrap world (whose truth is the original fit) ...
    truth = (Xn @ spec.beta)[:, None] + np.sqrt(spec.scale) * F[:, q, :]
    if new_group:
        Lg = np.linalg.cholesky(spec.scale * spec.psi + 1e-300 * np.eye(q)) if q else None
        if q:
            truth += np.einsum("ia,ab,ibB->iB", Zn, Lg, F[:, :q, :])
    else:
        truth += np.einsum("ia,Bia->iB", Zn, b_true[:, gcodes, :])
    # ... and their predictions from the refits
    pred = np.einsum("ia,Ba->iB", Xn, fits["beta"])
    if not new_group:
        pred += np.einsum("ia,Bia->iB", Zn, spec.blups(Y, fits, gcodes, ok))
    err = np.where(ok[None, :], truth - pred, np.nan)
    return {"err": err, "ok": ok, "messages": fits["messages"]}


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
    n_jobs: int = 1,
    progress: bool = False,
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

    The bootstrap prediction errors ``y_new* - y_hat*`` are added to the original prediction
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

    References
    ----------
    Hall, P. and Maiti, T. (2006). On parametric bootstrap methods for small area prediction.
    *JRSS B* 68, 221-238.
    """
    nsim = _check_nsim(nsim)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    f = _as_fit(results)
    if f.kind != "lmm":
        raise TypeError("bootstrap_predict needs a mixed model (for OLS use get_prediction)")
    if f.vc_names:
        raise NotImplementedError("bootstrap_predict does not support variance components")
    res = _unwrap(f.source)
    Xn, index = _new_design(res, exog_new)
    m = Xn.shape[0]
    q = f.k_re
    if exog_re_new is None:
        if q == 1 and np.all(f.exog_re == 1.0):
            Zn = np.ones((m, 1))
        elif q == 0:
            Zn = np.zeros((m, 0))
        else:
            raise ValueError(
                f"the model has random effects {list(f.model.data.exog_re_names)}: pass "
                "exog_re_new, the random-effects design (m, q) of the new rows"
            )
    else:
        Zn = np.asarray(exog_re_new, float)
        if Zn.size != m * q:
            raise ValueError(f"exog_re_new must have shape ({m}, {q}); got {Zn.shape}")
        Zn = Zn.reshape(m, q)
    spec = f.spec
    gcodes = np.zeros(0, int)
    predicted = Xn @ spec.beta
    if not new_group:
        if groups is None:
            raise ValueError("new_group=False needs groups=, the known group of each new row")
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != m:
            raise ValueError(f"groups has {len(groups)} labels for {m} new rows")
        labels = list(f.model.group_labels)
        pos = {g: i for i, g in enumerate(labels)}
        unknown = [g for g in groups if g not in pos]
        if unknown:
            raise ValueError(
                f"unknown group(s) {unknown[:3]}; known groups are e.g. {labels[:5]} "
                "(use new_group=True for a group not in the data)"
            )
        gcodes = np.array([pos[g] for g in groups])
        b = np.array([np.asarray(res.random_effects[g])[:q] for g in groups]).reshape(m, q)
        predicted = predicted + np.einsum("ia,ia->i", Zn, b)
    seeds = _seed_sequence(seed).spawn(nsim)
    _prepare_specs(spec)
    plan = _batch_plan(nsim, (spec,))
    args = [(spec, seeds[a:b], Xn, Zn, gcodes, new_group) for a, b in plan]
    outs, msgs, _ = _parallel_map(
        _pred_batch, args, [b - a for a, b in plan], n_jobs, progress, "bootstrap"
    )
    err = np.concatenate([o["err"] for o in outs], axis=1)
    ok = np.concatenate([o["ok"] for o in outs])
    messages = [mm for o in outs for mm in o["messages"]] + msgs
    out = BootstrapPrediction(predicted, err[:, ok], index, alpha, new_group, nsim, messages)
    if out.nsim_failed:
        warnings.warn(
            f"{out.nsim_failed} of {nsim} bootstrap refits failed and were left out (see .notes)",
            BootstrapWarning,
            stacklevel=2,
        )
    return out
