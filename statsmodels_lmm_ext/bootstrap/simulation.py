"""Simulation-and-refit specifications of fitted models (lean and picklable for workers).

A spec simulates responses from a fitted model and refits the model to many responses at once:
:class:`LMMSpec` through the engine's batched likelihood (:meth:`Engine.profile`) and
:func:`~statsmodels_lmm_ext.optimize.bfgs_many` with the package's one saddle policy
(:func:`~statsmodels_lmm_ext.optimize.leave_saddles_many`), falling back to the optimiser chain
of :meth:`MixedLM.fit` (:func:`fit_one`) for the replicates the batch leaves unconverged;
:class:`OLSSpec` in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from statsmodels.regression.linear_model import OLS

from .._engine import Engine
from ..adapters import Fitted, _unwrap, as_fitted
from ..optimize import (
    GTOL,
    METHODS,
    bfgs_many,
    gradient_scale,
    leave_saddles_many,
    minimize_chain,
    saddle_restart,
)
from ..params import CovParams


def _take(stats_: list[dict], idx: np.ndarray) -> list[dict]:
    return [{k: v[idx] for k, v in st.items()} for st in stats_]


def nonfinite_reasons(llf: np.ndarray) -> np.ndarray:
    """Per refit: ``"non-finite log-likelihood (NaN)"`` (or ``inf``/``-inf``) where ``llf`` is
    not finite, ``""`` elsewhere."""
    reasons = np.full(len(llf), "", dtype=object)
    for j in np.flatnonzero(~np.isfinite(llf)):
        reasons[j] = f"non-finite log-likelihood ({'NaN' if np.isnan(llf[j]) else llf[j]})"
    return reasons


@dataclass
class OLSSpec:
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
        out = {"llf": llf, "converged": np.isfinite(llf), "reasons": nonfinite_reasons(llf)}
        if want_params:
            beta = np.linalg.lstsq(self.X, Y, rcond=None)[0].T
            n, p = self.X.shape
            r = Y - self.X @ beta.T
            out["beta"] = beta
            out["scale"] = np.einsum("ib,ib->b", r, r) / (n - p)
        return out


@dataclass
class LMMSpec:
    """A fitted linear mixed model reduced to what simulation and refits need (picklable)."""

    engine: Engine
    params: CovParams
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
    def k_re(self) -> int:
        return self.params.k_re

    @property
    def lam(self) -> np.ndarray:
        return self.params.lin(self.psi, self.vc)

    def start(self) -> np.ndarray:
        """Warm start in the optimiser's coordinates.  A variance estimated at zero sits on a
        stationary point of the square-root parameterisation: it starts where the saddle
        policy restarts (:func:`statsmodels_lmm_ext.optimize.saddle_restart`)."""
        u = self.params.unconstrained(self.psi, self.vc, self.rho)
        zero = self.params.at_zero(u)
        u[zero] = saddle_restart(u[zero])
        return u

    def start_inverse_hessian(self) -> np.ndarray | None:
        """Inverse Hessian of the deviance at :meth:`start` for the observed response (central
        differences of the analytic gradient, one batched call); None if not positive definite.

        Replicates start at the same point with a similar curvature, so this first BFGS metric
        saves most of the iterations of an identity start.  Cached."""
        if "_hinv0" in self.__dict__:
            return self._hinv0
        eng, bt = self.engine, self.params
        u0 = self.start()
        k = len(u0)
        h = 1e-5 * np.maximum(1.0, np.abs(u0))
        U = np.concatenate([u0 + np.diag(h), u0 - np.diag(h)])
        st = eng.endog_stats(np.repeat(eng.y[:, None], 2 * k, axis=1))
        lam, rho, _, _ = bt.natural_many(U)
        with np.errstate(all="ignore"):
            out = eng.profile(lam, rho, self.reml, st, gradient=True)
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

    def simulate_given_effects(self, Z: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Responses ``X beta + Z_i b_i + chol(sigma^2 C_i) z_i`` for given random effects
        ``b`` (B, n_groups, q) (no variance components)."""
        eng = self.engine
        Y = (eng.X @ self.beta)[:, None] + np.einsum("ia,Bia->iB", eng.Z, b[:, eng.groups, :])
        return eng.add_noise(Y, Z, self.scale, self.rho)

    def simulate(self, Z: np.ndarray, conditional: bool = False) -> np.ndarray:
        """Responses ``mean + chol(V_i) z_i`` group by group (``Z`` (N, B) in row order).

        Unconditional: ``mean = X beta`` and ``V_i = sigma^2 H_i``; conditional on the BLUPs:
        ``mean = X beta + Z b`` and ``V_i = sigma^2 C_i(rho)``.
        """
        eng = self.engine
        mean = self.fitted if conditional else eng.X @ self.beta
        Y = np.repeat(mean[:, None], Z.shape[1], axis=1)
        return eng.add_noise(Y, Z, self.scale, self.rho, None if conditional else self.lam)

    def _batch_functions(self, st: list[dict], gscale: float):
        """Deviance-and-gradient and saddle detector of the refits to the responses ``st``."""
        eng, bt = self.engine, self.params

        def fg(U, idx):
            lam, rho, _, _ = bt.natural_many(U)
            out = eng.profile(lam, rho, self.reml, _take(st, idx), gradient=True)
            return out["dev"], bt.chain_many(U, out["grad_lin"], out["grad_rho"])

        def saddles(U, idx):
            lam, rho, _, _ = bt.natural_many(U)
            out = eng.profile(lam, rho, self.reml, _take(st, idx), gradient=True)
            return bt.saddles_many(U, out["grad_lin"], gscale)

        return fg, saddles

    def fit_many(self, Y: np.ndarray, want_params: bool = False) -> dict:
        """Refit the model to each column of ``Y``: ``llf``, ``converged``, ``reasons`` (why
        each refit failed, "" where it converged) and, with ``want_params``, the estimates
        (``beta``, ``scale``, ``psi``, ``vc``, ``rho``).

        A refit fails when its fallback optimisers raise (``"<ExceptionType>: <message>"``),
        when its log-likelihood is not finite, or when it does not meet the convergence
        criterion (``"refit did not converge (max|grad|/n = ...)"``)."""
        eng, bt = self.engine, self.params
        B = Y.shape[1]
        st = eng.endog_stats(Y)
        gscale = gradient_scale(eng.nobs)
        U0 = np.tile(self.start(), (B, 1))
        reasons = np.full(B, "", dtype=object)
        with np.errstate(all="ignore"):
            if bt.k:
                fg, saddles = self._batch_functions(st, gscale)
                H0 = self.start_inverse_hessian()
                U, dev, conv = bfgs_many(fg, U0, gscale, GTOL, Hinv0=H0)
                U, dev, conv = leave_saddles_many(fg, saddles, U, dev, conv, U0[0], gscale)
            else:
                U = U0
                dev = eng.profile(np.zeros((B, 0)), np.zeros((B, 0)), self.reml, st)["dev"]
                conv = np.isfinite(dev)
        for j in np.flatnonzero(~conv) if bt.k else ():
            try:
                u, d, ok = fit_one(eng, bt, self.reml, Y[:, j], U0[j])
            except Exception as exc:  # a refit that raises is a failed replicate
                reasons[j] = f"{type(exc).__name__}: {exc}"
                continue
            U[j], dev[j], conv[j] = u, d, ok
        llf = -0.5 * dev
        conv &= np.isfinite(dev)
        todo = ~conv & (reasons == "")
        reasons[todo] = nonfinite_reasons(llf[todo])
        for j in np.flatnonzero(~conv & (reasons == "")):
            with np.errstate(all="ignore"):
                grad = fg(U[j][None], np.array([j]))[1]
            gmax = float(np.max(np.abs(grad))) / gscale
            reasons[j] = f"refit did not converge (max|grad|/n = {gmax:.3g})"
        out = {"llf": llf, "converged": conv, "reasons": reasons}
        if want_params:
            lam, rho, psi, vc = bt.natural_many(U)
            prof = eng.profile(lam, rho, self.reml, st)
            out.update(beta=prof["beta"], scale=prof["scale"], psi=psi, vc=vc, rho=rho, U=U)
        return out

    def blups(self, Y, fits, group_codes: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """BLUPs (B, m, q) of the groups ``group_codes`` (m,) for the refits ``ok`` (``fits``
        from :meth:`fit_many` with ``want_params``); the others stay 0."""
        out = np.zeros((Y.shape[1], len(group_codes), self.k_re))
        idx = np.flatnonzero(ok)
        if idx.size == 0 or self.k_re == 0:
            return out
        out[idx] = self.engine.blups_many(
            Y[:, idx],
            fits["beta"][idx],
            fits["psi"][idx],
            fits["vc"][idx],
            fits["rho"][idx],
            group_codes,
        )
        return out


def fit_one(eng: Engine, bt: CovParams, reml: bool, y: np.ndarray, u0: np.ndarray):
    """One refit by the optimiser chain of :meth:`MixedLM.fit` (the fallback of the batch):
    ``(u, dev, converged)``."""
    new = eng.with_endog(y)
    gscale = gradient_scale(eng.nobs)

    def evaluate(u, gradient):
        lam, rho, _, _ = bt.natural_many(np.asarray(u, float)[None])
        return new.profile(lam, rho, reml, gradient=gradient)

    def fg(u):
        out = evaluate(u, True)
        return float(out["dev"][0]), bt.chain_many(u[None], out["grad_lin"], out["grad_rho"])[0]

    def saddles(u):
        return bt.saddles_many(u[None], evaluate(u, True)["grad_lin"], gscale)[0]

    u, dev, ok, _, _ = minimize_chain(
        fg, u0.copy(), f=lambda u: float(evaluate(u, False)["dev"][0]), saddles=saddles,
        gscale=gscale, methods=METHODS,
    )  # fmt: skip
    return u, dev, ok


def spec_of(fit: Fitted, *, conditional: bool = False) -> OLSSpec | LMMSpec:
    """The simulation-and-refit spec of a fitted model.

    ``conditional=True`` keeps the fitted values ``X beta + Z b_hat`` of the results (still
    alive) for simulation conditional on the predicted random effects.
    """
    if fit.kind == "ols":
        return OLSSpec(X=fit.exog, beta=fit.beta, scale=fit.scale, reml=fit.reml)
    fitted = np.asarray(fit.results.fittedvalues, float) if conditional else None
    return LMMSpec(
        engine=fit.engine,
        params=fit.params,
        reml=fit.reml,
        beta=fit.beta,
        psi=fit.psi,
        vc=fit.vc,
        rho=fit.rho,
        scale=fit.scale,
        fitted=fitted,
    )


def fitted_for(obj, role: str = "model") -> Fitted:
    """:func:`~statsmodels_lmm_ext.adapters.as_fitted` restricted to what the bootstrap can
    simulate and refit: mixed models and OLS fits of full rank (``role`` names the argument in
    error messages)."""
    accepted = (
        f"the {role} must be a fitted statsmodels_lmm_ext or statsmodels MixedLM, or a "
        "statsmodels OLS result"
    )
    try:
        fit = as_fitted(obj)
    except TypeError:
        raise TypeError(f"{accepted}; got {type(_unwrap(obj)).__name__}") from None
    if fit.kind == "ols":
        if type(fit.model) is not OLS:
            raise TypeError(
                f"{accepted}; got a {type(fit.model).__name__} result (weighted and generalised "
                "least squares are not supported)"
            )
        rank = fit.model.rank
        if rank < fit.k_fe:
            raise ValueError(
                f"the OLS {role} has a rank-deficient design ({rank} of {fit.k_fe} columns); "
                "drop the redundant columns"
            )
    return fit
