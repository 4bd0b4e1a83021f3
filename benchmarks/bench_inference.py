"""Time the Type III Kenward-Roger ANOVA beyond the fit (issue: <= 1 s on 36,000 rows), and
Kenward-Roger marginal means with Tukey-adjusted pairs on the same model.

Same simulated data as bench_fit.py's medium case (5,000 subjects x 8 visits, 10% of rows
dropped, ``y ~ C(visit) * trt``, random intercept + AR(1)), and the 1,000,000-row case
(100,000 subjects x 10 visits).  Run: ``python benchmarks/bench_inference.py [--quick]``.
Writes benchmarks/results/bench_inference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

import statsmodels_lmm_ext as lmm


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


def run(n_subjects, n_visits, drop):
    d = simulate(n_subjects, n_visits, drop)
    t0 = time.perf_counter()
    m = lmm.mixedlm("y ~ C(visit) * trt", d, groups="subject", cov_struct=lmm.AR1(time="visit"))
    _ = m.engine  # built here, so that fit_s times the fit alone
    t1 = time.perf_counter()
    res = m.fit()
    t2 = time.perf_counter()
    kr = res.anova(ddf="kenward-roger")
    t3 = time.perf_counter()
    sat = res.anova(ddf="satterthwaite")
    t4 = time.perf_counter()
    em = lmm.emmeans(res, "trt", by="visit")  # KR means per visit
    emm = em.summary_frame()
    pairs = em.pairs().summary_frame()
    t5 = time.perf_counter()
    visits = lmm.emmeans(res, "visit").pairs(adjust="tukey").summary_frame()
    t6 = time.perf_counter()
    return {
        "rows": len(d),
        "model_and_engine_s": t1 - t0,
        "fit_s": t2 - t1,
        "anova_kr_s": t3 - t2,
        "anova_satterthwaite_s": t4 - t3,
        "emmeans_trt_by_visit_kr_s": t5 - t4,
        "emmeans_visit_tukey_pairs_s": t6 - t5,
        "n_visit_pairs": len(visits),
        "emmeans_trt_by_visit": emm.to_dict("records"),
        "pairs_trt_by_visit": pairs.to_dict("records"),
        "converged": bool(res.converged),
        "anova_kr": kr.reset_index().to_dict("records"),
        "anova_satterthwaite": sat.reset_index().to_dict("records"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    args = ap.parse_args()
    sizes = [(500, 8, 0.1)] if args.quick else [(5000, 8, 0.1), (100000, 10, 0.0)]
    out = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "statsmodels_lmm_ext": lmm.__version__,
        },
        "cases": [run(*s) for s in sizes],
    }
    for c in out["cases"]:
        print(
            f"{c['rows']:>9d} rows: fit {c['fit_s']:.2f} s, KR anova {c['anova_kr_s']:.2f} s, "
            f"Satterthwaite anova {c['anova_satterthwaite_s']:.2f} s, "
            f"emmeans trt|visit + pairs {c['emmeans_trt_by_visit_kr_s']:.2f} s, "
            f"Tukey pairs of {c['n_visit_pairs']} visit contrasts "
            f"{c['emmeans_visit_tukey_pairs_s']:.2f} s, "
            f"peak RSS {c['peak_rss_mb']:.0f} MB"
        )
    if not args.quick:
        path = Path(__file__).parent / "results" / "bench_inference.json"
        path.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
