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

from .._display import with_notes

__all__ = ["ContrastTest", "TestResult", "f_pvalue"]


def _num(x) -> str:
    """A number as a statistician reads it (6 significant digits, never ``np.float64(...)``)."""
    x = float(np.asarray(x).ravel()[0]) if np.ndim(x) else float(x)
    return f"{x:.6g}"


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
    #: the line saying which information matrix gave the df ("" if none was used)
    information_note = ""

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
            f"statistic = {_num(self.statistic)}",
            f"df = {_num(self.df)}, df_denom = {_num(self.df_denom)}",
            f"p-value = {_num(self.pvalue)}",
        ]

    def _notes(self) -> list[str]:
        """Lines printed under the result: the information matrix used, why it is invalid."""
        notes = [self.information_note]
        if not self.valid:
            notes.append(f"Not valid: {self.reason}")
        return notes

    def __str__(self) -> str:
        return with_notes("\n".join([self.title, *self._lines()]), None, self._notes())


class ContrastTest(ContrastResults, TestResult):
    """statsmodels' ``ContrastResults`` (``t_test``/``f_test`` output, unchanged for its users)
    with the package's test-result shape (``statistic``, ``df``, ``df_denom``, ``pvalue``,
    ``valid``, ``reason``), the ddf method used (``ddf_method``) and the information matrix
    (``information``, None if the method needs none).

    Printing shows the df: a table with a ``df`` column for t tests, and ``F``, both df and
    the p-value for F tests, with the method and the information matrix under it.
    ``summary_frame()`` of t tests has the ``df`` column too.
    """

    def __init__(
        self,
        *args,
        ddf_method: str,
        reason: str | None = None,
        information: str | None = None,
        information_note: str = "",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.ddf_method = ddf_method
        self.reason = reason
        self.information = information
        self.information_note = information_note
        self.df = float(kwargs.get("df_num", 1.0))
        if not hasattr(self, "df_denom"):
            self.df_denom = np.inf

    def summary_frame(self, xname=None, alpha=0.05):
        """The table of a t test (statsmodels' columns, with ``df`` after ``t``)."""
        frame = super().summary_frame(xname=xname, alpha=alpha)
        if self.distribution == "t":
            frame.insert(3, "df", np.broadcast_to(self.df_denom, (len(frame),)))
        return frame

    def __str__(self) -> str:
        if self.effect is not None:
            stat = "t" if self.distribution == "t" else "z"
            title = f"{stat} tests of linear hypotheses (denominator df: {self.ddf_method})"
            body = self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}")
            return with_notes(f"{title}\n{body}", None, self._notes())
        title = f"F test of a linear hypothesis (denominator df: {self.ddf_method})"
        lines = [
            f"F = {_num(self.fvalue)}, df_num = {_num(self.df_num)}, "
            f"df_denom = {_num(self.df_denom)}, p-value = {_num(self.pvalue)}"
        ]
        scaling = getattr(self, "scaling", 1.0)
        if np.isfinite(scaling) and not np.isclose(scaling, 1.0, rtol=1e-10, atol=0.0):
            lines.append(
                f"Kenward-Roger scaled F (scaling {_num(scaling)}; "
                f"unscaled F = {_num(self.fvalue_unscaled)})"
            )
        return with_notes("\n".join([title, *lines]), None, self._notes())

    def __repr__(self) -> str:
        return self.__str__()
