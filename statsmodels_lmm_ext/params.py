"""The covariance parameters of a model, owned by one object.

Three coordinate systems describe the covariance of a model with ``q`` random effects, ``k_vc``
variance components and a residual structure with ``k_corr`` parameters:

* *packed* (what the likelihood engine and ``results.params`` use): ``lam = (Psi lower
  triangle, vc / sigma^2)`` with ``Psi = G / sigma^2``, followed by the structure's parameters
  ``rho``; ``sigma^2`` is profiled out;
* *natural* ``theta = (G lower triangle, vc, sigma^2, rho)``, as SAS PROC MIXED prints them, in
  which inference (information, Satterthwaite, Kenward-Roger) is written;
* *optimiser* coordinates ``u = (Cholesky factor of Psi (lower triangle), sqrt(vc / sigma^2),
  T(rho))``, unconstrained.  Cholesky factors and square roots (not their logs) keep a variance of
  zero at a finite point, as lme4 and statsmodels do; ``T`` belongs to the residual structure.

:class:`CovParams` converts between them (batched over rows of ``U``), names the parameters,
detects variances on the boundary and saddle points of the square-root map, and parses start
values.  Every other module asks it rather than packing vectors itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import expit

from .covstruct import CovStruct

__all__ = ["CovParams", "bounded_interval"]

#: a variance below this fraction of sigma^2 counts as estimated at zero
BOUNDARY_TOL = 1e-8


def bounded_interval(est, se, q: float, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Wald intervals ``t^-1(t(x) -/+ q SE_t)`` on the scale ``t`` that maps each parameter's
    open interval ``(lo, hi)`` to the real line, with ``SE_t = |t'(x)| SE`` (delta method).

    ``t`` is the identity on ``(-inf, inf)`` (covariances), ``log(x - lo)`` on ``(lo, inf)``
    (variances: no negative lower limit), ``-log(hi - x)`` on ``(-inf, hi)`` and the logit of
    ``(x - lo) / (hi - lo)`` on a finite interval (for ``(-1, 1)`` this is ``2 atanh(x)``: the
    Fisher z scale of a correlation).  Estimates on or outside their bounds, and zero or
    undefined standard errors, give NaN limits.
    """
    est = np.asarray(est, float)
    se = np.asarray(se, float)
    lower = np.full(est.shape, np.nan)
    upper = np.full(est.shape, np.nan)
    for j, (lo, hi) in enumerate(bounds):
        x, s = est[j], se[j]
        if not (np.isfinite(s) and s > 0 and lo < x < hi):
            continue
        if np.isinf(lo) and np.isinf(hi):
            lower[j], upper[j] = x - q * s, x + q * s
        elif np.isinf(hi):
            w = np.exp(q * s / (x - lo))
            lower[j], upper[j] = lo + (x - lo) / w, lo + (x - lo) * w
        elif np.isinf(lo):
            w = np.exp(q * s / (hi - x))
            lower[j], upper[j] = hi - (hi - x) * w, hi - (hi - x) / w
        else:
            t = np.log((x - lo) / (hi - x))
            st = s * (hi - lo) / ((x - lo) * (hi - x))
            lower[j], upper[j] = (lo + (hi - lo) * expit(t + c * q * st) for c in (-1, 1))
    return lower, upper


