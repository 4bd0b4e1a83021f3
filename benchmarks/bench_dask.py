"""Fitting a mixed model from parquet on disk with Dask (docs/dask.rst), against memory.

Data (fixed seed, written file by file so the generator stays small): ``subject`` (int64),
``visit`` 1..10 (float), ``trt`` (categorical placebo/active, one per subject), ``x`` (a
subject-level covariate), ``y = 10 + 0.3 visit + 0.5 active + 0.2 x + b_i + e_it`` with
``b_i ~ N(0, 1)`` and AR(1) residuals (rho 0.5, sd 1.5); subjects drop out (monotone) with
probability 0.03 per visit after the second.  Each file holds whole subjects (~1M rows).

Model: ``y ~ trt * visit + x``, random intercept, ``AR1(time="visit")``, REML; then a
Kenward-Roger Type III anova and ``emmeans(res, "trt")``.

Stages timed: "construct" (the pass over the partitions: levels, then the pattern
statistics), "fit", "anova_kr", "emmeans"; the driver's peak RSS (``ru_maxrss``) and each
worker's peak RSS are reported.  The in-memory path (a pandas DataFrame of the first files,
``--memory-rows``, default 1M) is timed in a subprocess for comparison.

    python benchmarks/bench_dask.py --rows 10_000_000 [--dir /work/scratch/bench_dask]
        [--workers 2] [--keep] [--out benchmarks/results/bench_dask_10M.json]

The parquet directory is deleted at the end unless ``--keep``.  Record the load
(``/proc/loadavg``) with the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS_PER_FILE = 1_000_000
VISITS = 10
FORMULA = "y ~ trt * visit + x"


ROWS_PER_SUBJECT = 9.03  # expected rows per subject under the dropout below


def simulate_file(i: int, n_sub: int) -> pd.DataFrame:
    """``n_sub`` whole subjects; subject ids unique across files."""
    rng = np.random.default_rng([2026, i])
    sub = np.arange(n_sub) + i * 10_000_000
    # monotone dropout after visit 2
    stay = rng.random((n_sub, VISITS)) > 0.03
    stay[:, :2] = True
    stay = np.cumprod(stay, axis=1).astype(bool)
    trt = rng.random(n_sub) < 0.5
    x = rng.normal(size=n_sub)
    b = rng.normal(size=n_sub)
    e = np.empty((n_sub, VISITS))
    e[:, 0] = rng.normal(size=n_sub)
    for t in range(1, VISITS):
        e[:, t] = 0.5 * e[:, t - 1] + np.sqrt(1 - 0.25) * rng.normal(size=n_sub)
    visit = np.arange(1, VISITS + 1, dtype=float)
    y = 10 + 0.3 * visit + 0.5 * trt[:, None] + 0.2 * x[:, None] + b[:, None] + 1.5 * e
    rows = stay.ravel()
    return pd.DataFrame({
        "subject": np.repeat(sub, VISITS)[rows],
        "visit": np.tile(visit, n_sub)[rows],
        "trt": pd.Categorical(np.repeat(np.where(trt, "active", "placebo"), VISITS)[rows],
                              categories=["placebo", "active"]),
        "x": np.repeat(x, VISITS)[rows],
        "y": y.ravel()[rows],
    })  # fmt: skip


def write_data(path: Path, rows: int) -> tuple[int, float]:
    """Parquet files of about ``ROWS_PER_FILE`` rows (whole subjects) until about ``rows``."""
    path.mkdir(parents=True, exist_ok=True)
    t0, total, i = time.perf_counter(), 0, 0
    while rows - total >= 100 * VISITS:
        n_sub = max(1, int(min(ROWS_PER_FILE, rows - total) / ROWS_PER_SUBJECT))
        frame = simulate_file(i, n_sub)
        frame.to_parquet(path / f"part-{i:05d}.parquet", index=False)
        total += len(frame)
        i += 1
    return total, time.perf_counter() - t0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_dask(path: Path, workers: int) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import statsmodels_lmm_ext as lmm

    out = {}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           memory_limit="4GB", dashboard_address=None)  # fmt: skip
    with Client(cluster) as client:
        ddf = dd.read_parquet(str(path))
        out["partitions"] = ddf.npartitions
        t0 = time.perf_counter()
        model = lmm.mixedlm(FORMULA, ddf, groups="subject", cov_struct=lmm.AR1(time="visit"))
        out["construct_s"] = time.perf_counter() - t0
        out["driver_peak_mb_after_construct"] = peak_mb()
        t0 = time.perf_counter()
        res = model.fit()
        out["fit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = res.anova(ddf="kenward-roger")
        out["anova_kr_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        em = lmm.emmeans(res, "trt", ddf="kenward-roger")
        out["emmeans_s"] = time.perf_counter() - t0
        out["nobs"], out["n_groups"] = int(res.nobs), int(model.n_groups)
        out["n_patterns"] = int(model.engine.n_groups)
        out["llf"] = float(res.llf)
        out["params"] = {k: float(v) for k, v in res.params.items()}
        out["anova_den_df"] = [float(v) for v in table["den_df"]]
        out["emmeans"] = [float(v) for v in em.summary_frame()["emmean"]]
        out["worker_peak_mb"] = list(client.run(peak_mb).values())
        out["driver_peak_mb"] = peak_mb()
    cluster.close()
    out["total_s"] = out["construct_s"] + out["fit_s"]
    out["rows_per_s"] = out["nobs"] / out["total_s"]
    return out


def run_memory(path: Path, rows: int) -> dict:
    """The in-memory path on the first files (a fresh process, for its own peak RSS)."""
    code = f"""
