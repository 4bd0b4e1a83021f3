"""Bootstrap runs on a Dask cluster (``joblib.parallel_config(backend="dask")``): the same
numbers as in this process for any backend and worker count, where the batches really run,
what ``n_jobs`` means with the Dask backend, failures and the progress bar on a cluster.

The clusters are small LocalClusters: in-process workers (threads, cheap to start) with 1 and
2 workers, and one with 2 worker processes (the statistics are pickled to them)."""

import contextlib
import multiprocessing
import pickle
import sys
import threading
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import parallel
from statsmodels_lmm_ext.bootstrap.statistics import BootstrapStatistic, FixedEffects

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

#: (first replicate of the batch, dask worker address or "local") of every batch run by Where
RAN_ON: list[tuple[int, str]] = []
_LOCK = threading.Lock()


class Where(FixedEffects, name="test_where_fixed_effects"):
    """Test-only: the refitted fixed effects, recording where each batch ran (in-process
    clusters share this module's ``RAN_ON``)."""

    def batch(self, seeds):
        try:
            where = distributed.get_worker().address
        except ValueError:  # not in a dask worker
            where = "local"
        with _LOCK:
            RAN_ON.append((seeds[0].spawn_key[-1], where))
        return super().batch(seeds)


def _cluster(n_workers: int, threads: int, processes: bool = False):
    # forked worker processes start in a fraction of a second (spawned ones import the
    # package again: 5-15 s on a busy 2-core machine); the batches they run are the same
    fork = "fork" in multiprocessing.get_all_start_methods()
    method = {"distributed.worker.multiprocessing-method": "fork"} if fork else {}
    with dask.config.set(method):
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=processes,
            dashboard_address=":0",
            memory_limit="1GiB" if processes else 0,
        )
    return cluster, distributed.Client(cluster, set_as_default=False)


@pytest.fixture(scope="module")
def clients():
    """In-process clusters: 2 workers x 1 thread, 1 worker x 2 threads, 1 worker x 1 thread."""
    shapes = {"2x1": (2, 1), "1x2": (1, 2), "1x1": (1, 1)}
    with contextlib.ExitStack() as stack:
        out = {}
        for name, shape in shapes.items():
            cluster, client = _cluster(*shape)
            stack.enter_context(cluster)
            out[name] = stack.enter_context(client)
        yield out


def on_dask(client, **kw):
    return joblib.parallel_config(backend="dask", client=client, **kw)


@pytest.fixture(scope="module")
def ar1_pair():
    d = lmm.datasets.load("orthodont")
    kw = dict(groups="Subject", cov_struct=lmm.AR1(time="visit"))
    large = lmm.mixedlm("distance ~ age * Sex", d, **kw).fit(reml=False)
    small = lmm.mixedlm("distance ~ age * Sex", d, groups="Subject").fit(reml=False)
    return large, small


@pytest.fixture(scope="module")
def sleep_fit():
    d = lmm.datasets.load("sleepstudy")
    return lmm.mixedlm("Reaction ~ Days", d, groups="Subject").fit()


def test_same_numbers_for_any_backend_and_worker_count(ar1_pair, clients):
    """300 replicates in 5 batches: bit for bit the same replicates in this process, in
    threads and on Dask clusters of 1 and 2 workers (loky processes: test_bootstrap_parallel;
    Dask worker processes: test_worker_processes)."""
    large, small = ar1_pair
    assert parallel.batch_plan(300, ()) == [(a, min(a + 64, 300)) for a in range(0, 300, 64)]
    ref = lmm.pb_lrt(large, small, nsim=300, seed=11, n_jobs=1)
    assert ref.nsim_failed == 0 and ref.joblib_prefer is None
    runs = {}
    for backend in ("sequential", "threading"):
        with joblib.parallel_config(backend=backend):
            runs[backend] = lmm.pb_lrt(large, small, nsim=300, seed=11, n_jobs=2)
    for name in ("2x1", "1x2"):
        with on_dask(clients[name]):
            runs[f"dask {name}"] = lmm.pb_lrt(large, small, nsim=300, seed=11)
    for name, out in runs.items():
        assert np.array_equal(out.ref_distribution, ref.ref_distribution), name
        assert out.pvalue == ref.pvalue and out.nsim_ok == 300, name


def _where(run) -> dict:
    """{first replicate of a batch: where it ran} for one call of ``run``."""
    RAN_ON.clear()
    out = run()
    return out, dict(RAN_ON)


def test_batches_run_on_the_cluster_and_n_jobs_semantics(sleep_fit, clients):
    """With the Dask backend the first (timed) batch runs here and the others on the workers,
    whatever ``n_jobs`` (the cluster's threads decide), except ``n_jobs=1``: everything here,
    as a one-thread cluster (joblib runs one worker in sequence in this process too)."""
    client = clients["2x1"]
    workers = set(client.scheduler_info()["workers"])
    ref, where = _where(lambda: lmm.parametric_bootstrap(sleep_fit, Where, nsim=150, seed=4))
    assert sorted(where) == [0, 64, 128] and set(where.values()) == {"local"}
    for n_jobs in (None, 2, -1, 5):
        with on_dask(client):
            out, where = _where(
                lambda j=n_jobs: lmm.parametric_bootstrap(
                    sleep_fit, Where, nsim=150, seed=4, n_jobs=j
                )
            )
        assert where[0] == "local", n_jobs
        assert {where[64], where[128]} <= workers, n_jobs
        assert out.joblib_prefer == "threads"  # a hint the Dask backend does not need
        assert np.array_equal(out.replicates, ref.replicates), n_jobs
    with on_dask(client):
        out, where = _where(
            lambda: lmm.parametric_bootstrap(sleep_fit, Where, nsim=150, seed=4, n_jobs=1)
        )
    assert set(where.values()) == {"local"} and out.joblib_prefer is None
    assert np.array_equal(out.replicates, ref.replicates)
    with on_dask(clients["1x1"]):
        out, where = _where(lambda: lmm.parametric_bootstrap(sleep_fit, Where, nsim=150, seed=4))
    assert set(where.values()) == {"local"} and out.joblib_prefer is None
    assert np.array_equal(out.replicates, ref.replicates)