class CovParams:
    """Packing, names, bounds, optimiser coordinates and start values of covariance parameters.

    Parameters
    ----------
    k_re : int
        Number of random effects (``Psi`` is ``k_re x k_re``).
    k_vc : int
        Number of variance components.
    cov_struct : CovStruct
        The residual structure (owns the map of its own parameters to optimiser coordinates).
    max_group_size : int
        Largest group size (the structure's bounds may depend on it).
    re_names : sequence of str
        Names of the distinct elements of ``G`` (statsmodels' ``exog_re_names_full``, e.g.
        ``"Group Var"``, ``"Group x age Cov"``), lower-triangle order.
    vc_names : sequence of str
        Names of the variance components.
    free : MixedLMParams, optional
        statsmodels' pattern of free parameters (``fit(free=...)``): a 0 in ``free.cov_re``
        (lower triangle) or ``free.vcomp`` holds the corresponding optimiser coordinate (entry of
        the Cholesky factor of ``Psi``, square root of a variance component) at its start value;
        ``free.cov_re = I`` gives independent random effects.  The structure's parameters stay
        free.  See :meth:`free_mask`.
    """

    def __init__(
        self,
        k_re: int,
        k_vc: int,
        cov_struct: CovStruct,
        max_group_size: int,
        re_names: Sequence[str] = (),
        vc_names: Sequence[str] = (),
        free=None,
    ):
        self.k_re, self.k_vc = int(k_re), int(k_vc)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_lin = self.k_re2 + self.k_vc
        self.cov_struct = cov_struct
        self.k_corr = cov_struct.k_params
        self.bounds = cov_struct.bounds(max_group_size)
        self.il = np.tril_indices(self.k_re)
        self.re_names = list(re_names) or [f"re{i}" for i in range(self.k_re2)]
        self.vc_names = list(vc_names) or [f"vc{i}" for i in range(self.k_vc)]
        self.free = free
        self.free_mask = self._free_mask(free)

    # ------------------------------------------------------------------ free pattern
    def _free_mask(self, free) -> np.ndarray | None:
        """Mask over the optimiser coordinates of those that are estimated (None: all).

        A covariance held at zero through the Cholesky factor is a zero of ``Psi`` only if no
        earlier column of the factor links the two random effects (no fill-in); otherwise the
        pattern cannot be expressed and a ValueError names the entry.
        """
        if free is None:
            return None
        q = self.k_re
        pat = np.asarray(getattr(free, "cov_re", np.zeros((0, 0))), float)
        vcp = np.asarray(getattr(free, "vcomp", np.zeros(0)), float).ravel()
        if pat.shape != (q, q) or vcp.shape != (self.k_vc,):
            raise ValueError(
                f"free must be a MixedLMParams with cov_re of shape ({q}, {q}) and vcomp of "
                f"length {self.k_vc}; got cov_re {pat.shape} and vcomp {vcp.shape}"
            )
        lower = np.tril(pat != 0)
        for i, j in zip(*np.nonzero(np.tril(~lower, -1)), strict=True):
            linked = [k for k in range(j) if lower[i, k] and lower[j, k]]
            if linked:
                name = self.re_names[self._lin_index(i, j)]
                raise ValueError(
                    f"free.cov_re[{i}, {j}] = 0 cannot hold {name!r} at zero through the "
                    f"Cholesky factor: random effects {i} and {j} both have a free entry in "
                    f"column {linked[0]}; order the random effects so that the zero pattern "
                    "is block diagonal, or make the independent ones variance components "
                    "(vc_formula)"
                )
        return np.concatenate([lower[self.il], vcp != 0, np.ones(self.k_corr, bool)])

    def _lin_index(self, i: int, j: int) -> int:
        """Position of ``Psi[i, j]`` (i >= j) in the lower triangle."""
        return int(np.flatnonzero((self.il[0] == i) & (self.il[1] == j))[0])

    @property
    def fixed_variances(self) -> list[str]:
        """Names of the variances that ``free`` holds at their start values."""
        if self.free_mask is None:
            return []
        pos = self.variance_coords
        names = self.packed_names()
        return [names[k] for k in pos if not self.free_mask[k]]

    def check_free_start(self, start_params) -> None:
        """A variance held fixed by ``free`` needs its value from ``start_params``."""
        if self.fixed_variances and start_params is None:
            raise ValueError(
                f"free holds {', '.join(map(repr, self.fixed_variances))} at its start value: "
                "give that value in start_params (e.g. a MixedLMParams)"
            )

    def n_free(self) -> int:
        """Number of estimated covariance parameters (optimiser coordinates)."""
        return self.k if self.free_mask is None else int(self.free_mask.sum())

    def estimated_basis(self, G, vc, scale: float) -> np.ndarray | None:
        """Directions in ``theta`` in which the estimate may move (``None`` without ``free``).

        Columns: ``d theta / d (free Cholesky entries, free sqrt(vc), sigma^2, rho)`` at the
        estimate; a variance held fixed relative to ``sigma^2`` moves with ``sigma^2``.  The
        covariance of ``theta_hat`` is then ``J (J' I J)^-1 J'`` (delta method on the
        constrained parameterisation); columns that vanish (variances at zero) are dropped.
        """
        if self.free_mask is None:
            return None
        q, q2, kv = self.k_re, self.k_re2, self.k_vc
        psi = np.asarray(G, float).reshape(q, q) / scale
        vcs = np.asarray(vc, float) / scale
        try:
            Lm = np.linalg.cholesky(psi) if q else psi
        except np.linalg.LinAlgError:
            Lm = np.diag(np.sqrt(np.clip(np.diag(psi), 0, None)))
        sv = np.sqrt(np.clip(vcs, 0, None))
        cols = []
        for m, (a, b) in enumerate(zip(*self.il, strict=True)):
            E = np.zeros((q, q))
            E[a, b] = 1.0
            dpsi = E @ Lm.T + Lm @ E.T
            col = np.zeros(self.n_theta)
            col[:q2] = scale * dpsi[self.il]
            cols.append((m, col))
        for j in range(kv):
            col = np.zeros(self.n_theta)
            col[q2 + j] = 2.0 * scale * sv[j]
            cols.append((q2 + j, col))
        J = [c for m, c in cols if self.free_mask[m]]
        ds2 = np.zeros(self.n_theta)
        ds2[: self.k_lin] = np.concatenate([psi[self.il], vcs])
        ds2[self.k_lin] = 1.0
        J.append(ds2)
        for j in range(self.k_corr):
            col = np.zeros(self.n_theta)
            col[self.k_lin + 1 + j] = 1.0
            J.append(col)
        J = np.column_stack(J)
        return J[:, np.linalg.norm(J, axis=0) > 1e-12]

    # ------------------------------------------------------------------ sizes and names
    @property
    def k(self) -> int:
        """Number of optimiser coordinates (= packed covariance parameters)."""
        return self.k_lin + self.k_corr

    @property
    def n_theta(self) -> int:
        """Number of natural parameters (``sigma^2`` included)."""
        return self.k + 1

    @property
    def corr_names(self) -> list[str]:
        return list(self.cov_struct.param_names)

    def packed_names(self) -> list[str]:
        """Names of the packed parameters ``(Psi, vc / sigma^2, rho)``."""
        return self.re_names + [f"{v} Var" for v in self.vc_names] + self.corr_names

    def theta_names(self, style: str = "inference") -> list[str]:
        """Names of the natural parameters.

        ``style="inference"``: ``G <name>``, ``<vc> Var``, ``scale``, structure parameters (the
        labels of information matrices and boundary messages); ``"table"``: the rows of
        ``covariance_parameters()`` (``Residual`` for sigma^2, structure parameters tagged with
        the structure's class name).
        """
        vc = [f"{v} Var" for v in self.vc_names]
        if style == "inference":
            return [f"G {n}" for n in self.re_names] + vc + ["scale"] + self.corr_names
        if style == "table":
            tag = type(self.cov_struct).__name__
            return self.re_names + vc + ["Residual"] + [f"{n} ({tag})" for n in self.corr_names]
        raise ValueError(f"style must be 'inference' or 'table', not {style!r}")

    def packed_bounds(self) -> list[tuple[float, float]]:
        """Open interval of each packed parameter: ``(0, inf)`` for variances, the real line
        for covariances, the structure's bounds for its parameters."""
        diag = self.il[0] == self.il[1]
        lin = [(0.0, np.inf) if d else (-np.inf, np.inf) for d in diag]
        return lin + [(0.0, np.inf)] * self.k_vc + list(self.bounds)

    def theta_bounds(self) -> list[tuple[float, float]]:
        """:meth:`packed_bounds` for the natural parameters (``sigma^2`` in ``(0, inf)``)."""
        b = self.packed_bounds()
        return b[: self.k_lin] + [(0.0, np.inf)] + b[self.k_lin :]

    # ------------------------------------------------------------------ packed <-> parts
    def lin(self, psi: np.ndarray, vc: np.ndarray) -> np.ndarray:
        """``lam = (Psi lower triangle, vc)`` (any scale: also ``(G, vc)`` on the data scale)."""
        psi = np.asarray(psi, float).reshape(self.k_re, self.k_re)
        return np.concatenate([psi[self.il], np.asarray(vc, float).reshape(self.k_vc)])

    def lin_many(self, psi: np.ndarray, vc: np.ndarray) -> np.ndarray:
        """:meth:`lin` for stacks ``psi`` (B, q, q) and ``vc`` (B, k_vc)."""
        return np.concatenate([psi[:, self.il[0], self.il[1]], vc], axis=1)

    def psi_from_lin(self, lam: np.ndarray) -> np.ndarray:
        """Symmetric ``Psi`` (q, q) from ``lam``."""
        psi = np.zeros((self.k_re, self.k_re))
        psi[self.il] = np.asarray(lam, float)[: self.k_re2]
        return psi + np.tril(psi, -1).T

    def pack(self, psi: np.ndarray, vc: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Packed vector ``(Psi lower triangle, vc, rho)``."""
        return np.concatenate([self.lin(psi, vc), np.asarray(rho, float).reshape(self.k_corr)])

    def unpack(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(psi, vc, rho)`` from a packed vector."""
        packed = np.asarray(packed, float)
        if len(packed) != self.k:
            raise ValueError(f"expected {self.k} covariance parameters; got {len(packed)}")
        lam = packed[: self.k_lin]
        return self.psi_from_lin(lam), lam[self.k_re2 :], packed[self.k_lin :]

    def theta(self, G: np.ndarray, vc: np.ndarray, scale: float, rho: np.ndarray) -> np.ndarray:
        """Natural parameters ``(G lower triangle, vc, sigma^2, rho)`` (data scale)."""
        return np.concatenate([self.lin(G, vc), [float(scale)], np.asarray(rho, float)])

    def split_theta(self, theta: np.ndarray):
        """``(G, vc, scale, rho)`` from natural parameters."""
        theta = np.asarray(theta, float)
        lin = theta[: self.k_lin]
        return (
            self.psi_from_lin(lin),
            lin[self.k_re2 :],
            float(theta[self.k_lin]),
            theta[self.k_lin + 1 :],
        )

    def packed_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d packed / d theta`` (k, k + 1): ``Psi = G / s2`` and ``vc / s2``; rho unchanged."""
        theta = np.asarray(theta, float)
        s2 = theta[self.k_lin]
        J = np.zeros((self.k, self.n_theta))
        idx = np.arange(self.k_lin)
        J[idx, idx] = 1.0 / s2
        J[: self.k_lin, self.k_lin] = -theta[: self.k_lin] / s2**2
        J[self.k_lin :, self.k_lin + 1 :] = np.eye(self.k_corr)
        return J

    # ------------------------------------------------------------------ boundary
    def boundary(self, G: np.ndarray, vc: np.ndarray, scale: float) -> np.ndarray:
        """Mask over ``theta``: variances estimated at zero (below ``BOUNDARY_TOL * sigma^2``)
        and the covariances of such random effects."""
        q = self.k_re
        tiny = BOUNDARY_TOL * scale
        Gb = np.zeros((q, q), bool)
        zero = np.diag(np.asarray(G, float).reshape(q, q)) <= tiny
        Gb[zero, :] = Gb[:, zero] = True
        mask = np.concatenate([Gb[self.il], np.asarray(vc, float) <= tiny])
        return np.concatenate([mask, np.zeros(1 + self.k_corr, bool)])

    # ------------------------------------------------------------------ optimiser coordinates
    @property
    def variance_coords(self) -> np.ndarray:
        """Positions of the variances in ``u`` (diagonal of the Cholesky factor, ``sqrt(vc)``),
        which are also the positions of ``Psi_ii`` and ``vc`` in ``lam``."""
        diag = np.flatnonzero(self.il[0] == self.il[1])
        return np.concatenate([diag, self.k_re2 + np.arange(self.k_vc)]).astype(int)

    def natural_many(self, U: np.ndarray):
        """``(lam, rho, psi, vc)`` for a batch of optimiser coordinates ``U`` (B, k)."""
        U = np.asarray(U, float)
        B = U.shape[0]
        q, q2, kv = self.k_re, self.k_re2, self.k_vc
        L = np.zeros((B, q, q))
        L[:, self.il[0], self.il[1]] = U[:, :q2]
        psi = L @ np.swapaxes(L, 1, 2)
        vc = U[:, q2 : q2 + kv] ** 2
        rho = self.cov_struct.from_optimizer(U[:, q2 + kv :], self.bounds)
        return self.lin_many(psi, vc), rho, psi, vc

    def natural(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(psi, vc, rho)`` for optimiser coordinates ``u``."""
        _, rho, psi, vc = self.natural_many(np.asarray(u, dtype=float)[None])
        return psi[0], vc[0], rho[0]

    def unconstrained(self, psi: np.ndarray, vc: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Optimiser coordinates of ``(psi, vc, rho)``; a singular ``psi`` keeps its diagonal."""
        psi = np.asarray(psi, float).reshape(self.k_re, self.k_re)
        try:
            L = np.linalg.cholesky(psi) if self.k_re else psi
        except np.linalg.LinAlgError:
            L = np.diag(np.sqrt(np.clip(np.diag(psi), 0, None)))
        t = self.cov_struct.to_optimizer(np.asarray(rho, float), self.bounds)
        return np.concatenate([L[self.il], np.sqrt(np.asarray(vc, float)), t])

    def chain_many(self, U: np.ndarray, g_lin: np.ndarray, g_rho: np.ndarray) -> np.ndarray:
        """Gradients in ``U`` (B, k) from gradients in ``lam`` (B, k_lin) and ``rho``."""
        B = U.shape[0]
        q, q2, kv = self.k_re, self.k_re2, self.k_vc
        out = np.empty_like(U)
        if q:
            L = np.zeros((B, q, q))
            L[:, self.il[0], self.il[1]] = U[:, :q2]
            # sum_{a>=b} g_ab dPsi_ab = tr(Gsym dPsi) with Psi = L L', so d dev / dL = 2 Gsym L
            Gf = np.zeros((B, q, q))
            Gf[:, self.il[0], self.il[1]] = g_lin[:, :q2]
            Gsym = (Gf + np.swapaxes(Gf, 1, 2)) / 2.0
            dL = 2.0 * Gsym @ L
            out[:, :q2] = dL[:, self.il[0], self.il[1]]
        out[:, q2 : q2 + kv] = g_lin[:, q2:] * 2.0 * U[:, q2 : q2 + kv]
        out[:, q2 + kv :] = self.cov_struct.optimizer_chain(
            U[:, q2 + kv :], np.asarray(g_rho, float).reshape(B, self.k_corr), self.bounds
        )
        return out

    def saddles_many(self, U: np.ndarray, g_lin: np.ndarray, gscale: float) -> np.ndarray:
        """Mask (B, k) of variance coordinates stuck at zero although the deviance falls as
        they grow.

        With ``Psi = L L'`` and ``vc = s^2`` the gradient in ``u`` vanishes at ``L_jj = 0`` or
        ``s = 0`` whatever the data, so an optimiser that lands there stops.  The derivative in
        the natural parameter (``g_lin``, of the deviance) tells a minimum from a saddle.
        """
        out = np.zeros(U.shape, bool)
        pos = self.variance_coords
        if pos.size:
            lam = self.natural_many(U)[0]
            out[:, pos] = (lam[:, pos] < 1e-8) & (g_lin[:, pos] < -1e-6 * gscale)
        return out

    def at_zero(self, u: np.ndarray) -> np.ndarray:
        """Mask of variance coordinates of ``u`` at (numerically) zero: a stationary point of
        the square-root map that a warm start must leave."""
        mask = np.zeros(len(u), bool)
        idx = self.variance_coords
        mask[idx] = np.abs(np.asarray(u)[idx]) < 1e-3
        return mask

    # ------------------------------------------------------------------ start values
    def start_candidates(self, geoms: list) -> list[np.ndarray]:
        """Default starts: relative variances 0.2 and 1, each with the structure's starts."""
        out = []
        for lev in (0.2, 1.0):
            for rho in self.cov_struct.start_params(geoms):
                psi = np.eye(self.k_re) * lev
                out.append(self.unconstrained(psi, np.full(self.k_vc, lev), np.asarray(rho)))
        return out

    def parse_start(self, start_params, k_fe: int, var_y: float, geoms: list) -> np.ndarray:
        """Optimiser coordinates of user start values.

        ``start_params`` is a packed vector (optionally preceded by ``k_fe`` fixed effects, as
        in ``results.params``), a statsmodels ``MixedLMParams``, or a dict with any of
        ``cov_re`` (G), ``vcomp``, ``scale`` and the structure's parameters by name.
        """
        if isinstance(start_params, Mapping):
            return self._start_from_dict(start_params, var_y, geoms)
        if hasattr(start_params, "cov_re") and hasattr(start_params, "vcomp"):
            psi = np.asarray(start_params.cov_re, float)
            rho = self.cov_struct.start_params(geoms)[0]
            return self.unconstrained(psi, np.asarray(start_params.vcomp, float), rho)
        sp = np.asarray(start_params, dtype=float).ravel()
        if len(sp) == k_fe + self.k:
            sp = sp[k_fe:]
        if len(sp) != self.k:
            raise ValueError(
                f"start_params has length {len(sp)}; expected {self.k} covariance parameters "
                f"({', '.join(self.packed_names()) or 'none'}), optionally preceded by the "
                f"{k_fe} fixed effects"
            )
        return self.unconstrained(*self.unpack(sp))

    def _start_from_dict(self, start: Mapping, var_y: float, geoms: list) -> np.ndarray:
        known = {"cov_re", "vcomp", "scale", *self.corr_names}
        unknown = set(start) - known
        if unknown:
            raise ValueError(
                f"unknown start_params key(s): {sorted(unknown)}; known keys are {sorted(known)}"
            )
        scale = float(start.get("scale", var_y))
        psi = np.asarray(start.get("cov_re", np.eye(self.k_re) * scale), float) / scale
        vc = np.asarray(start.get("vcomp", np.full(self.k_vc, scale)), float) / scale
        rho = np.array(self.cov_struct.start_params(geoms)[0], float)
        for j, name in enumerate(self.corr_names):
            if name in start:
                rho[j] = float(start[name])
        return self.unconstrained(psi.reshape(self.k_re, self.k_re), vc, rho)
