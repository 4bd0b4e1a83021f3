#!/usr/bin/env python
"""Speed and memory benchmark of ``statsmodels_lmm_ext.MixedLM`` fits.

Usage::

    python benchmarks/bench_fit.py            # full run (~3-5 min on 2 cores), writes
                                              # benchmarks/results/bench_fit.json
    python benchmarks/bench_fit.py --quick    # smoke test (< 30 s), writes
                                              # benchmarks/results/bench_fit_quick.json
    python benchmarks/bench_fit.py --profile  # also writes cProfile reports
                                              # benchmarks/results/profiles/profile_*.txt
    python benchmarks/bench_fit.py --check    # exit status 2 if a target is missed

Every measurement runs in a fresh subprocess (``--worker``), so its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that measurement alone.  The data are
simulated with a fixed seed per case, so every subprocess of a case fits the same data (a hash
of the response is recorded to show it).

Cases (full / ``--quick``):

``medium``
    5,000 (500) subjects x 8 visits, 10% of rows dropped at random; ``y ~ C(visit) * trt``,
    REML, random intercept + AR(1) residuals (ours), random intercept + independent residuals
    (ours and ``statsmodels.formula.api.mixedlm``).  Targets: our AR(1) fit <= 0.5 s and >= 5x
    faster than statsmodels' random-intercept fit; our Independence llf equal to statsmodels'
    to 1e-6 relative.
``large``
    100,000 (10,000) subjects x 10 visits, no rows dropped (1,000,000 rows): model
    construction, engine build, fit and peak RSS.
``large_drop``
    As ``large`` with 10% of rows dropped at random (more distinct visit patterns).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FORMULA = "y ~ C(visit) * trt"
SEED = 20240601

CASES = {
    "full": {
        "medium": {"n_subjects": 5_000, "n_visits": 8, "drop": 0.10},
        "large": {"n_subjects": 100_000, "n_visits": 10, "drop": 0.0},
        "large_drop": {"n_subjects": 100_000, "n_visits": 10, "drop": 0.10},
    },
    "quick": {
        "medium": {"n_subjects": 500, "n_visits": 8, "drop": 0.10},
        "large": {"n_subjects": 5_000, "n_visits": 10, "drop": 0.0},
        "large_drop": {"n_subjects": 5_000, "n_visits": 10, "drop": 0.10},
    },
}

TARGET_FIT_SECONDS = 0.5
TARGET_SPEEDUP = 5.0
TARGET_LLF_RELDIFF = 1e-6


# --------------------------------------------------------------------------- data
def simulate(n_subjects: int, n_visits: int, drop: float, seed: int = SEED):
    """Longitudinal trial data: random intercept (sd 1) + AR(1) residuals (rho 0.5, sd 1.5).

    ``visit`` is 1..n_visits (numeric; the formula uses ``C(visit)``), ``trt`` a per-subject
    string factor ("placebo"/"active"), ``subject`` an integer id.  Mean:
    ``10 + 0.3 visit + 0.5 [active] + 0.15 visit [active]``.  A fraction ``drop`` of rows is
    removed at random (not whole subjects).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_subjects), n_visits)
    visit = np.tile(np.arange(1, n_visits + 1), n_subjects)
    active = rng.integers(0, 2, n_subjects)
    b = rng.normal(0.0, 1.0, n_subjects)
    rho, sd = 0.5, 1.5
    z = rng.standard_normal((n_subjects, n_visits))
    e = np.empty_like(z)
    e[:, 0] = sd * z[:, 0]
    innov = sd * np.sqrt(1.0 - rho**2)
    for t in range(1, n_visits):
        e[:, t] = rho * e[:, t - 1] + innov * z[:, t]
    a = active[subject]
    y = 10.0 + 0.3 * visit + 0.5 * a + 0.15 * visit * a + b[subject] + e.ravel()
    df = pd.DataFrame(
        {
            "subject": subject,
            "visit": visit,
            "trt": np.where(a == 1, "active", "placebo"),
            "y": y,
        }
    )
    if drop:
        n_keep = int(round(len(df) * (1.0 - drop)))
        keep = np.sort(rng.permutation(len(df))[:n_keep])
        df = df.iloc[keep].reset_index(drop=True)
    return df


