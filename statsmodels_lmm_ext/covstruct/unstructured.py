"""Structures indexed by visit: unstructured, Toeplitz and ante-dependence (the MMRM library).

Each builds the ``T x T`` correlation matrix over the visits (and its derivatives) once per
call and gathers the rows of every group from it, so missing visits keep their place.  The
natural parameters are correlations (plus the relative standard deviations ``s_2 .. s_T`` of
the heterogeneous variants, :mod:`._visits`); :meth:`CovStruct.reported` maps them with
``sigma^2`` to the covariance parameters SAS PROC MIXED prints, in which inference works.
"""

from __future__ import annotations

import functools

import numpy as np

from ._visits import (
    VisitMixin,
    _example,
    chain_rows,
    gather,
    hetero_reported,
    levels_repr,
    map_rows,
)
from .base import Blocks, CovStruct, Reported

__all__ = ["Unstructured", "Toeplitz", "AnteDependence"]

_CLIP = 1.0 - 1e-12


@functools.lru_cache(maxsize=64)
def _strict_lower(T: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.tril_indices(T, -1)``, computed once per dimension (read-only arrays): the
    structures ask for them at every likelihood evaluation."""
    i, j = np.tril_indices(T, -1)
    i.flags.writeable = j.flags.writeable = False
    return i, j


@functools.lru_cache(maxsize=64)
def _unit_derivatives(T: int, order: int):
    """``dC/drho`` (and the zero ``d2C``) of a free correlation matrix: constant, so built
    once per dimension (read-only)."""
    i, j = _strict_lower(T)
    D1 = np.zeros((len(i), T, T))
    m = np.arange(len(i))
    D1[m, i, j] = 1.0
    D1[m, j, i] = 1.0
    D2 = np.zeros((len(i), len(i), T, T)) if order >= 2 else None
    D1.flags.writeable = False
    if D2 is not None:
        D2.flags.writeable = False
    return D1, D2


class _VisitStructure(VisitMixin, CovStruct, register=False):
    """A correlation matrix over the visits, gathered per group."""

    unique_positions = True

    def __init__(self, time: str, heterogeneous: bool = False, *, levels=None):
        self._setup_visits(time, heterogeneous, levels)

    def _full(self, rho: np.ndarray, order: int):
        """``C`` (T, T), ``dC`` (kc, T, T), ``d2C`` (kc, kc, T, T) over the visits."""
        raise NotImplementedError

    def correlation(self, params, geom, order=0):
        visit = self._visit_geom(geom)
        C, D1, D2 = self._full(np.asarray(params, float)[: self.k_corr], order)
        corr = Blocks(
            gather(C, visit),
            gather(D1, visit) if order >= 1 else None,
            gather(D2, visit) if order >= 2 else None,
        )
        return self.pad(corr, order)

    def bounds(self, max_group_size):
        return [(-1.0, 1.0)] * self.k_corr + self.ratio_bounds()

    # a map of the correlation parameters that keeps C positive definite; ratios by log
    def _corr_to_opt(self, rho: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _opt_to_corr(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_optimizer(self, params, bounds):
        params = np.asarray(params, float)
        kc = self.k_corr
        cb, rb = self.split_bounds(bounds)
        return np.concatenate(
            [self._shrunk_to_opt(params[:kc]), super().to_optimizer(params[kc:], rb)]
        )

    def _shrunk_to_opt(self, rho: np.ndarray) -> np.ndarray:
        """Optimiser coordinates of ``rho``, shrunk toward 0 just enough to be positive
        definite (a start value on the boundary maps to finite coordinates)."""
        for shrink in (0.0, 1e-12, 1e-9, 1e-6, 1e-3, 1e-2, 0.1, 0.5, 1.0):
            with np.errstate(all="ignore"):
                try:
                    t = self._corr_to_opt(rho * (1.0 - shrink))
                except np.linalg.LinAlgError:
                    continue
            if np.all(np.isfinite(t)):
                return t
        return np.zeros(len(rho))

    def from_optimizer(self, T, bounds):
        T = np.atleast_2d(np.asarray(T, float))
        kc = self.k_corr
        cb, rb = self.split_bounds(bounds)
        return np.hstack(
            [map_rows(self._opt_to_corr, T[:, :kc]), super().from_optimizer(T[:, kc:], rb)]
        )

    def optimizer_chain(self, T, G, bounds):
        T = np.atleast_2d(np.asarray(T, float))
        G = np.atleast_2d(np.asarray(G, float))
        kc = self.k_corr
        cb, rb = self.split_bounds(bounds)
        return np.hstack(
            [
                chain_rows(self._opt_to_corr, T[:, :kc], G[:, :kc]).reshape(len(T), kc),
                super().optimizer_chain(T[:, kc:], G[:, kc:], rb),
            ]
        )

    def __repr__(self):
        het = ", heterogeneous=True" if self.heterogeneous else ""
        lv = levels_repr(self.levels)
        return f"{type(self).__name__}(time={self.time!r}{het}{lv}{self._group_repr()})"


class Unstructured(_VisitStructure):
    """Unstructured covariance over the visits: ``R = sigma^2 S C S``, ``C`` a free
    correlation matrix and ``S = diag(1, s_2, .., s_T)``.

    Natural parameters: the correlations ``rho_jk`` (``j > k``, row by row of the lower
    triangle) and the relative standard deviations ``s_2 .. s_T`` (``sigma^2`` is the variance
    of the first visit).  The optimiser sees ``C = L L'`` with ``L``'s rows ``(x, 1) / |(x, 1)|``
    (free ``x``: every positive definite correlation matrix, as a Cholesky factor with unit
    diagonal normalised).  Inference works in SAS's ``UN(i,j)`` (the covariances), in which
    ``V`` is linear (so Kenward-Roger equals KR(linear), as in SAS).

    Equivalents: SAS ``type=UN``; mmrm ``us(AVISIT | USUBJID)``; nlme ``corSymm`` with
    ``varIdent(form = ~ 1 | AVISIT)``.

    Parameters
    ----------
    time : str
        Visit column (categorical: its categories in order; numeric: its sorted values).
    levels : sequence, optional
        The visits' values in order (default: those in the data).
    """

    name = "un"
    aliases = ("unstructured", "us")
    constant_correlation = True
    example_params = (0.5, 0.3, 0.4, 0.2, 0.1, 0.45, 0.1, 0.2, 0.3, 0.5, 1.3, 0.8, 1.6, 0.9)

    def __init__(self, time: str, *, levels=None):
        super().__init__(time, True, levels=levels)

    @classmethod
    def example(cls):
        return _example(cls(time="visit"))

    @property
    def corr_names(self):
        i, j = np.tril_indices(self.n_visits, -1)
        return tuple(f"rho{a + 1}_{b + 1}" for a, b in zip(i, j, strict=True))

    def _full(self, rho, order):
        T = self.n_visits
        i, j = _strict_lower(T)
        C = np.eye(T, dtype=rho.dtype)
        C[i, j] = rho
        C[j, i] = rho
        D1 = D2 = None
        if order >= 1:
            D1, D2 = _unit_derivatives(T, order)
        return C, D1, D2

    def start_params(self, geometry):
        k = self.k_corr
        return self.with_ratio_starts([np.zeros(k), np.full(k, 0.3)])

    def _corr_to_opt(self, rho):
        C, _, _ = self._full(np.asarray(rho, float), 0)
        L = np.linalg.cholesky(C + 1e-14 * np.eye(len(C)))
        X = L / np.diag(L)[:, None]
        i, j = _strict_lower(len(C))
        return X[i, j]

    def _opt_to_corr(self, t):
        T = self.n_visits
        i, j = _strict_lower(T)
        t = np.asarray(t)
        U = np.broadcast_to(np.eye(T), t.shape[:-1] + (T, T)).astype(np.result_type(t, float))
        U[..., i, j] = t
        L = U / np.sqrt(np.sum(U * U, axis=-1))[..., None]
        C = L @ np.swapaxes(L, -1, -2)
        return C[..., i, j]

    def __repr__(self):
        return f"Unstructured(time={self.time!r}{levels_repr(self.levels)}{self._group_repr()})"

    def check_design(self, visit, groups, labels=None):
        """Every pair of visits must occur together in some subject (else its correlation
        is not identified)."""
        T = self.n_visits
        M = np.zeros((groups.max() + 1, T))
        M[groups, visit] = 1.0
        together = M.T @ M
        seen = M.any(axis=0)  # (a visit no row has is the formula's error, or an example's)
        i, j = np.nonzero((together == 0) & seen[:, None] & seen[None, :])
        if len(i):
            lab = labels if labels is not None else [f"{v:g}" for v in self._levels]
            a, b = max(i[0], j[0]), min(i[0], j[0])
            raise ValueError(
                f"{self!r}: visits {lab[b]!r} and {lab[a]!r} of column {self.time!r} occur "
                f"together in no subject, so their correlation UN({a + 1},{b + 1}) is not "
                f"identified; an unstructured covariance over {T} visits ({T * (T + 1) // 2} "
                "parameters) needs at least one subject with both visits of every pair (in "
                "practice several); use a structured covariance (Toeplitz, AnteDependence, AR1) "
                "or merge visits"
            )

    def reported(self, scale, params):
        """SAS's ``UN(i,j)`` (covariances, lower triangle by row, ``i >= j``) of ``sigma^2``
        and the natural parameters, as a function for :meth:`CovStruct.reported`."""
        return _un_reported(self, scale, params)

    @property
    def sas_name(self):
        return "UN"


def _un_reported(cs: Unstructured, scale, params):
    T, kc = cs.n_visits, cs.k_corr
    i, j = np.tril_indices(T)
    ii, jj = np.tril_indices(T, -1)
    names = [f"UN({a + 1},{b + 1})" for a, b in zip(i, j, strict=True)]

    def phi_of_theta(theta):
        one = np.ones(theta.shape[:-1] + (1,), dtype=theta.dtype)
        s = np.concatenate([one, theta[..., 1 + kc :]], axis=-1)
        C = np.broadcast_to(np.eye(T), theta.shape[:-1] + (T, T)).astype(theta.dtype)
        C[..., ii, jj] = theta[..., 1 : 1 + kc]
        C[..., jj, ii] = theta[..., 1 : 1 + kc]
        S = theta[..., :1, None] * s[..., :, None] * s[..., None, :] * C
        return S[..., i, j]

    def theta_of_phi(phi):
        S = np.zeros(phi.shape[:-1] + (T, T), dtype=phi.dtype)
        S[..., i, j] = phi
        S[..., j, i] = phi
        d = np.sqrt(S[..., np.arange(T), np.arange(T)])
        C = S / d[..., :, None] / d[..., None, :]
        return np.concatenate([d[..., :1] ** 2, C[..., ii, jj], d[..., 1:] / d[..., :1]], -1)

    return Reported(names, phi_of_theta, theta_of_phi, linear=True)


class Toeplitz(_VisitStructure):
    """Toeplitz (banded) correlation over the visits: ``corr = rho_d`` at visit lag ``d``.

    Natural parameters: ``rho_1 .. rho_{T-1}`` (the correlations at visit lags 1 .. T-1), and
    for ``heterogeneous=True`` the relative standard deviations ``s_2 .. s_T``.  The optimiser
    sees the partial autocorrelations (Durbin-Levinson, ``atanh``), so every value is positive
    definite.  Inference works in SAS's parameters: ``TOEP(2) .. TOEP(T)`` (covariances
    ``sigma^2 rho_d``) and ``Residual`` (TOEP); ``Var(1) .. Var(T)`` and ``TOEPH(1) ..
    TOEPH(T-1)`` (the correlations) for TOEPH.

    Equivalents: SAS ``type=TOEP`` / ``TOEPH``; mmrm ``toep()`` / ``toeph()``; nlme
    ``corARMA(p = T - 1)`` (with ``varIdent`` for TOEPH).
    """

    name = "toep"
    aliases = ("toeph",)
    constant_correlation = True
    example_params = (0.5, 0.3, 0.1, 0.05, 1.3, 0.8, 1.6, 0.9)

    @classmethod
    def example(cls):
        return _example(cls(time="visit", heterogeneous=True))

    @property
    def corr_names(self):
        return tuple(f"rho_lag{d}" for d in range(1, self.n_visits))

    def _full(self, rho, order):
        T = self.n_visits
        lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
        C = np.concatenate([np.ones(1, dtype=rho.dtype), rho])[lag]
        D1 = D2 = None
        if order >= 1:
            D1 = (lag[None] == np.arange(1, T)[:, None, None]).astype(float)
        if order >= 2:
            D2 = np.zeros((T - 1, T - 1, T, T))
        return C, D1, D2

    def start_params(self, geometry):
        k = self.k_corr
        return self.with_ratio_starts([np.zeros(k), 0.5 ** np.arange(1, k + 1)])

    def _corr_to_opt(self, rho):
        return np.arctanh(np.clip(_acf_to_pacf(np.asarray(rho, float)), -_CLIP, _CLIP))

    def _opt_to_corr(self, t):
        return _pacf_to_acf(np.tanh(t))

    def reported(self, scale, params):
        return _toep_reported(self, scale, params)

    @property
    def sas_name(self):
        return "TOEPH" if self.heterogeneous else "TOEP"


def _pacf_to_acf(p):
    """Autocorrelations ``r_1 .. r_m`` of partial autocorrelations ``p`` (..., m)
    (Durbin-Levinson; leading axes are batches)."""
    p = np.asarray(p)
    m = p.shape[-1]
    r = [np.ones(p.shape[:-1], dtype=p.dtype)]
    phi = np.zeros(p.shape[:-1] + (0,), dtype=p.dtype)
    v = r[0]
    for k in range(m):
        pk = p[..., k]
        rk = pk * v
        for j in range(k):
            rk = rk + phi[..., j] * r[k - j]
        r.append(rk)
        phi = np.concatenate([phi - pk[..., None] * phi[..., ::-1], pk[..., None]], axis=-1)
        v = v * (1 - pk * pk)
    return np.stack(r[1:], axis=-1) if m else np.zeros(p.shape, dtype=p.dtype)


def _acf_to_pacf(r):
    """Partial autocorrelations of autocorrelations ``r_1 .. r_m`` (Levinson)."""
    m = len(r)
    rr = np.concatenate([[1.0], r])
    phi = np.zeros(0)
    v = 1.0
    out = np.zeros(m)
    for k in range(m):
        pk = (rr[k + 1] - sum(phi[j] * rr[k - j] for j in range(k))) / v
        out[k] = pk
        phi = np.concatenate([phi - pk * phi[::-1], [pk]])
        v = v * (1 - pk * pk)
    return out


def _toep_reported(cs: Toeplitz, scale, params):
    T, kc = cs.n_visits, cs.k_corr
    if not cs.heterogeneous:
        names = [f"TOEP({d + 1})" for d in range(1, T)] + ["Residual"]

        def phi_of_theta(theta):
            return np.concatenate([theta[..., :1] * theta[..., 1:], theta[..., :1]], -1)

        def theta_of_phi(phi):
            return np.concatenate([phi[..., -1:], phi[..., :-1] / phi[..., -1:]], -1)

        return Reported(names, phi_of_theta, theta_of_phi, linear=True)
    return hetero_reported(
        cs, [f"Var({v + 1})" for v in range(T)] + [f"TOEPH({d})" for d in range(1, T)], kc
    )


class AnteDependence(_VisitStructure):
    """First-order ante-dependence: ``corr(visit j, visit k) = prod_{m=j}^{k-1} rho_m``.

    Natural parameters: ``rho_1 .. rho_{T-1}`` (the correlations of consecutive visits) in
    ``(-1, 1)`` (every such value is positive definite), and for ``heterogeneous=True`` the
    relative standard deviations ``s_2 .. s_T``.  SAS ``type=ANTE(1)`` is the heterogeneous
    variant (it prints ``Var(1) .. Var(T)`` and ``Rho(1) .. Rho(T-1)``, the parameters inference
    works in); mmrm ``ad()`` / ``adh()``.
    """

    name = "ad"
    aliases = ("antedependence", "ante")
    example_params = (0.5, -0.3, 0.6, 0.4, 1.3, 0.8, 1.6, 0.9)

    @classmethod
    def example(cls):
        return _example(cls(time="visit", heterogeneous=True))

    @property
    def corr_names(self):
        return tuple(f"rho{v}_{v + 1}" for v in range(1, self.n_visits))

    def _full(self, rho, order):
        T = self.n_visits
        k = T - 1
        a = np.arange(T)
        lo = np.minimum.outer(a, a)
        hi = np.maximum.outer(a, a)
        # inside[m, j, k]: the link m (visits m, m+1) lies between visits j and k
        inside = (lo[None] <= a[:-1, None, None]) & (a[:-1, None, None] < hi[None])
        factors = np.where(inside, rho[:, None, None], 1.0)
        C = np.prod(factors, axis=0)
        D1 = D2 = None
        if order >= 1:
            D1 = np.zeros((k, T, T))
            for m in range(k):
                D1[m] = np.where(inside[m], np.prod(np.delete(factors, m, axis=0), axis=0), 0)
        if order >= 2:
            D2 = np.zeros((k, k, T, T))
            for m in range(k):
                for n in range(m + 1, k):
                    rest = np.prod(np.delete(factors, [m, n], axis=0), axis=0)
                    D2[m, n] = D2[n, m] = np.where(inside[m] & inside[n], rest, 0.0)
        return C, D1, D2

    def start_params(self, geometry):
        k = self.k_corr
        return self.with_ratio_starts([np.zeros(k), np.full(k, 0.5)])

    def _corr_to_opt(self, rho):
        return np.arctanh(np.clip(np.asarray(rho, float), -_CLIP, _CLIP))

    def _opt_to_corr(self, t):
        return np.tanh(t)

    def reported(self, scale, params):
        if not self.heterogeneous:
            return None
        T = self.n_visits
        names = [f"Var({v + 1})" for v in range(T)] + [f"Rho({v})" for v in range(1, T)]
        return hetero_reported(self, names, self.k_corr)

    @property
    def sas_name(self):
        return "ANTE(1)" if self.heterogeneous else "AD"
