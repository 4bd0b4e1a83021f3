#!/usr/bin/env python
"""Speed of the parametric-bootstrap likelihood-ratio test (``statsmodels_lmm_ext.pb_lrt``).

Usage::

    python benchmarks/bench_bootstrap.py            # full run (~50 s on 2 cores), writes
                                                    # benchmarks/results/bench_bootstrap.json
    python benchmarks/bench_bootstrap.py --quick    # smoke test (~10 s), writes
                                                    # benchmarks/results/bench_bootstrap_quick.json
    python benchmarks/bench_bootstrap.py --r        # also time a plain R loop with lme4 (+10 s)
    python benchmarks/bench_bootstrap.py --check    # exit status 2 if the target is missed
    python benchmarks/bench_bootstrap.py --cases backends   # only the backend comparison
                                          # (~1 min) -> results/bench_bootstrap_backends.json

Cases:

``oneway``
    The bundled ``oneway`` data (20 rows, 4 groups): ``y ~ 1 + (1 | group)`` (ML) against the
    OLS fit of ``y ~ 1``; 1,000 replicates with ``n_jobs=1`` and ``n_jobs=2`` (default backend
    choice: threads for a job this short) and with ``joblib.parallel_config(backend="loky")``
    (first call, which starts the worker processes, and a second call).  Target: <= 1 s with
    ``n_jobs=2``.
    Baselines, clearly extrapolated from fewer replicates: a naive loop that builds and fits
    statsmodels ``smf.mixedlm`` and ``smf.ols`` models for each simulated response, the same
    loop with our ``lmm.mixedlm`` full fits, and (``--r``) a plain R loop with
    ``lme4::refit(newresp = )`` and ``lm`` (as in tests/results/lrt_bootstrap.R).
``group_mode_1000x6``
    A longer run: 1,000 subjects x 6 visits with the per-group engine, 200 replicates, where
    ``n_jobs=2`` makes joblib prefer processes (see ``pb_lrt``'s ``joblib_prefer``).
``ar1_200x4``
    A Kenward-Roger-sized trial: 200 subjects x 4 visits, ``y ~ C(visit) * trt``, random
    intercept + AR(1) residuals (data of bench_fit.py's generator).  Two tests with 1,000
    replicates: the AR(1) correlation (RI + AR(1) against RI) and the visit-by-treatment
    interaction (under RI + AR(1)).  Baseline: our full fits in a naive loop (statsmodels has no
    AR(1) residuals), extrapolated.
``backends``
    The same ``pb_lrt`` runs (``oneway`` with 1,000 replicates: overhead; ``group_mode_1000x6``
    with 200: compute) in this process (``n_jobs=1``), with
    ``joblib.parallel_config(backend="loky")`` and 2 workers, and with
    ``joblib.parallel_config(backend="dask")`` on a ``distributed.LocalCluster`` of 2 worker
    processes x 1 thread (and of 2 in-process worker threads).  The pool and the clusters are
    started, and the package imported in their workers, before the timings (their start-up is
    reported apart); every run's replicates are checked equal to the sequential ones bit for
    bit.

Timings are wall-clock medians of ``--reps`` runs in this process; ``other_cpu_cores`` is the CPU
used by *other* processes during the measurement (a concurrent job inflates the timings; with
worker processes it includes our own workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import joblib
import statsmodels.formula.api as smf

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext import bootstrap as bs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_fit import _cpu_times, machine_info  # noqa: E402
from bench_fit import simulate as simulate_trial  # noqa: E402

TARGET_ONEWAY_SECONDS = 1.0

R_LOOP = r"""
suppressPackageStartupMessages(library(lme4))
d <- read.csv("%(csv)s", stringsAsFactors = FALSE)
d$group <- factor(d$group)
m0 <- lm(y ~ 1, data = d)
m1 <- lmer(y ~ 1 + (1 | group), data = d, REML = FALSE)
sims <- simulate(m0, nsim = %(nsim)d, seed = 1)
t0 <- proc.time()[["elapsed"]]
lrt <- vapply(sims, function(yy) {
  l0 <- as.numeric(logLik(lm(yy ~ 1)))
  f1 <- suppressMessages(suppressWarnings(refit(m1, newresp = yy)))
  2 * (as.numeric(logLik(f1, REML = FALSE)) - l0)
}, numeric(1))
cat(proc.time()[["elapsed"]] - t0, mean(lrt >= 2.40926180447116), "\n")
"""


# ----------------------------------------------------------------------------- helpers
def measure(fn, reps: int) -> dict:
    """Median wall time of ``reps`` calls (and the first), with concurrent CPU load."""
    times, others = [], []
    out = None
    for _ in range(reps):
        c0, p0, t0 = _cpu_times(), time.process_time(), time.perf_counter()
        out = fn()
        t1, p1, c1 = time.perf_counter(), time.process_time(), _cpu_times()
        wall = t1 - t0
        times.append(wall)
        if c0 and c1:
            tick = os.sysconf("SC_CLK_TCK")
            busy = (sum(c1) - sum(c0) - (c1[3] - c0[3]) - (c1[4] - c0[4])) / tick
            others.append(max(0.0, (busy - (p1 - p0)) / wall))
    return {
        "median_s": statistics.median(times),
        "first_s": times[0],
        "all_s": times,
        "other_cpu_cores": max(others) if others else None,
        "result": out,
    }


def pb_summary(pb) -> dict:
    return {
        "nsim": pb.nsim,
        "nsim_ok": pb.nsim_ok,
        "nsim_failed": pb.nsim_failed,
        "lrt": pb.lrt,
        "pvalue": pb.pvalue,
        "pvalue_chi2": pb.pvalue_chi2,
        "ref_mean": float(pb.ref_distribution.mean()),
        "joblib_prefer": pb.joblib_prefer,
    }


def fit_quiet(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(**kw)


# ------------------------------------------------------------------------------ cases
def case_oneway(nsim: int, reps: int, naive_n: int, run_r: bool) -> dict:
    d = lmm.datasets.load("oneway")
    small = smf.ols("y ~ 1", d).fit()
    large = fit_quiet(lmm.mixedlm("y ~ 1", d, groups="group"), reml=False)
    out = {"rows": len(d), "groups": 4, "nsim": nsim, "timings": {}}

    def run(n_jobs):
        return lambda: bs.pb_lrt(large, small, nsim=nsim, seed=1, n_jobs=n_jobs)

    for label, n_jobs in (("n_jobs=1", 1), ("n_jobs=2 (default)", 2)):
        m = measure(run(n_jobs), reps)
        out["timings"][label] = {k: v for k, v in m.items() if k != "result"}
        out["timings"][label]["joblib_prefer"] = m["result"].joblib_prefer
        out["pb"] = pb_summary(m["result"])
    with joblib.parallel_config(backend="loky"):
        m = measure(run(2), max(reps, 2))
    out["timings"]["n_jobs=2 (loky)"] = {k: v for k, v in m.items() if k != "result"}

    # naive loops: a new model per simulated response, fitted from scratch
    Y = bs.simulate(small, naive_n, seed=1)

    def naive_statsmodels():
        for j in range(naive_n):
            dj = d.assign(y=Y[:, j])
            smf.ols("y ~ 1", dj).fit()
            fit_quiet(smf.mixedlm("y ~ 1", dj, groups="group"), reml=False)

    def naive_ours():
        for j in range(naive_n):
            dj = d.assign(y=Y[:, j])
            smf.ols("y ~ 1", dj).fit()
            fit_quiet(lmm.mixedlm("y ~ 1", dj, groups="group"), reml=False)

    for label, fn in (
        ("statsmodels MixedLM naive loop", naive_statsmodels),
        ("lmm.mixedlm full fits naive loop", naive_ours),
    ):
        m = measure(fn, 1)
        out["timings"][label] = {
            "replicates_timed": naive_n,
            "measured_s": m["median_s"],
            "extrapolated_s": m["median_s"] * nsim / naive_n,
            "other_cpu_cores": m["other_cpu_cores"],
        }
    if run_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "oneway.csv"
            d.to_csv(csv, index=False)
            script = Path(tmp) / "loop.R"
            script.write_text(R_LOOP % {"csv": csv, "nsim": nsim})
            proc = subprocess.run(
                ["Rscript", str(script)], capture_output=True, text=True, timeout=3600
            )
        if proc.returncode == 0:
            secs, p_ge = proc.stdout.split()[:2]
            out["timings"]["R lme4 refit loop"] = {
                "replicates_timed": nsim,
                "measured_s": float(secs),
                "share_lrt_ge_observed": float(p_ge),
            }
        else:
            out["timings"]["R lme4 refit loop"] = {"error": proc.stderr[-500:]}
    return out


def case_ar1(nsim: int, reps: int, naive_n: int) -> dict:
    d = simulate_trial(200, 4, 0.0, seed=20240601)
    kw = dict(groups="subject", cov_struct=lmm.AR1(time="visit"))
    large = fit_quiet(lmm.mixedlm("y ~ C(visit) * trt", d, **kw), reml=False)
    no_ar1 = fit_quiet(lmm.mixedlm("y ~ C(visit) * trt", d, groups="subject"), reml=False)
    additive = fit_quiet(lmm.mixedlm("y ~ C(visit) + trt", d, **kw), reml=False)
    out = {"rows": len(d), "subjects": 200, "visits": 4, "nsim": nsim, "tests": {}}
    tests = {
        "AR(1) correlation: RI + AR(1) vs RI": no_ar1,
        "visit x treatment: y ~ C(visit) * trt vs C(visit) + trt (RI + AR(1))": additive,
    }
    for name, small in tests.items():
        res = {"timings": {}}
        for label, n_jobs in (("n_jobs=1", 1), ("n_jobs=2 (default)", 2)):
            m = measure(
                lambda s=small, j=n_jobs: bs.pb_lrt(large, s, nsim=nsim, seed=1, n_jobs=j), reps
            )
            res["timings"][label] = {k: v for k, v in m.items() if k != "result"}
            res["timings"][label]["joblib_prefer"] = m["result"].joblib_prefer
            res["pb"] = pb_summary(m["result"])
        Y = small.simulate(nsim=naive_n, seed=1)
        formula_small = "y ~ C(visit) + trt" if small is additive else "y ~ C(visit) * trt"
        kw_small = kw if small is additive else dict(groups="subject")

        def naive(Y=Y, formula_small=formula_small, kw_small=kw_small):
            for j in range(naive_n):
                dj = d.assign(y=Y[:, j])
                fit_quiet(lmm.mixedlm(formula_small, dj, **kw_small), reml=False)
                fit_quiet(lmm.mixedlm("y ~ C(visit) * trt", dj, **kw), reml=False)

        m = measure(naive, 1)
        res["timings"]["lmm.mixedlm full fits naive loop"] = {
            "replicates_timed": naive_n,
            "measured_s": m["median_s"],
            "extrapolated_s": m["median_s"] * nsim / naive_n,
            "other_cpu_cores": m["other_cpu_cores"],
        }
        out["tests"][name] = res
    return out


def case_group_mode(nsim: int, reps: int) -> dict:
    """A longer run (per-group engine, 1,000 subjects x 6 visits, RI + AR(1), fixed-effect
    test): after timing the first batch, ``n_jobs=2`` asks joblib for processes."""
    d = simulate_trial(1000, 6, 0.0, seed=20240601)
    kw = dict(groups="subject", cov_struct=lmm.AR1(time="visit"), engine="group")
    large = fit_quiet(lmm.mixedlm("y ~ C(visit) * trt", d, **kw), reml=False)
    small = fit_quiet(lmm.mixedlm("y ~ C(visit) + trt", d, **kw), reml=False)
    out = {"rows": len(d), "subjects": 1000, "visits": 6, "engine": "group", "nsim": nsim}
    out["timings"] = {}
    for label, n_jobs in (("n_jobs=1", 1), ("n_jobs=2 (default)", 2)):
        m = measure(lambda j=n_jobs: bs.pb_lrt(large, small, nsim=nsim, seed=1, n_jobs=j), reps)
        out["timings"][label] = {k: v for k, v in m.items() if k != "result"}
        out["timings"][label]["joblib_prefer"] = m["result"].joblib_prefer
        out["pb"] = pb_summary(m["result"])
    return out


def _group_mode_pair():
    d = simulate_trial(1000, 6, 0.0, seed=20240601)
    kw = dict(groups="subject", cov_struct=lmm.AR1(time="visit"), engine="group")
    large = fit_quiet(lmm.mixedlm("y ~ C(visit) * trt", d, **kw), reml=False)
    small = fit_quiet(lmm.mixedlm("y ~ C(visit) + trt", d, **kw), reml=False)
    return large, small


def _oneway_pair():
    d = lmm.datasets.load("oneway")
    small = smf.ols("y ~ 1", d).fit()
    large = fit_quiet(lmm.mixedlm("y ~ 1", d, groups="group"), reml=False)
    return large, small


def _warm_worker() -> None:
    """Import the package in a worker (its start-up, timed apart from the runs)."""
    import statsmodels_lmm_ext  # noqa: F401


def case_backends(nsim_oneway: int, nsim_group: int, reps: int) -> dict:
    """The same pb_lrt in sequence, on loky and on Dask LocalClusters (2 workers)."""
    import contextlib

    import distributed
    import numpy as np

    from statsmodels_lmm_ext import get_blas_threads

    pairs = {
        "oneway": (_oneway_pair(), nsim_oneway),
        "group_mode_1000x6": (_group_mode_pair(), nsim_group),
    }
    out = {"blas_threads": get_blas_threads(), "loadavg_before": _loadavg(), "cases": {}}
    t0 = time.perf_counter()
    with joblib.parallel_config(backend="loky"):  # start the 2 loky workers
        joblib.Parallel(n_jobs=2)(joblib.delayed(_warm_worker)() for _ in range(2))
    out["loky_start_s"] = time.perf_counter() - t0
    with contextlib.ExitStack() as stack:
        clients = {}
        for label, processes in (("dask 2 processes", True), ("dask 2 threads", False)):
            t0 = time.perf_counter()
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=":0"
                )
            )
            clients[label] = stack.enter_context(distributed.Client(cluster))
            clients[label].run(_warm_worker)
            out[f"{label} cluster_start_s"] = time.perf_counter() - t0
        setups = {
            "sequential (n_jobs=1)": (contextlib.nullcontext, 1),
            "loky, n_jobs=2": (lambda: joblib.parallel_config(backend="loky"), 2),
        }
        for label, client in clients.items():
            setups[label] = (
                lambda c=client: joblib.parallel_config(backend="dask", client=c),
                None,
            )
        for name, ((large, small), nsim) in pairs.items():
            res = {"nsim": nsim, "timings": {}}
            ref = None
            for label, (context, n_jobs) in setups.items():

                def run(lg=large, sm=small, n=nsim, j=n_jobs):
                    return bs.pb_lrt(lg, sm, nsim=n, seed=1, n_jobs=j)

                with context():
                    m = measure(run, reps)
                pb = m.pop("result")
                ref = pb if ref is None else ref
                m["identical_to_sequential"] = bool(
                    np.array_equal(pb.ref_distribution, ref.ref_distribution)
                )
                m["joblib_prefer"] = pb.joblib_prefer
                res["timings"][label] = m
            res["pb"] = pb_summary(ref)
            out["cases"][name] = res
    out["loadavg_after"] = _loadavg()
    return out


def _loadavg() -> list[float] | None:
    try:
        with open("/proc/loadavg") as fh:
            return [float(x) for x in fh.read().split()[:3]]
    except (OSError, ValueError):
        return None


CASES = ("oneway", "ar1", "group", "backends")


def _print_oneway(t: dict, nsim: int) -> None:
    print(f"oneway ({nsim} replicates):")
    for k, v in t.items():
        if "median_s" in v:
            print(f"  {k:40s} {v['median_s']:7.3f} s (first {v['first_s']:.3f} s)")
        elif "extrapolated_s" in v:
            print(
                f"  {k:40s} {v['extrapolated_s']:7.1f} s "
                f"(extrapolated from {v['replicates_timed']} replicates)"
            )
        elif "measured_s" in v:
            print(f"  {k:40s} {v['measured_s']:7.1f} s")


def _print_backends(b: dict) -> None:
    print(f"backends (BLAS threads {b['blas_threads']}, load {b['loadavg_before']}):")
    for name, res in b["cases"].items():
        print(f"  {name} ({res['nsim']} replicates):")
        for k, v in res["timings"].items():
            print(
                f"    {k:26s} {v['median_s']:7.3f} s (first {v['first_s']:.3f} s), "
                f"identical: {v['identical_to_sequential']}"
            )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer replicates (smoke test)")
    ap.add_argument("--reps", type=int, default=3, help="repeats of each timing (median)")
    ap.add_argument("--r", action="store_true", help="also time a plain R loop (Rscript)")
    ap.add_argument("--check", action="store_true", help="exit 2 if the target is missed")
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    nsim = 200 if args.quick else 1000
    naive_n = 20 if args.quick else 100
    nsim_group = 50 if args.quick else 200
    started = datetime.now(UTC).isoformat(timespec="seconds")
    result = {
        "started_utc": started,
        "machine": machine_info(),
        "joblib": joblib.__version__,
        "target": f"oneway, {nsim} replicates, n_jobs=2: <= {TARGET_ONEWAY_SECONDS} s",
    }
    if "oneway" in args.cases:
        result["oneway"] = case_oneway(nsim, args.reps, naive_n, args.r)
    if "ar1" in args.cases:
        result["ar1_200x4"] = case_ar1(nsim, args.reps, max(5, naive_n // 5))
    if "group" in args.cases:
        result["group_mode_1000x6"] = case_group_mode(nsim_group, 1)
    if "backends" in args.cases:
        result["backends"] = case_backends(nsim, nsim_group, args.reps)
    met = None
    if "oneway" in result:
        t = result["oneway"]["timings"]
        met = t["n_jobs=2 (default)"]["median_s"] <= TARGET_ONEWAY_SECONDS
        result["target_met"] = bool(met)
    name = "bench_bootstrap" + ("_quick" if args.quick else "")
    if set(args.cases) != set(CASES):
        name += "_" + "_".join(c for c in CASES if c in args.cases)
    path = args.out or HERE / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float) + "\n")

    if "oneway" in result:
        _print_oneway(result["oneway"]["timings"], nsim)
    for name, res in result.get("ar1_200x4", {"tests": {}})["tests"].items():
        print(f"ar1_200x4, {name}:")
        for k, v in res["timings"].items():
            s = v.get("median_s", v.get("extrapolated_s"))
            print(f"  {k:40s} {s:7.2f} s")
    if "group_mode_1000x6" in result:
        g = result["group_mode_1000x6"]
        print(f"group_mode_1000x6 ({g['nsim']} replicates):")
        for k, v in g["timings"].items():
            print(f"  {k:40s} {v['median_s']:7.2f} s (joblib prefer: {v['joblib_prefer']})")
    if "backends" in result:
        _print_backends(result["backends"])
    print(f"target met: {met}; wrote {path}")
    return 2 if (args.check and met is False) else 0


if __name__ == "__main__":
    sys.exit(main())
