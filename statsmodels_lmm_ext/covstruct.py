"""Residual (R-side) correlation structures.

A structure describes the within-group correlation matrix ``C_i(rho)`` of the residual errors
``e_i ~ N(0, sigma^2 C_i(rho))``.  Each structure is a small class with a fixed contract:

* ``position_columns`` names the data columns that locate a row within its group (a time or a
  set of coordinates); ``check_positions`` validates them where the data first meets them;
* ``geometry`` turns a batch of positions into what the correlation depends on (lags or
  distances), computed once per model;
* ``correlation`` returns ``C``, and optionally ``dC/drho`` and ``d2C/drho2``, for a batch of
  groups.

Parameters follow nlme (``rho`` for compound symmetry, AR(1) and the continuous-time AR(1);
``range`` and ``nugget`` for the spatial structures) so that estimates can be compared directly
with ``nlme::gls``/``nlme::lme``.  The SAS PROC MIXED equivalents are given in each docstring.

All arrays here are batches: positions have shape ``(U, n, d)`` for ``U`` groups of size ``n``;
correlation matrices ``(U, n, n)``; derivatives carry a leading parameter axis.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import expit, logit


class Blocks(NamedTuple):  # TEMPORARY shim until the covstruct package lands
    value: np.ndarray
    d1: np.ndarray | None
    d2: np.ndarray | None


__all__ = [
    "CovStruct",
    "Independence",
    "CompoundSymmetry",
    "AR1",
    "Power",
    "Exponential",
    "Gaussian",
    "COV_STRUCTS",
]


class CovStruct(ABC):
    """Base class of residual correlation structures.

    Subclasses set ``param_names`` and implement :meth:`correlation`.  Structures that depend on
    positions set ``position_columns`` (through their constructor) and override
    :meth:`geometry`.
    """

    #: names of the correlation parameters (nlme's natural parameterisation)
    param_names: tuple[str, ...] = ()
    #: True if two rows of one group may not share a position
    unique_positions: bool = False

    @property
    def position_columns(self) -> list[str]:
        """Data columns holding the rows' positions (empty if none are needed)."""
        return []

    @property
    def k_params(self) -> int:
        return len(self.param_names)

    def check_positions(self, pos: np.ndarray, columns: Sequence[str]) -> None:  # noqa: B027
        """Validate the positions of all rows (shape ``(N, d)``); raise ``ValueError``."""

    def geometry(self, pos: np.ndarray, visit=None) -> np.ndarray:
        """Lag or distance matrices ``(U, n, n)`` for positions ``(U, n, d)``."""
        u, n = pos.shape[:2]
        return np.zeros((u, n, n))

    def bounds(self, max_group_size: int) -> list[tuple[float, float]]:
        """Open interval of each parameter, given the largest group size."""
        return []

    def start_params(self, geometry: list[np.ndarray]) -> list[np.ndarray]:
        """Candidate starting values (natural scale); the engine keeps the best."""
        return [np.zeros(0)]

    @abstractmethod
    def correlation(
        self, params: np.ndarray, geom: np.ndarray, order: int = 0
    ) -> tuple[np.ndarray, ...]:
        """Correlation matrices and their derivatives.

        Parameters
        ----------
        params : ndarray, shape (k,)
            Correlation parameters on the natural scale.
        geom : ndarray, shape (U, n, n)
            Output of :meth:`geometry`.
        order : {0, 1, 2}
            Highest derivative wanted.

        Returns
        -------
        C : ndarray (U, n, n)
        dC : ndarray (k, U, n, n), if ``order >= 1``
        d2C : ndarray (k, k, U, n, n), if ``order >= 2``
        """

    def visit_index(self, pos):
        pos = np.asarray(pos, float)
        if pos.ndim < 2 or pos.shape[1] == 0:
            return np.zeros(len(pos), np.int64)
        return np.unique(pos[:, 0], return_inverse=True)[1].ravel().astype(np.int64)

    def residual(self, params, geom, order=0):
        out = self.correlation(params, geom, order)
        return Blocks(out[0], out[1] if order >= 1 else None, out[2] if order >= 2 else None)

    def to_optimizer(self, params, bounds):
        t = []
        for r, (lo, hi) in zip(params, bounds, strict=True):
            if np.isinf(hi):
                t.append(np.log(r))
            else:
                t.append(logit(np.clip((r - lo) / (hi - lo), 1e-12, 1 - 1e-12)))
        return np.asarray(t, float)

    def from_optimizer(self, T, bounds):
        rho = np.empty_like(T)
        for j, (lo, hi) in enumerate(bounds):
            rho[:, j] = np.exp(T[:, j]) if np.isinf(hi) else lo + (hi - lo) * expit(T[:, j])
        return rho

    def optimizer_chain(self, T, G, bounds):
        out = np.empty_like(G)
        for j, (lo, hi) in enumerate(bounds):
            if np.isinf(hi):
                d = np.exp(T[:, j])
            else:
                e = expit(T[:, j])
                d = (hi - lo) * e * (1.0 - e)
            out[:, j] = G[:, j] * d
        return out

    def __repr__(self) -> str:
        cols = self.position_columns
        extra = f"({', '.join(repr(c) for c in cols)})" if cols else "()"
        return f"{type(self).__name__}{extra}"

    @property
    def sas_name(self) -> str:
        return "VC"


