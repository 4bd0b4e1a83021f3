#!/usr/bin/env python
"""Convergence benchmark: our fits against nlme's on a grid of designs (issue 11).

Usage::

    python benchmarks/bench_convergence.py           # ~3 min on 2 cores; writes
                                                     # benchmarks/results/bench_convergence.json
    python benchmarks/bench_convergence.py --reps 2  # smoke test

Grid (as the convergence table published by the R package mmrm, which compares mmrm, glmmTMB,
nlme and lme4 on simulated trials): subjects {50, 200} x visits {4, 8} x AR(1) correlation
{0.2, 0.5, 0.9} x missingness {0, 30%, 60% of post-baseline visits dropped at random} x units
{visit numbers; weekly visits counted in days with 1e4 added to y (the same data sets)},
``reps`` data sets per cell.  Model, in both packages: ``y ~ visit + trt``, random intercept
(sd 1), AR(1) residuals on the visit number (sd 1.5), REML; ours ``mixedlm(...,
cov_struct=AR1(time="visit"))``, nlme ``lme(..., correlation = corAR1(form = ~ visit |
subj))`` (default control), run through ``Rscript benchmarks/bench_convergence.R`` in the same
script.

Recorded per cell: our convergence rate (``converged`` and no exception), nlme's (no error), the
largest difference of log-likelihoods ``ours - nlme`` where both converged (positive: ours
higher), and the mean seconds per fit of each; ``units_gap``: the largest difference, over the
data sets, between each package's log-likelihoods in the two units and the exact log 7 that
separates them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import platform
import subprocess
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

import statsmodels_lmm_ext as lmm

HERE = pathlib.Path(__file__).parent
GRID = {
    "subjects": (50, 200),
    "visits": (4, 8),
    "rho": (0.2, 0.5, 0.9),
    "missing": (0.0, 0.3, 0.6),
    "units": ("visits", "days+1e4"),
}


def simulate(subjects, visits, rho, missing, units, seed) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(subjects), visits)
    visit = np.tile(np.arange(1, visits + 1), subjects)
    trt = np.repeat(rng.integers(0, 2, subjects), visits)
    e = np.empty((subjects, visits))
    e[:, 0] = rng.normal(size=subjects)
    for t in range(1, visits):
        e[:, t] = rho * e[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=subjects)
    b = np.repeat(rng.normal(size=subjects), visits)
    y = 10 + 0.3 * visit + 0.5 * trt + b + 1.5 * e.ravel()
    keep = (visit == 1) | (rng.uniform(size=len(y)) >= missing)
    if units != "visits":  # weekly visits counted in days, and an offset in y
        visit, y = 7 * visit, y + 1e4
    return pd.DataFrame({"subj": subj, "visit": visit, "trt": trt, "y": y})[keep]


def ours(d: pd.DataFrame) -> tuple[bool, float, float]:
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = lmm.mixedlm("y ~ visit + trt", d, groups="subj",
                              cov_struct=lmm.AR1(time="visit")).fit()  # fmt: skip
        ok, llf = bool(res.converged), float(res.llf)
    except Exception:  # noqa: BLE001 (a failure is what is counted)
        ok, llf = False, float("nan")
    return ok, llf, time.perf_counter() - t0


def run(reps: int) -> dict:
    cells, frames, ours_rows = [], [], []
    for k, (n, t, rho, miss, units) in enumerate(itertools.product(*GRID.values())):
        cell = {"subjects": n, "visits": t, "rho": rho, "missing": miss, "units": units}
        for r in range(reps):
            ds = k * 1000 + r
            d = simulate(n, t, rho, miss, units, seed=k // 2 * 1000 + r).assign(dataset=ds)
            frames.append(d)
            ok, llf, sec = ours(d)
            ours_rows.append({**cell, "dataset": ds, "ok": ok, "llf": llf, "sec": sec})
        cells.append(cell)
    with tempfile.TemporaryDirectory() as tmp:
        csv, out = pathlib.Path(tmp, "data.csv"), pathlib.Path(tmp, "nlme.json")
        pd.concat(frames).to_csv(csv, index=False)
        t0 = time.perf_counter()
        subprocess.run(["Rscript", str(HERE / "bench_convergence.R"), str(csv), str(out)],
                       check=True)  # fmt: skip
        r_seconds = time.perf_counter() - t0
        nlme = json.loads(out.read_text())
    ref = {f["dataset"]: f for f in nlme["fits"]}
    rows = pd.DataFrame(ours_rows)
    rows["nlme_ok"] = [bool(ref[d]["converged"]) for d in rows.dataset]
    rows["nlme_llf"] = [ref[d]["loglik"] if ref[d]["loglik"] is not None else np.nan
                        for d in rows.dataset]  # fmt: skip
    rows["nlme_sec"] = [ref[d]["seconds"] for d in rows.dataset]
    rows["diff"] = np.where(rows.ok & rows.nlme_ok, rows.llf - rows.nlme_llf, np.nan)
    table = []
    for cell in cells:
        sel = np.ones(len(rows), bool)
        for key, val in cell.items():
            sel &= rows[key].to_numpy() == val
        c = rows[sel]
        table.append({**cell, "reps": int(sel.sum()), "ours_rate": float(c.ok.mean()),
                      "nlme_rate": float(c.nlme_ok.mean()),
                      "max_abs_llf_diff": float(np.nanmax(np.abs(c["diff"]), initial=0.0)),
                      "min_llf_diff": float(np.nanmin(c["diff"], initial=np.inf)),
                      "ours_sec": float(c.sec.mean()),
                      "nlme_sec": float(c.nlme_sec.mean())})  # fmt: skip
    # the same data sets in both units: REML log-likelihoods differ by exactly log 7 (the visit
    # column of X scaled by 7); how far each package is from that
    llf = rows.set_index("dataset")
    pairs = [(d, d + 1000) for d in llf.index if (d // 1000) % 2 == 0]
    units_gap = {
        who: float(
            np.nanmax([abs(llf.loc[b, col] - llf.loc[a, col] + np.log(7.0)) for a, b in pairs])
        )  # fmt: skip
        for who, col in (("ours", "llf"), ("nlme", "nlme_llf"))
    }
    by_units = {
        u: {
            "ours_rate": float(rows[rows.units == u].ok.mean()),
            "nlme_rate": float(rows[rows.units == u].nlme_ok.mean()),
        }  # fmt: skip
        for u in GRID["units"]
    }
    by_missing = {
        str(m): {
            "ours_rate": float(rows[rows.missing == m].ok.mean()),
            "nlme_rate": float(rows[rows.missing == m].nlme_ok.mean()),
        }  # fmt: skip
        for m in GRID["missing"]
    }
    return {
        "grid": {k: list(v) for k, v in GRID.items()},
        "reps": reps,
        "model": "y ~ visit + trt, random intercept, AR(1) on visit, REML",
        "overall": {
            "ours_rate": float(rows.ok.mean()),
            "nlme_rate": float(rows.nlme_ok.mean()),
            "max_abs_llf_diff": float(np.nanmax(np.abs(rows["diff"]))),
            "n_fits": len(rows),
            "nlme_seconds_total": r_seconds,
            "ours_seconds_total": float(rows.sec.sum()),
        },  # fmt: skip
        "by_missing": by_missing,
        "by_units": by_units,
        "units_gap": units_gap,
        "cells": table,
        "versions": {
            "nlme": nlme["nlme"],
            "R": nlme["R"],
            "python": platform.python_version(),
            "numpy": np.__version__,
        },  # fmt: skip
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_convergence.json"))
    args = ap.parse_args()
    res = run(args.reps)
    pathlib.Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res["overall"], indent=1))
    print(json.dumps(res["by_missing"], indent=1))
    print(json.dumps(res["by_units"], indent=1))
    print(json.dumps(res["units_gap"], indent=1))


if __name__ == "__main__":
    main()
