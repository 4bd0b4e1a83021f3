"""The package's warning classes (raised with ``stacklevel`` pointing at the user's call)."""

from __future__ import annotations

__all__ = ["BootstrapWarning", "DDFWarning"]


class DDFWarning(UserWarning):
    """Degrees of freedom that cannot be computed (the test result says why), or a boundary
    fit whose variances at zero are treated as fixed in the small-sample df."""


class BootstrapWarning(UserWarning):
    """Issued once per call when bootstrap replicates failed, or when ``progress=True`` cannot
    show a bar because tqdm is not installed."""
