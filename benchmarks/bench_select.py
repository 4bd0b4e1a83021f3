"""``select_cov_struct`` over 8 residual structures on the MMRM data of ``bench_mmrm.py``, and
``exact_rlrt`` against RLRsim's ``exactRLRT`` on the pulp data.

* ``select``: the ``un10_kr`` data of ``bench_mmrm.py`` (1,000 subjects x 10 visits, monotone
  dropout, ~8,700 rows), ``y ~ visit * trt`` REML, candidates independence, CS, CSH, AR(1),
  ARH(1), Toeplitz, ante-dependence (heterogeneous) and unstructured, from the DataFrame to
  the ranked table; target: at most 3 s on 2 cores.  Timed with ``n_jobs=1`` and
  ``n_jobs=2`` for each joblib backend given (``--backends``, default ``loky threading``);
  the first parallel call also pays for starting the workers (reported separately as
  ``first_call_seconds``).
* ``exact_rlrt``: seconds for 1,000 simulated values on pulp (median of 20 runs), beside
  RLRsim's (from the same run through Rscript unless ``--skip-r``); target: not slower.

The 1-minute load average and the BLAS thread limit are recorded: on the shared 2-core machine
other processes inflate the timings.  Writes ``benchmarks/results/bench_select.json``.

    python benchmarks/bench_select.py [--reps 3] [--skip-r]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import parallel_config

import statsmodels_lmm_ext as lmm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_mmrm import simulate  # noqa: E402

PULP = HERE.parent / "tests" / "results" / "exact_rlrt.json"

R_SCRIPT = r"""
suppressPackageStartupMessages({library(RLRsim); library(lme4); library(jsonlite)})
d <- as.data.frame(fromJSON(commandArgs(trailingOnly = TRUE)[1])$data$pulp)
m <- lmer(bright ~ 1 + (1 | operator), d)
t <- replicate(20, system.time(exactRLRT(m, nsim = 1000))[["elapsed"]])
cat(median(t), "\n")
"""


def candidates() -> list:
    return [
        lmm.Independence(),
        lmm.CompoundSymmetry(),
        lmm.CompoundSymmetry(time="visit", heterogeneous=True),
        lmm.AR1(time="vnum"),
        lmm.AR1(time="visit", heterogeneous=True),
        lmm.Toeplitz(time="visit"),
        lmm.AnteDependence(time="visit", heterogeneous=True),
        lmm.Unstructured(time="visit"),
    ]


def run_select(d: pd.DataFrame, n_jobs: int) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    sel = lmm.select_cov_struct(
        "y ~ visit * trt", d, groups="subject", candidates=candidates(), n_jobs=n_jobs
    )
    return time.perf_counter() - t0, sel.table


def time_rlrt(reps: int = 20) -> float:
    ref = json.loads(PULP.read_text())
    pulp = pd.DataFrame(ref["data"]["pulp"])
    res = lmm.mixedlm("bright ~ 1", pulp, groups="operator").fit()
    lmm.exact_rlrt(res, nsim=1000, seed=0)  # warm-up
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        lmm.exact_rlrt(res, nsim=1000, seed=i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_rlrsim() -> float:
    out = subprocess.run(
        ["Rscript", "-e", R_SCRIPT, str(PULP)], capture_output=True, text=True, check=True,
        timeout=600,
    )  # fmt: skip
    return float(out.stdout.split()[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--backends", nargs="*", default=["loky", "threading"])
    ap.add_argument("--skip-r", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_select.json"))
    a = ap.parse_args(argv)
    d = simulate(1000, 10, dropout="monotone", seed=1)
    d["vnum"] = d["visit"].str[1:].astype(int)
    report = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas_threads": lmm.get_blas_threads(),
        "rows": len(d),
        "load_average_1min_start": os.getloadavg()[0],
    }
    run_select(d, 1)  # warm-up (imports, caches)
    runs = {"sequential": [run_select(d, 1)[0] for _ in range(a.reps)]}
    for backend in a.backends:
        with parallel_config(backend=backend):
            first, table = run_select(d, 2)
            runs[backend] = [run_select(d, 2)[0] for _ in range(a.reps)]
        report[f"{backend}_first_call_seconds"] = first
    report["select_seconds_median"] = {k: float(np.median(v)) for k, v in runs.items()}
    report["select_table"] = table[["n_params", "llf", "aic", "converged"]].to_dict("index")
    report["exact_rlrt_pulp_1000_seconds"] = time_rlrt()
    if not a.skip_r:
        report["rlrsim_exactRLRT_pulp_1000_seconds"] = time_rlrsim()
    report["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
