"""Structures without positions: independence and compound symmetry."""

from __future__ import annotations

import numpy as np

from ._visits import VisitMixin, _example, hetero_reported
from .base import Blocks, CovStruct, Reported, _offdiag

__all__ = ["Independence", "CompoundSymmetry", "CompoundSymmetryH"]


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


class CompoundSymmetry(VisitMixin, CovStruct):
    """Compound symmetry: ``corr(e_ij, e_ik) = rho`` for ``j != k``.

    Natural parameter: nlme's ``corCompSymm`` ``rho`` in ``(-1/(n_max - 1), 1)``; with
    ``heterogeneous=True`` (SAS ``CSH``, mmrm ``csh``, nlme ``corCompSymm`` with
    ``varIdent(form = ~ 1 | time)``) also the relative standard deviations ``s_2 .. s_T`` of
    the visits of the ``time`` column (``sigma^2`` is the first visit's variance).

    Parameters
    ----------
    time : str, optional
        Visit column; needed only when ``heterogeneous``.
    heterogeneous : bool
        One variance per visit.
    levels : sequence, optional
        The visits' values in order (default: those in the data).

    Notes
    -----
    SAS ``type=CS`` reports ``CS`` (the common covariance) and ``Residual``; they relate to ours
    by ``CS = rho * sigma^2`` and ``Residual = (1 - rho) * sigma^2``.  SAS ``CSH`` reports
    ``Var(1) .. Var(T)`` and ``CSH`` (= ``rho``), in which inference works.  mmrm ``cs()`` is
    the same model.  With a random intercept as well the model is not identified (``rho
    sigma^2`` and the intercept variance trade off), and fitting the pair raises a
    ``ValueError``: fit one or the other.
    """

    name = "cs"
    aliases = ("compound_symmetry",)
    corr_names = ("rho",)
    example_params = (0.3,)
    constant_correlation = True

    def __init__(self, time: str | None = None, heterogeneous: bool = False, *, levels=None):
        self._setup_visits(time, heterogeneous, levels)
        self.unique_positions = time is not None

    def bounds(self, max_group_size):
        lo = -1.0 / (max_group_size - 1) if max_group_size > 1 else -1.0
        return [(lo, 1.0)] + self.ratio_bounds()

    def start_params(self, geometry):
        return self.with_ratio_starts([np.array([0.1]), np.array([0.5])])

    def correlation(self, params, geom, order=0):
        u, n = self.batch_shape(geom)
        off = _offdiag(u, n)
        corr = Blocks(
            np.eye(n) + params[0] * off,
            off[None].copy() if order >= 1 else None,
            np.zeros((1, 1, u, n, n)) if order >= 2 else None,
        )
        return self.pad(corr, order)

    def reported(self, scale, params):
        if not self.heterogeneous:
            # SAS's CS (common covariance) and Residual, in which V is linear
            return Reported(
                ["CS", "Residual"],
                lambda th: np.stack([th[..., 0] * th[..., 1], th[..., 0] * (1 - th[..., 1])], -1),
                lambda ph: np.stack(
                    [ph[..., 0] + ph[..., 1], ph[..., 0] / (ph[..., 0] + ph[..., 1])], -1
                ),
                linear=True,
            )
        names = [f"Var({v + 1})" for v in range(self.n_visits)] + ["CSH"]
        return hetero_reported(self, names, 1)

    def __repr__(self):
        if self.time is None:
            return f"CompoundSymmetry({self._group_repr()[2:]})"
        het = ", heterogeneous=True" if self.heterogeneous else ""
        return f"CompoundSymmetry(time={self.time!r}{het}{self._group_repr()})"

    @property
    def sas_name(self):
        return "CSH" if self.heterogeneous else "CS"


class CompoundSymmetryH(CompoundSymmetry):
    """Heterogeneous compound symmetry, ``CompoundSymmetry(time, heterogeneous=True)``
    (SAS ``CSH``, mmrm ``csh``)."""

    name = "csh"
    aliases = ()
    example_params = (0.3, 1.3, 0.8, 1.6, 0.9)

    def __init__(self, time: str, *, levels=None):
        super().__init__(time, True, levels=levels)

    @classmethod
    def example(cls):
        return _example(cls(time="visit"))
