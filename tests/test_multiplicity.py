"""Multiplicity adjustments (statsmodels_lmm_ext.multiplicity): the registry and each method.

The registry tests run every registered adjustment through ``adjust()`` on one small family,
so an adjustment added to ``ADJUSTMENTS`` is tested without editing this file.  The method
tests check formulas against closed forms, brute force and scipy's multivariate t; the
comparisons with R's emmeans are in test_emmeans_r.py.
"""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from statsmodels_lmm_ext.multiplicity import (
    ADJUSTMENTS,
    AdjustedInference,
    Adjustment,
    Family,
    adjust,
    check_adjust,
    register,
)
from statsmodels_lmm_ext.multiplicity import base as _base
from statsmodels_lmm_ext.multiplicity.mvt import _mvt_cdf, _mvt_factor
from statsmodels_lmm_ext.multiplicity.single_step import _tukey_crits

NAMES = list(ADJUSTMENTS)


def _pairwise_family(k: int) -> Family:
    """All pairwise differences of ``k`` independent means with unequal variances."""
    K = np.array([np.eye(k)[a] - np.eye(k)[b] for a, b in itertools.combinations(range(k), 2)])
    S = K @ np.diag(np.linspace(1.0, 2.0, k)) @ K.T
    s = np.sqrt(np.diag(S))
    return Family(
        rows=np.arange(len(K)), n_means=k, pairwise=True, rank=k - 1, corr=S / np.outer(s, s)
    )


FAM = _pairwise_family(4)
T = np.array([0.3, -1.1, 1.9, -2.6, 3.4, -4.8])  # distinct |t|, both signs
DF = np.full(6, 12.0)


# ------------------------------------------------------------------ the registry -----------


def test_registry_lists_the_methods_with_their_descriptions():
    assert NAMES == [
        "none",
        "tukey",
        "scheffe",
        "sidak",
        "bonferroni",
        "holm",
        "fdr",
        "mvt",
        "dunnett",
        "dunnettx",
    ]
    for name, adj in ADJUSTMENTS.items():
        assert isinstance(adj, Adjustment) and adj.name == name
        assert str(adj) == adj.description != ""
    assert str(ADJUSTMENTS["holm"]) == "Holm step-down p-values, Bonferroni intervals"


def test_registry_references_are_registered():
    """Every name an adjustment refers to is registered, and no alias shadows a name."""
    for adj in ADJUSTMENTS.values():
        for target in (adj.interval_method, adj.non_pairwise, adj.alias_of):
            assert target is None or target in ADJUSTMENTS, (adj.name, target)
        assert not set(adj.aliases) & set(ADJUSTMENTS)


@pytest.mark.parametrize("name", NAMES)
def test_every_adjustment_through_adjust(name):
    """p-values in [0, 1], monotone in |t| and not below the unadjusted ones; critical values
    not below the unadjusted t quantile; the methods reported."""
    adj = ADJUSTMENTS[name]
    out = adjust(T, DF, [FAM], name)
    assert isinstance(out, AdjustedInference)
    p, crit = out.pvalues, out.crit
    raw = 2 * stats.t.sf(np.abs(T), DF)
    assert ((p >= 0) & (p <= 1)).all()
    by_t = np.argsort(np.abs(T))
    assert (np.diff(p[by_t]) <= 1e-12).all(), p[by_t]
    assert (p >= raw * (1 - 1e-12)).all()
    if name != "none":
        assert (p > raw).any()
    assert (crit >= stats.t.ppf(0.975, DF) * (1 - 1e-12)).all()
    assert out.method == (adj.alias_of or name)
    used = ADJUSTMENTS[out.method]
    assert out.ci_method == (used.interval_method or out.method)


