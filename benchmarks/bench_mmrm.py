"""Unstructured-covariance MMRM fits: ours against R mmrm, timed in the same run.

Cases (simulated with a fixed seed, ``y ~ visit * trt``, unstructured residual covariance):

* ``un10_kr``: 1,000 subjects x 10 visits with monotone dropout (~8,600 rows); REML fit and a
  Kenward-Roger t-test of the treatment effect at the last visit, from the DataFrame to the
  df (R mmrm: ``mmrm(..., method = "Kenward-Roger")`` and ``df_1d``; also Satterthwaite).
* ``un8_fit``: 5,000 subjects x 8 visits, 10% of rows dropped at random (36,000 rows); the
  REML fit from the DataFrame (R mmrm: ``mmrm(...)``, Satterthwaite, the default).

The median of ``--reps`` repeats is reported (with the stages: construct, fit, test); R is
run through ``Rscript`` on the same CSV.  The 1-minute load average is recorded: on the shared
2-core machine other processes inflate the timings.
Writes ``benchmarks/results/bench_mmrm.json``.

    python benchmarks/bench_mmrm.py [--reps 3] [--skip-r]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import statsmodels_lmm_ext as lmm

HERE = Path(__file__).resolve().parent

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mmrm))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$visit <- factor(d$visit, levels = sort(unique(d$visit)))
d$trt <- factor(d$trt, levels = c("placebo", "active"))
d$subject <- factor(d$subject)
reps <- as.integer(args[2]); methods <- strsplit(args[3], ",")[[1]]
out <- list()
for (m in methods) {
  times <- c(); df <- NA; ll <- NA
  for (r in seq_len(reps)) {
    t0 <- proc.time()[["elapsed"]]
    fit <- mmrm(y ~ visit * trt + us(visit | subject), data = d, method = m)
    if (args[4] == "test") {
      b <- coef(fit); L <- numeric(length(b))
      L[names(b) == "trtactive"] <- 1
      L[names(b) == paste0("visit", levels(d$visit)[nlevels(d$visit)], ":trtactive")] <- 1
      df <- df_1d(fit, L)$df
    }
    times <- c(times, proc.time()[["elapsed"]] - t0)
    ll <- as.numeric(logLik(fit))
  }
  out[[m]] <- c(median = median(times), df = df, loglik = ll)
}
for (m in names(out)) cat(m, sprintf("%.12g", out[[m]]), "\n")
"""


def simulate(n_subj: int, n_visits: int, *, dropout: str, seed: int) -> pd.DataFrame:
    """Trials with an unstructured covariance (sds rising, correlation 0.8^lag + 0.1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_visits)
    sd = 1.0 + 0.15 * t
    corr = 0.8 ** np.abs(t[:, None] - t[None, :]) * 0.9 + 0.1 * np.eye(n_visits)
    corr[np.diag_indices(n_visits)] = 1.0
    cov = corr * np.outer(sd, sd)
    active = rng.random(n_subj) < 0.5
    mean = 10 + 0.3 * t[None, :] + active[:, None] * (0.2 + 0.1 * t[None, :])
    y = mean + rng.multivariate_normal(np.zeros(n_visits), cov, size=n_subj)
    keep = np.ones((n_subj, n_visits), bool)
    if dropout == "monotone":
        # a subject leaves after each visit with probability 3%
        last = np.minimum(rng.geometric(0.03, n_subj), n_visits)
        keep = t[None, :] < last[:, None]
    else:
        keep = rng.random((n_subj, n_visits)) >= 0.10
        keep[:, 0] |= ~keep.any(axis=1)
    subj, vis = np.nonzero(keep)
    return pd.DataFrame(
        {
            "subject": subj,
            "visit": [f"V{v + 1:02d}" for v in vis],
            "trt": np.where(active[subj], "active", "placebo"),
            "y": y[subj, vis],
        }
    )


def ours(d: pd.DataFrame, test: bool) -> tuple[float, float, float, dict]:
    """Seconds from the DataFrame to the fit (and the KR df), the df, the llf, and the
    stages' seconds (construct, fit, test)."""
    t0 = time.perf_counter()
    d = d.copy()
    d["trt"] = pd.Categorical(d["trt"], categories=["placebo", "active"])
    m = lmm.mixedlm(
        "y ~ visit * trt",
        d,
        groups="subject",
        re_formula="0",
        cov_struct=lmm.Unstructured(time="visit"),
    )
    t1 = time.perf_counter()
    res = m.fit(reml=True)
    t2 = time.perf_counter()
    df = np.nan
    if test:
        names = list(res.fe_params.index)
        L = np.zeros((1, len(names)))
        last = sorted(d["visit"].unique())[-1]
        L[0, names.index("trt[T.active]")] = 1.0
        L[0, names.index(f"visit[T.{last}]:trt[T.active]")] = 1.0
        df = float(res.t_test(L, ddf="kenward-roger").df_denom[0])
    t3 = time.perf_counter()
    stages = {"construct": t1 - t0, "fit": t2 - t1, "test": t3 - t2}
    return t3 - t0, df, float(res.llf), stages


def run_r(d: pd.DataFrame, reps: int, methods: list[str], test: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        script = Path(tmp) / "bench.R"
        d.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(
            ["Rscript", str(script), str(csv), str(reps), ",".join(methods),
             "test" if test else "fit"],
            capture_output=True, text=True, check=True, timeout=3600,
        )  # fmt: skip
    res = {}
    for line in out.stdout.strip().splitlines():
        parts = line.split()
        name = " ".join(parts[:-3])
        vals = [float("nan") if v == "NA" else float(v) for v in parts[-3:]]
        res[name] = dict(zip(("seconds", "df", "loglik"), vals, strict=True))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-r", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_mmrm.json"))
    a = ap.parse_args(argv)
    cases = {
        "un10_kr": (simulate(1000, 10, dropout="monotone", seed=1), True),
        "un8_fit": (simulate(5000, 8, dropout="random", seed=2), False),
    }
    report = {"python": sys.version.split()[0], "numpy": np.__version__, "cases": {}}
    for name, (d, test) in cases.items():
        ours(d, test)  # warm-up (imports, caches)
        runs = [ours(d, test) for _ in range(a.reps)]
        entry = {
            "rows": len(d),
            "subjects": int(d["subject"].nunique()),
            "load_average_1min": os.getloadavg()[0],
            "ours_seconds": float(np.median([r[0] for r in runs])),
            "ours_stage_seconds": {
                k: float(np.median([r[3][k] for r in runs])) for k in runs[0][3]
            },
            "ours_kr_df": runs[0][1],
            "ours_loglik": runs[0][2],
        }
        if not a.skip_r:
            methods = ["Kenward-Roger", "Satterthwaite"] if test else ["Satterthwaite"]
            entry["mmrm"] = run_r(d, 1 if test else a.reps, methods, test)
        report["cases"][name] = entry
        print(name, json.dumps(entry), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
