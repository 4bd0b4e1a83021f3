"""A four-panel diagnostic figure of a fitted mixed model (matplotlib, imported when called).

Panels: Pearson conditional residuals against fitted values; a normal QQ plot of the
normalized residuals; the semivariogram of the Pearson residuals with the model's; observed
and fitted values against position for a sample of groups ("spaghetti" plot).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .residuals import residual_values, within_group_blocks
from .variogram import innermost_columns, pyplot, variogram

__all__ = ["plot_diagnostics"]


def _residuals_vs_fitted(ax, fitted, pearson):
    ax.scatter(fitted, pearson, s=8, alpha=0.6)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("fitted values")
    ax.set_ylabel("Pearson residuals (conditional)")
    ax.set_title("Residuals vs fitted")


def _qq(ax, normalized):
    (osm, osr), (slope, intercept, _) = stats.probplot(normalized, dist="norm")
    ax.scatter(osm, osr, s=8, alpha=0.6)
    ax.plot(osm, intercept + slope * osm, color="grey", lw=0.8)
    ax.set_xlabel("normal quantiles")
    ax.set_ylabel("normalized residuals")
    ax.set_title("Normal QQ")


def _spaghetti(ax, res, fitted, max_groups: int, seed):
    """Observed (points) and fitted (lines) against position for up to ``max_groups`` groups
    chosen at random with ``seed``."""
    y = np.asarray(res.model.endog, float)
    d = innermost_columns(res.model.cov_struct)
    pos = np.asarray(res.model.engine.positions, float)
    groups = [rows for b in within_group_blocks(res) for rows in b.rows]
    if len(groups) > max_groups:
        pick = np.random.default_rng(seed).choice(len(groups), max_groups, replace=False)
        groups = [groups[i] for i in np.sort(pick)]
    for rows in groups:
        x = pos[rows, 0] if d else np.arange(1, len(rows) + 1)
        (line,) = ax.plot(x, fitted[rows], "-", lw=1)
        ax.plot(x, y[rows], "o", ms=3, color=line.get_color())
    ax.set_xlabel(res.model.cov_struct.position_columns[0] if d else "row within group")
    ax.set_ylabel("observed (points) and fitted (lines)")
    ax.set_title(f"{len(groups)} groups")


def plot_diagnostics(res, *, max_groups: int = 12, seed=0, figsize=(10, 8)):
    """Residuals vs fitted, normal QQ, semivariogram and observed/fitted by group.

    Parameters
    ----------
    res : MixedLMResults
    max_groups : int
        At most this many groups (a random sample drawn with ``seed``) in the spaghetti plot.
    seed : int or numpy Generator
    figsize : tuple

    Returns
    -------
    matplotlib.figure.Figure
        With four Axes.
    """
    if int(max_groups) < 1:
        raise ValueError(f"max_groups must be a positive integer, not {max_groups!r}")
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=figsize)
    fitted = np.asarray(res.fittedvalues, float)
    _residuals_vs_fitted(axes[0, 0], fitted, residual_values(res, "conditional", "pearson"))
    _qq(axes[0, 1], residual_values(res, "conditional", "normalized"))
    ax = axes[1, 0]
    try:
        variogram(res, "pearson").plot(ax=ax)
        ax.set_title("Semivariogram (Pearson residuals)")
    except ValueError as exc:  # no group with two rows
        ax.text(0.5, 0.5, str(exc), ha="center", va="center", wrap=True)
        ax.set_axis_off()
    _spaghetti(axes[1, 1], res, fitted, int(max_groups), seed)
    fig.tight_layout()
    return fig
