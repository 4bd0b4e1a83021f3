"""The array interface ``lmm.MixedLM(endog, exog, groups, ...)`` with the MMRM structures:
``positions=`` works; ``group=``, ``variance=`` and ``weights=`` name data columns and are
refused with a message pointing to the formula interface."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from tests.test_mmrm_structures import RESULTS


def arrays():
    d = pd.read_csv(RESULTS / "mmrm_fev.csv")
    X = np.column_stack([np.ones(len(d)), d.ARMCD.eq("TRT")])
    return d, d.FEV1.to_numpy(), X


def test_positions_give_the_formula_fit():
    d, y, X = arrays()
    visit = pd.Categorical(d.AVISIT).codes.astype(float)
    res = lmm.MixedLM(
        y, X, d.USUBJID.to_numpy(), exog_re=np.zeros((len(y), 0)),
        cov_struct=lmm.Unstructured(time="AVISIT"), positions=visit,
    ).fit()  # fmt: skip
    ref = lmm.mixedlm(
        "FEV1 ~ ARMCD", d, groups="USUBJID", re_formula="0",
        cov_struct=lmm.Unstructured(time="AVISIT"),
    ).fit()  # fmt: skip
    assert_allclose(res.llf, ref.llf, rtol=1e-10)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"weights": "WEIGHT"}, r"does not take weights=.*lmm\.mixedlm"),
        ({"weights": np.ones(537)}, r"does not take weights=.*from_formula"),
        ({"variance": lmm.VarIdent("AVISIT")}, r"does not take variance=.*lmm\.mixedlm"),
        ({"group": "ARMCD"}, r"does not take group=.*lmm\.mixedlm"),
    ],
    ids=["weights-name", "weights-array", "variance", "group-keyword"],
)
def test_column_keywords_are_refused_with_a_pointer_to_the_formula_interface(kw, match):
    d, y, X = arrays()
    with pytest.raises(ValueError, match=match):
        lmm.MixedLM(y, X, d.USUBJID.to_numpy(), cov_struct=lmm.Independence(), **kw)


def test_a_group_specific_structure_is_refused_with_a_pointer_to_the_formula_interface():
    d, y, X = arrays()
    with pytest.raises(ValueError, match=r"group=.*formula interface \(lmm\.mixedlm"):
        lmm.MixedLM(y, X, d.USUBJID.to_numpy(), cov_struct=lmm.CompoundSymmetry(group="ARMCD"))
