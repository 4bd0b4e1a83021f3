"""Structures without positions: independence and compound symmetry."""

from __future__ import annotations

import numpy as np

from .base import Blocks, CovStruct, _offdiag

__all__ = ["Independence", "CompoundSymmetry"]


class Independence(CovStruct):
    """Independent residuals, ``C_i = I`` (the default; plain statsmodels ``MixedLM``).

    No parameters.  SAS: no REPEATED statement (``type=VC``).  nlme: no ``correlation``
    argument.  mmrm has no equivalent (its covariance is always structured).
    """

    name = "independence"

    def correlation(self, params, geom, order=0):
        u, n = self.batch_shape(geom)
        return Blocks(
            np.broadcast_to(np.eye(n), (u, n, n)).copy(),
            np.zeros((0, u, n, n)) if order >= 1 else None,
            np.zeros((0, 0, u, n, n)) if order >= 2 else None,
        )


class CompoundSymmetry(CovStruct):
    """Compound symmetry: ``corr(e_ij, e_ik) = rho`` for ``j != k``.

    Natural parameter: nlme's ``corCompSymm`` ``rho`` in ``(-1/(n_max - 1), 1)``.

    Notes
    -----
    SAS ``type=CS`` reports ``CS`` (the common covariance) and ``Residual``; they relate to ours
    by ``CS = rho * sigma^2`` and ``Residual = (1 - rho) * sigma^2``.  mmrm ``cs()`` is the same
    model.  With a random intercept as well the model is not identified (``rho sigma^2`` and
    the intercept variance trade off), and fitting the pair raises a ``ValueError``: fit one or
    the other.
    """

    name = "cs"
    aliases = ("compound_symmetry",)
    param_names = ("rho",)
    example_params = (0.3,)
    constant_correlation = True

    def bounds(self, max_group_size):
        lo = -1.0 / (max_group_size - 1) if max_group_size > 1 else -1.0
        return [(lo, 1.0)]

    def start_params(self, geometry):
        return [np.array([0.1]), np.array([0.5])]

    def correlation(self, params, geom, order=0):
        u, n = self.batch_shape(geom)
        off = _offdiag(u, n)
        return Blocks(
            np.eye(n) + params[0] * off,
            off[None].copy() if order >= 1 else None,
            np.zeros((1, 1, u, n, n)) if order >= 2 else None,
        )

    @property
    def sas_name(self):
        return "CS"