@pytest.mark.parametrize("level", [0.95, 0.9])
@pytest.mark.parametrize("name", [n for n in NAMES if ADJUSTMENTS[n].interval_method is None])
def test_single_step_intervals_agree_with_pvalues(name, level):
    """With its own intervals, an interval excludes 0 exactly when p < 1 - level: at
    |t| = c the p-value is 1 - level."""
    out = adjust(T, DF, [FAM], name, level)
    assert_array_equal(np.abs(T) > out.crit, out.pvalues < 1 - level)
    at_crit = adjust(out.crit * np.sign(T), DF, [FAM], name, level)
    assert_allclose(at_crit.pvalues, 1 - level, atol=1e-6)
    assert_allclose(at_crit.crit, out.crit, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_family_of_one_is_not_adjusted(name):
    """One estimate: unadjusted p (except by a method that adjusts it, Scheffe with rank 2)
    and always the unadjusted interval."""
    fam = Family(rows=np.arange(1), n_means=2, pairwise=True, rank=2, corr=np.ones((1, 1)))
    out = adjust([2.0], [9.0], [fam], name)
    raw = 2 * stats.t.sf(2.0, 9.0)
    if ADJUSTMENTS[name].adjusts_single:
        assert out.method == name and out.pvalues[0] > raw
    else:
        assert out.method == "none" and out.notes == []
        assert_allclose(out.pvalues, raw, rtol=1e-14)
    assert_allclose(out.crit, stats.t.ppf(0.975, 9.0), rtol=1e-14)


def test_aliases_resolve():
    aliases = {a: n for n, adj in ADJUSTMENTS.items() for a in adj.aliases}
    listed = {n: adj.alias_of for n, adj in ADJUSTMENTS.items() if adj.alias_of}
    assert {**aliases, **listed} == {"bonf": "bonferroni", "fdr_bh": "fdr", "bh": "fdr"} | {
        "dunnett": "mvt"
    }
    for alias, target in {**aliases, **listed, "BONF": "bonferroni"}.items():
        assert check_adjust(alias) == alias.lower()
        got, ref = adjust(T, DF, [FAM], alias), adjust(T, DF, [FAM], target)
        assert got.method == ref.method == target
        assert_array_equal(got.pvalues, ref.pvalues)
        assert_array_equal(got.crit, ref.crit)
    assert check_adjust(None) == "none"


def test_unknown_adjustment_lists_the_names():
    with pytest.raises(ValueError, match="unknown adjustment 'bogus'") as err:
        adjust(T, DF, [FAM], "bogus")
    for name in ADJUSTMENTS:
        assert repr(name) in str(err.value)


def test_notes():
    """The notes printed with a table (emmeans' wording)."""

    def notes(method, fam=FAM):
        return adjust(T, DF, [fam], method).notes

    assert notes("none") == []
    assert notes("tukey") == [
        "P value adjustment: tukey method for comparing a family of 4 estimates",
        "Conf-level adjustment: tukey method for comparing a family of 4 estimates",
    ]
    assert notes("holm") == [
        "P value adjustment: holm method for 6 tests",
        "Conf-level adjustment: bonferroni method for 6 estimates",
    ]
    assert notes("scheffe")[0] == "P value adjustment: scheffe method with rank 3"
    assert notes("dunnett")[0] == "P value adjustment: mvt method for 6 tests"
    not_pairwise = Family(rows=FAM.rows, n_means=4, rank=3, corr=FAM.corr)
    assert notes("tukey", not_pairwise) == [
        'Note: adjust = "tukey" was changed to "sidak" because "tukey" is only appropriate '
        "for one set of pairwise comparisons",
        "P value adjustment: sidak method for 6 tests",
        "Conf-level adjustment: sidak method for 6 estimates",
    ]


@pytest.mark.parametrize("name", [n for n in NAMES if ADJUSTMENTS[n].non_pairwise])
def test_pairwise_only_methods_switch_on_other_families(name):
    not_pairwise = Family(rows=FAM.rows, n_means=4, rank=3, corr=FAM.corr)
    got = adjust(T, DF, [not_pairwise], name)
    ref = adjust(T, DF, [not_pairwise], ADJUSTMENTS[name].non_pairwise)
    assert got.method == ref.method == ADJUSTMENTS[name].non_pairwise
    assert_array_equal(got.pvalues, ref.pvalues)
    assert_array_equal(got.crit, ref.crit)
    assert got.notes[1:] == ref.notes


def test_rows_without_df_are_nan():
    df = DF.copy()
    df[[1, 4]] = [0.0, np.nan]
    for name in NAMES:
        out = adjust(T, df, [FAM], name)
        assert np.isnan(out.crit[[1, 4]]).all(), name
        assert np.isfinite(out.crit[[0, 2, 3, 5]]).all(), name


@pytest.fixture
def scratch_registry():
    """Restore the registry after a test registers adjustments of its own."""
    names, aliases = dict(ADJUSTMENTS), dict(_base._ALIASES)
    yield
    ADJUSTMENTS.clear()
    ADJUSTMENTS.update(names)
    _base._ALIASES.clear()
    _base._ALIASES.update(aliases)


def test_a_registered_adjustment_is_dispatched(scratch_registry):
    """adjust() uses whatever the registry holds: a new class is all a new method needs."""

    @register
    class Doubled(Adjustment):
        name = "doubled"
        description = "twice the unadjusted p-value"
        aliases = ("twice",)

        def pvalues(self, t, df, family):
            return 2 * ADJUSTMENTS["none"].pvalues(t, df, family)

        def critical(self, df, family, level):
            return stats.t.ppf(1 - (1 - level) / 4, df)

    assert list(ADJUSTMENTS)[-1] == "doubled" and check_adjust("twice") == "twice"
    out = adjust(T, DF, [FAM], "twice")
    assert_allclose(out.pvalues, np.minimum(1, 4 * stats.t.sf(np.abs(T), DF)))
    assert_allclose(out.crit, stats.t.ppf(0.9875, DF))
    assert out.notes == [
        "P value adjustment: doubled method for 6 tests",
        "Conf-level adjustment: doubled method for 6 estimates",
    ]


def test_register_refuses_taken_names_and_missing_intervals(scratch_registry):
    class Half(Adjustment):
        name = "half"
        description = "p-values without intervals"

        def pvalues(self, t, df, family):
            return np.zeros(len(t))

    with pytest.raises(TypeError, match="critical"):
        register(Half)
    with pytest.raises(ValueError, match="already registered"):
        register(type("Again", (Half,), {"name": "sidak", "interval_method": "sidak"}))
    with pytest.raises(ValueError, match="already registered"):
        register(type("Again", (Half,), {"aliases": ("bh",), "interval_method": "sidak"}))
    register(type("Borrowed", (Half,), {"interval_method": "sidak"}))
    assert_array_equal(
        ADJUSTMENTS["half"].critical(DF, FAM, 0.95), ADJUSTMENTS["sidak"].critical(DF, FAM, 0.95)
    )


# ------------------------------------------------------------------ the methods ------------


def test_single_step_adjustments_closed_forms():
    t = np.array([2.5, -1.2, 0.3, 3.1])
    df = np.array([10.0, 10.0, 12.0, 8.0])
    fam = [Family(rows=np.arange(4), rank=4)]
    p = 2 * stats.t.sf(np.abs(t), df)
    assert_allclose(adjust(t, df, fam, "bonferroni").pvalues, np.minimum(1, 4 * p))
    assert_allclose(adjust(t, df, fam, "sidak").pvalues, 1 - (1 - p) ** 4)
    assert_allclose(adjust(t, df, fam, "scheffe").pvalues, stats.f.sf(t**2 / 4, 4, df))
    # Holm by brute force: step-down, monotone
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, (4 - np.arange(4)) * p[order]))
    expect = np.empty(4)
    expect[order] = holm
    assert_allclose(adjust(t, df, fam, "holm").pvalues, expect)
    out = adjust(t, df, fam, "holm")
    assert out.ci_method == "bonferroni"
    assert_allclose(out.crit, stats.t.ppf(1 - 0.05 / 8, df))
    # a family of one is never adjusted
    one = adjust(t[:1], df[:1], [Family(rows=np.arange(1))], "bonferroni")
    assert one.method == "none" and np.isclose(one.pvalues[0], p[0])