# ------------------------------------------------------------------------ helpers
def maxrss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float | None:
    """Current resident set size, MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _cpu_times() -> list[int] | None:
    """Aggregate CPU jiffies from /proc/stat (user nice system idle iowait irq softirq steal)."""
    try:
        with open("/proc/stat") as fh:
            return [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def _loadavg() -> list[float] | None:
    try:
        with open("/proc/loadavg") as fh:
            return [float(v) for v in fh.read().split()[:3]]
    except (OSError, ValueError):
        return None


def data_hash(df) -> str:
    h = hashlib.sha1()
    h.update(df["y"].to_numpy().tobytes())
    h.update(df["subject"].to_numpy().tobytes())
    h.update(df["visit"].to_numpy().tobytes())
    return h.hexdigest()[:16]


def machine_info() -> dict:
    import numpy as np
    import pandas as pd
    import patsy
    import scipy
    import statsmodels

    import statsmodels_lmm_ext

    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_total = round(int(line.split()[1]) / 1024**2, 1)
                    break
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001
        blas = None

    def git(*args):
        try:
            out = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30
            )
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    diff = git("diff", "HEAD", "--", "statsmodels_lmm_ext")
    untracked = git("ls-files", "--others", "--exclude-standard", "statsmodels_lmm_ext")
    return {
        "nproc": os.cpu_count(),
        "nproc_affinity": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "cpu_model": cpu,
        "mem_total_gib": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "patsy": patsy.__version__,
        "statsmodels": statsmodels.__version__,
        "statsmodels_lmm_ext": statsmodels_lmm_ext.__version__,
        "blas": blas,
        "thread_env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "package_dirty": bool(diff) or bool(untracked),
        "package_diff_sha1": hashlib.sha1((diff or "").encode()).hexdigest()[:12]
        if diff
        else None,
    }


# ------------------------------------------------------------------------ workers
def _warning_texts(caught) -> list[str]:
    return [f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught]


def _profile_to_file(fn, path: Path, title: str, lines: int = 40):
    import cProfile
    import io
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    out = fn()
    pr.disable()
    buf = io.StringIO()
    buf.write(f"# {title}\n")
    st = pstats.Stats(pr, stream=buf)
    st.sort_stats("cumulative").print_stats(lines)
    buf.write("\n# by internal time\n")
    st.sort_stats("tottime").print_stats(25)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())
    return out


def worker_ours(spec: dict) -> dict:
    import numpy as np

    import statsmodels_lmm_ext as lmm

    case = spec["case"]
    t0 = time.perf_counter()
    df = simulate(**case)
    out = {
        "rows": len(df),
        "subjects": int(df["subject"].nunique()),
        "data_hash": data_hash(df),
        "simulate_s": time.perf_counter() - t0,
        "rss_after_data_mb": rss_mb(),
        "maxrss_after_data_mb": maxrss_mb(),
    }
    out["package_file"] = lmm.__file__
    cov = spec["cov"]

    def make_cs():
        return lmm.AR1(time="visit") if cov == "ar1" else lmm.Independence()

    reps = []
    res = m = None
    for r in range(spec["reps"]):
        del res, m
        gc.collect()
        rep = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            m = lmm.mixedlm(FORMULA, df, groups="subject", re_formula="1", cov_struct=make_cs())
            t1 = time.perf_counter()
            mark_construct = maxrss_mb()
            eng = m.engine
            t2 = time.perf_counter()
            mark_engine = maxrss_mb()
            res = m.fit(reml=True)
            t3 = time.perf_counter()
            mark_fit = maxrss_mb()
        rep.update(construct_s=t1 - t0, engine_s=t2 - t1, fit_s=t3 - t2, total_s=t3 - t0)
        rep["warnings"] = _warning_texts(caught)
        reps.append(rep)
        if r == 0:
            # ru_maxrss is the process peak so far: these marks show which stage sets it
            out["maxrss_after_construct_mb"] = mark_construct
            out["maxrss_after_engine_mb"] = mark_engine
            out["maxrss_after_fit_mb"] = mark_fit
            out["engine_mode"] = eng.mode
            out["engine_chunks"] = len(eng.chunks)
            out["engine_units"] = int(sum(len(ch.weight) for ch in eng.chunks))
        del eng

    def med(key):
        return statistics.median(rp[key] for rp in reps)

    out.update(
        reps=reps,
        construct_s=med("construct_s"),
        engine_s=med("engine_s"),
        fit_s=med("fit_s"),
        total_s=med("total_s"),
        fit_s_min=min(rp["fit_s"] for rp in reps),
        llf=float(res.llf),
        converged=bool(res.converged),
        optimizer_history=[
            {k: (float(v) if isinstance(v, np.floating) else v) for k, v in h.items()}
            for h in res.hist
        ],
        fe_params=[float(v) for v in np.asarray(res.fe_params)],
        group_var=float(np.asarray(res.cov_re).ravel()[0]),
        scale=float(res.scale),
        cov_struct_params={k: float(v) for k, v in res.cov_struct_params.items()},
        peak_rss_mb=maxrss_mb(),
    )

    if spec.get("profile"):
        # Profile a fresh model: construction, engine build and fit separately.
        prof_dir = Path(spec["profile_dir"])
        tag = f"{spec['case_name']}_{cov}"
        m2 = _profile_to_file(
            lambda: lmm.mixedlm(
                FORMULA, df, groups="subject", re_formula="1", cov_struct=make_cs()
            ),
            prof_dir / f"profile_{tag}_construct.txt",
            f"model construction, {tag}, {len(df)} rows",
        )
        _profile_to_file(
            lambda: m2.engine, prof_dir / f"profile_{tag}_engine.txt", f"engine build, {tag}"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _profile_to_file(
                lambda: m2.fit(reml=True), prof_dir / f"profile_{tag}_fit.txt", f"fit, {tag}"
            )
    return out


def worker_statsmodels(spec: dict) -> dict:
    import numpy as np
    import statsmodels.formula.api as smf

    case = spec["case"]
    df = simulate(**case)
    out = {"rows": len(df), "data_hash": data_hash(df), "maxrss_after_data_mb": maxrss_mb()}
    reps = []
    res = m = None
    for _ in range(spec["reps"]):
        del res, m
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            m = smf.mixedlm(FORMULA, df, groups="subject")
            t1 = time.perf_counter()
            res = m.fit(reml=True)
            t2 = time.perf_counter()
        reps.append(
            {
                "construct_s": t1 - t0,
                "fit_s": t2 - t1,
                "total_s": t2 - t0,
                "warnings": _warning_texts(caught),
            }
        )
    out.update(
        reps=reps,
        construct_s=statistics.median(r["construct_s"] for r in reps),
        fit_s=statistics.median(r["fit_s"] for r in reps),
        total_s=statistics.median(r["total_s"] for r in reps),
        llf=float(res.llf),
        converged=bool(res.converged),
        fe_params=[float(v) for v in np.asarray(res.fe_params)],
        group_var=float(np.asarray(res.cov_re).ravel()[0]),
        scale=float(res.scale),
        peak_rss_mb=maxrss_mb(),
    )
    return out


WORKERS = {"ours": worker_ours, "statsmodels": worker_statsmodels}


def run_worker(spec: dict, timeout: float) -> dict:
    """Run one measurement in a fresh interpreter; return its JSON (or the error)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    label = f"{spec['kind']}:{spec['case_name']}:{spec.get('cov', 'sm')}"
    print(f"  running {label} ...", flush=True)
    load_before = _loadavg()
    cpu0 = _cpu_times()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_s": timeout}
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "error": f"worker exited with {proc.returncode}",
            "stderr_tail": proc.stderr[-3000:],
            "wall_s": wall,
        }
    out = json.loads(lines[-1])
    out["wall_s"] = wall
    # Machine noise indicators: load average before the run and, over the run, the share of
    # CPU time stolen by the hypervisor and the busy share of all cores (ours is ~1 core + BLAS).
    out["loadavg_before"] = load_before
    cpu1 = _cpu_times()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out["worker_cpu_s"] = round(own_cpu, 3)
    if cpu0 and cpu1:
        d = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
        tot = sum(d) or 1
        out["cpu_steal_frac"] = round(d[7] / tot, 4)
        out["cpu_busy_frac"] = round(1 - (d[3] + d[4]) / tot, 4)
        # CPU used by other processes during the measurement, in cores (> ~0.1: contended)
        busy_s = (tot - d[3] - d[4]) / os.sysconf("SC_CLK_TCK")
        out["other_cpu_cores"] = round(max(busy_s - own_cpu, 0.0) / wall, 3)
    return out


