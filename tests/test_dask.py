"""Fits from a Dask DataFrame (``statsmodels_lmm_ext.dask_model``) on a LocalCluster.

The reference is the in-memory fit of the same data (itself validated against R in
``test_mmrm_structures.py``, ``test_nlme_structures.py`` ...): log-likelihoods agree to 1e-9
relative and estimates to 1e-8, as do Kenward-Roger / Satterthwaite df, Type III tables and
emmeans.  The unstructured MMRM is also compared with mmrm 0.3.11 directly
(``tests/results/mmrm_structures.json``, written by ``tests/results/mmrm_structures.R``).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = {
    "ARMCD": ["PBO", "TRT"],
    "AVISIT": ["VIS1", "VIS2", "VIS3", "VIS4"],
    "RACE": ["Asian", "Black or African American", "White"],
}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def fev() -> pd.DataFrame:
    """The FEV data without missing responses (string columns, missing visits)."""
    d = lmm.datasets.load("fev_data")
    return d[d["FEV1"].notna()].reset_index(drop=True)


def fev_holes() -> pd.DataFrame:
    """mmrm's FEV data with holes (categorical columns), as test_mmrm_structures."""
    d = pd.read_csv(RESULTS / "mmrm_fev_holes.csv")
    for col, lv in LEVELS.items():
        d[col] = pd.Categorical(d[col], categories=lv)
    return d


def by_subject(d: pd.DataFrame, nparts: int, seed: int = 0):
    """A Dask DataFrame of ``nparts`` partitions of whole subjects, subjects and partitions in
    a shuffled order."""
    rng = np.random.default_rng(seed)
    subjects = rng.permutation(d["USUBJID"].unique())
    parts = np.array_split(subjects, nparts)
    frames = [d[d["USUBJID"].isin(p)].sample(frac=1.0, random_state=i)
              for i, p in enumerate(parts)]  # fmt: skip
    return dd.concat([dd.from_pandas(f, npartitions=1) for f in frames[::-1]])


CASES = {
    "ri-ar1": ("FEV1 ~ ARMCD * AVISIT + FEV1_BL", fev,
               dict(cov_struct=lambda: lmm.AR1(time="VISITN"))),
    "un": ("FEV1 ~ ARMCD * AVISIT + RACE", fev_holes,
           dict(cov_struct=lambda: lmm.Unstructured(time="AVISIT"), re_formula="0")),
    "cs": ("FEV1 ~ ARMCD + AVISIT + FEV1_BL", fev,
           dict(cov_struct=lambda: lmm.CompoundSymmetry(), re_formula="0")),
    # a random slope on the structure's time column: its Z rows are part of the pattern
    "slope-time": ("FEV1 ~ ARMCD + AVISIT", fev,
                   dict(cov_struct=lambda: lmm.AR1(time="VISITN"), re_formula="~VISITN")),
}  # fmt: skip


def _fits(name, reml, ddf):
    formula, data, kw = CASES[name]
    kw = {k: (v() if callable(v) else v) for k, v in kw.items()}
    kw2 = {k: (v() if callable(v) else v) for k, v in CASES[name][2].items()}
    d = data()
    rm = lmm.mixedlm(formula, d, groups="USUBJID", **kw).fit(reml=reml)
    rd = lmm.mixedlm(formula, ddf(d), groups="USUBJID", **kw2).fit(reml=reml)
    return rm, rd


def _frame(em) -> pd.DataFrame:
    return em.summary_frame().astype({"emmean": float})


def _same(rm, rd):
    assert type(rd.model).__name__ == "DaskMixedLM"
    assert rd.model.nobs == rm.model.nobs and rd.model.n_groups == rm.model.n_groups
    assert_allclose(rd.llf, rm.llf, rtol=1e-9)
    assert_allclose(rd.params, rm.params, rtol=1e-8, atol=1e-8 * np.abs(rm.params).max())
    # SEs from the observed information (numerical derivatives of the same sums)
    assert_allclose(rd.bse, rm.bse, rtol=1e-7)
    assert list(rd.params.index) == list(rm.params.index)


FITS = [("ri-ar1", True), ("ri-ar1", False), ("un", False), ("cs", True), ("slope-time", True)]


@pytest.mark.parametrize("name,reml", FITS, ids=[f"{n}-{'REML' if r else 'ML'}" for n, r in FITS])
def test_equals_in_memory(client, name, reml):
    rm, rd = _fits(name, reml, lambda d: by_subject(d, 3))
    _same(rm, rd)
    assert "No. Groups" in str(rd.summary())


