"""Compound symmetry with a random intercept is not identified (statsmodels_lmm_ext._identify).

Before the check, ``FEV1 ~ ARMCD`` with the default random intercept and ``CompoundSymmetry()``
"converged" to ``USUBJID Var 1.7`` with a standard error of 28504 and no warning.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext._identify import constant_random_effects


@pytest.fixture(scope="module")
def fev():
    return lmm.datasets.load("fev_data")


def fit(data, **kw):
    return lmm.mixedlm(
        "FEV1 ~ ARMCD", data, groups="USUBJID", cov_struct=lmm.CompoundSymmetry(),
        missing="drop", **kw,
    ).fit()  # fmt: skip


@pytest.mark.parametrize(
    "kw, culprit",
    [
        ({}, "USUBJID Var"),  # the default random intercept
        ({"re_formula": "1"}, "USUBJID Var"),
        ({"re_formula": "1 + VISITN"}, "USUBJID Var"),
        ({"re_formula": "0", "vc_formula": {"subject": "1"}}, "subject Var"),
        # two columns adding up to one in every group (ARMCD is constant within subject)
        ({"re_formula": "0 + C(ARMCD)"}, "C(ARMCD)[PBO] Var"),
    ],
)
def test_cs_with_a_random_intercept_is_refused(fev, kw, culprit):
    with pytest.raises(ValueError, match="not identified together") as err:
        fit(fev, **kw)
    msg = str(err.value)
    assert culprit in msg and "CompoundSymmetry()" in msg
    assert 're_formula="0"' in msg and "the same model" in msg


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")
def test_identified_combinations_fit(fev):
    # a random slope without intercept, a component that varies within subject, CS alone
    for kw in (
        {"re_formula": "0 + VISITN"},
        {"re_formula": "0", "vc_formula": {"visit": "0 + C(AVISIT)"}},
        {"re_formula": "0"},
    ):
        assert fit(fev, **kw).converged
    # AR(1) has no constant correlation term: a random intercept is fine with it
    res = lmm.mixedlm(
        "FEV1 ~ ARMCD", fev, groups="USUBJID", cov_struct=lmm.AR1(time="VISITN"),
        missing="drop",
    ).fit()  # fmt: skip
    assert res.converged


def test_the_two_identified_versions_are_one_model(fev):
    """What the message recommends: CS without the intercept equals the intercept without CS
    (rho >= 0 here), the SAS CS parameter being the intercept variance."""
    cs = fit(fev, re_formula="0")
    ri = lmm.mixedlm("FEV1 ~ ARMCD", fev, groups="USUBJID", missing="drop").fit()
    rho = cs.cov_struct_params["rho"]
    assert rho > 0
    assert_allclose(cs.llf, ri.llf, rtol=1e-8)
    assert_allclose(rho * cs.scale, ri.cov_re.iloc[0, 0], rtol=1e-4)


def test_constant_random_effects_system():
    """The least-squares system on Z_i'Z_i and Z_i'1: solvable exactly when some random
    effects covariance change adds J_i to every group, whatever the scale of the columns."""
    groups = np.repeat(np.arange(4), 3)
    t = np.tile([0.0, 1.0, 2.0], 4)
    one = np.ones(12)
    assert constant_random_effects(one[:, None], [], groups) is not None
    assert constant_random_effects(1e4 * one[:, None], [], groups) is not None
    assert constant_random_effects(np.column_stack([one, t]), [], groups) is not None
    assert constant_random_effects(t[:, None], [], groups) is None
    assert constant_random_effects(np.zeros((12, 0)), [], groups) is None
    # a column constant within group with different values between groups is identified
    level = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    assert constant_random_effects(level[:, None], [], groups) is None
    # a variance component with one column per row (independent noise) is not J
    assert constant_random_effects(np.zeros((12, 0)), [np.eye(12)[:, :3]], groups) is None
