"""Running bootstrap replicates: batch plan, per-replicate guard, joblib map.

Replicates run in batches (one quasi-Newton iteration advances a whole batch with stacked numpy
operations).  The split depends only on ``nsim`` and the model, never on the number of
workers, and each replicate draws from its own seed (:mod:`.random`), so results do not depend
on ``n_jobs`` or the joblib backend (threads, processes, a Dask cluster of any size): a batch
computes the same numbers wherever it runs, and its output is put back in its place.

A batch that raises is run again one replicate at a time (:func:`guarded_batch`), so that an
exception costs only the replicates that raise it; every failed replicate keeps its reason.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._threads import blas_threads, get_blas_threads
from .progress import check_progress, progress_bar, show_auto
from .random import check_memory, seed_sequence
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
    size = max(1, min(size, BATCH_ELEMENTS // max(per_rep, 1)))
    return [(a, min(a + size, nsim)) for a in range(0, nsim, size)]


def prepare_specs(*specs) -> None:
    """Fill lazy caches before workers (threads) share the specs."""
    for sp in specs:
        if isinstance(sp, LMMSpec):
            sp.engine.prepare_new_endog()
            if sp.params.k:
                sp.start_inverse_hessian()


def check_n_jobs(n_jobs) -> int | None:
    """``n_jobs`` as joblib understands it: a nonzero int (``-1`` all cores, ``-2`` all but
    one, ...) or None (joblib's default, 1 unless ``joblib.parallel_config`` sets it)."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise ValueError(
            f"n_jobs must be a nonzero integer: the number of joblib workers, or -1 for all "
            f"cores (-2 all but one, ...); got {n_jobs!r}"
        )
    return int(n_jobs)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def batch_output(out: dict, B: int) -> dict:
    """A statistic's batch output checked and completed: ``values`` (B, ...) or None (every
    replicate failed before producing a value), ``ok`` (B,), ``reasons`` (B,) ("" where ok).

    A replicate whose value is not finite fails ("the statistic is not finite"), a failed one
    without a reason gets a generic one, and failed replicates' values are NaN."""
    ok = np.asarray(out["ok"], bool).reshape(-1)
    values = out.get("values")
    if values is not None:
        values = np.array(values, dtype=float)
        if values.shape[:1] != (B,):
            raise ValueError(
                f"a bootstrap batch of {B} replicates returned values of shape {values.shape}; "
                f"expected one value (or row) per replicate first, ({B}, ...)"
            )
    if ok.shape != (B,):
        raise ValueError(f"a bootstrap batch of {B} replicates returned {ok.size} ok flags")
    reasons = np.array(out.get("reasons", [""] * B), dtype=object).reshape(-1)
    if reasons.shape != (B,):
        raise ValueError(f"a bootstrap batch of {B} replicates returned {reasons.size} reasons")
    if values is not None:
        finite = np.isfinite(values.reshape(B, -1)).all(axis=1)
        reasons[ok & ~finite] = "the statistic is not finite"
        ok = ok & finite
        values[~ok] = np.nan
    else:  # no values: no replicate succeeded
        ok = np.zeros(B, bool)
    reasons[ok] = ""
    reasons[~ok & (reasons == "")] = "failed (the statistic gave no reason)"
    return {"values": values, "ok": ok, "reasons": reasons}


def _combine(parts: list[dict]) -> dict:
    """One batch output from the outputs of consecutive parts of the batch."""
    shapes = [p["values"].shape[1:] for p in parts if p["values"] is not None]
    values = None
    if shapes:
        values = np.concatenate(
            [
                p["values"]
                if p["values"] is not None
                else np.full((len(p["ok"]), *shapes[0]), np.nan)
                for p in parts
            ]
        )
    ok = np.concatenate([p["ok"] for p in parts])
    reasons = np.concatenate([p["reasons"] for p in parts])
    return {"values": values, "ok": ok, "reasons": reasons}


def guarded_batch(statistic, seeds) -> dict:
    """``statistic.batch(seeds)`` with every replicate guarded (see :func:`batch_output`).

    If the batch raises, its replicates run again one at a time, so that an exception costs
    only the replicate that raises it, recorded as its reason (``"LinAlgError: ..."``).  The
    other replicates of that batch are then computed in batches of one, which may round their
    last digits differently (the batched numpy kernels depend on the batch size); replicates of
    other batches are unchanged."""
    B = len(seeds)
    try:
        out = statistic.batch(seeds)
    except Exception as exc:  # an error fails only the replicates that raise it
        if B > 1:
            return _combine([guarded_batch(statistic, seeds[j : j + 1]) for j in range(B)])
        reasons = np.array([_reason(exc)], dtype=object)
        return {"values": None, "ok": np.zeros(1, bool), "reasons": reasons}
    return batch_output(out, B)


def _run_batch(index: int, fn, main_pid: int, blas: int | None, *args):
    """``(index, fn(*args), warnings)`` with at most ``blas`` BLAS threads; in another
    process, its warnings are recorded instead of printed.  ``args`` are top-level arguments
    of the call, so that joblib's Dask backend can scatter a large one (the statistic) to the
    cluster once for all batches."""
    with blas_threads(blas) if blas is not None else contextlib.nullcontext():
        if os.getpid() == main_pid:
            return index, fn(*args), []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn(*args)
    return index, out, [f"{w.category.__name__}: {w.message}" for w in caught]


