"""Structures built from another structure: group-specific parameters, variance functions and
observation weights (SAS ``GROUP=`` and ``WEIGHT``, nlme ``varIdent``/``varPower``/``varExp``,
mmrm ``cs(AVISIT | ARMCD / USUBJID)`` and ``weights=``).

Both wrappers keep the contract ``R_i = sigma^2 S_i C_i S_i`` of the structure they wrap and
append their own data columns to its positions (so they reach :meth:`CovStruct.geometry` and
split the engine's visit patterns):

* :class:`GroupSpecific` carries one parameter set of the inner structure per level of a
  factor that is constant within each subject, and a variance ratio ``tau_l`` per level after
  the first (``tau_1 = 1``), so that ``R_i = sigma^2 tau_l(i) S C S`` with one profiled
  ``sigma^2`` (the first level's variance);
* :class:`Heteroscedastic` multiplies ``S`` row by row by variance functions
  (:class:`VarIdent`, :class:`VarPower`, :class:`VarExp`) and by fixed weights
  ``w^(-1/2)`` (:class:`FixedWeights`), so that
  ``R_i = sigma^2 W_i^(-1/2) D_i S_i C_i S_i D_i W_i^(-1/2)``.

The variance functions are small objects (not structures): a column, parameter names, bounds,
start values and the relative standard deviation ``s(x)`` of each row with its derivatives.
Column values reach them already encoded (factor codes ``0 .. L-1``; numbers), see
:mod:`statsmodels_lmm_ext._residual_terms`.

References
----------
Pinheiro, J. C. and Bates, D. M. (2000). *Mixed-Effects Models in S and S-PLUS*, section 5.2
(variance functions). Springer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Blocks, CovStruct, _scale_blocks
from .basic import CompoundSymmetry
from .temporal import AR1

__all__ = [
    "VarFunc",
    "VarIdent",
    "VarPower",
    "VarExp",
    "FixedWeights",
    "GroupSpecific",
    "Heteroscedastic",
]


# ------------------------------------------------------------------ variance functions
class VarFunc:
    """Base class of variance functions: ``sd(e_ij) = sigma s(x_ij; delta) ...`` per row.

    Parameters
    ----------
    column : str
        The data column ``x`` the function reads.
    """

    #: True if the column is a factor (its values reach :meth:`scale` as codes 0 .. L-1)
    categorical: bool = False
    nlme_name: str = ""

    def __init__(self, column: str):
        if not isinstance(column, str):
            raise TypeError(f"{type(self).__name__} needs a column name, not {column!r}")
        self.column = column
        self.levels: tuple = ()

    def bound(self, levels: Sequence) -> VarFunc:
        """A copy knowing the levels of its factor (categorical functions only)."""
        new = type(self)(self.column)
        new.levels = tuple(levels)
        return new

    @property
    def param_names(self) -> tuple[str, ...]:
        return ()

    @property
    def k_params(self) -> int:
        return len(self.param_names)

    def bounds(self) -> list[tuple[float, float]]:
        return [(-np.inf, np.inf)] * self.k_params

    def start(self) -> np.ndarray:
        return np.zeros(self.k_params)

    def scale(self, params: np.ndarray, x: np.ndarray, order: int = 0) -> Blocks:
        """``s`` (U, n) of the rows with values ``x`` (U, n), with derivatives
        ``(k, U, n)`` and ``(k, k, U, n)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.column!r})"


class VarIdent(VarFunc):
    """One relative standard deviation per level of a factor (nlme ``varIdent(form = ~ 1 |
    f)``; SAS ``REPEATED / GROUP=`` on the variance only).

    Natural parameters: the ratios ``sd(level) / sd(first level)`` of the levels after the
    first (nlme's ``coef(varStruct, unconstrained = FALSE)``), each in ``(0, inf)``; the first
    level's ratio is 1 so that ``sigma^2`` stays the profiled scale (the first level's
    variance).
    """

    categorical = True
    nlme_name = "varIdent"

    @property
    def param_names(self):
        return tuple(f"sd_ratio[{self.column}={lv}]" for lv in self.levels[1:])

    def bounds(self):
        return [(0.0, np.inf)] * self.k_params

    def start(self):
        return np.ones(self.k_params)

    def scale(self, params, x, order=0):
        code = np.rint(x).astype(np.intp)
        ratios = np.concatenate([[1.0], np.asarray(params, float)])
        k = self.k_params
        d1 = d2 = None
        if order >= 1:
            d1 = (code[None] == np.arange(1, k + 1)[:, None, None]).astype(float)
        if order >= 2:
            d2 = np.zeros((k, k) + code.shape)
        return Blocks(ratios[code], d1, d2)


