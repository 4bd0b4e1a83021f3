"""Running replicates (``lmm.bootstrap.parallel``): the same numbers for any number of
workers and backend, the threads/processes hint, progress bars, the guard that fails a
replicate alone, and the checks of ``n_jobs`` and ``nsim``."""

import sys
import time
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import parallel
from statsmodels_lmm_ext.bootstrap.progress import progress_bar
from statsmodels_lmm_ext.bootstrap.random import normals
from statsmodels_lmm_ext.bootstrap.statistics import BootstrapStatistic, FixedEffects


def _replicate(seed) -> int:
    """The index of a replicate from its seed (child j of SeedSequence.spawn has key (j,))."""
    return seed.spawn_key[-1]


class NoiseSum(BootstrapStatistic, name="test_noise_sum"):
    """Test-only: per replicate the sum of 10 of its normals, computed one replicate at a time
    (so bit for bit the same in any batch); a batch holding a replicate of ``bad`` raises, and
    the replicates of ``nan`` give NaN.  Defined in a module, it reaches loky workers (a
    monkeypatch would not)."""

    batch_state = ("bad", "nan")

    def __init__(self, results=None, *, bad=(), nan=()):
        self.bad, self.nan = frozenset(bad), frozenset(nan)
        self.observed = np.array(0.0)

    def batch(self, seeds):
        idx = [_replicate(s) for s in seeds]
        hit = sorted(self.bad.intersection(idx))
        if hit:
            raise FloatingPointError(f"injected at replicate {hit[0]}")
        Z, _ = normals(seeds, 10)
        values = np.array([Z[:, j].sum() for j in range(len(seeds))])
        values[[k for k, j in enumerate(idx) if j in self.nan]] = np.nan
        return {"values": values, "ok": np.ones(len(seeds), bool), "reasons": [""] * len(seeds)}


class FlakyFixedEffects(FixedEffects, name="test_flaky_fixed_effects"):
    """Test-only: the refitted fixed effects; a batch holding a replicate of ``bad`` raises."""

    batch_state = FixedEffects.batch_state + ("bad",)

    def __init__(self, results, *, bad=()):
        super().__init__(results)
        self.bad = frozenset(bad)

    def batch(self, seeds):
        if self.bad.intersection(_replicate(s) for s in seeds):
            raise np.linalg.LinAlgError("injected")
        return super().batch(seeds)


@pytest.fixture(scope="module")
def ar1_pair():
    d = lmm.datasets.load("orthodont")
    kw = dict(groups="Subject", cov_struct=lmm.AR1(time="visit"))
    large = lmm.mixedlm("distance ~ age * Sex", d, **kw).fit(reml=False)
    small = lmm.mixedlm("distance ~ age * Sex", d, groups="Subject").fit(reml=False)
    return large, small


def test_seed_reproducible_across_n_jobs_and_backends(ar1_pair, monkeypatch):
    large, small = ar1_pair
    one = lmm.bootstrap.pb_lrt(large, small, nsim=60, seed=5, n_jobs=1)
    two = lmm.bootstrap.pb_lrt(large, small, nsim=60, seed=5, n_jobs=2)
    assert one.nsim_failed == 0
    assert np.array_equal(one.ref_distribution, two.ref_distribution)
    assert one.pvalue == two.pvalue
    with joblib.parallel_config(backend="loky"):
        loky = lmm.bootstrap.pb_lrt(large, small, nsim=60, seed=5, n_jobs=2)
    assert np.array_equal(one.ref_distribution, loky.ref_distribution)
    # long jobs make joblib prefer processes (no explicit backend): same numbers
    monkeypatch.setattr(parallel, "PROCESS_SECONDS", 0.0)
    procs = lmm.bootstrap.pb_lrt(large, small, nsim=200, seed=5, n_jobs=2)
    serial = lmm.bootstrap.pb_lrt(large, small, nsim=200, seed=5, n_jobs=1)
    assert np.array_equal(serial.ref_distribution, procs.ref_distribution)
    # replicate j is the same replicate for any nsim; batches of another size may round the
    # last digits differently (OpenBLAS GEMM kernels depend on the batch's row count)
    assert_allclose(one.ref_distribution, procs.ref_distribution[:60], rtol=1e-7, atol=1e-12)
    other = lmm.bootstrap.pb_lrt(large, small, nsim=60, seed=6, n_jobs=2)
    assert not np.array_equal(one.ref_distribution, other.ref_distribution)
    # seed=None draws fresh entropy, reported so that the run can be repeated
    fresh = lmm.bootstrap.pb_lrt(large, small, nsim=20, n_jobs=2)
    again = lmm.bootstrap.pb_lrt(large, small, nsim=20, seed=fresh.seed_entropy)
    assert np.array_equal(fresh.ref_distribution, again.ref_distribution)


