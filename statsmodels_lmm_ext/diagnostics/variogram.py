"""Empirical semivariogram and autocorrelation of residuals within groups (nlme's
``Variogram`` and ``ACF``).

For each pair ``(j, k)`` of rows of one group, with residuals ``e`` (of the chosen type) and
distance ``d_jk``, the semivariance is ``(e_j - e_k)^2 / 2``; pairs are pooled over groups and
collapsed into distance classes as in nlme's ``Variogram.lme``/``Variogram.gls``:

- ``collapse="quantiles"`` (default) with ``nint=20`` classes: when there are more than
  ``nint`` distinct distances the classes are ``(b_k, b_k+1]`` between the distinct quantiles
  (R type 7) of the distances; otherwise one class per distinct distance;
- ``collapse="fixed"``: ``nint`` classes of equal width from the smallest to the largest
  distance; ``collapse="none"``: one row per pair.

As in nlme the classes are right-closed and the lowest break is not included, so pairs at the
smallest distance are left out when classes are formed (not when each distance is its own
class).  Each class reports the mean semivariance (``robust=True``: Cressie and Hawkins'
``mean(v^(1/4))^4 / (0.457 + 0.494 / n)``), the median distance and the number of pairs.

The ``model`` column is the semivariance the fitted within-group error implies for the same
pairs, averaged over the class: ``1 - C_jk`` for Pearson residuals (nlme's ``modelVariog``
with ``sig2 = 1`` for a stationary spatial structure), ``sigma^2 ((s_j^2 + s_k^2) / 2 -
s_j s_k C_jk)`` for raw residuals and ``1`` for normalized ones.

The autocorrelation at lag ``h`` (rows ``h`` apart in position order within a group) is
``(sum e_j e_j+h / n_h) / (sum e_j^2 / n_0)`` over all groups, with ``n_h`` the number of such
pairs (nlme's ``ACF.lme``; the residuals are not centred).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .residuals import KINDS, TYPES, check_choice, residual_values, within_group_blocks

__all__ = ["Variogram", "variogram", "acf", "pair_table", "pyplot", "innermost_columns"]

COLLAPSE = ("quantiles", "fixed", "none")


class Variogram(pd.DataFrame):
    """A semivariogram table (``dist``, ``variog``, ``n_pairs``, ``model``) with a plot."""

    @property
    def _constructor(self):
        return Variogram

    def plot(self, ax=None, *, model: bool = True):
        """Plot the semivariogram against distance (and the model's, a line) with matplotlib.

        Returns the Axes.
        """
        ax = _axes(ax)
        ax.plot(self["dist"], self["variog"], "o", label="empirical")
        if model and "model" in self and np.isfinite(self["model"]).any():
            ax.plot(self["dist"], self["model"], "-", label="model")
        ax.set_xlabel("distance")
        ax.set_ylabel("semivariogram")
        ax.set_ylim(bottom=0)
        ax.legend(loc="best")
        return ax


def pyplot():
    """``matplotlib.pyplot``, or an ImportError saying how to get it."""
    # matplotlib is optional (and slow to import): load it only when a plot is asked for
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed for the tests
        raise ImportError("residual plots need matplotlib: pip install matplotlib") from exc
    return plt


def _axes(ax):
    return pyplot().figure().add_subplot() if ax is None else ax


def innermost_columns(cs) -> int:
    """Number of the structure's own position columns (wrappers append theirs after)."""
    while hasattr(cs, "inner"):
        cs = cs.inner
    return len(cs.position_columns)


def _distance_positions(res, distance) -> np.ndarray:
    """Positions (N, d) the distances are computed from, in the model's row order."""
    model = res.model
    n = len(model.endog)
    if distance is None:
        d = innermost_columns(model.cov_struct)
        return np.asarray(model.engine.positions, float)[:, :d]
    cols = [distance] if isinstance(distance, str) else distance
    if isinstance(cols, list | tuple) and all(isinstance(c, str) for c in cols):
        frame = getattr(model.data, "frame", None)
        if frame is None:
            raise ValueError("distance given as column names needs a model fitted from a formula")
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(
                f"distance column(s) {missing} not in the data; columns are {list(frame.columns)}"
            )
        pos = frame.loc[model.data.row_labels, list(cols)].to_numpy(float)
    else:
        pos = np.asarray(distance, float).reshape(n, -1) if np.size(distance) == n else None
        if pos is None:
            raise ValueError(
                f"distance must be column name(s) or an array with one value per row ({n}), "
                f"not shape {np.shape(distance)}"
            )
    if not np.isfinite(pos).all():
        raise ValueError("distance has missing or non-finite values")
    return pos


def pair_table(
    res, kind="conditional", type="pearson", distance=None, max_dist=None
) -> pd.DataFrame:
    """All within-group pairs (at most ``max_dist`` apart): ``dist``, ``variog``
    (semivariance), ``model`` (one row per pair; groups in turn, rows in position order)."""
    check_choice(kind, KINDS, "kind")
    check_choice(type, TYPES, "type")
    e = residual_values(res, kind, type)
    pos = _distance_positions(res, distance)
    parts = []
    for b in within_group_blocks(res):
        U, n = b.rows.shape
        if n < 2:
            continue
        j, k = np.triu_indices(n, 1)
        eg = e[b.rows]
        v = 0.5 * (eg[:, j] - eg[:, k]) ** 2
        if pos.shape[1]:
            p = pos[b.rows]
            dist = np.sqrt(((p[:, j] - p[:, k]) ** 2).sum(axis=-1))
        else:  # nlme's default form = ~ 1: the rows' index within the group
            dist = np.broadcast_to((k - j).astype(float), v.shape)
        dist, v = dist.ravel(), v.ravel()
        m = _model_semivariance(b, j, k, type).ravel()
        keep = slice(None) if max_dist is None else dist <= max_dist  # bounds the memory
        parts.append((dist[keep], v[keep], m[keep]))
    if not parts:
        raise ValueError("no group has two rows: a variogram needs pairs within groups")
    dist, v, m = (np.concatenate(a) for a in zip(*parts, strict=True))
    return pd.DataFrame({"dist": dist, "variog": v, "model": m})


def _model_semivariance(b, j, k, type: str) -> np.ndarray:
    C = b.corr[:, j, k]
    if type == "pearson":
        return 1.0 - C
    if type == "normalized":
        return np.ones_like(C)
    s = b.sd
    return 0.5 * (s[:, j] ** 2 + s[:, k] ** 2) - s[:, j] * s[:, k] * C


def _classes(dist: np.ndarray, collapse: str, nint: int, breaks) -> np.ndarray:
    """Class index of each pair (-1: left out), as nlme's ``cut``; ``breaks`` sorted."""
    udist = np.unique(dist)
    if breaks is not None:
        breaks = np.sort(np.asarray(breaks, float))
        if breaks.min() > udist[0]:
            breaks = np.concatenate([[udist[0]], breaks])
        if len(udist) > 1 and breaks.max() < udist[1]:
            breaks = np.concatenate([breaks, [udist[1]]])
        nint = len(breaks) - 1
    if nint >= len(udist):
        return np.searchsorted(udist, dist)
    if breaks is None:
        if collapse == "quantiles":
            breaks = np.unique(np.quantile(dist, np.linspace(0.0, 1.0, nint + 1)))
        else:
            breaks = np.linspace(udist[0], udist[-1], nint + 1)
    idx = np.searchsorted(breaks, dist, side="left") - 1  # (b_k, b_k+1] -> k
    idx[(idx < 0) | (idx >= len(breaks) - 1)] = -1
    return idx


def variogram(
    res,
    type: str = "pearson",
    distance=None,
    *,
    kind: str = "conditional",
    collapse: str = "quantiles",
    nint: int = 20,
    breaks=None,
    max_dist: float | None = None,
    robust: bool = False,
) -> Variogram:
    """Empirical semivariogram of the residuals within groups (see the module docstring).

    Returns a :class:`Variogram` with columns ``dist``, ``variog``, ``n_pairs``, ``model``.
    """
    check_choice(collapse, COLLAPSE, "collapse")
    if int(nint) < 1:
        raise ValueError(f"nint must be a positive integer, not {nint!r}")
    pairs = pair_table(res, kind, type, distance, max_dist)
    if collapse == "none":
        out = pairs.assign(n_pairs=1)[["dist", "variog", "n_pairs", "model"]]
        return Variogram(out.reset_index(drop=True))
    cls = _classes(pairs["dist"].to_numpy(), collapse, int(nint), breaks)
    pairs = pairs.assign(cls=cls)[cls >= 0]
    g = pairs.groupby("cls", sort=True)
    n = g.size()
    if robust:
        variog = g["variog"].apply(lambda v: np.mean(v**0.25) ** 4) / (0.457 + 0.494 / n)
    else:
        variog = g["variog"].mean()
    out = pd.DataFrame(
        {
            "dist": g["dist"].median().to_numpy(),
            "variog": variog.to_numpy(),
            "n_pairs": n.to_numpy(),
            "model": g["model"].mean().to_numpy(),
        }
    )
    return Variogram(out)


def acf(res, type: str = "normalized", max_lag: int | None = None, *, kind="conditional"):
    """Autocorrelation of the residuals by lag within groups (see the module docstring).

    Returns a DataFrame with columns ``lag``, ``ACF`` and ``n_pairs``.
    """
    e = residual_values(res, kind, type)
    blocks = list(within_group_blocks(res))
    longest = max(b.rows.shape[1] for b in blocks)
    if max_lag is None:
        max_lag = min(longest - 1, int(10 * np.log10(longest)))
    if int(max_lag) < 0:
        raise ValueError(f"max_lag must be a non-negative integer, not {max_lag!r}")
    max_lag = int(max_lag)
    sums = np.zeros(max_lag + 1)
    counts = np.zeros(max_lag + 1, dtype=np.int64)
    for b in blocks:
        eg = e[b.rows]
        n = eg.shape[1]
        for h in range(min(max_lag + 1, n)):
            sums[h] += np.sum(eg[:, : n - h] * eg[:, h:])
            counts[h] += eg.shape[0] * (n - h)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return pd.DataFrame({"lag": np.arange(max_lag + 1), "ACF": mean / mean[0], "n_pairs": counts})