def workers(n_jobs: int | None) -> int:
    """How many batches joblib would run at once for ``n_jobs`` (``1`` always means this
    process, in sequence; None takes ``joblib.parallel_config``'s ``n_jobs``; the Dask backend
    counts the cluster's worker threads whatever ``n_jobs``)."""
    from joblib import effective_n_jobs  # joblib's import is slow; only bootstraps need it

    return effective_n_jobs(n_jobs)


def _map_joblib(calls, n_jobs, prefer: str):
    """Yield the outputs of ``calls`` (delayed ``_run_batch``) as the batches complete, in any
    order; a backend that cannot yield early (``multiprocessing``) returns them at the end."""
    from joblib import Parallel
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend(prefer=prefer)
    early = getattr(backend, "supports_return_generator", False)
    return_as = "generator_unordered" if early else "list"
    return Parallel(n_jobs=n_jobs, prefer=prefer, return_as=return_as)(calls)


def parallel_map(fn, arg_list, sizes, n_jobs, progress: bool | None, desc: str):
    """Run ``fn`` on each argument tuple with joblib, with an optional progress bar; outputs
    in the order of ``arg_list``.

    The first batch runs in this process and is timed.  If ``n_jobs`` means one worker
    (:func:`workers`), the others follow in sequence here.  Otherwise, if they would take more
    than ``PROCESS_SECONDS`` in sequence, joblib is asked to *prefer* processes (the refits
    are many small numpy calls that hold the GIL, so only processes run them in parallel, and
    their start-up is then paid back); otherwise threads, which start instantly.  Both are
    soft hints: a backend chosen with ``joblib.parallel_config(backend=...)`` (``"loky"``,
    ``"dask"``, ...) always wins.  Results do not depend on the backend.  The progress bar
    (:mod:`.progress`) advances as each batch completes, in whatever order.

    Returns ``(outputs, warning messages, the hint given or None)``.
    """
    from joblib import delayed

    bar = progress_bar(sum(sizes), desc) if progress else None
    main_pid = os.getpid()
    blas = get_blas_threads()  # the setting of this process, passed on to worker processes
    results: list = [None] * len(arg_list)
    prefer = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            results[0] = _run_batch(0, fn, main_pid, blas, *arg_list[0])
            elapsed = time.perf_counter() - t0
            rest = range(1, len(arg_list))
            if bar is not None:
                bar.update(sizes[0])
            elif progress is None and show_auto(elapsed, len(rest)):
                bar = progress_bar(sum(sizes), desc, initial=sizes[0], warn=False)
            if rest and workers(n_jobs) == 1:
                outputs = (_run_batch(i, fn, main_pid, blas, *arg_list[i]) for i in rest)
            elif rest:
                prefer = "processes" if elapsed * len(rest) > PROCESS_SECONDS else "threads"
                calls = (delayed(_run_batch)(i, fn, main_pid, blas, *arg_list[i]) for i in rest)
                outputs = _map_joblib(calls, n_jobs, prefer)
            else:
                outputs = ()
            for out in outputs:
                results[out[0]] = out
                if bar is not None:
                    bar.update(sizes[out[0]])
    finally:
        if bar is not None:
            bar.close()
    msgs = [f"{w.category.__name__}: {w.message}" for w in caught]
    for _, _, m in results:
        msgs.extend(m)
    return [r for _, r, _ in results], msgs, prefer


@dataclass
class Run:
    """The replicates of one bootstrap run, failures included.

    ``values`` (nsim, ...) in replicate order (NaN for a failed replicate), ``ok`` (nsim,) the
    replicates that succeeded, ``reasons`` (nsim,) why each failed ("" where ok), ``warnings``
    the warnings raised during the refits.
    """

    values: np.ndarray
    ok: np.ndarray
    reasons: np.ndarray
    warnings: list[str]
    seed_entropy: int
    joblib_prefer: str | None
    elapsed: float


def run_replicates(statistic, nsim: int, *, seed, n_jobs, progress: bool | None) -> Run:
    """``nsim`` replicates of a bootstrap statistic (see :mod:`.statistics`): seeds spawned
    from ``seed``, batches planned from the statistic's specs, each batch guarded replicate by
    replicate (:func:`guarded_batch`), mapped with joblib."""
    t0 = time.perf_counter()
    n_jobs = check_n_jobs(n_jobs)
    progress = check_progress(progress)
    shape = tuple(statistic.value_shape)
    k = int(np.prod(shape))
    # per replicate: its value in the batch output, the run and the result (3 copies), its ok
    # flag and its reason (a reference)
    check_memory(nsim, 24 * k + 9, f"{k} value(s) of the statistic, kept 3 times")
    ss = seed_sequence(seed)
    seeds = ss.spawn(nsim)
    plan = batch_plan(nsim, statistic.specs)
    args = [(statistic, seeds[a:b]) for a, b in plan]
    sizes = [b - a for a, b in plan]
    with blas_threads():
        prepare_specs(*statistic.specs)
        outs, msgs, prefer = parallel_map(
            guarded_batch, args, sizes, n_jobs, progress, "bootstrap"
        )
    shapes = [o["values"].shape[1:] for o in outs if o["values"] is not None]
    values = np.full((nsim, *(shapes[0] if shapes else shape)), np.nan)
    for (a, b), o in zip(plan, outs, strict=True):
        if o["values"] is not None:
            values[a:b] = o["values"]
    ok = np.concatenate([o["ok"] for o in outs])
    reasons = np.concatenate([o["reasons"] for o in outs])
    return Run(values, ok, reasons, msgs, ss.entropy, prefer, time.perf_counter() - t0)