class VarPower(VarFunc):
    """``s(x) = |x| ** delta`` of a covariate (nlme ``varPower(form = ~ x)``; natural parameter
    nlme's ``power``, on the real line).  ``x`` must not be 0."""

    nlme_name = "varPower"

    @property
    def param_names(self):
        return (f"power[{self.column}]",)

    def scale(self, params, x, order=0):
        lx = np.log(np.abs(x))
        s = np.exp(params[0] * lx)
        return Blocks(
            s,
            (lx * s)[None] if order >= 1 else None,
            (lx * lx * s)[None, None] if order >= 2 else None,
        )


class VarExp(VarFunc):
    """``s(x) = exp(delta x)`` of a covariate (nlme ``varExp(form = ~ x)``; natural parameter
    nlme's ``expon``, on the real line)."""

    nlme_name = "varExp"

    @property
    def param_names(self):
        return (f"expon[{self.column}]",)

    def scale(self, params, x, order=0):
        s = np.exp(params[0] * x)
        return Blocks(
            s,
            (x * s)[None] if order >= 1 else None,
            (x * x * s)[None, None] if order >= 2 else None,
        )


class FixedWeights(VarFunc):
    """Observation weights: ``s = w ** (-1/2)``, no parameters (SAS ``WEIGHT``, mmrm
    ``weights=``, nlme ``varFixed(~ 1 / w)``).  Weights must be positive and finite."""

    nlme_name = "varFixed"

    def scale(self, params, x, order=0):
        return Blocks(
            1.0 / np.sqrt(x),
            np.zeros((0,) + x.shape) if order >= 1 else None,
            np.zeros((0, 0) + x.shape) if order >= 2 else None,
        )


def _product(a: Blocks, b: Blocks, order: int) -> Blocks:
    """Elementwise product of two scale vectors with disjoint parameters (``a``'s first)."""
    value = a.value * b.value
    if order < 1:
        return Blocks(value)
    d1 = np.concatenate([a.d1 * b.value, a.value * b.d1])
    if order < 2:
        return Blocks(value, d1)
    ka, kb = len(a.d1), len(b.d1)
    d2 = np.empty((ka + kb, ka + kb) + value.shape)
    d2[:ka, :ka] = a.d2 * b.value
    d2[ka:, ka:] = a.value * b.d2
    cross = a.d1[:, None] * b.d1[None]
    d2[:ka, ka:] = cross
    d2[ka:, :ka] = np.swapaxes(cross, 0, 1)
    return Blocks(value, d1, d2)


def _embed(blocks: Blocks, k: int, sl: slice, order: int) -> Blocks:
    """``blocks`` with its parameter axes placed at ``sl`` among ``k`` parameters."""
    shape = blocks.value.shape
    d1 = d2 = None
    if order >= 1:
        d1 = np.zeros((k,) + shape)
        d1[sl] = blocks.d1
    if order >= 2:
        d2 = np.zeros((k, k) + shape)
        d2[sl, sl] = blocks.d2
    return Blocks(blocks.value, d1, d2)


