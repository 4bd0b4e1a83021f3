"""One shape for test results.

Every test the package returns — t and F tests with small-sample df, Type III rows,
Kenward-Roger model comparison, likelihood-ratio and parametric-bootstrap tests — is a
:class:`TestResult`: ``statistic``, ``df`` (numerator df or chi-square df), ``df_denom``
(``inf`` for chi-square and normal reference distributions), ``pvalue``, a readable
``__str__``, and ``valid``/``reason``.  A test that cannot be computed (for example undefined
Satterthwaite or Kenward-Roger df) is an explicit invalid result: ``valid`` is False and
``reason`` says why, rather than a silent NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.contrast import ContrastResults

__all__ = ["ContrastTest", "TestResult", "f_pvalue"]


def f_pvalue(F: float, q: float, ddf: float) -> float:
    """p-value of F on (q, ddf) df; chi-square(q) of q F when ddf is infinite; NaN when the
    df are undefined."""
    if not (np.isfinite(F) and ddf > 0):
        return float("nan")
    if np.isinf(ddf):
        return float(stats.chi2.sf(q * F, q))
    return float(stats.f.sf(F, q, ddf))


class TestResult:
    """Base of the package's test results.

    Attributes
    ----------
    statistic : float or ndarray
    df : float
        Numerator df (F), chi-square df (likelihood ratio), 1 for t tests.
    df_denom : float or ndarray
        Denominator df (``inf`` for normal / chi-square reference distributions).
    pvalue : float or ndarray
    valid : bool
        False if the test could not be computed; ``reason`` then says why.
    reason : str or None
    """

    __test__ = False  # not a pytest test class
    statistic = np.nan
    df = np.nan
    df_denom = np.inf
    pvalue = np.nan
    reason: str | None = None
    title = "Test"

    @property
    def valid(self) -> bool:
        return self.reason is None

    def invalidate(self, reason: str) -> None:
        """Mark the result as not computable, keeping the first reason."""
        if self.reason is None:
            self.reason = reason

    def _lines(self) -> list[str]:
        """Rows of the default ``__str__``; subclasses with tables override ``__str__``."""
        return [
            f"statistic = {np.round(self.statistic, 6)}",
            f"df = {self.df}, df_denom = {np.round(self.df_denom, 4)}",
            f"p-value = {np.round(self.pvalue, 6)}",
        ]

    def __str__(self) -> str:
        lines = [self.title, *self._lines()]
        if not self.valid:
            lines.append(f"Not valid: {self.reason}")
        return "\n".join(lines)


class ContrastTest(ContrastResults, TestResult):
    """statsmodels' ``ContrastResults`` (``t_test``/``f_test`` output, unchanged for its users)
    with the package's test-result shape (``statistic``, ``df``, ``df_denom``, ``pvalue``,
    ``valid``, ``reason``) and the ddf method used (``ddf_method``)."""

    __str__ = ContrastResults.__str__

    def __init__(self, *args, ddf_method: str, reason: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ddf_method = ddf_method
        self.reason = reason
        self.df = float(kwargs.get("df_num", 1.0))
        if not hasattr(self, "df_denom"):
            self.df_denom = np.inf
