"""Small public data sets bundled with the package.

Each data set is a CSV file next to this module with a ``.txt`` description (source,
reference, columns).  ``load(name)`` returns it as a DataFrame.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load", "names", "describe"]


def _files():
    return resources.files(__name__)


def names() -> list[str]:
    """Names of the bundled data sets."""
    return sorted(p.name[:-4] for p in _files().iterdir() if p.name.endswith(".csv"))


def describe(name: str) -> str:
    """The description (source, reference, columns) of a bundled data set."""
    _check(name)
    f = _files() / f"{name}.txt"
    return f.read_text() if f.is_file() else ""


def _check(name: str) -> None:
    if name not in names():
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(names())}")


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`names`, e.g. ``"orthodont"``, ``"fev_data"``, ``"sleepstudy"``.

    Returns
    -------
    DataFrame
    """
    _check(name)
    with (_files() / f"{name}.csv").open() as fh:
        return pd.read_csv(fh)
