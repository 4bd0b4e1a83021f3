"""Running bootstrap replicates: batch plan, joblib map, progress bar.

Replicates run in batches (one quasi-Newton iteration advances a whole batch with stacked numpy
operations).  The split depends only on ``nsim`` and the model, never on the number of
workers, and each replicate draws from its own seed (:mod:`.random`), so results do not depend
on ``n_jobs`` or the joblib backend.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._warnings import BootstrapWarning
from .random import seed_sequence
from .simulation import LMMSpec

# Largest number of array elements one batch of replicates may hold in its biggest temporaries.
BATCH_ELEMENTS = 4_000_000
# Replicates per batch: the split depends only on nsim and the model (never on n_jobs), so that
# results are identical for any number of workers.
BATCH_RANGE = (64, 256)
# Prefer worker processes when the remaining batches would take longer than this in sequence
# (starting a process pool costs about 1.5-2 s on a 2-core machine).
PROCESS_SECONDS = 4.0


def batch_plan(nsim: int, specs) -> list[tuple[int, int]]:
    """Replicate ranges ``[(start, stop), ...]``: about 8 batches, each within the memory budget
    (per replicate: the response, its contractions and the largest chunk's temporaries)."""
    per_rep = 0
    for sp in specs:
        per_rep += 2 * sp.nobs
        if isinstance(sp, LMMSpec):
            k = sp.params.k + 2
            p = sp.engine.k_fe
            temp = 0
            for ch in sp.engine.chunks:
                U, n = len(ch.weight), ch.n
                per_rep += U * n * n * (p + 1) if ch.pattern else U * n
                temp = max(temp, 3 * k * U * n * max(n, p))
            per_rep += temp
    lo, hi = BATCH_RANGE
    size = int(np.clip(-(-nsim // 8), lo, hi))
    size = max(1, min(size, BATCH_ELEMENTS // per_rep))
    return [(a, min(a + size, nsim)) for a in range(0, nsim, size)]


def prepare_specs(*specs) -> None:
    """Fill lazy caches before workers (threads) share the specs."""
    for sp in specs:
        if isinstance(sp, LMMSpec):
            sp.engine.prepare_new_endog()
            if sp.params.k:
                sp.start_inverse_hessian()


def _run_batch(fn, args, main_pid: int):
    """Run ``fn(*args)``; in another process, record its warnings instead of printing them."""
    if os.getpid() == main_pid:
        return fn(*args), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, [f"{w.category.__name__}: {w.message}" for w in caught]


def progress_bar(progress: bool, total: int, desc: str):
    """A tqdm bar, or None (with one :class:`BootstrapWarning` per session without tqdm)."""
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm  # optional dependency
    except ImportError:
        if not progress_bar.warned:
            warnings.warn(
                "progress=True needs the tqdm package (pip install tqdm); continuing without a "
                "progress bar",
                BootstrapWarning,
                stacklevel=5,
            )
            progress_bar.warned = True
        return None
    return tqdm(total=total, desc=desc, unit="rep")


progress_bar.warned = False


def parallel_map(fn, arg_list, sizes, n_jobs, progress: bool, desc: str):
    """Run ``fn`` on each argument tuple with joblib, in order, with an optional progress bar.

    The first batch runs in this process and is timed.  If the others would take more than
    ``PROCESS_SECONDS`` in sequence, joblib is asked to *prefer* processes (the refits are
    many small numpy calls that hold the GIL, so only processes run them in parallel, and
    their start-up is then paid back); otherwise threads, which start instantly.  Both are soft
    hints: a backend chosen with ``joblib.parallel_config(backend=...)`` (``"loky"``,
    ``"dask"``, ...) always wins.  Results do not depend on the backend.

    Returns ``(outputs, warning messages, the hint given or None)``.
    """
    from joblib import Parallel, delayed  # joblib's import is slow; only bootstraps need it

    bar = progress_bar(progress, sum(sizes), desc)
    main_pid = os.getpid()
    results = []
    prefer = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        results.append(_run_batch(fn, arg_list[0], main_pid))
        elapsed = time.perf_counter() - t0
        if bar is not None:
            bar.update(sizes[0])
        rest = arg_list[1:]
        if rest and n_jobs == 1:
            for size, args in zip(sizes[1:], rest, strict=True):
                results.append(_run_batch(fn, args, main_pid))
                if bar is not None:
                    bar.update(size)
        elif rest:
            prefer = "processes" if elapsed * len(rest) > PROCESS_SECONDS else "threads"
            par = Parallel(n_jobs=n_jobs, prefer=prefer, return_as="generator")
            gen = par(delayed(_run_batch)(fn, args, main_pid) for args in rest)
            for size, out in zip(sizes[1:], gen, strict=True):
                results.append(out)
                if bar is not None:
                    bar.update(size)
    if bar is not None:
        bar.close()
    msgs = [f"{w.category.__name__}: {w.message}" for w in caught]
    for _, m in results:
        msgs.extend(m)
    return [r for r, _ in results], msgs, prefer


@dataclass
class Run:
    """The replicates of one bootstrap run, failures included.

    ``values`` (nsim, ...) in replicate order (a failed replicate's row is whatever its batch
    returned, NaN by convention), ``ok`` (nsim,) the replicates that succeeded, ``messages``
    the reasons of failures and the warnings of the refits.
    """

    values: np.ndarray
    ok: np.ndarray
    messages: list[str]
    seed_entropy: int
    joblib_prefer: str | None
    elapsed: float


def run_replicates(statistic, nsim: int, *, seed, n_jobs: int, progress: bool) -> Run:
    """``nsim`` replicates of a bootstrap statistic (see :mod:`.statistics`): seeds spawned
    from ``seed``, batches planned from the statistic's specs, mapped with joblib."""
    t0 = time.perf_counter()
    ss = seed_sequence(seed)
    seeds = ss.spawn(nsim)
    prepare_specs(*statistic.specs)
    plan = batch_plan(nsim, statistic.specs)
    args = [(seeds[a:b],) for a, b in plan]
    sizes = [b - a for a, b in plan]
    outs, msgs, prefer = parallel_map(statistic.batch, args, sizes, n_jobs, progress, "bootstrap")
    values = np.concatenate([o["values"] for o in outs])
    ok = np.concatenate([o["ok"] for o in outs])
    messages = [m for o in outs for m in o["messages"]] + msgs
    return Run(values, ok, messages, ss.entropy, prefer, time.perf_counter() - t0)