def _offdiag(u: int, n: int) -> np.ndarray:
    return np.broadcast_to(1.0 - np.eye(n), (u, n, n))


class Independence(CovStruct):
    """Independent residuals, ``C_i = I`` (the default; plain statsmodels ``MixedLM``).

    SAS: no REPEATED statement (``type=VC``).  nlme: no ``correlation`` argument.
    """

    def correlation(self, params, geom, order=0):
        u, n = geom.shape[:2]
        out = [np.broadcast_to(np.eye(n), (u, n, n)).copy()]
        if order >= 1:
            out.append(np.zeros((0, u, n, n)))
        if order >= 2:
            out.append(np.zeros((0, 0, u, n, n)))
        return tuple(out)


class CompoundSymmetry(CovStruct):
    """Compound symmetry: ``corr(e_ij, e_ik) = rho`` for ``j != k``.

    Parameters are nlme's ``corCompSymm``: ``rho`` in ``(-1/(n_max - 1), 1)``.

    Notes
    -----
    SAS ``type=CS`` reports ``CS`` (the common covariance) and ``Residual``; they relate to ours
    by ``CS = rho * sigma^2`` and ``Residual = (1 - rho) * sigma^2``.  With a random intercept as
    well the model is not identified; fit one or the other.
    """

    param_names = ("rho",)

    def bounds(self, max_group_size):
        lo = -1.0 / (max_group_size - 1) if max_group_size > 1 else -1.0
        return [(lo, 1.0)]

    def start_params(self, geometry):
        return [np.array([0.1]), np.array([0.5])]

    def correlation(self, params, geom, order=0):
        u, n = geom.shape[:2]
        off = _offdiag(u, n)
        out = [np.eye(n) + params[0] * off]
        if order >= 1:
            out.append(off[None].copy())
        if order >= 2:
            out.append(np.zeros((1, 1, u, n, n)))
        return tuple(out)

    @property
    def sas_name(self):
        return "CS"


class _TimeStructure(CovStruct):
    """``corr = rho ** |t_j - t_k|`` on a one-dimensional time position."""

    param_names = ("rho",)
    unique_positions = True

    def __init__(self, time: str):
        self.time = time

    @property
    def position_columns(self):
        return [self.time]

    def geometry(self, pos, visit=None):
        t = pos[..., 0]
        return np.abs(t[:, :, None] - t[:, None, :])

    def start_params(self, geometry):
        return [np.array([0.2]), np.array([0.6])]

    def correlation(self, params, geom, order=0):
        rho = params[0]
        lag = geom
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(lag == 0, 1.0, np.abs(rho) ** lag * np.sign(rho) ** np.round(lag))
            out = [c]
            if order >= 1:
                d1 = np.where(lag == 0, 0.0, lag * c / rho) if rho != 0 else (lag == 1) * 1.0
                out.append(d1[None])
            if order >= 2:
                if rho != 0:
                    d2 = np.where(lag <= 1, 0.0, lag * (lag - 1) * c / rho**2)
                else:
                    d2 = (lag == 2) * 2.0
                out.append(d2[None, None])
        return tuple(out)


class AR1(_TimeStructure):
    """First-order autoregressive correlation on integer time positions.

    ``corr(e_ij, e_ik) = rho ** |t_j - t_k|`` with integer ``t``, so missing visits keep their
    spacing (nlme ``corAR1(form = ~ time | group)``; SAS ``type=AR(1)`` with the visit as
    REPEATED effect, whose ``AR(1)`` parameter is ``rho``).

    Parameters
    ----------
    time : str
        Column of integer time positions.  Two rows of one group may not share a position.
    """

    def check_positions(self, pos, columns):
        t = pos[:, 0]
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            bad = float(t[~np.isfinite(t) | (t != np.round(t))][0])
            raise ValueError(
                f"AR1 needs integer time positions in column {columns[0]!r}; found {bad:g}. "
                "Use Power(time=...) for real-valued times."
            )

    def bounds(self, max_group_size):
        return [(-1.0, 1.0)]

    @property
    def sas_name(self):
        return "AR(1)"


class Power(_TimeStructure):
    """Continuous-time AR(1): ``corr = rho ** |t_j - t_k|`` for real-valued ``t``.

    nlme ``corCAR1(form = ~ time | group)`` (its ``Phi`` is ``rho``); SAS ``type=SP(POW)(time)``
    (its parameter is ``rho``).  ``rho`` is in ``(0, 1)``.

    Parameters
    ----------
    time : str
        Column of real-valued times.  Two rows of one group may not share a time.
    """

    def bounds(self, max_group_size):
        return [(0.0, 1.0)]

    @property
    def sas_name(self):
        return "SP(POW)"


