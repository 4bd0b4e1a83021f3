"""Random streams of the bootstrap: one generator per replicate.

Replicate ``j`` draws from ``numpy.random.default_rng(SeedSequence(seed).spawn(nsim)[j])``, so
its numbers depend on its own child seed only: results are identical for any number of workers
and any batch split, and replicate ``j`` of a test is column ``j`` of :func:`simulate`.
"""

from __future__ import annotations

import numpy as np


def seed_sequence(seed) -> np.random.SeedSequence:
    """The root ``SeedSequence`` of ``seed`` (None, an int, a SeedSequence or a Generator)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if seed is None or isinstance(seed, int | np.integer):
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise TypeError(
        f"seed must be None, an int, a numpy SeedSequence or Generator; got {type(seed).__name__}"
    )


def check_nsim(nsim) -> int:
    """``nsim`` as an int, or a ValueError naming the value received."""
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer; got {nsim!r}")
    return int(nsim)


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
