"""BLAS threads around the engine's work (``statsmodels_lmm_ext._threads``): limited inside
the package's entry points, the user's settings restored outside, nested and threaded entries,
the setting and its environment variable."""

import threading
import time
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext import _threads
from statsmodels_lmm_ext._threads import blas_threads, get_blas_threads, set_blas_threads
from statsmodels_lmm_ext.bootstrap.statistics import BootstrapStatistic


def blas_counts() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def two_threads():
    """The user's own BLAS setting for the test: 2 threads (whatever the machine's default)."""
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(blas_counts()) == {2}
        yield
    set_blas_threads(1)  # the default again, should a test have failed with another


class BlasProbe(BootstrapStatistic, name="test_blas_probe"):
    """Test-only: each replicate's value is the largest BLAS thread count seen by its batch."""

    batch_state = ()

    def __init__(self, results=None):
        self.observed = np.array(0.0)

    def batch(self, seeds):
        n = max(blas_counts())
        return {"values": np.full(len(seeds), float(n)), "ok": np.ones(len(seeds), bool)}


def test_limit_inside_and_restore_outside(two_threads):
    assert get_blas_threads() == 1
    with blas_threads():
        assert set(blas_counts()) == {1}
        with blas_threads(2):  # nested: the outermost limit holds
            assert set(blas_counts()) == {1}
        assert set(blas_counts()) == {1}
    assert set(blas_counts()) == {2}
    with blas_threads(3):  # a limit never raises the user's setting
        assert set(blas_counts()) == {2}
    with threadpool_limits(limits=1, user_api="blas"), blas_threads():
        assert set(blas_counts()) == {1}
    assert set(blas_counts()) == {2}


def test_decorated_function_and_exceptions(two_threads):
    seen = []

    @blas_threads()
    def work(fail):
        seen.append(blas_counts())
        if fail:
            raise RuntimeError("inside")
        return "done"

    assert work(False) == "done"
    with pytest.raises(RuntimeError, match="inside"):
        work(True)
    assert seen == [[1] * len(seen[0])] * 2
    assert set(blas_counts()) == {2}


def test_fits_and_bootstraps_restore_the_users_setting(two_threads):
    d = lmm.datasets.load("sleepstudy")
    model = lmm.mixedlm("Reaction ~ Days", d, groups="Subject")
    res = model.fit()
    assert set(blas_counts()) == {2}
    res.anova(ddf="kenward-roger")
    lmm.bootstrap_predict(res, pd.DataFrame({"Days": [1.0]}), nsim=10, seed=1)
    assert set(blas_counts()) == {2}
    # inside the batches: 1 thread, serially, in joblib threads and in worker processes
    assert lmm.parametric_bootstrap(None, BlasProbe, nsim=200, seed=1).replicates.max() == 1
    threads = lmm.parametric_bootstrap(None, BlasProbe, nsim=200, seed=1, n_jobs=2)
    assert threads.replicates.max() == 1
    with joblib.parallel_config(backend="loky"):
        procs = lmm.parametric_bootstrap(None, BlasProbe, nsim=200, seed=1, n_jobs=2)
    assert procs.replicates.max() == 1
    assert set(blas_counts()) == {2}
    # the limit can be changed, or switched off
    assert set_blas_threads(None) == 1
    assert lmm.parametric_bootstrap(None, BlasProbe, nsim=5, seed=1).replicates.max() == 2
    model.fit()
    assert set_blas_threads(1) is None
    assert set(blas_counts()) == {2}


def test_overlapping_threads_restore_the_setting(two_threads):
    """The BLAS thread count is process-wide: the thread that set the limit restores it, and
    threads entering meanwhile change nothing."""
    start = threading.Barrier(3)
    seen = []

    def work():
        start.wait()
        with blas_threads():
            time.sleep(0.05)
            seen.append(max(blas_counts()))

    with blas_threads():
        pool = [threading.Thread(target=work) for _ in range(2)]
        for t in pool:
            t.start()
        start.wait()
    for t in pool:
        t.join()
    assert set(blas_counts()) == {2}
    assert _threads._owner["thread"] is None


def test_setting_and_environment_variable():
    assert _threads._check("none", "x") is None and _threads._check(" OFF ", "x") is None
    assert _threads._check("3", "x") == 3 and _threads._check(2, "x") == 2
    for bad in ("0", "two", 0, -1, 1.5, True):
        with pytest.raises(ValueError, match="must be a positive number of BLAS threads"):
            _threads._check(bad, _threads.ENV_VAR)
    with pytest.raises(ValueError, match="positive number"):
        set_blas_threads(0)
    assert get_blas_threads() == 1


def test_entering_costs_little_against_a_fit(two_threads):
    """Entering and leaving the limit (cached controller): tens of microseconds; a fit of the
    smallest data set takes milliseconds."""
    with blas_threads():
        pass
    t0 = time.perf_counter()
    for _ in range(200):
        with blas_threads():
            pass
    per_entry = (time.perf_counter() - t0) / 200
    assert per_entry < 2e-3


def test_warnings_of_fit_point_at_the_caller():
    """fit() is wrapped by blas_threads: its warnings still name the line that called it."""
    rng = np.random.default_rng(0)
    # equal group means: the group variance is estimated at zero (a boundary warning)
    d = pd.DataFrame({"y": np.tile(rng.normal(size=5), 8), "g": np.repeat(np.arange(8), 5)})
    d.loc[d.index[-1], "y"] += 0.5
    sleep = lmm.datasets.load("sleepstudy")
    slopes = lmm.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lmm.mixedlm("y ~ 1", d, groups="g").fit(reml=False)
        slopes.fit(method="lbfgs", maxiter=1)  # not converged
    found = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    texts = " ".join(str(w.message) for w in found)
    assert "boundary" in texts and "did not converge" in texts
    assert all(w.filename == __file__ for w in found), [(w.filename, w.message) for w in found]