def _unknown_categories(d):
    """As read from parquet: categorical columns whose categories Dask does not know."""
    ddf = by_subject(d, 4, seed=1)
    return ddf.assign(**{c: ddf[c].cat.as_unknown() for c in LEVELS})


def test_kenward_roger_anova_and_emmeans_equal_in_memory(client):
    rm, rd = _fits("un", True, _unknown_categories)
    for ddf in ("kenward-roger", "satterthwaite"):
        a, b = rd.anova(ddf=ddf), rm.anova(ddf=ddf)
        assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-7)
    em_d = lmm.emmeans(rd, "ARMCD", by="AVISIT", ddf="kenward-roger")
    em_m = lmm.emmeans(rm, "ARMCD", by="AVISIT", ddf="kenward-roger")
    cols = ["emmean", "se", "df"]
    assert_allclose(_frame(em_d)[cols], _frame(em_m)[cols], rtol=1e-7)
    for w in ("proportional", "cells"):
        e1, e2 = (lmm.emmeans(r, "ARMCD", weights=w) for r in (rd, rm))
        assert_allclose(_frame(e1)["emmean"], _frame(e2)["emmean"], rtol=1e-9)
    # and against mmrm 0.3.11 (R) directly
    ref = json.loads((RESULTS / "mmrm_structures.json").read_text())["fits"]
    names = list(rd.fe_params.index)
    L = np.zeros((1, len(names)))
    L[0, names.index("ARMCD[T.TRT]")] = 1.0
    # tolerances as test_mmrm_structures (optimiser convergence of two programs)
    for method, ddf in (("Satterthwaite", "satterthwaite"),
                        ("Kenward-Roger-Linear", "kenward-roger-linear")):  # fmt: skip
        r = ref[f"fev_holes/us/{method}"]
        assert_allclose(rd.llf, r["loglik"], rtol=1e-6)
        assert_allclose(rd.fe_params.values, list(r["coef"].values()), rtol=1e-5, atol=1e-6)
        t = rd.t_test(L, ddf=ddf)
        assert_allclose(t.sd[0], r["trt"]["se"], rtol=1e-4)
        assert_allclose(t.df_denom[0], r["trt"]["df"], rtol=1e-3)


def test_covariate_emmeans_at_the_mean(client):
    rm, rd = _fits("cs", True, lambda d: by_subject(d, 2))
    e1, e2 = (lmm.emmeans(r, "AVISIT") for r in (rd, rm))
    assert_allclose(_frame(e1)["emmean"], _frame(e2)["emmean"], rtol=1e-9)


def test_split_subjects_are_shuffled_and_relabelled_groups_invariant(client):
    d = fev()
    formula, kw = "FEV1 ~ ARMCD * AVISIT + FEV1_BL", dict(re_formula="0")
    rm = lmm.mixedlm(formula, d, groups="USUBJID", cov_struct=lmm.AR1(time="VISITN"), **kw).fit()
    # rows in random order: every subject's rows are spread over the partitions
    scattered = dd.from_pandas(d.sample(frac=1.0, random_state=3), npartitions=4, sort=False)
    with pytest.warns(UserWarning, match="rows in more than one partition"):
        m = lmm.mixedlm(formula, scattered, groups="USUBJID", cov_struct=lmm.AR1(time="VISITN"),
                        **kw)  # fmt: skip
    rd = m.fit()
    _same(rm, rd)
    relabelled = d.assign(USUBJID="s" + d["USUBJID"].str[::-1])
    rr = lmm.mixedlm(formula, by_subject(relabelled, 3), groups="USUBJID",
                     cov_struct=lmm.AR1(time="VISITN"), **kw).fit()  # fmt: skip
    assert_allclose(rr.llf, rm.llf, rtol=1e-9)