# --------------------------------------------------------------------------- wrappers
class _Wrapper(CovStruct, register=False):
    """Shared plumbing: the inner structure's columns come first in the positions, the
    wrapper's own ``extra_columns`` after them; optimiser coordinates are mapped slice by
    slice (the inner structure's own map on its slices, the default map elsewhere)."""

    inner: CovStruct

    @property
    def extra_columns(self) -> list[str]:
        return []

    @property
    def position_columns(self):
        return list(self.inner.position_columns) + self.extra_columns

    @property
    def d_inner(self) -> int:
        return len(self.inner.position_columns)

    @property
    def unique_positions(self):  # type: ignore[override]
        return self.inner.unique_positions

    @property
    def constant_correlation(self):  # type: ignore[override]
        return self.inner.constant_correlation

    homogeneous = False

    def check_positions(self, pos, columns):
        d = self.d_inner
        self.inner.check_positions(np.asarray(pos)[:, :d], list(columns)[:d])

    def visit_index(self, pos):
        return self.inner.visit_index(np.asarray(pos, dtype=float)[:, : self.d_inner])

    def _slices(self) -> list[tuple[slice, CovStruct | None]]:
        """Parameter slices and the structure whose optimiser map they use (None: default)."""
        raise NotImplementedError

    def _map(self, method: str, args, bounds):
        """Apply ``method`` slice by slice along the last axis of ``args[0]``."""
        first = np.asarray(args[0], dtype=float)
        out = np.empty_like(first)
        for sl, cs in self._slices():
            sub = [np.asarray(a, float)[..., sl] for a in args]
            b = list(bounds)[sl]
            if cs is None:
                out[..., sl] = getattr(CovStruct, method)(self, *sub, b)
            else:
                out[..., sl] = getattr(cs, method)(*sub, b)
        return out

    def to_optimizer(self, params, bounds):
        return self._map("to_optimizer", [params], bounds)

    def from_optimizer(self, T, bounds):
        return self._map("from_optimizer", [T], bounds)

    def optimizer_chain(self, T, G, bounds):
        return self._map("optimizer_chain", [T, G], bounds)

    @property
    def sas_name(self):
        return self.inner.sas_name

    def level_variances(self, params, scale: float):
        """SAS-scale variances derived from ``sigma^2`` and the parameters: ``(names, values,
        jac)`` with ``jac`` (m, 1 + k) the derivatives in ``(sigma^2, params)``; empty unless a
        :class:`GroupSpecific` is inside."""
        inner = getattr(self.inner, "level_variances", None)
        if inner is None:
            return [], np.zeros(0), np.zeros((0, 1 + self.k_params))
        kin = self.inner.k_params
        names, values, jac_in = inner(np.asarray(params, float)[:kin], scale)
        jac = np.zeros((len(values), 1 + self.k_params))
        jac[:, : 1 + kin] = jac_in
        return names, values, jac