def test_mvt_against_scipy_nonsingular():
    """Our integration of P(max |T_i| < c) vs scipy.stats.multivariate_t (Genz-Bretz)."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 8))
    s = a @ a.T
    corr = s / np.sqrt(np.outer(np.diag(s), np.diag(s)))
    for c in (1.5, 2.5, 3.0):
        ref = stats.multivariate_t(np.zeros(5), corr, df=7.3).cdf(
            np.full(5, c), lower_limit=np.full(5, -c), maxpts=2_000_000, random_state=0
        )
        assert_allclose(_mvt_cdf(c, _mvt_factor(corr), 7.3), ref, atol=5e-5)


def test_mvt_single_estimate_is_t():
    fam = [Family(rows=np.arange(1), corr=np.ones((1, 1)))]
    assert adjust([2.0], [9.0], fam, "mvt").method == "none"
    # one dimension: only the chi-square variable is integrated (by QMC, error ~1e-6)
    assert_allclose(
        _mvt_cdf(2.0, _mvt_factor(np.ones((1, 1))), 9.0), 1 - 2 * stats.t.sf(2, 9), atol=1e-5
    )


@pytest.mark.parametrize("lo, hi", [(40.0, 60.0), (5.0, 500.0), (2000.0, 2e5)])
def test_tukey_critical_values_for_many_df(lo, hi):
    """The interpolated Tukey quantiles equal scipy's exact ones (1e-9) on rows with many
    distinct df, including df beyond scipy's infinite-df switch at 1e5."""
    df = np.geomspace(lo, hi, 15)
    got = _tukey_crits(0.95, 6, df)
    idx = [0, 4, 9, 14]
    exact = stats.studentized_range.ppf(0.95, 6, df[idx]) / np.sqrt(2)
    assert_allclose(got[idx], exact, rtol=1e-9)