def test_response_offset_and_units(client):
    d = fev()
    d2 = d.assign(FEV1=1000.0 + 10.0 * d["FEV1"])
    kw = dict(groups="USUBJID", cov_struct=lmm.AR1(time="VISITN"))
    r1 = lmm.mixedlm("FEV1 ~ ARMCD + AVISIT", by_subject(d, 2), **kw).fit()
    kw["cov_struct"] = lmm.AR1(time="VISITN")
    m2 = lmm.mixedlm("FEV1 ~ ARMCD + AVISIT", by_subject(d2, 2), **kw)
    # the response's variance (the scale of start values) from the reduced statistics
    assert_allclose(m2._response_variance(), np.var(d2["FEV1"]), rtol=1e-9)
    r2 = m2.fit()
    # the REML -2 l changes by (N - p) log(100) (the Jacobian of the units)
    assert_allclose(r2.llf, r1.llf - (r1.nobs - r1.k_fe) * np.log(10.0), rtol=1e-9)
    assert_allclose(r2.fe_params.iloc[1:], 10.0 * r1.fe_params.iloc[1:], rtol=1e-7)
    assert_allclose(r2.cov_struct_params, r1.cov_struct_params, rtol=1e-6)


def test_missing_values(client):
    d = fev()
    d.loc[5, "FEV1_BL"] = np.nan
    f, kw = "FEV1 ~ ARMCD + FEV1_BL", dict(groups="USUBJID", re_formula="0")
    with pytest.raises(ValueError, match="'FEV1_BL'"):
        lmm.mixedlm(f, by_subject(d, 2), **kw)
    cs = lmm.CompoundSymmetry
    rd = lmm.mixedlm(f, by_subject(d, 2), missing="drop", cov_struct=cs(), **kw).fit()
    rm = lmm.mixedlm(f, d, missing="drop", cov_struct=cs(), **kw).fit()
    assert_allclose(rd.llf, rm.llf, rtol=1e-9)


def test_refusals_and_rows_needed(client):
    d = fev()
    ddf = by_subject(d, 2)
    with pytest.raises(NotImplementedError, match="continuous covariate.*FEV1_BL"):
        lmm.mixedlm("FEV1 ~ ARMCD", ddf, groups="USUBJID", re_formula="~FEV1_BL")
    with pytest.raises(ValueError, match="SUBJ"):
        lmm.mixedlm("FEV1 ~ ARMCD", ddf, groups="SUBJ")
    with pytest.raises(ValueError, match="groups= must name the column"):
        lmm.mixedlm("FEV1 ~ ARMCD", ddf, groups=None)
    with pytest.raises(NotImplementedError, match="vc_formula"):
        lmm.mixedlm("FEV1 ~ ARMCD", ddf, groups="USUBJID", vc_formula={"v": "0 + C(AVISIT)"})
    with pytest.raises(NotImplementedError, match="group=, variance="):
        lmm.mixedlm("FEV1 ~ ARMCD", ddf, groups="USUBJID",
                    cov_struct=lmm.AR1(time="VISITN", group="ARMCD"))  # fmt: skip
    with pytest.raises(ValueError, match="no values"):
        lmm.mixedlm("FEV1 ~ ARMCD", dd.from_pandas(d.iloc[:0], npartitions=1), groups="USUBJID")
    with pytest.raises(ValueError, match="stateful transform"):
        lmm.mixedlm("FEV1 ~ center(FEV1_BL)", ddf, groups="USUBJID")
    dup = pd.concat([d, d.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="PT1.*same position"):
        lmm.mixedlm("FEV1 ~ ARMCD", by_subject(dup, 2), groups="USUBJID",
                    cov_struct=lmm.AR1(time="VISITN"))  # fmt: skip
    res = lmm.mixedlm("FEV1 ~ ARMCD", ddf, groups="USUBJID").fit()
    for what in ("random_effects", "fittedvalues", "resid"):
        with pytest.raises(NotImplementedError, match="needs the data's rows"):
            getattr(res, what)
    with pytest.raises(NotImplementedError, match="needs the data's rows"):
        res.simulate(2, seed=1)
    with pytest.raises(NotImplementedError, match="needs the data's rows"):
        res.predict()
    with pytest.raises(NotImplementedError, match="Dask DataFrame"):
        lmm.lrt(res, res)
    with pytest.raises(NotImplementedError, match="pass the restriction matrix L"):
        lmm.kenward_roger_test(res, res)
    kr = lmm.kenward_roger_test(res, np.array([[0.0, 1.0]]))
    assert np.isfinite(kr.pvalue)
    new = pd.DataFrame({"ARMCD": ["PBO", "TRT"]})
    assert_allclose(res.predict(new), [res.fe_params.iloc[0], res.fe_params.sum()], rtol=1e-12)


def test_package_imports_without_dask():
    code = "import sys, statsmodels_lmm_ext; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
