"""Step-wise p-value adjustments: Holm and Benjamini-Hochberg, through statsmodels' multipletests.

Their intervals are Bonferroni intervals, as emmeans gives: a step-wise procedure has no
simultaneous intervals of its own.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from statsmodels.stats.multitest import multipletests

from .base import Adjustment, _unadjusted, register


class _StepWise(Adjustment):
    """p-values from :func:`statsmodels.stats.multitest.multipletests` on the unadjusted ones
    (rows without a p-value left out); the intervals of ``interval_method``."""

    multipletests_method: ClassVar[str]
    interval_method = "bonferroni"

    def pvalues(self, t, df, family):
        raw = _unadjusted(t, df)
        ok = np.isfinite(raw)
        out = np.full(len(raw), np.nan)
        if ok.any():
            out[ok] = multipletests(raw[ok], method=self.multipletests_method)[1]
        return out


@register
class Holm(_StepWise):
    """Holm's step-down Bonferroni p-values."""

    name = "holm"
    description = "Holm step-down p-values, Bonferroni intervals"
    multipletests_method = "holm"


@register
class FDR(_StepWise):
    """Benjamini-Hochberg false discovery rate p-values."""

    name = "fdr"
    description = "Benjamini-Hochberg false discovery rate p-values, Bonferroni intervals"
    aliases = ("fdr_bh", "bh")
    multipletests_method = "fdr_bh"
