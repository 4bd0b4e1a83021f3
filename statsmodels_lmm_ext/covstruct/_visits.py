"""Visits as levels: the shared machinery of the structures indexed by visit.

Unstructured, Toeplitz, ante-dependence and the heterogeneous variants of compound symmetry and
AR(1) index their parameters by the *visit* of a row: the position of its value of the
``time`` column among the sorted distinct values (or among ``levels`` if given).  A categorical
``time`` column reaches the structure as its category codes (the formula interface converts
it), so the visits are the categories in their order.  The number of visits ``T`` is learnt when
data first meets the structure (:meth:`VisitMixin.check_positions` and
:meth:`VisitMixin.visit_index`, both called with all rows of the model).

Heterogeneous structures carry relative standard deviations ``s_2 .. s_T`` (``s_1 = 1``, so
that ``sigma^2`` is the variance of the first visit and stays the profiled scale) after their
correlation parameters; :meth:`VisitMixin.scales` returns them row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .base import Blocks, Reported

__all__ = ["VisitMixin", "complex_step_jacobian", "gather", "hetero_reported"]


class VisitMixin:
    """Visit levels, the number of visits and the relative standard deviations by visit.

    Classes using it call :meth:`_setup_visits` in their constructor, define
    :attr:`corr_names` (their correlation parameters) and take ``param_names`` from here.
    """

    time: str | None = None
    heterogeneous: bool = False
    levels: tuple | None = None
    _levels: np.ndarray | None = None

    def _setup_visits(self, time, heterogeneous: bool, levels) -> None:
        self.time = time
        self.heterogeneous = bool(heterogeneous)
        self.homogeneous = not self.heterogeneous
        self.levels = None if levels is None else tuple(levels)
        self._levels = None if levels is None else np.asarray(levels, dtype=float)
        if self.heterogeneous and time is None:
            raise ValueError(
                f"{type(self).__name__}(heterogeneous=True) needs time=: the column whose "
                "levels carry the variances"
            )

    @property
    def position_columns(self) -> list[str]:
        return [self.time] if self.time is not None else []

    # ------------------------------------------------------------------ visits
    @property
    def n_visits(self) -> int:
        """Number of visits ``T`` (known once data met the structure, or from ``levels``)."""
        if self._levels is None:
            raise ValueError(
                f"{self!r}: the number of visits is not known before the structure meets data "
                "(fit a model, or give levels=)"
            )
        return len(self._levels)

    def _learn_levels(self, pos: np.ndarray) -> None:
        if self.levels is None and self.time is not None:
            levels = np.unique(np.asarray(pos, dtype=float)[:, 0])
            # examples (conformance tests) ask for a least number of visits, extra ones unseen
            extra = getattr(self, "_min_visits", 0) - len(levels)
            if extra > 0 and len(levels):
                levels = np.concatenate([levels, levels[-1] + 1.0 + np.arange(extra)])
            self._levels = levels

    def _visits_of(self, pos: np.ndarray, column: str | None = None) -> np.ndarray:
        t = np.asarray(pos, dtype=float)[:, 0]
        idx = pd.Index(self._levels).get_indexer(t)
        if np.any(idx < 0):
            bad = float(t[idx < 0][0])
            col = column or self.time
            raise ValueError(
                f"{type(self).__name__}: value {bad:g} of the time column {col!r} is not "
                f"one of its levels {list(self.levels)}"
            )
        return idx.astype(np.intp)

    def check_positions(self, pos, columns) -> None:
        if self.time is None:
            return
        self._learn_levels(pos)
        self._visits_of(pos, columns[0] if len(columns) else None)

    def visit_index(self, pos):
        if self.time is None:
            return np.zeros(len(pos), dtype=np.intp)
        self._learn_levels(pos)
        return self._visits_of(pos)

    # ------------------------------------------------------------- parameters
    corr_names: tuple[str, ...] = ()

    @property
    def ratio_names(self) -> tuple[str, ...]:
        if not self.heterogeneous:
            return ()
        return tuple(f"sd_ratio{v}" for v in range(2, self.n_visits + 1))

    def _names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(corr_names, param_names)``, cached per number of visits (the likelihood asks
        for them at every evaluation)."""
        key = None if self._levels is None else len(self._levels)
        cache = self.__dict__.get("_names_cache")
        if cache is None or cache[0] != key or key is None:
            corr = tuple(self.corr_names)
            cache = (key, corr, corr + self.ratio_names)
            self.__dict__["_names_cache"] = cache
        return cache[1], cache[2]

    @property
    def param_names(self) -> tuple[str, ...]:
        return self._names()[1]

    @property
    def k_corr(self) -> int:
        return len(self._names()[0])

    def ratio_bounds(self) -> list[tuple[float, float]]:
        return [(0.0, np.inf)] * len(self.ratio_names)

    def with_ratio_starts(self, starts: list[np.ndarray]) -> list[np.ndarray]:
        """Start values of the correlation parameters followed by ratios of one."""
        ones = np.ones(len(self.ratio_names))
        return [np.concatenate([np.asarray(s, float), ones]) for s in starts]

    def _visit_geom(self, geom) -> np.ndarray:
        """The ``(U, n)`` visit indices inside a geometry (itself, by default)."""
        return np.asarray(geom)

    def scales(self, params, geom, order=0):
        k, kc = len(self.param_names), self.k_corr
        if not self.heterogeneous:
            u, n = self.batch_shape(geom)
            return Blocks(
                np.ones((u, n)),
                np.zeros((k, u, n)) if order >= 1 else None,
                np.zeros((k, k, u, n)) if order >= 2 else None,
            )
        visit = self._visit_geom(geom)
        s = np.concatenate([[1.0], np.asarray(params, float)[kc:]])[visit]
        d1 = d2 = None
        if order >= 1:
            # visit v >= 1 has its ratio at parameter index kc + v - 1
            code = np.where(visit > 0, kc + visit - 1, -1)
            d1 = (np.arange(k)[:, None, None] == code[None]).astype(float)
        if order >= 2:
            d2 = np.zeros((k, k) + visit.shape)
        return Blocks(s, d1, d2)

    def pad(self, corr: Blocks, order: int) -> Blocks:
        """Correlation blocks in the correlation parameters, padded with zero derivatives in
        the ratios."""
        if not self.heterogeneous or order < 1:
            return corr
        k, kc = len(self.param_names), self.k_corr
        shape = corr.value.shape
        d1 = np.zeros((k,) + shape)
        d1[:kc] = corr.d1
        d2 = None
        if order >= 2:
            d2 = np.zeros((k, k) + shape)
            d2[:kc, :kc] = corr.d2
        return Blocks(corr.value, d1, d2)

    def split_bounds(self, bounds):
        kc = self.k_corr
        return list(bounds)[:kc], list(bounds)[kc:]


