"""Against SAS PROC MIXED (REML) on fev_data: tests/results/sas_fev_kr.csv (see
tests/results/README.md for its provenance).

SAS prints -2 REML log-likelihood to 1 decimal and covariance parameters to 4 significant
decimals, so those comparisons allow half a unit in the last printed digit.  The TRT estimate
is printed in full precision (rtol 1e-5).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm

SAS_CSV = Path(__file__).resolve().parent / "results" / "sas_fev_kr.csv"

STRUCTS = {
    "ar1": lambda: lmm.AR1(time="VISITN"),
    "cs": lambda: lmm.CompoundSymmetry(),
    "sp_exp": lambda: lmm.Exponential(coords=["VISITN", "VISITN2"]),
}


def sas_rows():
    sas = pd.read_csv(SAS_CSV)
    return sas[(sas.ddfm == "kr") & sas.covtype.isin(list(STRUCTS))].to_dict("records")


def parse_cov_parms(text):
    return {k: float(v) for k, v in (item.split("=") for item in text.split(";"))}


def sas_model(cov_struct):
    """The SAS listing's model: FEV1 ~ ARMCD (PBO the reference), no random effects,
    ``cov_struct`` within subject, rows with a missing FEV1 dropped."""
    fev = lmm.datasets.load("fev_data")
    fev["ARMCD"] = pd.Categorical(fev["ARMCD"], categories=["PBO", "TRT"])
    return lmm.mixedlm(
        "FEV1 ~ ARMCD",
        fev,
        groups="USUBJID",
        re_formula="0",
        cov_struct=cov_struct,
        missing="drop",
    )


def fit(covtype):
    return sas_model(STRUCTS[covtype]()).fit(reml=True)


@pytest.mark.parametrize("row", sas_rows(), ids=lambda r: r["covtype"])
def test_sas_reml_fit(row):
    res = fit(row["covtype"])
    assert res.converged
    assert res.nobs == 537
    assert_allclose(-2 * res.llf, row["m2_res_loglik"], atol=0.05 + 1e-9)
    assert_allclose(res.fe_params["ARMCD[T.TRT]"], row["trt_estimate"], rtol=1e-5)
    assert_allclose(res.fe_params["Intercept"], row["intercept_estimate"], atol=5e-5)
    parms = parse_cov_parms(row["cov_parms"])
    s2 = res.scale
    ours = {}
    if row["covtype"] == "ar1":
        ours = {"AR(1)": res.cov_struct_params["rho"], "Residual": s2}
    elif row["covtype"] == "cs":
        # SAS CS = rho * sigma^2 (common covariance), Residual = (1 - rho) * sigma^2
        rho = res.cov_struct_params["rho"]
        ours = {"CS": rho * s2, "Residual": (1 - rho) * s2}
    elif row["covtype"] == "sp_exp":
        ours = {"SP(EXP)": res.cov_struct_params["range"], "Residual": s2}
    for name, value in parms.items():
        printed_digits = len(str(value).split(".")[1]) if "." in str(value) else 0
        # half a unit of the printed digit, plus rtol 1e-5 for SAS's own convergence tolerance
        assert_allclose(ours[name], value, rtol=1e-5, atol=0.5 * 10.0**-printed_digits)
    assert np.isfinite(res.bse_fe).all()
