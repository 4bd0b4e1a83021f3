"""Running replicates (``lmm.bootstrap.parallel``): the same numbers for any number of
workers and backend, the threads/processes hint, progress bars."""

import sys
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import parallel


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
    monkeypatch.setattr(parallel.progress_bar, "warned", False)
    with pytest.warns(lmm.bootstrap.BootstrapWarning, match="needs the tqdm package"):
        lmm.bootstrap.pb_lrt(large, small, nsim=5, seed=1, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lmm.bootstrap.pb_lrt(large, small, nsim=5, seed=1, progress=True)
