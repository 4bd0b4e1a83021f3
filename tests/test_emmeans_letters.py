"""Compact letter displays (statsmodels_lmm_ext.emmeans.letters): Piepho's (2004) property
on random significance patterns, and the display of a fitted model's pairwise comparisons."""

import itertools

import numpy as np
import pytest
import statsmodels.formula.api as smf

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.emmeans.letters import _letters


@pytest.mark.parametrize("seed", range(20))
def test_letters_are_a_valid_display(seed):
    """Two means share a letter iff they are not significantly different (Piepho 2004)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    sig = np.triu(rng.random((k, k)) < 0.4, 1)
    sig = sig | sig.T
    cols = _letters(sig)
    for i, j in itertools.combinations(range(k), 2):
        share = any(i in c and j in c for c in cols)
        assert share == (not sig[i, j]), (sig, cols)
    assert all(any(i in c for c in cols) for i in range(k))


def test_display_matches_the_adjusted_p_values():
    """Within each by group two means share a letter iff their adjusted p-value is >= alpha;
    sorted output orders the means within each group."""
    tf = lmm.datasets.load("twofactor_unbalanced")
    em = lmm.emmeans(smf.ols("y ~ A * B", tf).fit(), "B", by="A")
    pw = em.pairs(adjust="holm")
    cld = pw.cld(alpha=0.1)
    assert any("holm" in n and "alpha = 0.1" in n for n in cld.attrs["notes"])
    p = pw.summary_frame().set_index(["A", "contrast"])["p_value"]
    for a, grp in cld.groupby("A", sort=False):
        assert grp["emmean"].is_monotonic_increasing
        letters = dict(zip(grp["B"], grp["group"], strict=True))
        for b1, b2 in itertools.combinations(sorted(letters), 2):
            share = bool(set(letters[b1]) & set(letters[b2]))
            assert share == (p[(a, f"{b1} - {b2}")] >= 0.1)
    unsorted = pw.cld(alpha=0.1, sort=False)
    assert list(unsorted[["A", "B"]].itertuples(index=False)) == list(
        em.levels[["A", "B"]].itertuples(index=False)
    )


def test_display_prints_with_its_notes():
    """print(cld) shows the table without a row index and the notes under it, as emmeans
    prints its CLD; the notes survive slicing and sorting (pandas attrs)."""
    tf = lmm.datasets.load("twofactor_unbalanced")
    res = lmm.mixedlm("y ~ A * B", tf, groups="block").fit()
    cld = lmm.emmeans(res, "B").pairs().cld()
    text = str(cld)
    body, notes = text.split("\n\n")
    assert body.splitlines()[0].split() == list(cld.columns)
    assert notes.splitlines() == cld.attrs["notes"]
    for note in (
        "Degrees-of-freedom method: kenward-roger",
        "Information matrix: expected (default for models with independent residuals, "
        "as pbkrtest and lmerTest)",
        "Confidence level used: 0.95",
        "P value adjustment: tukey (significance level used: alpha = 0.05)",
        "Means sharing a letter are not shown to be different (which does not show them to "
        "be equal).",
    ):
        assert note in cld.attrs["notes"], note
    assert "Results are averaged over the levels of: A" in text
    sub = cld[cld["group"].str.contains("a")].sort_values("B")
    assert str(sub).endswith("\n".join(cld.attrs["notes"]))
