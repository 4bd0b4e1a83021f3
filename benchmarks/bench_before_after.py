#!/usr/bin/env python
"""Same-run comparison of two versions of the package (a refactoring must not slow it down).

Usage::

    python benchmarks/bench_before_after.py OLD_SRC [NEW_SRC] [--reps 3] [--quick]
    python benchmarks/bench_before_after.py --blas-limit [--busy 1] [--reps 5] [--quick]

``OLD_SRC``/``NEW_SRC`` are folders that contain a ``statsmodels_lmm_ext`` package (e.g. a
``git archive`` of an older commit; ``NEW_SRC`` defaults to this checkout).  Each timing runs
in a fresh subprocess with that folder first on ``sys.path``; the two versions alternate, and
the median of ``--reps`` runs is reported with the machine's load average and the BLAS thread
setting.  Writes ``benchmarks/results/bench_before_after.json`` (or ``--out``).

``--blas-limit`` compares this checkout with its BLAS limit switched off ("before":
``STATSMODELS_LMM_EXT_BLAS_THREADS=none``, so OpenBLAS uses its default of one thread per
core inside our calls) and on ("after": the default, 1 thread), with the default BLAS otherwise
(``OPENBLAS_NUM_THREADS`` and friends removed from the workers' environment), while ``--busy``
other processes (default 1) each keep a core busy with a pure-Python loop for the duration of
the run (bounded by ``--busy-seconds``).  Each worker also records the BLAS thread counts
outside our calls and inside ``fit`` and the cost of entering and leaving the limit.  Writes
``benchmarks/results/bench_blas_limit.json`` (or ``--out``).

Cases: a random-intercept + AR(1) REML fit of ``y ~ C(visit) * trt`` on 5,000 subjects x 8
visits (10% of rows dropped; 36,000 rows), its Kenward-Roger Type III ANOVA, the same fit on
100,000 x 10 (900,000 rows after the same 10% drop), and a parametric-bootstrap test (200
replicates, one process).
Each fit is timed in three parts: model construction (formula and checks), the engine build,
and the optimisation; ``total_s`` is their sum.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd
import statsmodels_lmm_ext as lmm
assert lmm.__file__.startswith(sys.argv[1]), lmm.__file__
case, n_sub, n_vis = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(20240601)
d = pd.DataFrame({"subject": np.repeat(np.arange(n_sub), n_vis),
                  "visit": np.tile(np.arange(1, n_vis + 1), n_sub)})
d["trt"] = (d.subject % 2).astype(str)
b = rng.normal(size=n_sub)[d.subject]
e = np.zeros(len(d)); z = rng.normal(size=len(d))
for t in range(n_vis):
    m = d.visit.to_numpy() == t + 1
    e[m] = z[m] if t == 0 else 0.5 * e[np.roll(m, -1)] + np.sqrt(0.75) * z[m]
d["y"] = 0.2 * d.visit + 0.5 * (d.trt == "1") + b + e
d = d.sample(frac=0.9, random_state=1)
out = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    model = lmm.mixedlm("y ~ C(visit) * trt", d, groups="subject",
                        cov_struct=lmm.AR1(time="visit"))
    t1 = time.perf_counter()
    model.engine
    t2 = time.perf_counter()
    res = model.fit()
    t3 = time.perf_counter()
    out.update(construct_s=t1 - t0, engine_s=t2 - t1, fit_s=t3 - t2, total_s=t3 - t0)
    out["llf"] = float(res.llf)
    if case == "medium":
        t0 = time.perf_counter()
        res.anova(ddf="kenward-roger")
        out["kr_anova_s"] = time.perf_counter() - t0
    if case == "bootstrap":
        small = lmm.mixedlm("y ~ C(visit) + trt", d, groups="subject",
                            cov_struct=lmm.AR1(time="visit")).fit(reml=False)
        large = lmm.mixedlm("y ~ C(visit) * trt", d, groups="subject",
                            cov_struct=lmm.AR1(time="visit")).fit(reml=False)
        t0 = time.perf_counter()
        lmm.pb_lrt(large, small, nsim=200, seed=1, n_jobs=1)
        out["pb_lrt_200_s"] = time.perf_counter() - t0
try:
    from statsmodels_lmm_ext import _threads
    from threadpoolctl import threadpool_info
    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    out["blas_threads_outside"] = blas()
    out["blas_limit"] = _threads.get_blas_threads()
    seen = []
    m = model.__class__.deviance_function
    def probe(self, reml):
        seen.append(blas())
        return m(self, reml)
    model.__class__.deviance_function = probe
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit()
    out["blas_threads_in_fit"] = seen[0]
    with _threads.blas_threads():
        pass
    t0 = time.perf_counter()
    for _ in range(2000):
        with _threads.blas_threads():
            pass
    out["limit_entry_us"] = (time.perf_counter() - t0) / 2000 * 1e6
except ImportError:  # a version without the BLAS limit
    pass
print(json.dumps(out))
"""

