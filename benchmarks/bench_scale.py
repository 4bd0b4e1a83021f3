#!/usr/bin/env python
"""DataFrame to results at scale: construction, engine, fit, Kenward-Roger anova and memory.

Usage::

    python benchmarks/bench_scale.py            # full run (~5-10 min on 2 cores), writes
                                                # benchmarks/results/bench_scale.json
    python benchmarks/bench_scale.py --quick    # smoke test (< 1 min)
    python benchmarks/bench_scale.py --check    # exit status 2 if a target is missed

Every measurement runs in a fresh subprocess (``--worker``), so its peak resident set size
belongs to it alone.  Two BLAS settings are measured: ``default`` (OpenBLAS's own thread count
outside the package; the package limits BLAS to ``get_blas_threads()`` = 1 thread inside the
engine) and ``blas1`` (``OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1`` for the whole
process).

Cases: the 36,000-row data of ``bench_fit.py`` (5,000 subjects x 8 visits, 10% of rows dropped)
and a scale series of 10 visits per subject, no rows dropped: 36k, 100k, 300k and 1M rows.
The model is ``y ~ C(visit) * trt``, groups ``subject``, a random intercept and AR(1) residuals
(``AR1(time="visit")``), REML.  "total" is ``lmm.mixedlm(...)`` + building the engine +
``fit()``: from the DataFrame to results.  At 1M rows the Kenward-Roger Type III anova is timed
beyond the fit (``res.anova(ddf="kenward-roger")``).

Memory (run separately from the timings): ``tracemalloc`` is started after the DataFrame is
built, so its peak is the largest amount of memory that construction + fit held at once
(numpy reports its buffers to tracemalloc), compared with the DataFrame's own size
(``df.memory_usage(deep=True).sum()``); the growth of the kernel's peak RSS (``VmHWM``,
restarted after the data were built) over the RSS then is reported too (it includes the
allocator's slack and tracemalloc's own bookkeeping).  Both are measured for the fit and again
after a Kenward-Roger Type III anova and ``emmeans(res, "trt", by="visit")``, for the model
above and with a numeric per-subject covariate (``+ base``).

statsmodels' ``smf.mixedlm`` (random intercept, independent residuals: it has no AR(1)) is
timed on the same data side by side up to 100k rows (it takes minutes beyond).

Targets (issue 13): 36k rows total <= 0.25 s; 1M rows total <= 2 s; peak memory <= 3x the
DataFrame; Kenward-Roger anova at 1M rows <= 1 s beyond the fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

FORMULA = "y ~ C(visit) * trt"
TARGETS = {"medium_total_s": 0.25, "1M_total_s": 2.0, "memory_ratio": 3.0, "1M_kr_s": 1.0}
SERIES = {"full": [3_600, 10_000, 30_000, 100_000], "quick": [360, 1_000, 3_000]}
BLAS1 = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _rss_mb(field: str = "VmRSS") -> float:
    """Resident set size (``VmRSS``) or its peak (``VmHWM``), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak RSS (``VmHWM``) from the current RSS (Linux >= 4.0), so that
    the peak is this measurement's and not the simulation's that built the data."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def worker(spec: dict) -> dict:
    """One measurement in this (fresh) process."""
    import warnings

    import numpy as np
    from bench_fit import simulate

    import statsmodels_lmm_ext as lmm

    df = simulate(spec["n_subjects"], spec["n_visits"], spec["drop"])
    formula = spec.get("formula", FORMULA)
    if "base" in formula:  # a per-subject numeric baseline covariate
        base = np.random.default_rng(1).normal(size=spec["n_subjects"])
        df["base"] = base[df["subject"].to_numpy()]
    out = {"rows": len(df), "df_mb": df.memory_usage(deep=True).sum() / 2**20}
    warm = df.iloc[: min(len(df), 2000)]
    if spec["kind"] == "statsmodels":
        import statsmodels.formula.api as smf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smf.mixedlm(FORMULA, warm, groups="subject").fit(reml=True)
            t0 = time.perf_counter()
            res = smf.mixedlm(FORMULA, df, groups="subject").fit(reml=True)
        out["total"] = time.perf_counter() - t0
        out["llf"] = float(res.llf)
        return out
    lmm.mixedlm(formula, warm, groups="subject", cov_struct=lmm.AR1(time="visit")).fit()
    rss0 = _rss_mb()
    if spec["kind"] == "memory":
        import tracemalloc

        out["peak_rss_reset"] = _reset_peak_rss()
        tracemalloc.start()
    times = []
    for _ in range(spec["reps"]):
        t0 = time.perf_counter()
        mod = lmm.mixedlm(formula, df, groups="subject", cov_struct=lmm.AR1(time="visit"))
        t1 = time.perf_counter()
        mod.engine  # noqa: B018 - builds the engine
        t2 = time.perf_counter()
        res = mod.fit()
        t3 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        if spec["kind"] == "memory":
            break
    if spec["kind"] == "memory":
        _, peak = tracemalloc.get_traced_memory()
        out["tracemalloc_peak_mb"] = peak / 2**20
        out["rss_growth_mb"] = _rss_mb("VmHWM") - rss0
        out["memory_ratio"] = out["tracemalloc_peak_mb"] / out["df_mb"]
        # what a user asks next: Kenward-Roger Type III anova and marginal means
        res.anova(ddf="kenward-roger")
        lmm.emmeans(res, "trt", by="visit")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_with_anova_emmeans_mb"] = peak / 2**20
        out["memory_ratio_with_anova_emmeans"] = peak / 2**20 / out["df_mb"]
        out["rss_growth_with_anova_emmeans_mb"] = _rss_mb("VmHWM") - rss0
        out["exog_expanded"] = mod.data.__dict__.get("_exog") is not None
        return out
    med = np.median(np.array(times), axis=0)
    out.update(construct=med[0], engine=med[1], fit=med[2], total=med[3], llf=float(res.llf))
    if spec.get("kr"):
        t0 = time.perf_counter()
        res.anova(ddf="kenward-roger")
        out["kr_anova"] = time.perf_counter() - t0
    return out