def _example(cs):
    """``cs`` with five visits before data meets it (the conformance data's count)."""
    cs._min_visits = 5
    cs._levels = np.arange(1.0, 6.0)
    return cs


def gather(full: np.ndarray, visit: np.ndarray) -> np.ndarray:
    """``full[..., v_j, v_k]`` for the rows of each group: (..., T, T) -> (..., U, n, n)."""
    return full[..., visit[:, :, None], visit[:, None, :]]


def complex_step_jacobian(f: Callable[[np.ndarray], np.ndarray], t: np.ndarray) -> np.ndarray:
    """Jacobian ``J[i, j] = d f_i / d t_j`` of an analytic map by the complex step (exact to
    rounding: no subtraction).  ``f`` must use only analytic operations and accept a batch
    ``(k, n)`` of arguments (leading axes are batches)."""
    t = np.asarray(t, dtype=float)
    k = len(t)
    if k == 0:
        return np.zeros((0, 0))
    h = 1e-30
    tc = t[None, :] + 1j * h * np.eye(k)
    return (np.imag(f(tc)) / h).reshape(k, -1).T


def map_rows(f: Callable[[np.ndarray], np.ndarray], T: np.ndarray) -> np.ndarray:
    """``f`` applied to the rows of ``T`` (B, k) at once (``f`` takes leading batch axes)."""
    T = np.atleast_2d(np.asarray(T, dtype=float))
    return np.real(f(T)).reshape(T.shape[0], -1)


def chain_rows(f: Callable[[np.ndarray], np.ndarray], T: np.ndarray, G: np.ndarray):
    """Vector-Jacobian products ``G[b] J_f(T[b])`` for each row."""
    T = np.atleast_2d(np.asarray(T, dtype=float))
    G = np.atleast_2d(np.asarray(G, dtype=float))
    return np.array([g @ complex_step_jacobian(f, t) for t, g in zip(T, G, strict=True)])


def hetero_reported(cs, names, kc):
    """SAS's ``Var(1) .. Var(T)`` followed by the correlation parameters unchanged."""

    def phi_of_theta(theta):
        one = np.ones(theta.shape[:-1] + (1,), dtype=theta.dtype)
        s = np.concatenate([one, theta[..., 1 + kc :]], axis=-1)
        return np.concatenate([theta[..., :1] * s * s, theta[..., 1 : 1 + kc]], axis=-1)

    def theta_of_phi(phi):
        T = phi.shape[-1] - kc
        var = phi[..., :T]
        ratio = np.sqrt(var[..., 1:] / var[..., :1])
        return np.concatenate([var[..., :1], phi[..., T:], ratio], axis=-1)

    return Reported(names, phi_of_theta, theta_of_phi)


def levels_repr(levels: Sequence | None) -> str:
    return "" if levels is None else f", levels={list(levels)!r}"
