"""Autoregressive structures on a one-dimensional time: AR(1) and the continuous-time AR(1)."""

from __future__ import annotations

import numpy as np

from ._visits import VisitMixin, _example, hetero_reported
from .base import Blocks, CovStruct

__all__ = ["AR1", "AR1H", "Power"]


def _median_step(geometry) -> float:
    """Median positive lag between consecutive positions of a group (1 if there is none)."""
    steps = [np.diagonal(g, offset=1, axis1=1, axis2=2).ravel() for g in geometry or []]
    steps = np.concatenate(steps) if steps else np.zeros(0)
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else 1.0


class _TimeStructure(CovStruct):
    """``corr = rho ** |t_j - t_k|`` on a one-dimensional time position.

    The geometry is the lag array ``|t_j - t_k|`` (U, n, n).  A negative ``rho`` (AR1 only) is
    handled as ``|rho| ** lag * sign(rho) ** lag`` so that integer lags keep their sign.
    """

    param_names = ("rho",)
    unique_positions = True

    def __init__(self, time: str):
        self.time = time

    @property
    def position_columns(self):
        return [self.time]

    def geometry(self, pos, visit):
        t = np.asarray(pos, dtype=float)[..., 0]
        return np.abs(t[:, :, None] - t[:, None, :])

    def start_params(self, geometry):
        """``rho = c ** (1 / m)`` for ``c`` in (0.2, 0.6), ``m`` the median lag between
        consecutive positions, so that the start does not depend on the unit of time."""
        step = _median_step(geometry)
        return [np.array([c ** (1.0 / step)]) for c in (0.2, 0.6)]

    def correlation(self, params, geom, order=0):
        rho = params[0]
        lag = geom
        if rho > 0:
            # the common case in one pass per block: rho ** 0 = 1 on the diagonal by itself
            c = rho**lag
            d1 = (lag * c / rho)[None] if order >= 1 else None
            d2 = (lag * (lag - 1) * c / rho**2)[None, None] if order >= 2 else None
            return Blocks(c, d1, d2)
        d1 = d2 = None
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(lag == 0, 1.0, np.abs(rho) ** lag * np.sign(rho) ** np.round(lag))
            if order >= 1:
                d1 = np.where(lag == 0, 0.0, lag * c / rho) if rho != 0 else (lag == 1) * 1.0
                d1 = d1[None]
            if order >= 2:
                if rho != 0:
                    # lag (lag - 1) vanishes at the lags 0 and 1 by itself; real lags in (0, 1)
                    # (Power) have a nonzero second derivative
                    d2 = np.where(lag == 0, 0.0, lag * (lag - 1) * c / rho**2)
                else:
                    d2 = (lag == 2) * 2.0
                d2 = d2[None, None]
        return Blocks(c, d1, d2)


