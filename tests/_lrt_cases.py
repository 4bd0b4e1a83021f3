"""Shared cases of the likelihood-ratio and parametric-bootstrap tests against R.

Reference values: tests/results/lrt_bootstrap.json, written by tests/results/lrt_bootstrap.R
(R 4.2.2, lme4 1.1.31, nlme 3.1.162, pbkrtest 0.5.2).
"""

import warnings

import pandas as pd
import statsmodels.formula.api as smf

import statsmodels_lmm_ext as lmm

from .conftest import load_reference

REF = load_reference("lrt_bootstrap.json")["cases"]


def _data(case: str) -> pd.DataFrame:
    if case.startswith("oneway"):
        return lmm.datasets.load("oneway")
    if case.startswith("sleep"):
        return lmm.datasets.load("sleepstudy")
    d = lmm.datasets.load("fev_data")  # R: rows with non-missing FEV1
    return d[d["FEV1"].notna()].reset_index(drop=True)


def _fit(spec: dict, data: pd.DataFrame):
    """The Python model described by a JSON ``python`` spec (kind ols / mixedlm / gls)."""
    if spec["kind"] == "ols":
        return smf.ols(spec["formula"], data).fit()
    cs = lmm.AR1(time=spec["structure"]["time"]) if spec["structure"] else None
    re = spec["re_formula"] if spec["kind"] == "mixedlm" else "0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary notes are irrelevant here
        return lmm.mixedlm(
            spec["formula"], data, groups=spec["groups"], re_formula=re, cov_struct=cs
        ).fit(reml=spec["reml"])


def _cases():
    out = []
    for name, c in REF.items():
        out.append((name, c))
        if "reml" in c:
            out.append((f"{name}-reml", c["reml"]))
    return out


CASES = _cases()


def _reml_oneway():
    d = _data("oneway")
    return smf.ols("y ~ 1", d).fit(), lmm.mixedlm("y ~ 1", d, groups="group").fit()
