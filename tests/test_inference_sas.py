"""Kenward-Roger against SAS PROC MIXED (tests/results/sas_fev_kr.csv).

SAS's ddfm=kr uses the observed information (information="observed").  Tolerances: estimate
rtol 1e-5, SE and df rtol 1e-4 (the issue's).  For CS, SAS parameterises the structure
linearly (CS, Residual) so its second-derivative term is zero (its kr and kr(linear) SEs are
equal); ours is (sigma^2, rho), in which V is not linear, and the full KR SE differs from SAS's
by 6.5e-5 relative — inside the tolerance, and documented in the inference guide.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from tests.test_sas_reference import SAS_CSV, fit


def rows():
    sas = pd.read_csv(SAS_CSV)
    return sas[sas.covtype.isin(["ar1", "cs", "sp_exp"])].to_dict("records")


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r['covtype']}-{r['ddfm']}")
def test_sas_kenward_roger_trt(row):
    res = fit(row["covtype"])
    ddf = "kenward-roger" if row["ddfm"] == "kr" else "kenward-roger-linear"
    t = res.t_test(np.array([[0.0, 1.0]]), ddf=ddf, information="observed")
    assert_allclose(t.effect[0], row["trt_estimate"], rtol=1e-5)
    assert_allclose(t.sd[0], row["trt_se"], rtol=1e-4)
    assert_allclose(t.df_denom[0], row["trt_df"], rtol=1e-4)
    # t, CI and p inherit the SE's error; CS full KR (see above) gets twice the budget
    rtol = 2e-4 if row["covtype"] == "cs" and ddf == "kenward-roger" else 1e-4
    assert_allclose(t.tvalue[0], row["trt_t"], rtol=rtol)
    ci = t.conf_int(alpha=0.05)[0]
    assert_allclose(ci, [row["trt_lower"], row["trt_upper"]], rtol=rtol)
    assert_allclose(np.log(t.pvalue), np.log(row["trt_p"]), rtol=rtol)


@pytest.mark.parametrize("covtype", ["ar1", "cs", "sp_exp"])
def test_kenward_roger_default_information_is_sas(covtype):
    """Without information=, Kenward-Roger on a model with a residual structure uses the
    observed information, as SAS PROC MIXED (and mmrm): SAS's df, SE and t, same tolerances
    as above.  The expected information (pbkrtest's choice, kept for G-side models) gives
    other df here: 220.5 instead of SAS's 188.5 for AR(1), 175.9 instead of 177.0 for CS."""
    row = next(r for r in rows() if r["covtype"] == covtype and r["ddfm"] == "kr")
    res = fit(covtype)
    L = np.array([[0.0, 1.0]])
    t = res.t_test(L, ddf="kenward-roger")
    assert t.information == "observed"
    assert_allclose(t.df_denom[0], row["trt_df"], rtol=1e-4)
    assert_allclose(t.sd[0], row["trt_se"], rtol=1e-4)
    assert_allclose(t.tvalue[0], row["trt_t"], rtol=2e-4 if covtype == "cs" else 1e-4)
    f = res.f_test(L, ddf="kenward-roger")
    aov = res.anova(ddf="kenward-roger")
    kr = lmm.kenward_roger_test(res, L)
    df = [f.df_denom, aov.loc["ARMCD", "den_df"], kr.df_denom]
    assert_allclose(df, row["trt_df"], rtol=1e-4)
    assert aov.attrs["information"] == kr.information == "observed"
    expected = res.t_test(L, ddf="kenward-roger", information="expected")
    assert abs(expected.df_denom[0] / row["trt_df"] - 1) > 5e-3  # 0.6% (CS) to 17% (AR(1))
    # emmeans' default (Kenward-Roger for REML fits) inherits the default
    em = lmm.emmeans(res, "ARMCD")
    pairs = em.pairs()
    assert_allclose(pairs.df, row["trt_df"], rtol=1e-4)
    assert_allclose(pairs.se, row["trt_se"], rtol=1e-4)
