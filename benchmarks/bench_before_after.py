#!/usr/bin/env python
"""Same-run comparison of two versions of the package (a refactoring must not slow it down).

Usage::

    python benchmarks/bench_before_after.py OLD_SRC [NEW_SRC] [--reps 3] [--quick]

``OLD_SRC``/``NEW_SRC`` are folders that contain a ``statsmodels_lmm_ext`` package (e.g. a
``git archive`` of an older commit; ``NEW_SRC`` defaults to this checkout).  Each timing runs
in a fresh subprocess with that folder first on ``sys.path``; the two versions alternate, and
the median of ``--reps`` runs is reported with the machine's load average and the BLAS thread
setting.  Writes ``benchmarks/results/bench_before_after.json`` (or ``--out``).

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
print(json.dumps(out))
"""

CASES = {"medium": (5_000, 8), "large": (100_000, 10), "bootstrap": (300, 6)}
QUICK = {"medium": (500, 8), "large": (10_000, 10), "bootstrap": (100, 6)}


def run(src: Path, case: str, size) -> dict:
    cmd = [sys.executable, "-c", WORKER, str(src), case, str(size[0]), str(size[1])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path, nargs="?", default=HERE.parent)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_before_after.json")
    args = ap.parse_args()
    cases = QUICK if args.quick else CASES
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default (unset)"),
        "load_before": os.getloadavg(),
        "cases": {},
    }
    for case, size in cases.items():
        runs = {"old": [], "new": []}
        for _ in range(args.reps):
            for tag, src in (("old", args.old), ("new", args.new)):
                runs[tag].append(run(src.resolve(), case, size))
        summary = {}
        for tag, rs in runs.items():
            keys = [k for k in rs[0] if k.endswith("_s")]
            summary[tag] = {k: statistics.median(r[k] for r in rs) for k in keys}
            summary[tag]["llf"] = rs[0]["llf"]
        report["cases"][case] = {"rows_per_subject": size, "subjects": size[0], **summary}
        print(case, json.dumps(summary), flush=True)
    report["load_after"] = os.getloadavg()
    path = args.out
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average before/after: {report['load_before']} / {report['load_after']}")


if __name__ == "__main__":
    main()