def run(spec: dict, env_extra: dict, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in BLAS1}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def exponent(rows: list[int], secs: list[float]) -> float:
    import numpy as np

    return float(np.polyfit(np.log(rows), np.log(secs), 1)[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    mode = "quick" if args.quick else "full"
    medium = {"n_subjects": 500 if args.quick else 5_000, "n_visits": 8, "drop": 0.1}
    series = SERIES[mode]
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[:3]
    result = {"load_before": load_before, "settings": {}}
    for name, env in (("default", {}), ("blas1", BLAS1)):
        rows = {}
        spec = dict(medium, kind="time", reps=args.reps)
        rows["medium"] = run(spec, env, args.timeout)
        for i, n in enumerate(series):
            last = i == len(series) - 1
            spec = {"n_subjects": n, "n_visits": 10, "drop": 0.0, "kind": "time"}
            spec.update(reps=args.reps, kr=last)
            rows[f"series_{n * 10}"] = run(spec, env, args.timeout)
        # the largest size again with a numeric per-subject covariate (``+ base``)
        spec = {"n_subjects": series[-1], "n_visits": 10, "drop": 0.0, "kind": "time"}
        spec.update(reps=args.reps, kr=True, formula=FORMULA + " + base")
        rows[f"series_{series[-1] * 10}_numeric_covariate"] = run(spec, env, args.timeout)
        ok = [rows[f"series_{n * 10}"] for n in series]
        ok = [r for r in ok if "total" in r]
        if len(ok) >= 2:
            rows["growth_exponent_total"] = exponent(
                [r["rows"] for r in ok], [r["total"] for r in ok]
            )
        result["settings"][name] = rows
        print(name, json.dumps(rows, indent=1), flush=True)
    mem = {}
    for n in series[-1:]:
        spec = {"n_subjects": n, "n_visits": 10, "drop": 0.0, "kind": "memory", "reps": 1}
        mem[f"series_{n * 10}"] = run(spec, BLAS1, args.timeout)
        # a numeric covariate: the design has ~N distinct rows and is kept as a matrix
        spec["formula"] = FORMULA + " + base"
        mem[f"series_{n * 10}_numeric_covariate"] = run(spec, BLAS1, args.timeout)
    result["memory"] = mem
    sm = {}
    for n in series[:2]:
        spec = {"n_subjects": n, "n_visits": 10, "drop": 0.0, "kind": "statsmodels"}
        sm[f"series_{n * 10}"] = run(spec, BLAS1, args.timeout)
    spec = dict(medium, kind="statsmodels")
    sm["medium"] = run(spec, BLAS1, args.timeout)
    result["statsmodels"] = sm
    with open("/proc/loadavg") as fh:
        result["load_after"] = fh.read().split()[:3]
    print(json.dumps({"memory": mem, "statsmodels": sm}, indent=1))
    out = Path(args.out or HERE / "results" / f"bench_scale{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    if not args.check or args.quick:
        return 0
    missed = []
    for name, rows in result["settings"].items():
        if rows["medium"].get("total", 1e9) > TARGETS["medium_total_s"]:
            missed.append(f"{name}: 36k total")
        big = rows.get(f"series_{series[-1] * 10}", {})
        if big.get("total", 1e9) > TARGETS["1M_total_s"]:
            missed.append(f"{name}: 1M total")
        if big.get("kr_anova", 1e9) > TARGETS["1M_kr_s"]:
            missed.append(f"{name}: 1M KR anova")
    for key, r in mem.items():
        if "covariate" not in key and r.get("memory_ratio", 1e9) > TARGETS["memory_ratio"]:
            missed.append("memory")
    print("missed:", missed or "none")
    return 2 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