class _Spatial(CovStruct):
    """Isotropic spatial correlation ``(1 - c) f(d / range)`` with an optional nugget ``c``."""

    def __init__(self, coords: str | Sequence[str], nugget: bool = False):
        self.coords = [coords] if isinstance(coords, str) else list(coords)
        self.nugget = bool(nugget)

    @property
    def param_names(self):
        return ("range", "nugget") if self.nugget else ("range",)

    @property
    def position_columns(self):
        return list(self.coords)

    def __repr__(self):
        return f"{type(self).__name__}(coords={self.coords!r}, nugget={self.nugget})"

    def geometry(self, pos, visit=None):
        diff = pos[:, :, None, :] - pos[:, None, :, :]
        return np.sqrt(np.einsum("uijd,uijd->uij", diff, diff))

    def bounds(self, max_group_size):
        b = [(0.0, np.inf)]
        if self.nugget:
            b.append((0.0, 1.0))
        return b

    def start_params(self, geometry):
        d = np.concatenate([g[g > 0].ravel() for g in geometry]) if geometry else np.ones(1)
        d = d if d.size else np.ones(1)
        scale = float(np.median(d))
        starts = []
        for f in (0.25, 1.0):
            starts.append(np.array([scale * f, 0.1][: self.k_params]))
        return starts

    @staticmethod
    @abstractmethod
    def _kernel(d: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """f, df/dr, d2f/dr2 at distances d for range r."""

    def correlation(self, params, geom, order=0):
        u, n = geom.shape[:2]
        r = params[0]
        c = params[1] if self.nugget else 0.0
        with np.errstate(under="ignore"):
            f, f1, f2 = self._kernel(geom, r)
        # Correlations below 1e-150 are exactly negligible; leaving them as subnormal numbers
        # slows every BLAS call on these matrices by orders of magnitude.
        tiny = f < 1e-150
        if tiny.any():
            f, f1, f2 = (np.where(tiny, 0.0, a) for a in (f, f1, f2))
        off = _offdiag(u, n)
        eye = np.eye(n)
        out = [eye + (1.0 - c) * f * off]
        k = self.k_params
        if order >= 1:
            d1 = np.empty((k, u, n, n))
            d1[0] = (1.0 - c) * f1 * off
            if self.nugget:
                d1[1] = -f * off
            out.append(d1)
        if order >= 2:
            d2 = np.zeros((k, k, u, n, n))
            d2[0, 0] = (1.0 - c) * f2 * off
            if self.nugget:
                d2[0, 1] = d2[1, 0] = -f1 * off
            out.append(d2)
        return tuple(out)


class Exponential(_Spatial):
    """Exponential spatial correlation ``exp(-d / range)``, optionally with a nugget.

    ``d`` is the Euclidean distance between the rows' coordinate vectors.  With a nugget ``c``
    the correlation of two distinct rows is ``(1 - c) exp(-d / range)`` (nlme ``corExp(form = ~
    x + y | group, nugget = TRUE)``).  SAS ``type=SP(EXP)(x y)`` uses the same ``range``
    (printed as ``SP(EXP)``); SAS's nugget is a variance ``sigma^2_n`` added to the diagonal, which
    relates to ours by ``c = sigma^2_n / (sigma^2_n + sigma^2_sp)``.

    Parameters
    ----------
    coords : str or list of str
        Column(s) of coordinates.
    nugget : bool
        Estimate a nugget effect.
    """

    @staticmethod
    def _kernel(d, r):
        f = np.exp(-d / r)
        return f, f * d / r**2, f * (d**2 / r**4 - 2 * d / r**3)

    @property
    def sas_name(self):
        return "SP(EXP)"


class Gaussian(_Spatial):
    """Gaussian spatial correlation ``exp(-(d / range)^2)``, optionally with a nugget.

    nlme ``corGaus``; SAS ``type=SP(GAU)`` (SAS's parameter equals ``range``).  See
    :class:`Exponential` for the nugget convention.

    Parameters
    ----------
    coords : str or list of str
        Column(s) of coordinates.
    nugget : bool
        Estimate a nugget effect.
    """

    @staticmethod
    def _kernel(d, r):
        f = np.exp(-((d / r) ** 2))
        return f, f * 2 * d**2 / r**3, f * (4 * d**4 / r**6 - 6 * d**2 / r**4)

    @property
    def sas_name(self):
        return "SP(GAU)"


#: the one registry of the available structures, by lower-case name
COV_STRUCTS: dict[str, type[CovStruct]] = {
    "independence": Independence,
    "cs": CompoundSymmetry,
    "compound_symmetry": CompoundSymmetry,
    "ar1": AR1,
    "power": Power,
    "exponential": Exponential,
    "gaussian": Gaussian,
}
