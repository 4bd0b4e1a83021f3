"""BLAS threads around the engine's work.

The engine's matrix products are small and batched (many groups, many replicates), so a
multi-threaded BLAS gains little on them, and on a small machine it loses a lot: with two
cores and one other busy process, OpenBLAS's default of one thread per core made fits 9x
(36,000 rows) to 32x (900,000 rows) slower (medians; ``benchmarks/README.md``, "BLAS
threads").  The public entry points that run the
engine (``MixedLM.fit``, building the engine, the derivative blocks of the variance model,
bootstrap batches) therefore limit the BLAS libraries to ``get_blas_threads()`` threads (1 by
default) while they run, with :mod:`threadpoolctl`, and restore the user's setting afterwards.

The limit is set by :func:`set_blas_threads` or, before the package is imported, by the
environment variable ``STATSMODELS_LMM_EXT_BLAS_THREADS`` (a positive integer, or ``none`` to
leave BLAS alone).  A limit never raises a library's thread count above its current one.

The BLAS thread count is a property of the process, not of a thread (and threadpoolctl lets
one Python thread control OpenBLAS).  Entries therefore nest: the outermost entry of the first
thread that enters sets the limit and its exit restores the original; entries of other threads
meanwhile (joblib worker threads of a bootstrap) run under that limit and change nothing, so a
setting is always restored by the thread that changed it.
"""

from __future__ import annotations

import functools
import os
import threading
from contextlib import ContextDecorator

from threadpoolctl import ThreadpoolController

__all__ = ["ENV_VAR", "blas_threads", "get_blas_threads", "set_blas_threads"]

#: environment variable with the default limit (a positive integer, or "none")
ENV_VAR = "STATSMODELS_LMM_EXT_BLAS_THREADS"


def _check(n, what: str) -> int | None:
    if n is None:
        return None
    if isinstance(n, str):
        text = n.strip().lower()
        if text in ("", "none", "off"):
            return None
        try:
            n = int(text)
        except ValueError:
            n = text
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"{what} must be a positive number of BLAS threads, or None (or 'none') to leave "
            f"BLAS alone; got {n!r}"
        )
    return int(n)


_setting: dict[str, int | None] = {"limit": _check(os.environ.get(ENV_VAR, "1"), ENV_VAR)}
_lock = threading.Lock()
_local = threading.local()  # per thread: how deep in limited calls
_owner: dict = {"thread": None, "limiter": None}


def get_blas_threads() -> int | None:
    """The number of BLAS threads the package's computations use (None: BLAS left alone)."""
    return _setting["limit"]


def set_blas_threads(n: int | None) -> int | None:
    """Set the number of BLAS threads used inside the package's computations.

    Parameters
    ----------
    n : int or None
        A positive number of threads (default 1: the engine's products are small and batched,
        and more threads compete with other processes), or None to leave BLAS as it is.

    Returns
    -------
    int or None
        The previous setting.

    Notes
    -----
    The environment variable ``STATSMODELS_LMM_EXT_BLAS_THREADS`` sets the initial value.
    The BLAS libraries' own settings are restored whenever the package returns.
    """
    old = _setting["limit"]
    _setting["limit"] = _check(n, "n")
    return old


@functools.cache
def _controller() -> ThreadpoolController:
    # scanning the loaded libraries costs milliseconds, entering a limit microseconds: scan
    # once, after numpy and scipy (imported by the package) have loaded their BLAS libraries
    return ThreadpoolController().select(user_api="blas")


def _enter(n: int | None) -> None:
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    if depth or n is None:
        return
    with _lock:
        if _owner["thread"] is not None:
            return  # another thread holds the (process-wide) limit
        ctl = _controller()
        if any(lib.num_threads > n for lib in ctl.lib_controllers):
            _owner["limiter"] = ctl.limit(limits=n)
            _owner["thread"] = threading.current_thread()


def _exit() -> None:
    _local.depth -= 1
    if _local.depth:
        return
    with _lock:
        if _owner["thread"] is threading.current_thread():
            _owner["limiter"].restore_original_limits()
            _owner["thread"] = _owner["limiter"] = None


class blas_threads(ContextDecorator):  # lower case: used like a function
    """Limit the BLAS threads while a block or a decorated function runs.

    Parameters
    ----------
    n : int, optional
        Threads; default the package setting (:func:`get_blas_threads`, read at entry).

    Examples
    --------
    >>> with blas_threads():  # doctest: +SKIP
    ...     res = model.fit()

    Nested entries keep the outermost limit; the original thread counts come back when the
    outermost entry exits.
    """

    def __init__(self, n: int | None = None):
        self.n = None if n is None else _check(n, "n")
        self.explicit = n is not None

    def __enter__(self):
        _enter(self.n if self.explicit else _setting["limit"])
        return self

    def __exit__(self, *exc) -> bool:
        _exit()
        return False