class GroupSpecific(_Wrapper):
    """One parameter set of ``inner`` per level of a subject-level factor (SAS ``REPEATED /
    GROUP=``, mmrm ``cs(AVISIT | ARMCD / USUBJID)``).

    For a subject in level ``l``: ``R_i = sigma^2 tau_l S_l C_l S_l`` with the inner
    structure's matrices at the level's parameters and ``tau_1 = 1``.  ``sigma^2`` (profiled)
    is the first level's variance, ``sigma^2 tau_l`` level ``l``'s (what SAS and mmrm print;
    ``results.covariance_parameters()`` adds these rows).

    Natural parameters: the inner parameters of level 1, of level 2, ..., then the variance
    ratios ``tau_2 .. tau_L`` in ``(0, inf)``; names ``rho[ARMCD=PBO]``,
    ``var_ratio[ARMCD=TRT]``.  ``V`` is linear in each ``tau_l``; the second derivatives of
    ``V`` in ``(tau_l, rho_l)`` are the inner first derivatives.

    Parameters
    ----------
    inner : CovStruct
        The structure of each level (without its own ``group``).
    column : str
        The factor; its values reach the structure as codes ``0 .. L-1`` (the last position
        column).
    levels : sequence
        The factor's levels in code order (the first is the reference).
    """

    def __init__(self, inner: CovStruct, column: str, levels: Sequence):
        self.inner = inner
        self.column = column
        self.levels = tuple(levels)
        if len(self.levels) < 1:
            raise ValueError(f"group factor {column!r} has no levels")

    @classmethod
    def example(cls):
        return cls(CompoundSymmetry(), "group", range(6))

    example_params = (0.3, 0.1, 0.5, -0.1, 0.2, 0.4, 1.5, 0.7, 1.2, 2.0, 0.9)

    @property
    def extra_columns(self):
        return [self.column]

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def param_names(self):  # type: ignore[override]
        names = [f"{p}[{self.column}={lv}]" for lv in self.levels for p in self.inner.param_names]
        names += [f"var_ratio[{self.column}={lv}]" for lv in self.levels[1:]]
        return tuple(names)

    def _block(self, level: int) -> slice:
        k = self.inner.k_params
        return slice(level * k, (level + 1) * k)

    def _ratio_index(self, level: int) -> int:
        return self.n_levels * self.inner.k_params + level - 1

    def _slices(self):
        out = [(self._block(lv), self.inner) for lv in range(self.n_levels)]
        k0 = self.n_levels * self.inner.k_params
        return out + [(slice(k0, k0 + self.n_levels - 1), None)]

    def geometry(self, pos, visit):
        pos = np.asarray(pos, dtype=float)
        code = np.rint(pos[:, 0, self.d_inner]).astype(np.intp)
        inner_pos = pos[..., : self.d_inner]
        parts = []
        for lv in range(self.n_levels):
            idx = np.flatnonzero(code == lv)
            g = self.inner.geometry(inner_pos[idx], np.asarray(visit)[idx]) if idx.size else None
            parts.append((idx, g))
        return {"shape": pos.shape[:2], "parts": parts}

    def batch_shape(self, geom):
        return tuple(int(v) for v in geom["shape"])

    def bounds(self, max_group_size):
        inner = self.inner.bounds(max_group_size)
        return inner * self.n_levels + [(0.0, np.inf)] * (self.n_levels - 1)

    def start_params(self, geometry):
        geoms = [g for geom in geometry for _, g in geom["parts"] if g is not None]
        starts = self.inner.start_params(geoms)
        return [np.concatenate([np.tile(s, self.n_levels), np.ones(self.n_levels - 1)])
                for s in starts]  # fmt: skip

    def _assemble(self, params, geom, order, method: str, tau_power: float) -> Blocks:
        """The inner ``method`` per level, times ``tau ** tau_power``, on the full batch."""
        params = np.asarray(params, dtype=float)
        u, n = self.batch_shape(geom)
        k = self.k_params
        tail = (n, n) if method != "scales" else (n,)
        value = np.zeros((u,) + tail)
        d1 = np.zeros((k, u) + tail) if order >= 1 else None
        d2 = np.zeros((k, k, u) + tail) if order >= 2 else None
        for lv, (idx, g) in enumerate(geom["parts"]):
            if idx.size == 0:
                continue
            blk = self._block(lv)
            b = getattr(self.inner, method)(params[blk], g, order)
            tau, dtau, d2tau, t = 1.0, 0.0, 0.0, None
            if lv > 0 and tau_power:
                t = self._ratio_index(lv)
                x = params[t]
                tau = x**tau_power
                dtau = tau_power * x ** (tau_power - 1)
                d2tau = tau_power * (tau_power - 1) * x ** (tau_power - 2)
            value[idx] = tau * b.value
            if order >= 1:
                d1[blk, idx] = tau * b.d1
                if t is not None:
                    d1[t, idx] = dtau * b.value
            if order >= 2:
                d2[blk, blk, idx] = tau * b.d2
                if t is not None:
                    d2[blk, t, idx] = dtau * b.d1
                    d2[t, blk, idx] = np.moveaxis(dtau * b.d1, 0, 1)
                    d2[t, t, idx] = d2tau * b.value
        return Blocks(value, d1, d2)

    def correlation(self, params, geom, order=0):
        return self._assemble(params, geom, order, "correlation", 0.0)

    def scales(self, params, geom, order=0):
        return self._assemble(params, geom, order, "scales", 0.5)

    def residual(self, params, geom, order=0):
        return self._assemble(params, geom, order, "residual", 1.0)

    def level_variances(self, params, scale: float):
        """The residual variance of each level, ``sigma^2 tau_l`` (what SAS and mmrm print
        per ``GROUP=`` level), with its derivatives in ``(sigma^2, params)``."""
        params = np.asarray(params, float)
        names, values = [], np.empty(self.n_levels)
        jac = np.zeros((self.n_levels, 1 + self.k_params))
        for lv, label in enumerate(self.levels):
            names.append(f"Residual[{self.column}={label}]")
            tau = 1.0 if lv == 0 else params[self._ratio_index(lv)]
            values[lv] = scale * tau
            jac[lv, 0] = tau
            if lv:
                jac[lv, 1 + self._ratio_index(lv)] = scale
        return names, values, jac

    def __repr__(self):
        return f"{self.inner!r} by {self.column!r}"


