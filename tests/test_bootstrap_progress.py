"""The progress bar of bootstrap runs (``lmm.bootstrap.progress``): ``progress=True/False/None``,
a bar that advances as each batch completes and never changes the numbers, the automatic
rule, and a missing tqdm (a warning with the install command for ``True``, silence for
``None``).  A fake ``tqdm.auto`` module records what the bar is told."""

import io
import sys
import threading
import warnings
from types import SimpleNamespace

import joblib
import numpy as np
import pytest

import statsmodels_lmm_ext as lmm
from statsmodels_lmm_ext.bootstrap import progress
from statsmodels_lmm_ext.bootstrap.random import normals
from statsmodels_lmm_ext.bootstrap.statistics import BootstrapStatistic

#: what happened, in order: ("batch", first replicate) and ("update", replicates)
EVENTS: list[tuple[str, int]] = []
_LOCK = threading.Lock()


class Steps(BootstrapStatistic, name="test_progress_steps"):
    """Test-only: per replicate the sum of 5 of its normals; records each batch it runs (in
    this process; worker processes record into their own copy of ``EVENTS``)."""

    def __init__(self, results=None):
        self.observed = np.array(0.0)

    def batch(self, seeds):
        with _LOCK:
            EVENTS.append(("batch", seeds[0].spawn_key[-1]))
        Z, _ = normals(seeds, 5)
        return {"values": Z.sum(axis=0), "ok": np.ones(len(seeds), bool)}


class FakeBar:
    made: list["FakeBar"] = []

    def __init__(self, total, initial=0, desc="", unit=""):
        self.total, self.initial, self.n = total, initial, initial
        self.updates, self.closed, self.desc = [], False, desc
        FakeBar.made.append(self)

    def update(self, n):
        with _LOCK:
            EVENTS.append(("update", n))
        self.updates.append(n)
        self.n += n

    def close(self):
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", SimpleNamespace(tqdm=FakeBar))
    FakeBar.made.clear()
    EVENTS.clear()
    return FakeBar.made


def run(**kw):
    return lmm.parametric_bootstrap(None, Steps, nsim=150, seed=7, **kw)  # batches 64, 64, 22


def test_bar_advances_after_each_batch(fake_tqdm):
    plain = run(progress=False)
    assert fake_tqdm == []
    EVENTS.clear()
    out = run(progress=True, n_jobs=1)
    (bar,) = fake_tqdm
    assert (bar.total, bar.initial, bar.n, bar.closed) == (150, 0, 150, True)
    assert bar.desc == "bootstrap"
    assert EVENTS == [
        ("batch", 0),
        ("update", 64),
        ("batch", 64),
        ("update", 64),
        ("batch", 128),
        ("update", 22),
    ]
    assert np.array_equal(out.replicates, plain.replicates)


@pytest.mark.parametrize("backend", ["threading", "multiprocessing"])
def test_bar_with_joblib_backends(fake_tqdm, backend):
    """Threads yield batches as they complete (in any order); the multiprocessing backend
    cannot, and hands them all back at the end: the bar still counts every replicate."""
    plain = run(progress=False)
    with joblib.parallel_config(backend=backend):
        out = run(progress=True, n_jobs=2)
    (bar,) = fake_tqdm
    assert bar.n == 150 and bar.closed and sorted(bar.updates) == [22, 64, 64]
    assert np.array_equal(out.replicates, plain.replicates)


def test_bar_is_closed_when_the_run_fails(fake_tqdm, monkeypatch):
    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Steps, "batch", boom)
    with pytest.raises(KeyboardInterrupt):
        run(progress=True, n_jobs=1)
    (bar,) = fake_tqdm
    assert bar.closed


def test_automatic_bar(fake_tqdm, monkeypatch):
    """``progress=None`` (the default) shows a bar, from the second batch on, only for a run
    whose remaining batches would be long and only for a person watching."""
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress, "AUTO_SECONDS", 0.0)
    out = run()
    (bar,) = fake_tqdm
    assert (bar.total, bar.initial, bar.n, bar.closed) == (150, 64, 150, True)
    assert bar.updates == [64, 22]
    fake_tqdm.clear()
    lmm.parametric_bootstrap(None, Steps, nsim=20, seed=7)  # one batch: nothing to show
    monkeypatch.setattr(progress, "AUTO_SECONDS", 1e9)  # a short run
    assert np.array_equal(run().replicates, out.replicates)
    monkeypatch.setattr(progress, "AUTO_SECONDS", 0.0)
    monkeypatch.setattr(progress, "interactive", lambda: False)  # a log file
    run()
    assert fake_tqdm == []
    # without tqdm, the automatic bar is silently left out
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(progress.progress_bar, "warned", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(run().replicates, out.replicates)


def test_missing_tqdm_warns_once_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(progress.progress_bar, "warned", False)
    with pytest.warns(lmm.BootstrapWarning) as caught:
        out = run(progress=True)
    (w,) = caught
    assert str(w.message) == (
        "progress=True needs the tqdm package: pip install tqdm (or pip install "
        '"statsmodels_lmm_ext[progress]"); continuing without a progress bar'
    )
    assert w.filename == __file__  # points at the caller
    assert out.nsim_ok == 150
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(progress=True)


def test_real_tqdm_writes_to_stderr(capsys):
    pytest.importorskip("tqdm")
    run(progress=True, n_jobs=1)
    err = capsys.readouterr().err
    assert "bootstrap" in err and "150/150" in err


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_progress_is_checked(bad):
    msg = "progress must be True \\(show a progress bar\\), False \\(never\\) or None"
    with pytest.raises(TypeError, match=msg):
        run(progress=bad)
    assert progress.check_progress(np.bool_(True)) is True


class _KernelStream(io.StringIO):
    pass


_KernelStream.__module__ = "ipykernel.iostream"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("stream", "expected"),
    [(io.StringIO(), False), (_Terminal(), True), (_KernelStream(), True), (None, False)],
)
def test_interactive(monkeypatch, stream, expected):
    monkeypatch.setattr(sys, "stderr", stream)
    assert progress.interactive() is expected
