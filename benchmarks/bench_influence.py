#!/usr/bin/env python
"""Speed of ``res.influence()`` (exact leave-one-group-out refits of every subject).

Usage::

    python benchmarks/bench_influence.py           # writes benchmarks/results/bench_influence.json
    python benchmarks/bench_influence.py --quick   # 200 subjects (smoke test)

Cases (1,000 subjects each; target: ``influence()`` of each at most 2 s on 2 cores):

``mmrm_un``
    fev-like MMRM data: 4 visits, ``y ~ arm * visit + race``, unstructured covariance (10
    parameters), 20% of rows missing at random; REML.
``ri_ar1``
    The data of ``bench_fit.py`` (8 visits, 10% of rows dropped): random intercept + AR(1)
    residuals, ``y ~ C(visit) * trt``, REML.
``ri_ar1_group``
    The same with ``engine="group"`` (every subject its own unit, as for data whose subjects
    share no visit pattern): each deletion refit then evaluates all 1,000 subjects' ``H`` at
    its own parameters, so the cost grows as ``G^2``; no target, recorded for the docs.

The load average and the BLAS thread limit are recorded with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_fit import simulate as simulate_ri_ar1  # noqa: E402

import statsmodels_lmm_ext as lmm  # noqa: E402


def simulate_mmrm(n_subjects: int, seed: int = 20261130) -> pd.DataFrame:
    """fev-like data: 4 visits with an unstructured covariance, two arms, three races."""
    rng = np.random.default_rng(seed)
    sd = np.array([6.0, 5.0, 5.5, 7.0])
    corr = np.array(
        [[1.0, 0.5, 0.3, 0.2], [0.5, 1.0, 0.5, 0.3], [0.3, 0.5, 1.0, 0.5], [0.2, 0.3, 0.5, 1.0]]
    )
    cov = corr * np.outer(sd, sd)
    arm = rng.integers(0, 2, n_subjects)
    race = rng.integers(0, 3, n_subjects)
    e = rng.multivariate_normal(np.zeros(4), cov, size=n_subjects)
    visit = np.tile(np.arange(4), n_subjects)
    subj = np.repeat(np.arange(n_subjects), 4)
    a = arm[subj]
    y = 30 + 4 * visit + 3 * a + 0.8 * a * visit + 2 * race[subj] + e.ravel()
    df = pd.DataFrame(
        {
            "subject": subj,
            "visit": np.array(["VIS1", "VIS2", "VIS3", "VIS4"])[visit],
            "arm": np.where(a == 1, "TRT", "PBO"),
            "race": np.array(["A", "B", "C"])[race[subj]],
            "y": y,
        }
    )
    return df[rng.random(len(df)) > 0.2].reset_index(drop=True)


def run_case(name: str, n_subjects: int) -> dict:
    if name == "mmrm_un":
        data = simulate_mmrm(n_subjects)
        model = lmm.mixedlm("y ~ arm * visit + race", data, groups="subject", re_formula="0",
                            cov_struct=lmm.Unstructured(time="visit"))  # fmt: skip
    else:
        data = simulate_ri_ar1(n_subjects, 8, 0.10)
        engine = "group" if name == "ri_ar1_group" else "auto"
        model = lmm.mixedlm("y ~ C(visit) * trt", data, groups="subject",
                            cov_struct=lmm.AR1(time="visit"), engine=engine)  # fmt: skip
    t0 = time.perf_counter()
    res = model.fit()
    t1 = time.perf_counter()
    inf = res.influence()
    t2 = time.perf_counter()
    return {
        "case": name,
        "n_subjects": n_subjects,
        "nobs": int(res.model.nobs),
        "engine_mode": res.model.engine.mode,
        "fit_s": round(t1 - t0, 3),
        "influence_s": round(t2 - t1, 3),
        "all_converged": bool(inf["converged"].all()),
        "max_cookd": float(inf["cookd"].max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "blas_threads": lmm.get_blas_threads(),
        "loadavg_before": os.getloadavg(),
        "target": "influence_s <= 2 on 2 cores for 1,000 subjects",
        "runs": [run_case(c, n) for c in ("mmrm_un", "ri_ar1", "ri_ar1_group")],
    }
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    name = "bench_influence_quick.json" if args.quick else "bench_influence.json"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / name).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