class AR1(VisitMixin, _TimeStructure):
    """First-order autoregressive correlation on integer time positions.

    ``corr(e_ij, e_ik) = rho ** |t_j - t_k|`` with integer ``t``, so missing visits keep their
    spacing.  Natural parameter ``rho`` in ``(-1, 1)``: nlme ``corAR1(form = ~ time | group)``
    (its ``Phi``); SAS ``type=AR(1)`` with the visit as REPEATED effect (its ``AR(1)``
    parameter); mmrm ``ar1()`` (with the visit as a factor).

    With ``heterogeneous=True`` (SAS ``ARH(1)``, mmrm ``ar1h()``, nlme ``corAR1`` with
    ``varIdent(form = ~ 1 | time)``) the natural parameters are ``rho`` and the relative
    standard deviations ``s_2 .. s_T`` of the visits (``sigma^2`` is the first visit's
    variance); inference then works in SAS's ``Var(1) .. Var(T)`` and ``ARH(1)``.

    Parameters
    ----------
    time : str
        Column of integer time positions (a categorical column: its category codes).  Two rows
        of one group may not share a position.
    heterogeneous : bool
        One variance per visit (value of ``time``).
    levels : sequence, optional
        The visits' values in order (default: those in the data).
    """

    name = "ar1"
    corr_names = ("rho",)
    example_params = (0.6,)

    def __init__(self, time: str, heterogeneous: bool = False, *, levels=None):
        self._setup_visits(time, heterogeneous, levels)

    @classmethod
    def example(cls):
        return cls(time="visit")

    @property
    def string_visits(self) -> bool:
        """Homogeneous AR(1) takes a categorical time column (its codes), not strings."""
        return self.heterogeneous

    def geometry(self, pos, visit):
        lag = super().geometry(pos, visit)
        return (lag, np.asarray(visit)) if self.heterogeneous else lag

    def batch_shape(self, geom):
        return super().batch_shape(geom[0] if self.heterogeneous else geom)

    def _visit_geom(self, geom):
        return geom[1]

    def correlation(self, params, geom, order=0):
        lag = geom[0] if self.heterogeneous else geom
        return self.pad(super().correlation(params, lag, order), order)

    def reported(self, scale, params):
        if not self.heterogeneous:
            return None
        names = [f"Var({v + 1})" for v in range(self.n_visits)] + ["ARH(1)"]
        return hetero_reported(self, names, 1)

    def __repr__(self):
        het = ", heterogeneous=True" if self.heterogeneous else ""
        return f"AR1({self.time!r}{het}{self._group_repr()})"

    #: common step of the time positions (their differences' gcd), learnt where the data
    #: first meets the structure (:meth:`check_positions`); 1 until then
    step = 1

    def check_positions(self, pos, columns):
        super().check_positions(pos, columns)
        t = pos[:, 0]
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            bad = float(t[~np.isfinite(t) | (t != np.round(t))][0])
            raise ValueError(
                f"AR1 needs integer time positions in column {columns[0]!r}; found {bad!r}. "
                "Use Power(time=...) for real-valued times."
            )
        u = np.unique(t).astype(np.int64)
        self.step = max(int(np.gcd.reduce(np.diff(u))), 1) if len(u) > 1 else 1

    # With positions m = step apart every correlation is a power of c = rho ** m, and the
    # likelihood is flat in rho near 0 (its first m - 1 derivatives vanish there): the optimiser
    # works in c, so that the unit of time does not matter.
    def to_optimizer(self, params, bounds):
        p = np.array(params, dtype=float)
        if self.step > 1:
            p[0] = np.sign(p[0]) * np.abs(p[0]) ** self.step
        return super().to_optimizer(p, bounds)

    def from_optimizer(self, T, bounds):
        P = super().from_optimizer(T, bounds)
        if self.step > 1:
            P = np.array(P, dtype=float)
            P[:, 0] = np.sign(P[:, 0]) * np.abs(P[:, 0]) ** (1.0 / self.step)
        return P

    def optimizer_chain(self, T, G, bounds):
        G = np.array(G, dtype=float)
        if self.step > 1:
            c = np.abs(super().from_optimizer(T, bounds)[:, 0])
            drho_dc = np.maximum(c, 1e-300) ** (1.0 / self.step - 1.0) / self.step
            G[:, 0] = np.where(c > 0, G[:, 0] * drho_dc, 0.0)
        return super().optimizer_chain(T, G, bounds)

    def bounds(self, max_group_size):
        return [(-1.0, 1.0)] + self.ratio_bounds()

    def start_params(self, geometry):
        """As :class:`Power`'s, and with an odd step ``m > 1`` also ``-0.2 ** (1 / m)``: the
        correlation ``rho ** m`` is flat at ``rho = 0``, so a negative lag-one correlation is
        not reached from positive starts.  Heterogeneous: followed by relative sds of one."""
        lags = [g[0] for g in geometry or []] if self.heterogeneous else geometry
        out = super().start_params(lags)
        step = _median_step(lags)
        if step > 1 and step % 2 == 1:
            out.append(-out[0])
        return self.with_ratio_starts(out)

    @property
    def sas_name(self):
        return "ARH(1)" if self.heterogeneous else "AR(1)"


class AR1H(AR1):
    """Heterogeneous AR(1), ``AR1(time, heterogeneous=True)`` (SAS ``ARH(1)``, mmrm
    ``ar1h``)."""

    name = "ar1h"
    example_params = (0.6, 1.3, 0.8, 1.6, 0.9)

    def __init__(self, time: str, *, levels=None):
        super().__init__(time, True, levels=levels)

    @classmethod
    def example(cls):
        return _example(cls(time="visit"))


class Power(_TimeStructure):
    """Continuous-time AR(1): ``corr = rho ** |t_j - t_k|`` for real-valued ``t``.

    Natural parameter ``rho`` in ``(0, 1)``: nlme ``corCAR1(form = ~ time | group)`` (its
    ``Phi``); SAS ``type=SP(POW)(time)`` (its parameter); mmrm ``sp_exp()`` (whose ``rho`` is
    the same, as mmrm writes the spatial exponential as ``rho ** d``).

    Parameters
    ----------
    time : str
        Column of real-valued times.  Two rows of one group may not share a time.
    """

    name = "power"
    example_params = (0.7,)

    @classmethod
    def example(cls):
        return cls(time="time")

    def bounds(self, max_group_size):
        return [(0.0, 1.0)]

    @property
    def sas_name(self):
        return "SP(POW)"
