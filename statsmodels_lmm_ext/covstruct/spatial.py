"""Isotropic spatial structures: exponential and Gaussian, with an optional nugget."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import numpy as np

from .base import Blocks, CovStruct, _offdiag

__all__ = ["Exponential", "Gaussian"]


class _Spatial(CovStruct):
    """Isotropic spatial correlation ``(1 - c) f(d / range)`` with an optional nugget ``c``.

    The geometry is the Euclidean distance array ``d`` (U, n, n).  Natural parameters: ``range``
    in ``(0, inf)`` and, with ``nugget=True``, ``nugget`` in ``(0, 1)``.
    """

    example_params = (1.5, 0.2)

    def __init__(self, coords: str | Sequence[str], nugget: bool = False):
        self.coords = [coords] if isinstance(coords, str) else list(coords)
        self.nugget = bool(nugget)

    @classmethod
    def example(cls):
        return cls(coords=["x", "y"], nugget=True)

    @property
    def param_names(self):
        return ("range", "nugget") if self.nugget else ("range",)

    @property
    def position_columns(self):
        return list(self.coords)

    def __repr__(self):
        return (
            f"{type(self).__name__}(coords={self.coords!r}, nugget={self.nugget}"
            f"{self._group_repr()})"
        )

    def geometry(self, pos, visit):
        pos = np.asarray(pos, dtype=float)
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
        return [np.array([scale * f, 0.1][: self.k_params]) for f in (0.25, 1.0)]

    @staticmethod
    @abstractmethod
    def _kernel(d: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """f, df/dr, d2f/dr2 at distances d for range r."""

    def correlation(self, params, geom, order=0):
        u, n = self.batch_shape(geom)
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
        value = np.eye(n) + (1.0 - c) * f * off
        k = self.k_params
        d1 = d2 = None
        if order >= 1:
            d1 = np.empty((k, u, n, n))
            d1[0] = (1.0 - c) * f1 * off
            if self.nugget:
                d1[1] = -f * off
        if order >= 2:
            d2 = np.zeros((k, k, u, n, n))
            d2[0, 0] = (1.0 - c) * f2 * off
            if self.nugget:
                d2[0, 1] = d2[1, 0] = -f1 * off
        return Blocks(value, d1, d2)


class Exponential(_Spatial):
    """Exponential spatial correlation ``exp(-d / range)``, optionally with a nugget.

    ``d`` is the Euclidean distance between the rows' coordinate vectors.  With a nugget ``c``
    the correlation of two distinct rows is ``(1 - c) exp(-d / range)`` (nlme ``corExp(form = ~
    x + y | group, nugget = TRUE)``).  Natural parameters: ``range`` and, optionally,
    ``nugget`` (nlme's).  SAS ``type=SP(EXP)(x y)`` uses the same ``range`` (printed as
    ``SP(EXP)``); SAS's nugget is a variance ``sigma^2_n`` added to the diagonal, which relates
    to ours by ``c = sigma^2_n / (sigma^2_n + sigma^2_sp)``.  mmrm ``sp_exp()`` (no nugget)
    writes the same model as ``rho ** d`` with ``rho = exp(-1 / range)``.

    Parameters
    ----------
    coords : str or list of str
        Column(s) of coordinates.
    nugget : bool
        Estimate a nugget effect.
    """

    name = "exponential"

    @staticmethod
    def _kernel(d, r):
        f = np.exp(-d / r)
        return f, f * d / r**2, f * (d**2 / r**4 - 2 * d / r**3)

    @property
    def sas_name(self):
        return "SP(EXP)"


class Gaussian(_Spatial):
    """Gaussian spatial correlation ``exp(-(d / range)^2)``, optionally with a nugget.

    Natural parameters: ``range`` and, optionally, ``nugget`` (nlme ``corGaus``).  SAS
    ``type=SP(GAU)`` (SAS's parameter equals ``range``); no mmrm equivalent.  See
    :class:`Exponential` for the nugget convention.

    Parameters
    ----------
    coords : str or list of str
        Column(s) of coordinates.
    nugget : bool
        Estimate a nugget effect.
    """

    name = "gaussian"

    @staticmethod
    def _kernel(d, r):
        f = np.exp(-((d / r) ** 2))
        return f, f * 2 * d**2 / r**3, f * (4 * d**4 / r**6 - 6 * d**2 / r**4)

    @property
    def sas_name(self):
        return "SP(GAU)"