class Heteroscedastic(_Wrapper):
    """``inner`` with its relative standard deviations multiplied row by row by variance
    functions: ``R_i = sigma^2 D_i S_i C_i S_i D_i``, ``D_i = diag(prod_f s_f(x_ij))``.

    Natural parameters: the inner structure's, then each variance function's in turn (nlme's
    ``coef(varStruct, unconstrained = FALSE)``).

    Parameters
    ----------
    inner : CovStruct
    varfuncs : sequence of VarFunc
        Bound variance functions (factor levels known); their columns follow the inner
        structure's in the positions.
    """

    def __init__(self, inner: CovStruct, varfuncs: Sequence[VarFunc]):
        self.inner = inner
        self.varfuncs = list(varfuncs)

    @classmethod
    def example(cls):
        # VarPower/VarExp are not invariant to an offset of their covariate (a conformance
        # test); tests/test_covstruct_composite.py checks them separately
        return cls(AR1(time="visit"), [VarIdent("group").bound(range(6))])

    example_params = (0.6, 1.3, 0.8, 1.6, 0.9, 1.1)

    @property
    def extra_columns(self):
        return [vf.column for vf in self.varfuncs]

    @property
    def param_names(self):  # type: ignore[override]
        names = list(self.inner.param_names)
        for vf in self.varfuncs:
            names += vf.param_names
        return tuple(names)

    def _slices(self):
        out = [(slice(0, self.inner.k_params), self.inner)]
        k0 = self.inner.k_params
        for vf in self.varfuncs:
            out.append((slice(k0, k0 + vf.k_params), None))
            k0 += vf.k_params
        return out

    def geometry(self, pos, visit):
        pos = np.asarray(pos, dtype=float)
        return self.inner.geometry(pos[..., : self.d_inner], visit), pos[..., self.d_inner :]

    def batch_shape(self, geom):
        return tuple(int(v) for v in geom[1].shape[:2])

    def bounds(self, max_group_size):
        out = list(self.inner.bounds(max_group_size))
        for vf in self.varfuncs:
            out += vf.bounds()
        return out

    def start_params(self, geometry):
        tail = [vf.start() for vf in self.varfuncs]
        return [
            np.concatenate([s, *tail]) for s in self.inner.start_params([g[0] for g in geometry])
        ]

    def _var_scales(self, params, geom, order) -> Blocks:
        """The product of the variance functions' scales (parameters after the inner ones)."""
        u, n = self.batch_shape(geom)
        out = Blocks(
            np.ones((u, n)),
            np.zeros((0, u, n)) if order >= 1 else None,
            np.zeros((0, 0, u, n)) if order >= 2 else None,
        )
        k0 = self.inner.k_params
        for j, vf in enumerate(self.varfuncs):
            p = np.asarray(params[k0 : k0 + vf.k_params], float)
            out = _product(out, vf.scale(p, geom[1][..., j], order), order)
            k0 += vf.k_params
        return out

    def _with_inner(self, params, geom, order, method: str) -> tuple[Blocks, Blocks]:
        kin = self.inner.k_params
        inner = getattr(self.inner, method)(np.asarray(params, float)[:kin], geom[0], order)
        return inner, self._var_scales(params, geom, order)

    def correlation(self, params, geom, order=0):
        c = self.inner.correlation(
            np.asarray(params, float)[: self.inner.k_params], geom[0], order
        )
        return _embed(c, self.k_params, slice(0, self.inner.k_params), order)

    def scales(self, params, geom, order=0):
        inner, var = self._with_inner(params, geom, order, "scales")
        return _product(inner, var, order)

    def residual(self, params, geom, order=0):
        inner, var = self._with_inner(params, geom, order, "residual")
        kin, k = self.inner.k_params, self.k_params
        return _scale_blocks(
            _embed(var, k, slice(kin, k), order), _embed(inner, k, slice(0, kin), order), order
        )

    def __repr__(self):
        return f"{self.inner!r} with {', '.join(repr(v) for v in self.varfuncs)}"
