#!/usr/bin/env python
"""Time of ``res.conf_int_cov()`` (profile and Wald) and ``res.icc()``.

Usage::

    python benchmarks/bench_intervals.py [--reps 3] [--out PATH]

Cases: lme4's sleepstudy random intercept and slope model (4 covariance parameters; the
profile of the REML deviance and the ML profile lme4 computes), Orthodont's random
intercept + AR(1) (3 parameters) and the Oats split plot's ICCs (2 variance components).
Target: the profile intervals of the random-slope model in well under a few seconds.  The
median of ``--reps`` runs (wall time, and the process's CPU time, which a busy machine
inflates less) is reported with the load average and the BLAS thread setting.
Writes ``benchmarks/results/bench_intervals.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import statsmodels_lmm_ext as lmm

HERE = Path(__file__).resolve().parent


def _cases():
    sleep = lmm.mixedlm(
        "Reaction ~ Days", lmm.datasets.load("sleepstudy"), groups="Subject", re_formula="~Days"
    ).fit()
    orth = lmm.mixedlm(
        "distance ~ age * Sex",
        lmm.datasets.load("orthodont"),
        groups="Subject",
        cov_struct=lmm.AR1(time="visit"),
    ).fit()
    oats = lmm.mixedlm(
        "grain_yield ~ nitro_f + Variety",
        lmm.datasets.load("oats"),
        groups="Block",
        vc_formula={"plot": "0 + C(Variety)"},
        re_formula="1",
    ).fit()
    return {
        "sleepstudy_profile_reml": lambda: sleep.conf_int_cov(),
        "sleepstudy_profile_ml_as_lme4": lambda: sleep.conf_int_cov(reml=False),
        "sleepstudy_wald": lambda: sleep.conf_int_cov("wald"),
        "orthodont_ar1_profile": lambda: orth.conf_int_cov(),
        "oats_icc_profile": lambda: oats.icc(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_intervals.json"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cases = _cases()
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_before": os.getloadavg(),
        "blas_threads": lmm.get_blas_threads(),
        "cases": {},
    }
    for name, run in cases.items():
        times, cpu = [], []
        for _ in range(args.reps):
            t, c = time.perf_counter(), time.process_time()
            run()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out["cases"][name] = {"median_s": statistics.median(times), "times_s": times,
                              "median_cpu_s": statistics.median(cpu)}  # fmt: skip
        print(f"{name:32s} {statistics.median(times):7.3f} s wall "
              f"{statistics.median(cpu):7.3f} s cpu")  # fmt: skip
    out["loadavg_after"] = os.getloadavg()
    print(f"load average {out['loadavg_before']} -> {out['loadavg_after']}, "
          f"BLAS threads {out['blas_threads']}")  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
