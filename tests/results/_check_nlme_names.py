"""Map nlme fixed-effect columns to patsy columns, verified numerically.

Called by ``nlme_structures.R`` (``python3 _check_nlme_names.py WORKDIR``).
The R script writes into WORKDIR:

* ``spec.json``: ``{case: {"dataset": stem, "python_formula": str,
  "dropna": column or null}}``
* ``<case>_X.csv``: R's ``model.matrix`` of the fixed effects, with R's
  column names, rows in the order of the (subsetted) data set CSV.

For each case this script builds the patsy design matrix with
``statsmodels.formula.api.ols(python_formula, df)``, matches every patsy
column to exactly one R column (max abs difference < 1e-10), checks that
the reordered R matrix equals the patsy matrix, and writes
``WORKDIR/mapping.json``: ``{case: {"fe_names": patsy names (patsy order),
"fe_names_r": R names in the same order, "max_abs_diff": float}}``.

The mapping is stored in ``nlme_structures.json`` (``fe_names`` and
``fe_names_r``); all R estimates there are already in patsy order.
"""

import json
import os
import sys

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(HERE, "..", "..", "statsmodels_lmm_ext", "datasets")
TOL = 1e-10


def check_case(spec):
    df = pd.read_csv(os.path.join(DATA_DIR, spec["dataset"] + ".csv"))
    if spec.get("dropna"):
        df = df[df[spec["dropna"]].notna()].reset_index(drop=True)
    model = smf.ols(spec["python_formula"], df)
    x_py = np.asarray(model.exog, dtype=float)
    names_py = list(model.exog_names)
    xr = pd.read_csv(spec["x_file"])
    names_r = list(xr.columns)
    x_r = xr.to_numpy(dtype=float)
    if x_r.shape != x_py.shape:
        raise ValueError(f"shape mismatch R {x_r.shape} vs patsy {x_py.shape}")
    order = []
    for j, name in enumerate(names_py):
        diffs = np.abs(x_r - x_py[:, [j]]).max(axis=0)
        hits = np.flatnonzero(diffs < TOL)
        if len(hits) != 1:
            raise ValueError(
                f"patsy column {name!r} matches R columns {[names_r[k] for k in hits]}"
            )
        order.append(int(hits[0]))
    if sorted(order) != list(range(len(names_r))):
        raise ValueError("column mapping is not a bijection")
    max_diff = float(np.abs(x_r[:, order] - x_py).max())
    if max_diff >= TOL:
        raise ValueError(f"reordered R matrix differs from patsy: {max_diff:g}")
    return {
        "fe_names": names_py,
        "fe_names_r": [names_r[k] for k in order],
        "max_abs_diff": max_diff,
    }


def main(workdir):
    with open(os.path.join(workdir, "spec.json")) as f:
        specs = json.load(f)
    out = {}
    for case, spec in specs.items():
        out[case] = check_case(spec)
        print(f"{case:<32s} ok  max|diff| = {out[case]['max_abs_diff']:.3g}")
    with open(os.path.join(workdir, "mapping.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
