"""Kenward-Roger against SAS PROC MIXED at SAS's own covariance parameters (CSH, ARH(1), TOEP,
UN on fev_data; ``tests/results/sas_fev_kr.csv``, see tests/results/README.md).

At our optimum the KR SE and df miss the issue's 1e-4 slightly for CSH (SE 1.2e-4, df 3.7e-4)
and UN (df 2.7e-4) (``tests/test_mmrm_structures.py::test_against_sas``).  The cause is SAS's
convergence, not our KR: SAS's printed covariance parameters have a lower REML log-likelihood
than ours (CSH by 4.1e-6, UN by 2.5e-6), and our KR evaluated at SAS's printed parameters
(observed information, as SAS) agrees with SAS's KR to 1.4e-6 (SE) and 4.6e-6 (df) for CSH
and 2.5e-7 / 2.1e-6 for UN; all rows to 1e-5 (SE) and 6.7e-5 (df).  The printed parameters are
rounded (4-6 significant digits): half a printed digit in every parameter moves the KR SE by
at most 2.1e-5 and the df by 3.7e-5 (relative, ARH(1); first-order sum over the parameters,
measured once), which is the precision this comparison can reach; the tolerance is the
issue's 1e-4.  With the expected information instead, the same comparison misses by 7e-3
(SE) and up to 0.1 (df): SAS's KR uses the observed information for these structures.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from statsmodels_lmm_ext.inference import contrasts
from statsmodels_lmm_ext.inference.variance_model import VarianceModel
from tests.test_mmrm_structures import sas_model, sas_parms, sas_rows

L = np.array([[0.0, 1.0]])
_FITS = {}


def fitted(covtype):
    if covtype not in _FITS:
        model = sas_model(covtype)
        _FITS[covtype] = (model, model.fit(reml=True))
    return _FITS[covtype]


def kr_at(model, theta, fe_names, ddf, information="observed"):
    """The KR t test of TRT at the covariance parameters ``theta`` = (sigma^2, structure)."""
    beta = model.engine.profile_one(np.zeros(0), theta[1:], True)["beta"]
    vm = VarianceModel(
        model.engine, model.cov_params_spec, beta, np.zeros((0, 0)), np.zeros(0),
        theta[0], theta[1:], True,
    )  # fmt: skip
    return contrasts.t_test(vm, fe_names, L, ddf, information)


def sas_theta(model, res, row):
    names, _, theta_of_phi, _ = model.cov_struct.reported(res.scale, res.cov_struct_params.values)
    parms = sas_parms(row["cov_parms"])
    return np.real(theta_of_phi(np.array([parms[n] for n in names])))


@pytest.mark.parametrize("row", sas_rows(), ids=lambda r: f"{r['covtype']}-{r['ddfm']}")
def test_kr_at_sas_parameters_matches_sas(row):
    model, res = fitted(row["covtype"])
    theta = sas_theta(model, res, row)
    ddf = "kenward-roger" if row["ddfm"] == "kr" else "kenward-roger-linear"
    fe = list(res.fe_params.index)
    t = kr_at(model, theta, fe, ddf)
    assert_allclose(t.effect[0], row["trt_estimate"], rtol=1e-5)
    assert_allclose(t.sd[0], row["trt_se"], rtol=1e-4)
    assert_allclose(t.df_denom[0], row["trt_df"], rtol=1e-4)
    # SAS's point is a worse optimum than ours, and it, not our KR, explains the distance
    # at our optimum: at SAS's parameters we are closer to SAS's KR than at ours
    at_sas = model.loglike(np.concatenate([res.fe_params.values, theta[1:]]))
    assert at_sas < res.llf
    ours = res.t_test(L, ddf=ddf)
    err_sas = abs(t.df_denom[0] / row["trt_df"] - 1)
    assert err_sas < abs(ours.df_denom[0] / row["trt_df"] - 1)


@pytest.mark.parametrize("covtype", ["csh", "un"])
def test_sas_uses_the_observed_information(covtype):
    """The expected information would miss SAS's KR by far more than 1e-4."""
    row = next(r for r in sas_rows() if r["covtype"] == covtype and r["ddfm"] == "kr")
    model, res = fitted(covtype)
    theta = sas_theta(model, res, row)
    fe = list(res.fe_params.index)
    expected = kr_at(model, theta, fe, "kenward-roger", "expected")
    assert abs(expected.sd[0] / row["trt_se"] - 1) > 1e-3