# --------------------------------------------------------------------------- main
def _fmt(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test, < 30 s)")
    ap.add_argument("--out", type=Path, help="output JSON path")
    ap.add_argument("--reps", type=int, default=3, help="repeats of our medium fits (median)")
    ap.add_argument("--sm-reps", type=int, default=None, help="repeats of the statsmodels fit")
    ap.add_argument("--large-reps", type=int, default=3, help="repeats of the 1M-row fits")
    ap.add_argument("--skip-large", action="store_true", help="skip the 1M-row cases")
    ap.add_argument(
        "--skip-large-drop", action="store_true", help="skip the 1M rows, 10%% drop case"
    )
    ap.add_argument("--profile", action="store_true", help="write cProfile reports")
    ap.add_argument(
        "--check", action="store_true", help="exit 2 if a medium-case target is missed"
    )
    ap.add_argument("--timeout", type=float, default=1800.0, help="per-measurement timeout, s")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        spec = json.loads(args.worker)
        try:
            out = WORKERS[spec["kind"]](spec)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            return 1
        print(json.dumps(out))
        return 0

    mode = "quick" if args.quick else "full"
    cases = CASES[mode]
    sm_reps = args.sm_reps or (1 if args.quick else 2)
    out_path = args.out or HERE / "results" / (
        "bench_fit_quick.json" if args.quick else "bench_fit.json"
    )
    prof_dir = out_path.parent / ("profiles_quick" if args.quick else "profiles")
    t_start = time.perf_counter()
    print(f"bench_fit ({mode}) -> {out_path}", flush=True)

    def spec(kind, case_name, reps, cov=None, profile=False):
        s = {"kind": kind, "case_name": case_name, "case": cases[case_name], "reps": reps}
        if cov:
            s["cov"] = cov
        if profile:
            s["profile"] = True
            s["profile_dir"] = str(prof_dir)
        return s

    results = {
        "benchmark": "bench_fit",
        "mode": mode,
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "formula": FORMULA,
        "seed": SEED,
        "machine": machine_info(),
        "cases": cases,
        "measurements": {},
    }
    meas = results["measurements"]

    # 1. medium: ours (AR1, Independence) vs statsmodels
    meas["medium_ours_ar1"] = run_worker(
        spec("ours", "medium", args.reps, "ar1", args.profile), args.timeout
    )
    meas["medium_ours_independence"] = run_worker(
        spec("ours", "medium", args.reps, "independence"), args.timeout
    )
    meas["medium_statsmodels"] = run_worker(spec("statsmodels", "medium", sm_reps), args.timeout)

    # 2. large: 1M rows (and 900k rows with 10% dropped)
    if not args.skip_large:
        meas["large_ours_ar1"] = run_worker(
            spec("ours", "large", args.large_reps, "ar1", args.profile), args.timeout
        )
        if not args.skip_large_drop:
            meas["large_drop_ours_ar1"] = run_worker(
                spec("ours", "large_drop", args.large_reps, "ar1", args.profile), args.timeout
            )

    # summary
    ar1 = meas["medium_ours_ar1"]
    ind = meas["medium_ours_independence"]
    sm = meas["medium_statsmodels"]
    summ = {}
    ok = all("error" not in x for x in (ar1, ind, sm))
    if ok:
        summ["same_data"] = ar1["data_hash"] == ind["data_hash"] == sm["data_hash"]
        summ["medium_rows"] = ar1["rows"]
        summ["ours_ar1_fit_s"] = ar1["fit_s"]
        summ["ours_ar1_total_s"] = ar1["total_s"]
        summ["ours_independence_fit_s"] = ind["fit_s"]
        summ["ours_independence_total_s"] = ind["total_s"]
        summ["statsmodels_fit_s"] = sm["fit_s"]
        summ["statsmodels_total_s"] = sm["total_s"]
        summ["speedup_fit_ar1_vs_statsmodels"] = sm["fit_s"] / ar1["fit_s"]
        summ["speedup_total_ar1_vs_statsmodels"] = sm["total_s"] / ar1["total_s"]
        summ["speedup_fit_independence_vs_statsmodels"] = sm["fit_s"] / ind["fit_s"]
        d = ind["llf"] - sm["llf"]
        summ["llf_independence_ours"] = ind["llf"]
        summ["llf_statsmodels"] = sm["llf"]
        summ["llf_abs_diff"] = d
        summ["llf_rel_diff"] = abs(d) / abs(sm["llf"])
        summ["fe_params_max_abs_diff"] = max(
            abs(a - b) for a, b in zip(ind["fe_params"], sm["fe_params"], strict=True)
        )
        summ["group_var_rel_diff"] = abs(ind["group_var"] - sm["group_var"]) / sm["group_var"]
        summ["scale_rel_diff"] = abs(ind["scale"] - sm["scale"]) / sm["scale"]
        summ["ours_ar1_converged"] = ar1["converged"]
        summ["ours_ar1_rho"] = ar1["cov_struct_params"].get("rho")
        summ["targets"] = {
            "fit_le_0.5s": ar1["fit_s"] <= TARGET_FIT_SECONDS,
            "speedup_ge_5x": summ["speedup_fit_ar1_vs_statsmodels"] >= TARGET_SPEEDUP,
            "llf_rel_le_1e-6": summ["llf_rel_diff"] <= TARGET_LLF_RELDIFF,
        }
    for key in ("large_ours_ar1", "large_drop_ours_ar1"):
        x = meas.get(key)
        if x and "error" not in x:
            summ[key] = {
                "rows": x["rows"],
                "construct_s": x["construct_s"],
                "engine_s": x["engine_s"],
                "fit_s": x["fit_s"],
                "total_s": x["total_s"],
                "fit_s_reps": [r["fit_s"] for r in x["reps"]],
                "peak_rss_mb": x["peak_rss_mb"],
                "peak_rss_mb_first_rep": x["maxrss_after_fit_mb"],
                "maxrss_after_data_mb": x["maxrss_after_data_mb"],
                "converged": x["converged"],
                "engine_mode": x["engine_mode"],
                "engine_units": x["engine_units"],
            }
    others = [x["other_cpu_cores"] for x in meas.values() if "other_cpu_cores" in x]
    summ["max_other_cpu_cores"] = max(others) if others else None
    results["summary"] = summ
    results["elapsed_s"] = time.perf_counter() - t_start
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")

    # console report
    print()
    for name, x in meas.items():
        if "error" in x:
            print(f"{name:28s} ERROR: {x['error']}\n{x.get('stderr_tail', '')}")
            continue
        eng = f"engine={_fmt(x['engine_s'])}s " if "engine_s" in x else ""
        line = (
            f"{name:28s} rows={x['rows']:>9,d} construct={_fmt(x.get('construct_s'))}s "
            f"{eng}fit={_fmt(x['fit_s'])}s "
            f"total={_fmt(x['total_s'])}s peakRSS={x['peak_rss_mb']:.0f}MiB "
            f"llf={x['llf']:.6f} conv={x['converged']}"
        )
        print(line)
    if ok:
        print(
            f"\nspeed-up (fit) AR1 vs statsmodels: {summ['speedup_fit_ar1_vs_statsmodels']:.2f}x; "
            f"llf(Independence) - llf(statsmodels) = {summ['llf_abs_diff']:.3g} "
            f"(rel {summ['llf_rel_diff']:.2g}); targets: {summ['targets']}"
        )
    if others and max(others) > 0.2:
        print(
            f"WARNING: other processes used up to {max(others):.2f} cores during a measurement; "
            "timings are inflated (see other_cpu_cores in the JSON)"
        )
    print(f"elapsed {results['elapsed_s']:.1f} s; wrote {out_path}")
    failed = [k for k, x in meas.items() if "error" in x]
    if failed:
        return 1
    if args.check and not all(summ.get("targets", {}).values()):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
