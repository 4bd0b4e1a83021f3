"""Plots of estimated marginal means (matplotlib, an optional dependency)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_means"]


def plot_means(emm, ax=None, adjust: str | None = None, level: float | None = None):
    """The body of :meth:`EmmResults.plot <statsmodels_lmm_ext.EmmResults.plot>`: one row per
    mean, a point at the mean and a bar for its confidence interval."""
    # matplotlib is optional (and slow to import): load it only when a plot is asked for
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot() needs matplotlib: pip install matplotlib") from exc
    f = emm.summary_frame(adjust=adjust, level=level)
    keys = list(emm.levels.columns)
    ticks = [" ".join(str(v) for v in r) for r in f[keys].itertuples(index=False)]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.4 * len(f) + 1.2))
    y = np.arange(len(f))[::-1]
    ax.errorbar(
        f["emmean"],
        y,
        xerr=[f["emmean"] - f["lower"], f["upper"] - f["emmean"]],
        fmt="o",
        capsize=3,
    )
    ax.set_yticks(y, ticks)
    ax.set_xlabel(f"emmean ({100 * (emm.level if level is None else level):g}% CI)")
    return ax
