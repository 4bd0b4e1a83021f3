"""Choosing the covariance model: comparison tables, selection among candidate structures,
and exact tests of one variance component.

- :func:`compare`: nlme's ``anova(m1, m2, ...)`` table with SAS's AICC
  (:mod:`.compare`);
- :func:`select_cov_struct`: fit candidates in parallel, rank them (:mod:`.select`);
- :func:`exact_rlrt`, :func:`exact_lrt`: RLRsim's ``exactRLRT`` / ``exactLRT``
  (:mod:`.exact`, :mod:`._spectral`).

This package sits above ``adapters`` and ``bootstrap`` (it reuses their nesting checks and
refits); nothing below imports it.
"""

from .compare import compare
from .exact import ExactLRTResult, exact_lrt, exact_rlrt
from .select import CovStructSelection, select_cov_struct

__all__ = [
    "CovStructSelection",
    "ExactLRTResult",
    "compare",
    "exact_lrt",
    "exact_rlrt",
    "select_cov_struct",
]
