"""Tables of linear functions ``L beta`` with their inference: shared by means and contrasts.

Kept apart from :mod:`.means` so that :mod:`.contrasts` (whose :class:`EmmContrasts` is such a
table) and :mod:`.means` (whose means build contrasts) need not import each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.iolib.summary2 import Summary

from .._display import NotedFrame
from ..multiplicity import adjust
from .grid import _estimable

__all__ = ["_LinearTable"]


def _pformat(p: float) -> str:
    if not np.isfinite(p):
        return "NaN"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


class _LinearTable:
    """Rows ``L beta`` with their inference; subclasses name the columns."""

    _est_name = "estimate"
    _model = None  # set by subclasses before __init__ (estimability needs the design)

    def __init__(self, labels, L, prov, *, by, families, level, notes, default_adjust):
        self.labels = labels.reset_index(drop=True)
        self.L = L
        self._prov = prov
        self.by = list(by)
        self.families = families
        self.level = float(level)
        self.notes = list(notes)
        self.adjust = default_adjust
        est, se, df = prov.estimate(np.nan_to_num(L))
        self._nonest = ~np.isfinite(L).all(axis=1)
        ok = ~self._nonest
        if ok.any():
            ok[ok] = _estimable(self._model, L[ok])
            self._nonest |= ~ok
        self.estimate = np.where(self._nonest, np.nan, est)
        self.se = np.where(self._nonest, np.nan, se)
        self.df = np.where(self._nonest, np.nan, df)
        if self._nonest.any():
            self.notes.append(
                f"{int(self._nonest.sum())} row(s) are not estimable (empty cells in a "
                "rank-deficient model): reported as NaN"
            )
        Lf = np.nan_to_num(L)
        self._cov = Lf @ prov.cov @ Lf.T
        s = np.sqrt(np.clip(np.diag(self._cov), 1e-300, None))
        corr = self._cov / np.outer(s, s)
        for fam in families:
            fam.corr = corr[np.ix_(fam.rows, fam.rows)]
            fam.rank = int(np.linalg.matrix_rank(Lf[fam.rows], tol=1e-8)) or 1
        self._adjusted = {}  # (adjust, level) -> AdjustedInference (mvt integrals are slow)

    @property
    def cov(self) -> np.ndarray:
        """Covariance matrix of the estimates (Kenward-Roger adjusted under KR)."""
        return self._cov

    def _inference(self, adjust_: str | None, level: float | None):
        level = self.level if level is None else float(level)
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), not {level}")
        t = self.estimate / self.se
        key = (self.adjust if adjust_ is None else adjust_, level)
        if key not in self._adjusted:
            self._adjusted[key] = adjust(t, self.df, self.families, key[0], level)
        return t, self._adjusted[key], level

    def _frame(self, adjust_, level, tests: bool, cis: bool) -> tuple[pd.DataFrame, list[str]]:
        t, out, level = self._inference(adjust_, level)
        cols = {self._est_name: self.estimate, "se": self.se, "df": self.df}
        if cis:
            cols["lower"] = self.estimate - out.crit * self.se
            cols["upper"] = self.estimate + out.crit * self.se
        if tests:
            cols["t"] = t
            cols["p_value"] = out.pvalues
        frame = NotedFrame(pd.concat([self.labels, pd.DataFrame(cols)], axis=1))
        frame.attrs["index"] = False
        notes = list(self.notes)
        if self._prov.label:
            notes.append(f"Degrees-of-freedom method: {self._prov.label}")
        if self._prov.information_note:
            notes.append(self._prov.information_note)
        if cis:
            notes.append(f"Confidence level used: {level:g}")
        for n in out.notes:
            if (
                n.startswith("Note")
                or (tests and n.startswith("P"))
                or (cis and n.startswith("Conf"))
            ):
                notes.append(n)
        return frame, notes

    def _text(self, frame: pd.DataFrame, notes: list[str]) -> str:
        f = frame.copy()
        if "p_value" in f:
            f["p_value"] = [_pformat(p) for p in f["p_value"]]
        body = f.to_string(index=False, float_format=lambda x: f"{x:.6g}")
        return body + "\n\n" + "\n".join(notes)

    def __str__(self) -> str:
        frame = self.summary_frame()
        return self._text(frame, frame.attrs["notes"])

    def __repr__(self) -> str:
        return self.__str__()

    def summary(self, adjust: str | None = None, level: float | None = None) -> Summary:
        """A statsmodels ``Summary`` of the table and its notes."""
        frame = self.summary_frame(adjust=adjust, level=level)
        smry = Summary()
        smry.add_df(frame, index=False, float_format="%.6g")
        smry.add_text("\n".join(frame.attrs["notes"]))
        return smry