BUSY = """
import sys, time
end = time.time() + float(sys.argv[1])
while time.time() < end:
    pass
"""
BLAS_ENV = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
LIMIT_ENV = "STATSMODELS_LMM_EXT_BLAS_THREADS"

CASES = {"medium": (5_000, 8), "large": (100_000, 10), "bootstrap": (300, 6)}
QUICK = {"medium": (500, 8), "large": (10_000, 10), "bootstrap": (100, 6)}


def run(src: Path, case: str, size, env: dict | None = None) -> dict:
    cmd = [sys.executable, "-c", WORKER, str(src), case, str(size[0]), str(size[1])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["load_after"] = os.getloadavg()
    return res


def blas_envs() -> dict[str, dict]:
    """Worker environments: the default BLAS, with our limit off ("before") and on ("after")."""
    base = {k: v for k, v in os.environ.items() if k not in BLAS_ENV and k != LIMIT_ENV}
    return {"before": {**base, LIMIT_ENV: "none"}, "after": {**base, LIMIT_ENV: "1"}}


def start_busy(n: int, seconds: float) -> list[subprocess.Popen]:
    """``n`` processes that each keep a core busy for at most ``seconds``."""
    return [subprocess.Popen([sys.executable, "-c", BUSY, str(seconds)]) for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path, nargs="?")
    ap.add_argument("new", type=Path, nargs="?", default=HERE.parent)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--blas-limit", action="store_true", help="our BLAS limit off vs on")
    ap.add_argument("--busy", type=int, default=1, help="busy processes (--blas-limit)")
    ap.add_argument("--busy-seconds", type=float, default=1800.0, help="their time bound")
    args = ap.parse_args()
    if args.old is None and not args.blas_limit:
        ap.error("give OLD_SRC, or --blas-limit")
    cases = QUICK if args.quick else CASES
    name = "bench_blas_limit.json" if args.blas_limit else "bench_before_after.json"
    path = args.out or HERE / "results" / name
    if args.blas_limit:
        envs = blas_envs()
        versions = [("before", args.new, envs["before"]), ("after", args.new, envs["after"])]
    else:
        versions = [("old", args.old, None), ("new", args.new, None)]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default (unset)"),
        "load_before": os.getloadavg(),
        "cases": {},
    }
    busy = []
    if args.blas_limit:
        report["blas_threads"] = "default (BLAS thread variables removed from the workers)"
        report["busy_processes"] = args.busy
        busy = start_busy(args.busy, args.busy_seconds)
    try:
        for case, size in cases.items():
            runs = {tag: [] for tag, _, _ in versions}
            for _ in range(args.reps):
                for tag, src, env in versions:
                    runs[tag].append(run(src.resolve(), case, size, env))
            summary = {}
            for tag, rs in runs.items():
                keys = [k for k in rs[0] if k.endswith("_s")]
                summary[tag] = {k: statistics.median(r[k] for r in rs) for k in keys}
                summary[tag].update({f"{k}_runs": [r[k] for r in rs] for k in ("fit_s",)})
                for k in ("llf", "blas_limit", "blas_threads_outside", "blas_threads_in_fit"):
                    if k in rs[0]:
                        summary[tag][k] = rs[0][k]
                if "limit_entry_us" in rs[0]:
                    summary[tag]["limit_entry_us"] = statistics.median(
                        r["limit_entry_us"] for r in rs
                    )
                summary[tag]["load_after_runs"] = [r["load_after"][0] for r in rs]
            report["cases"][case] = {"rows_per_subject": size, "subjects": size[0], **summary}
            print(case, json.dumps(summary), flush=True)
    finally:
        stop_busy(busy)
    report["load_after"] = os.getloadavg()
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average before/after: {report['load_before']} / {report['load_after']}")


if __name__ == "__main__":
    main()
