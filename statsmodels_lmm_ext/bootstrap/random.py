"""Random streams of the bootstrap: one generator per replicate.

Replicate ``j`` draws from ``numpy.random.default_rng(SeedSequence(seed).spawn(nsim)[j])``, so
its numbers depend on its own child seed only: results are identical for any number of workers
and any batch split, and replicate ``j`` of a test is column ``j`` of :func:`simulate`.
"""

from __future__ import annotations

import os

import numpy as np

#: memory of one child ``SeedSequence`` object (measured with tracemalloc: about 376 bytes)
SEED_BYTES = 400


def seed_sequence(seed) -> np.random.SeedSequence:
    """The root ``SeedSequence`` of ``seed`` (None, an int, a SeedSequence or a Generator)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if seed is None or isinstance(seed, int | np.integer):
        if seed is not None and seed < 0:
            raise ValueError(
                f"seed must be a non-negative integer (or None, a SeedSequence or a "
                f"Generator); got {int(seed)}: use e.g. abs(seed)"
            )
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise TypeError(
        f"seed must be None, an int, a numpy SeedSequence or Generator; got {type(seed).__name__}"
    )


def check_nsim(nsim) -> int:
    """``nsim`` as an int, or a ValueError naming the value received."""
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer; got {nsim!r}")
    return int(nsim)


def available_memory() -> int:
    """Bytes of memory available to this process (``MemAvailable`` of ``/proc/meminfo``, else
    the physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: do not refuse


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if nbytes < 1000 or unit == "PB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return ""  # unreachable


def check_memory(nsim: int, per_replicate: int, what: str) -> None:
    """Refuse at once (ValueError) a run whose ``nsim`` replicates would need more memory than
    is available: ``per_replicate`` bytes each besides their seed (``what`` says for what),
    rather than allocating until a MemoryError minutes later."""
    each = SEED_BYTES + per_replicate
    need, have = nsim * each, available_memory()
    if need <= have:
        return
    raise ValueError(
        f"nsim = {nsim} would need about {_size(need)} of memory ({each} bytes per replicate: "
        f"its random seed (a SeedSequence, ~{SEED_BYTES} bytes) and {what}), more than the "
        f"{_size(have)} available; use nsim <= {have // each}, or run several bootstraps with "
        "different seeds and pool their replicates"
    )


def normals(seeds, n: int, extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard normals ``(n, B)`` for the responses and ``(extra, B)`` drawn after them, one
    generator per replicate (replicate ``j`` depends on ``seeds[j]`` only)."""
    Z = np.empty((n, len(seeds)))
    E = np.empty((extra, len(seeds)))
    for j, s in enumerate(seeds):
        z = np.random.default_rng(s).standard_normal(n + extra)
        Z[:, j] = z[:n]
        E[:, j] = z[n:]
    return Z, E