import json, time, resource, pandas as pd, glob
import statsmodels_lmm_ext as lmm
files = sorted(glob.glob({str(path)!r} + "/*.parquet"))
parts, n = [], 0
for f in files:
    parts.append(pd.read_parquet(f)); n += len(parts[-1])
    if n >= 0.99 * {rows}: break
d = pd.concat(parts, ignore_index=True)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
m = lmm.mixedlm({FORMULA!r}, d, groups="subject", cov_struct=lmm.AR1(time="visit"))
m.engine
t1 = time.perf_counter()
r = m.fit()
t2 = time.perf_counter()
r.anova(ddf="kenward-roger")
t3 = time.perf_counter()
print(json.dumps(dict(nobs=int(r.nobs), construct_s=t1 - t0, fit_s=t2 - t1, anova_kr_s=t3 - t2,
    total_s=t2 - t0, rows_per_s=r.nobs / (t2 - t0), llf=float(r.llf),
    peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, data_peak_mb=rss0)))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=dict(os.environ))  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=float, default=10_000_000)
    ap.add_argument("--dir", default="/work/scratch/bench_dask")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-rows", type=float, default=1_000_000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    path = Path(args.dir)
    rows = int(args.rows)
    result = {"rows_requested": rows, "loadavg_start": Path("/proc/loadavg").read_text().strip(),
              "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
              "workers": args.workers}  # fmt: skip
    try:
        if path.exists():
            shutil.rmtree(path)
        result["rows_written"], result["write_s"] = write_data(path, rows)
        result["parquet_gb"] = sum(f.stat().st_size for f in path.iterdir()) / 1e9
        result["dask"] = run_dask(path, args.workers)
        result["loadavg_after_dask"] = Path("/proc/loadavg").read_text().strip()
        if args.memory_rows:
            result["memory"] = run_memory(path, int(args.memory_rows))
            d, m = result["dask"], result["memory"]
            if d["nobs"] == m["nobs"]:
                result["llf_rel_diff"] = abs(d["llf"] - m["llf"]) / abs(m["llf"])
    finally:
        if not args.keep and path.exists():
            shutil.rmtree(path)
    result["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
    text = json.dumps(result, indent=2)
    print(text)
    default = HERE / "results" / f"bench_dask_{rows // 1_000_000}M.json"
    out = Path(args.out) if args.out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
