"""Conditional prediction (``res.predict(newdata, conditional=True)``) timings.

Cases (simulated with a fixed seed, ``y ~ x``, 6 visits per subject, every 4th subject's last
two visits without a response):

* ``ar1``: AR(1) residuals and a random intercept (the designs of random effects are built
  once for all rows).
* ``ar1_vc``: the same with a variance component (``vc_formula={"side": "0 + C(side)"}``),
  whose design is rebuilt per subject from the formula (as statsmodels does at the fit).

The median of ``--reps`` repeats of the prediction alone (the fit is not timed) is reported
with the 1-minute load average and the BLAS thread limit; on the shared 2-core machine other
processes inflate the timings.  Writes ``benchmarks/results/bench_conditional_predict.json``.

    python benchmarks/bench_conditional_predict.py [--subjects 1000] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import statsmodels_lmm_ext as lmm

HERE = Path(__file__).resolve().parent


def simulate(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(n), 6)
    t = np.tile(np.arange(1, 7), n)
    side = np.where(t <= 3, "L", "R")
    e = np.zeros(len(sub))
    z = rng.normal(size=len(sub))
    for k in range(6):
        rows = t == k + 1
        e[rows] = z[rows] if k == 0 else 0.6 * e[t == k] + 0.8 * z[rows]
    x = rng.normal(size=len(sub))
    y = 1 + 0.5 * x + rng.normal(size=n)[sub] + 0.8 * rng.normal(size=2 * n)[2 * sub + (t > 3)]
    d = pd.DataFrame({"y": y + e, "x": x, "t": t, "side": side, "subject": sub})
    d.loc[(d.subject % 4 == 0) & (d.t >= 5), "y"] = np.nan
    return d


def run(d: pd.DataFrame, vc: bool, reps: int) -> dict:
    kw = {"vc_formula": {"side": "0 + C(side)"}} if vc else {}
    res = lmm.mixedlm(
        "y ~ x", d, groups="subject", re_formula="1", cov_struct=lmm.AR1(time="t"),
        missing="drop", **kw,
    ).fit()  # fmt: skip
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        pred = res.predict(d, conditional=True)
        times.append(time.perf_counter() - t0)
    assert np.isfinite(pred.prediction).all()
    return {
        "median_s": float(np.median(times)),
        "rows": len(d),
        "subjects": int(d.subject.nunique()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    d = simulate(args.subjects)
    out = {
        "load_1min": os.getloadavg()[0],
        "blas_threads": lmm.get_blas_threads(),
        "cases": {"ar1": run(d, False, args.reps), "ar1_vc": run(d, True, args.reps)},
    }
    print(json.dumps(out, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_conditional_predict.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