def test_progress_bar(ar1_pair, capsys, monkeypatch):
    large, small = ar1_pair
    pytest.importorskip("tqdm")
    pb = lmm.bootstrap.pb_lrt(large, small, nsim=20, seed=1, progress=True)
    assert pb.nsim_ok == 20
    assert "20/20" in capsys.readouterr().err
    # without tqdm: one warning, then quietly on
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(progress_bar, "warned", False)
    with pytest.warns(lmm.bootstrap.BootstrapWarning, match="needs the tqdm package"):
        lmm.bootstrap.pb_lrt(large, small, nsim=5, seed=1, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lmm.bootstrap.pb_lrt(large, small, nsim=5, seed=1, progress=True)


@pytest.fixture(scope="module")
def sleep_fit():
    d = lmm.datasets.load("sleepstudy")
    return lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()


def test_plan_of_the_guard_tests(sleep_fit):
    """The batches the tests below rely on: 150 replicates in batches of 64."""
    assert parallel.batch_plan(150, ()) == [(0, 64), (64, 128), (128, 150)]
    spec = FlakyFixedEffects(sleep_fit).specs
    assert parallel.batch_plan(150, spec) == [(0, 64), (64, 128), (128, 150)]


@pytest.mark.parametrize("backend", ["serial", "loky"])
def test_a_replicate_that_raises_fails_alone(backend):
    """One exception costs only the replicate that raises it (its batch is run again one
    replicate at a time); every failure is counted with its reason, and the other replicates
    are unchanged bit for bit, serially and in worker processes."""
    clean = lmm.parametric_bootstrap(None, NoiseSum, nsim=150, seed=3)
    assert clean.nsim_failed == 0 and clean.failures.empty and clean.valid
    kw = dict(nsim=150, seed=3, bad=(3, 70, 71), nan=(100,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if backend == "serial":
            out = lmm.parametric_bootstrap(None, NoiseSum, **kw)
        else:
            with joblib.parallel_config(backend="loky"):
                out = lmm.parametric_bootstrap(None, NoiseSum, n_jobs=2, **kw)
    assert [w.category for w in caught] == [lmm.BootstrapWarning]
    msg = str(caught[0].message)
    assert "4 of 150 bootstrap replicates failed and were left out" in msg
    assert "FloatingPointError: injected at replicate 3 (1x)" in msg
    assert out.nsim_failed == 4 and out.nsim_ok == 146 and out.valid
    assert list(out.failed) == [3, 70, 71, 100]
    assert isinstance(out.failures, pd.DataFrame) and out.failures.index.name == "replicate"
    assert list(out.failures.index) == [3, 70, 71, 100]
    assert list(out.failures["reason"]) == [
        "FloatingPointError: injected at replicate 3",
        "FloatingPointError: injected at replicate 70",
        "FloatingPointError: injected at replicate 71",
        "the statistic is not finite",
    ]
    assert np.array_equal(out.replicates, np.delete(clean.replicates, [3, 70, 71, 100]))
    assert out.notes[0].startswith("failed replicates: FloatingPointError: injected at")


@pytest.mark.parametrize("backend", ["serial", "loky"])
def test_a_refit_that_raises_fails_alone(sleep_fit, backend):
    """The same with refits: replicates of the other batches are unchanged bit for bit; the
    other replicates of the batch that raised are refitted in batches of one, which rounds
    their last digits differently (numpy's batched kernels depend on the batch size)."""
    clean = lmm.parametric_bootstrap(sleep_fit, "fixed_effects", nsim=150, seed=8)
    kw = dict(nsim=150, seed=8, bad=(5,))
    with pytest.warns(lmm.BootstrapWarning, match="1 of 150 bootstrap replicates failed"):
        if backend == "serial":
            out = lmm.parametric_bootstrap(sleep_fit, FlakyFixedEffects, **kw)
        else:
            with joblib.parallel_config(backend="loky"):
                out = lmm.parametric_bootstrap(sleep_fit, FlakyFixedEffects, n_jobs=2, **kw)
    assert list(out.failed) == [5]
    assert out.failures.loc[5, "reason"] == "LinAlgError: injected"
    rest = np.delete(clean.replicates, 5, axis=0)
    assert np.array_equal(out.replicates[63:], rest[63:])  # batches 2 and 3
    assert_allclose(out.replicates[:63], rest[:63], rtol=1e-10)  # batch 1, one by one


def test_all_replicates_failed_is_an_invalid_result():
    with pytest.warns(lmm.BootstrapWarning, match="70 of 70 .* no replicate is left"):
        out = lmm.parametric_bootstrap(None, NoiseSum, nsim=70, seed=1, bad=range(70))
    assert not out.valid
    assert out.reason.startswith("all 70 bootstrap replicates failed (")
    assert out.nsim_ok == 0 and out.replicates.shape == (0,)
    assert np.isnan(out.std) and np.isnan(out.conf_int()).all()
    assert out.summary_frame()[["mean", "std"]].isna().all().all()
    assert "Not valid: all 70 bootstrap replicates failed" in str(out)
    assert len(out.failures) == 70


def test_batch_output_is_checked():
    out = parallel.batch_output({"values": [1.0, np.inf, 3.0], "ok": [True, True, False]}, 3)
    assert list(out["ok"]) == [True, False, False]
    assert list(out["reasons"]) == [
        "",
        "the statistic is not finite",
        "failed (the statistic gave no reason)",
    ]
    assert np.isnan(out["values"][1:]).all() and out["values"][0] == 1.0
    with pytest.raises(ValueError, match="returned values of shape \\(2,\\)"):
        parallel.batch_output({"values": [1.0, 2.0], "ok": [True] * 3}, 3)
    with pytest.raises(ValueError, match="returned 2 reasons"):
        parallel.batch_output({"values": [1.0] * 3, "ok": [True] * 3, "reasons": ["", ""]}, 3)


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_n_jobs_is_checked(ar1_pair, sleep_fit, n_jobs):
    large, small = ar1_pair
    new = pd.DataFrame({"Days": [1.0]})
    msg = "n_jobs must be a nonzero integer: the number of joblib workers, or -1 for all cores"
    with pytest.raises(ValueError, match=msg):
        lmm.pb_lrt(large, small, nsim=5, n_jobs=n_jobs)  # one batch: refused all the same
    with pytest.raises(ValueError, match=msg):
        lmm.parametric_bootstrap(sleep_fit, "fixed_effects", nsim=5, n_jobs=n_jobs)
    with pytest.raises(ValueError, match=msg):
        lmm.bootstrap_predict(sleep_fit, new, nsim=5, n_jobs=n_jobs)


def test_n_jobs_as_joblib(ar1_pair):
    large, small = ar1_pair
    ref = lmm.pb_lrt(large, small, nsim=80, seed=2)
    for n_jobs in (-1, None, np.int64(2)):
        out = lmm.pb_lrt(large, small, nsim=80, seed=2, n_jobs=n_jobs)
        assert np.array_equal(out.ref_distribution, ref.ref_distribution)


def test_nsim_beyond_memory_is_refused_at_once(ar1_pair, sleep_fit):
    """nsim = 10**10 used to allocate seeds for a minute until a MemoryError."""
    large, small = ar1_pair
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="nsim = 10000000000 would need about .* TB of memory"):
        lmm.pb_lrt(large, small, nsim=10**10)
    with pytest.raises(ValueError, match="use nsim <= [0-9]+, or run several bootstraps"):
        lmm.parametric_bootstrap(sleep_fit, "fixed_effects", nsim=10**10)
    with pytest.raises(ValueError, match="would need about"):
        lmm.bootstrap_predict(sleep_fit, pd.DataFrame({"Days": [1.0]}), nsim=10**10)
    with pytest.raises(ValueError, match="its normals and response \\(180 values each\\)"):
        lmm.simulate(sleep_fit, nsim=10**10)
    assert time.perf_counter() - t0 < 10