def test_bootstrap_predict_and_failures_on_dask(sleep_fit, clients):
    """Prediction intervals and the per-replicate guard give the same results on a cluster:
    a batch that raises is rerun one replicate at a time on the worker, and the warnings of
    the refits come back."""
    new = pd.DataFrame({"Days": [0.0, 4.5, 9.0]})
    ref = lmm.bootstrap_predict(sleep_fit, new, nsim=150, seed=2, n_jobs=1)
    with on_dask(clients["2x1"]):
        out = lmm.bootstrap_predict(sleep_fit, new, nsim=150, seed=2)
    assert np.array_equal(out.errors, ref.errors)
    assert out.lower.equals(ref.lower) and out.upper.equals(ref.upper)

    from tests.test_bootstrap_parallel import NoiseSum

    kw = dict(nsim=150, seed=3, bad=(3, 70, 130), nan=(100,))
    with pytest.warns(lmm.BootstrapWarning, match="4 of 150") as serial_w:
        serial = lmm.parametric_bootstrap(None, NoiseSum, **kw)
    with on_dask(clients["2x1"]), pytest.warns(lmm.BootstrapWarning, match="4 of 150") as dask_w:
        out = lmm.parametric_bootstrap(None, NoiseSum, **kw)
    assert [str(w.message) for w in dask_w] == [str(w.message) for w in serial_w]
    assert list(out.failed) == [3, 70, 100, 130]
    pd.testing.assert_frame_equal(out.failures, serial.failures)
    assert np.array_equal(out.replicates, serial.replicates)


def test_statistic_size_and_callables_on_dask(sleep_fit, clients):
    """``sys.getsizeof`` of a statistic is what a worker receives (its pickled batch state),
    measured once; a callable statistic that plain pickle cannot handle (a lambda) counts as
    small and still runs on the cluster (Dask pickles it with cloudpickle)."""
    stat = FixedEffects(sleep_fit)
    nbytes = len(pickle.dumps(stat, protocol=pickle.HIGHEST_PROTOCOL))
    assert nbytes > 1000 and nbytes <= sys.getsizeof(stat) < nbytes + 200
    assert "_pickled_size" not in stat.__getstate__()

    def icc(refits):
        return refits.cov_re[:, 0, 0] / (refits.cov_re[:, 0, 0] + refits.scale)

    ref = lmm.parametric_bootstrap(sleep_fit, icc, nsim=150, seed=6, n_jobs=1)
    with on_dask(clients["2x1"]):
        out = lmm.parametric_bootstrap(sleep_fit, lambda r: icc(r), nsim=150, seed=6)
    assert np.array_equal(out.replicates, ref.replicates)


class FakeBar:
    """Records a progress bar's life: total, initial count, updates and closing."""

    made: list["FakeBar"] = []

    def __init__(self, total, initial=0, desc="", unit=""):
        self.total, self.n, self.updates, self.closed = total, initial, [], False
        FakeBar.made.append(self)

    def update(self, n):
        self.updates.append(n)
        self.n += n

    def close(self):
        self.closed = True


def test_progress_on_dask(ar1_pair, clients, monkeypatch):
    """The bar counts every batch as it comes back from the cluster (in any order) and the
    numbers are those of a run without a bar."""
    from types import SimpleNamespace

    large, small = ar1_pair
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", SimpleNamespace(tqdm=FakeBar))
    FakeBar.made.clear()
    ref = lmm.pb_lrt(large, small, nsim=300, seed=11, n_jobs=1, progress=False)
    assert FakeBar.made == []
    with on_dask(clients["2x1"]):
        out = lmm.pb_lrt(large, small, nsim=300, seed=11, progress=True)
    (bar,) = FakeBar.made
    assert bar.total == 300 and bar.n == 300 and bar.closed
    assert sorted(bar.updates) == [44, 64, 64, 64, 64]
    assert np.array_equal(out.ref_distribution, ref.ref_distribution)


def test_worker_processes(ar1_pair, monkeypatch):
    """A cluster of 2 worker processes: the statistic is pickled (its ``batch_state``) once
    for the run, not with each batch (it reports its pickled size to ``sys.getsizeof``, so
    joblib's Dask backend scatters it), and the replicates are bit for bit those of this
    process."""
    large, small = ar1_pair
    ref = lmm.pb_lrt(large, small, nsim=300, seed=11, n_jobs=1)
    pickled = []
    getstate = BootstrapStatistic.__getstate__

    def counting(self):
        pickled.append(type(self).__name__)
        return getstate(self)

    monkeypatch.setattr(BootstrapStatistic, "__getstate__", counting)
    cluster, client = _cluster(2, 1, processes=True)
    try:
        with on_dask(client), distributed.get_task_stream(client) as ts:
            with warnings.catch_warnings():
                warnings.simplefilter("error", lmm.BootstrapWarning)
                out = lmm.pb_lrt(large, small, nsim=300, seed=11)
        tasks = [t for t in ts.data if t["key"].startswith("batch_of__run_batch")]
    finally:
        client.close()
        cluster.close()
    assert np.array_equal(out.ref_distribution, ref.ref_distribution)
    # 4 batches in >= 2 dask tasks; the statistic is pickled to measure it and to scatter it
    assert len(tasks) >= 2, ts.data
    assert pickled == ["LikelihoodRatio"] * 2
