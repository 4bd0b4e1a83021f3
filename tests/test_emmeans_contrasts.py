"""The contrast-method registry (statsmodels_lmm_ext.emmeans.contrasts): names, emmeans'
default adjustments, closed-form coefficients, and dispatch to a newly registered method."""

import numpy as np
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose, assert_array_equal

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.emmeans.contrasts import ContrastMethod

# the default `adjust` of each of emmeans' .emmc contrast families (as in docs/api.rst)
DEFAULT_ADJUST = {
    "pairwise": "tukey",
    "revpairwise": "tukey",
    "trt.vs.ctrl": "dunnettx",
    "consec": "mvt",
    "poly": "none",
    "eff": "fdr",
}


@pytest.fixture(scope="module")
def em():
    tf = lmm.datasets.load("twofactor_unbalanced")
    return lmm.emmeans(smf.ols("y ~ A * B", tf).fit(), "B")


def test_registry_names_and_default_adjustments(em):
    assert list(lmm.CONTRAST_METHODS) == list(DEFAULT_ADJUST)
    assert {k: m.adjust for k, m in lmm.CONTRAST_METHODS.items()} == DEFAULT_ADJUST
    for name, adj in DEFAULT_ADJUST.items():
        con = em.contrast(name)
        assert con.method == name and con.adjust == adj


def test_coefficients_closed_forms():
    """Differences for the pairwise families; emmeans' integer orthogonal polynomials
    (poly.emmc for 4 levels); each mean minus the average for eff."""
    names = ["a", "b", "c", "d"]
    K, lab = lmm.CONTRAST_METHODS["revpairwise"].coefficients(names[:3])
    assert lab == ["b - a", "c - a", "c - b"]
    assert_array_equal(K, [[-1, 1, 0], [-1, 0, 1], [0, -1, 1]])
    K, lab = lmm.CONTRAST_METHODS["trt.vs.ctrl"].coefficients(names, ref="c")
    assert lab == ["a - c", "b - c", "d - c"]
    K, lab = lmm.CONTRAST_METHODS["poly"].coefficients(names)
    assert lab == ["linear", "quadratic", "cubic"]
    assert_array_equal(K, [[-3, -1, 1, 3], [1, -1, -1, 1], [-1, 3, -3, 1]])
    K, _ = lmm.CONTRAST_METHODS["eff"].coefficients(names)
    assert_allclose(K.sum(axis=1), 0, atol=1e-15)
    assert [m.pairwise for m in lmm.CONTRAST_METHODS.values()] == [True, True] + [False] * 4


def test_a_registered_method_dispatches(em, monkeypatch):
    """A new registry entry is usable by name, with its own coefficients and adjustment."""

    def first_vs_rest(names, ref=0):
        k = len(names)
        return np.r_[1.0, -np.ones(k - 1) / (k - 1)][None, :], [f"{names[0]} - rest"]

    method = ContrastMethod("first.vs.rest", first_vs_rest, "bonferroni")
    monkeypatch.setitem(lmm.CONTRAST_METHODS, method.name, method)
    con = em.contrast("first.vs.rest")
    assert con.adjust == "bonferroni" and list(con.summary_frame()["contrast"]) == ["b1 - rest"]
    assert_allclose(con.estimate, em.estimate[0] - em.estimate[1:].mean(), rtol=1e-12)
    with pytest.raises(ValueError, match="pairwise"):
        con.cld()
