"""Autoregressive structures on a one-dimensional time: AR(1) and the continuous-time AR(1)."""

from __future__ import annotations

import numpy as np

from .base import Blocks, CovStruct

__all__ = ["AR1", "Power"]


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


class AR1(_TimeStructure):
    """First-order autoregressive correlation on integer time positions.

    ``corr(e_ij, e_ik) = rho ** |t_j - t_k|`` with integer ``t``, so missing visits keep their
    spacing.  Natural parameter ``rho`` in ``(-1, 1)``: nlme ``corAR1(form = ~ time | group)``
    (its ``Phi``); SAS ``type=AR(1)`` with the visit as REPEATED effect (its ``AR(1)``
    parameter); mmrm ``ar1()`` (with the visit as a factor).

    Parameters
    ----------
    time : str
        Column of integer time positions.  Two rows of one group may not share a position.
    """

    name = "ar1"
    example_params = (0.6,)

    @classmethod
    def example(cls):
        return cls(time="visit")

    def check_positions(self, pos, columns):
        t = pos[:, 0]
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            bad = float(t[~np.isfinite(t) | (t != np.round(t))][0])
            raise ValueError(
                f"AR1 needs integer time positions in column {columns[0]!r}; found {bad!r}. "
                "Use Power(time=...) for real-valued times."
            )

    def bounds(self, max_group_size):
        return [(-1.0, 1.0)]

    def start_params(self, geometry):
        """As :class:`Power`'s, and with an odd step ``m > 1`` also ``-0.2 ** (1 / m)``: the
        correlation ``rho ** m`` is flat at ``rho = 0``, so a negative lag-one correlation is
        not reached from positive starts."""
        out = super().start_params(geometry)
        step = _median_step(geometry)
        if step > 1 and step % 2 == 1:
            out.append(-out[0])
        return out

    @property
    def sas_name(self):
        return "AR(1)"


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
