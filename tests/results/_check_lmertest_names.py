"""Check that lmertest_kr.json is written in patsy column order.

Run after ``cd tests/results && Rscript lmertest_kr.R``:

    python _check_lmertest_names.py [MODEL_MATRIX_DIR]

MODEL_MATRIX_DIR defaults to $LMERTEST_MM_DIR or <tmp>/lmertest_kr_mm, where
lmertest_kr.R writes R's fixed-effects model matrix (R column order and names)
for every case.  For each case this script verifies that

* ``fe_names`` equals ``smf.ols(python_formula, df).exog_names``,
* R's model matrix, with columns reordered via ``fe_names_r``, equals the
  patsy design matrix (max abs difference < 1e-10),
* the contrast matrices ``L`` (patsy order) map onto ``L_r_order`` (the matrix
  passed to lmerTest::contest) under the same permutation,
* the KRmodcomp small model formula gives a patsy design nested in the large one.
"""

import json
import os
import sys
import tempfile

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "statsmodels_lmm_ext", "datasets")


def main(mm_dir):
    with open(os.path.join(HERE, "lmertest_kr.json")) as fh:
        res = json.load(fh)
    ok = True
    for name, case in res["cases"].items():
        py = case["python"]
        df = pd.read_csv(os.path.join(DATA, py["dataset"]))
        mod = smf.ols(py["formula"], df)
        names = list(mod.exog_names)
        X_py = np.asarray(mod.exog, dtype=float)

        assert case["fe_names"] == names, (name, case["fe_names"], names)
        assert list(case["fe_params"].keys()) == names, name
        assert case["nobs"] == X_py.shape[0], name

        Xr = pd.read_csv(os.path.join(mm_dir, f"{name}_X.csv"))
        assert list(Xr.columns) == case["fe_names_r_native_order"], name
        X_r = Xr[case["fe_names_r"]].to_numpy(dtype=float)
        diff = np.max(np.abs(X_r - X_py))
        perm = [case["fe_names_r_native_order"].index(c) for c in case["fe_names_r"]]

        for cname, con in case["contests"].items():
            L = np.asarray(con["L"], dtype=float)
            Lr = np.asarray(con["L_r_order"], dtype=float)
            assert L.shape[1] == len(names), (name, cname)
            assert np.array_equal(Lr[:, perm], L), (name, cname)

        kr = case.get("krmodcomp")
        if kr is not None:
            X0 = np.asarray(smf.ols(kr["small_python_formula"], df).exog, dtype=float)
            # small design nested in large: projecting X0 on X leaves no residual
            beta, *_ = np.linalg.lstsq(X_py, X0, rcond=None)
            nest = np.max(np.abs(X_py @ beta - X0))
            assert nest < 1e-8, (name, nest)
            # KR's L annihilates the small model's column space
            Lk = np.asarray(kr["L_patsy"], dtype=float)
            assert Lk.shape[1] == len(names)

        status = "OK" if diff < 1e-10 else "FAIL"
        ok &= diff < 1e-10
        print(
            f"{name:12s} {status}  max|X_R[perm] - X_patsy| = {diff:.3g}  "
            f"p = {len(names)}  n = {X_py.shape[0]}"
        )
    print("all OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    default = os.environ.get(
        "LMERTEST_MM_DIR", os.path.join(tempfile.gettempdir(), "lmertest_kr_mm")
    )
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else default))
