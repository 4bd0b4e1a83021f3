"""Failed bootstrap replicates: counted, listed with their reasons, summarised, never dropped
silently.

Every replicate of a run has a reason ("" when it succeeded; see
:func:`~statsmodels_lmm_ext.bootstrap.parallel.batch_output`), for instance
``"refit did not converge (max|grad|/n = 3.2e-05)"``, ``"LinAlgError: ..."`` or
``"non-finite log-likelihood (NaN)"``.  The results of :func:`pb_lrt`,
:func:`parametric_bootstrap` and :func:`bootstrap_predict` share :class:`ReplicateFailures`:
counts, the indices of the failed replicates, a table of them with their reasons, and, when no
replicate is left, an invalid result (``valid`` False, ``reason`` saying why).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from .._warnings import BootstrapWarning

# details of a reason such as " (max|grad|/n = 3.2e-05)", left out when reasons are counted
_DETAIL = re.compile(r" \([^()]*=[^()]*\)")


def reason_kind(reason: str) -> str:
    """A reason without its details ``(name = value)`` (what failures are counted by)."""
    return _DETAIL.sub("", reason)


def summarise(reasons, top: int = 3) -> str:
    """The ``top`` most common kinds of reasons with their counts: ``"reason (5x); ..."``."""
    counts = Counter(reason_kind(str(r)) for r in reasons)
    text = "; ".join(f"{r} ({c}x)" for r, c in counts.most_common(top))
    if len(counts) > top:
        text += f"; {len(counts) - top} other reason(s)"
    return text


def summarise_warnings(messages, top: int = 3) -> str:
    return "; ".join(f"{m} ({c}x)" for m, c in Counter(messages).most_common(top))


class ReplicateFailures:
    """Counts and reasons of failed replicates, shared by the bootstrap results.

    Attributes
    ----------
    nsim, nsim_ok, nsim_failed : int
        Replicates asked for, used, and failed.
    failed : ndarray of int
        Indices of the failed replicates (replicate ``j`` uses the ``j``-th spawned seed).
    failures : DataFrame
        One row per failed replicate (index ``replicate``), column ``reason``.
    reason : str or None
        Why the result is not valid (no replicate succeeded); None if it is.
    """

    reason: str | None = None

    @property
    def valid(self) -> bool:
        """False when the result could not be computed (``reason`` says why)."""
        return self.reason is None

    def _count_failures(self, run) -> None:
        """Set the counts and the table of failures from a run (see
        :class:`~statsmodels_lmm_ext.bootstrap.parallel.Run`)."""
        ok = np.asarray(run.ok, bool)
        self.nsim = len(ok)
        self.nsim_ok = int(ok.sum())
        self.nsim_failed = self.nsim - self.nsim_ok
        self.failed = np.flatnonzero(~ok)
        index = pd.Index(self.failed, name="replicate")
        self.failures = pd.DataFrame({"reason": np.asarray(run.reasons)[~ok]}, index=index)
        if self.nsim_ok == 0:
            self.reason = (
                f"all {self.nsim} bootstrap replicates failed ({summarise(self.failures.reason)})"
            )

    def _failure_summary(self) -> str:
        return summarise(self.failures["reason"])


def warn_failures(result: ReplicateFailures, stacklevel: int = 3) -> None:
    """One :class:`BootstrapWarning` per call when replicates failed (if all did, the result is
    invalid and the warning says so)."""
    if not result.nsim_failed:
        return
    n, nsim, why = result.nsim_failed, result.nsim, result._failure_summary()
    if result.nsim_ok == 0:
        msg = (
            f"{n} of {nsim} bootstrap replicates failed: no replicate is left, so the result is "
            f"not valid (NaN; see .reason and .failures). Reasons: {why}"
        )
    else:
        msg = (
            f"{n} of {nsim} bootstrap replicates failed and were left out (see .failures and "
            f".notes). Most common reasons: {why}"
        )
    warnings.warn(msg, BootstrapWarning, stacklevel=stacklevel)
