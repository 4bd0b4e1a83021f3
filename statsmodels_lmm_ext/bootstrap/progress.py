"""The optional progress bar of bootstrap runs (tqdm, imported only when a bar is shown).

``progress=True`` shows a bar from the start; ``progress=None`` (the default) shows one only
for a long run seen by a person: after the first batch of replicates has been timed, if the
other batches would take more than :data:`AUTO_SECONDS` in sequence and stderr is a terminal
or a Jupyter kernel's stream; ``progress=False`` never does.  A missing tqdm never fails a
run: ``progress=True`` then warns once per session with the command that installs it, and
``progress=None`` stays silent.  The bar only counts replicates: it never changes the
numbers.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from .._warnings import BootstrapWarning

#: ``progress=None`` shows a bar when the batches after the first would take longer than this
#: (seconds, in sequence, estimated from the first batch).
AUTO_SECONDS = 5.0

INSTALL_HINT = 'pip install tqdm (or pip install "statsmodels_lmm_ext[progress]")'


def check_progress(progress) -> bool | None:
    """``progress`` as True, False or None (automatic), or a TypeError naming the value."""
    if progress is None or isinstance(progress, bool):
        return progress
    if isinstance(progress, np.bool_):
        return bool(progress)
    raise TypeError(
        f"progress must be True (show a progress bar), False (never) or None (automatic: only "
        f"for a long run in a terminal or a notebook); got {progress!r}"
    )


def interactive() -> bool:
    """Whether a person is likely to watch stderr: a terminal, or a Jupyter kernel's stream
    (which is not a terminal, but shows tqdm's notebook bar)."""
    err = sys.stderr
    if err is None:
        return False
    if type(err).__module__.split(".")[0] == "ipykernel":
        return True
    try:
        return bool(err.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def show_auto(first_seconds: float, n_rest: int) -> bool:
    """``progress=None``: show a bar for the remaining ``n_rest`` batches, the first having
    taken ``first_seconds``?"""
    return n_rest > 0 and first_seconds * n_rest > AUTO_SECONDS and interactive()


def _tqdm_class(warn: bool):
    try:
        from tqdm.auto import tqdm  # optional dependency, imported only to show a bar
    except ImportError:
        if warn and not progress_bar.warned:
            warnings.warn(
                f"progress=True needs the tqdm package: {INSTALL_HINT}; continuing without a "
                "progress bar",
                BootstrapWarning,
                stacklevel=6,
            )
            progress_bar.warned = True
        return None
    return tqdm


def progress_bar(total: int, desc: str, *, initial: int = 0, warn: bool = True):
    """A tqdm bar of ``total`` replicates (``initial`` of them done), or None without tqdm (one
    :class:`BootstrapWarning` per session if ``warn``)."""
    tqdm = _tqdm_class(warn)
    if tqdm is None:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="rep")


progress_bar.warned = False
