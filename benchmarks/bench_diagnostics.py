"""Time the residual diagnostics beyond the fit: ``res.residuals`` (every kind and type),
``res.variogram``, ``res.acf`` and ``res.plot_diagnostics`` (Agg backend).

Same simulated data as bench_fit.py's medium case (5,000 subjects x 8 visits, 10% of rows
dropped, ``y ~ C(visit) * trt``, random intercept + AR(1)).  Run:
``python benchmarks/bench_diagnostics.py [--quick]`` (``--quick``: 500 subjects).  Writes
benchmarks/results/bench_diagnostics.json (or bench_diagnostics_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import statsmodels_lmm_ext as lmm  # noqa: E402


def simulate(n_subjects: int, n_visits: int, drop: float, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), n_visits)
    visit = np.tile(np.arange(1, n_visits + 1), n_subjects)
    trt = np.where(rng.random(n_subjects) < 0.5, "PBO", "TRT")[subj]
    e = np.zeros((n_subjects, n_visits))
    e[:, 0] = rng.normal(size=n_subjects)
    for t in range(1, n_visits):
        e[:, t] = 0.5 * e[:, t - 1] + np.sqrt(0.75) * rng.normal(size=n_subjects)
    y = (
        10
        + 0.5 * visit
        - 0.5 * (trt == "TRT")
        + np.repeat(rng.normal(size=n_subjects), n_visits)
        + 1.5 * e.ravel()
    )
    d = pd.DataFrame({"subject": subj, "visit": visit, "trt": trt, "y": y})
    return d.sample(frac=1 - drop, random_state=seed) if drop else d


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(n_subjects: int, n_visits: int = 8, drop: float = 0.1) -> dict:
    d = simulate(n_subjects, n_visits, drop)
    res = lmm.mixedlm(
        "y ~ C(visit) * trt", d, groups="subject", cov_struct=lmm.AR1(time="visit")
    ).fit()
    _ = res.fittedvalues  # the BLUPs, part of the fit's results rather than the diagnostics
    out = {"rows": len(d), "subjects": n_subjects}
    for kind in ("marginal", "conditional"):
        for type_ in ("response", "pearson", "normalized"):
            out[f"residuals_{kind}_{type_}_s"] = _timed(lambda: res.residuals(kind, type_))  # noqa: B023
    out["variogram_s"] = _timed(lambda: res.variogram("pearson"))
    out["acf_s"] = _timed(lambda: res.acf("normalized"))
    out["plot_diagnostics_s"] = _timed(lambda: plt.close(res.plot_diagnostics()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 500 if args.quick else 5000
    result = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "blas_threads": lmm.get_blas_threads(),
        },
        "medium": run(n),
    }
    print(json.dumps(result, indent=2))
    name = "bench_diagnostics_quick.json" if args.quick else "bench_diagnostics.json"
    out = Path(__file__).parent / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
