#!/usr/bin/env python
"""Invariance figures of the numerical conditioning (DESIGN.md section 9, issue 11).

Usage::

    python benchmarks/bench_invariance.py  # ~20 s; writes results/bench_invariance.json

For every registered structure and every transformation of ``tests/_invariance.py`` (the suite
``tests/test_conditioning.py`` asserts the bounds 1e-8 / 1e-6), the worst relative differences of
the log-likelihood, the fixed effects and their standard errors, per structure and the worst
over structures per transformation.
"""

from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import statsmodels_lmm_ext as lmm  # noqa: E402
from tests._invariance import compare, invariance_data, transformations  # noqa: E402


def main() -> None:
    data = invariance_data()
    per, worst = {}, {}
    for cls in dict.fromkeys(lmm.COV_STRUCTS.values()):
        cs = cls.example()
        for name in transformations(cs):
            vals = dict(zip(("llf", "fe", "bse"), compare(cs, name, data), strict=True))
            per.setdefault(cls.__name__, {})[name] = vals
            w = worst.setdefault(name, {"llf": 0.0, "fe": 0.0, "bse": 0.0})
            for k, v in vals.items():
                w[k] = max(w[k], v)
    out = {"worst_by_transformation": worst, "by_structure": per, "nobs": len(data)}
    (HERE / "results" / "bench_invariance.json").write_text(json.dumps(out, indent=1) + "\n")
    for name, w in worst.items():
        print(f"{name:28s} llf {w['llf']:.1e}  fe {w['fe']:.1e}  bse {w['bse']:.1e}")


if __name__ == "__main__":
    main()
