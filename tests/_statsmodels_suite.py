"""Run statsmodels' own MixedLM test module against our MixedLM (issue 10).

The module ``statsmodels/regression/tests/test_lme.py`` and its ``results/`` are installed with
statsmodels; nothing of them is copied here.  :func:`load_suite` executes the installed file as a
fresh module while ``statsmodels.regression.mixed_linear_model.MixedLM`` is our class, so every
``MixedLM`` the module names is ours; :func:`patched_entry_points` replaces, for the duration of
one test, the other names statsmodels users build models with (``sm.MixedLM``,
``smf.mixedlm``, ``statsmodels.api.mixedlm``).

``INTENDED_DIFFERENCES`` is the ONE list of tests of that module that fail on purpose, each with
its reason and the test of ours showing that our value agrees with lme4 or SAS instead; the
conftest hook marks them ``xfail(strict=True)``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
import textwrap

import pytest
import statsmodels
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.regression import mixed_linear_model as sm_mlm

import statsmodels_lmm_ext as lmm

SUITE_PATH = os.path.join(
    os.path.dirname(statsmodels.__file__), "regression", "tests", "test_lme.py"
)
MODULE_NAME = "statsmodels.regression.tests._test_lme_against_statsmodels_lmm_ext"

#: the file of ours that collects the suite
SUITE_FILE = "tests/test_statsmodels_suite.py"
#: the file of ours with the tests that back each intended difference
BACKING = "tests/test_statsmodels_differences.py"

#: THE list of intended differences: test id in statsmodels' module (a parametrised test may be
#: named without its parameters) -> (reason, test of ours showing our value agrees with lme4,
#: SAS or statsmodels' own exact formula instead).  Marked xfail(strict=True) by the conftest
#: hook, so a difference that disappears fails the suite until it is removed from this list.
INTENDED_DIFFERENCES: dict[str, tuple[str, str]] = {
    "test_summary_col": (
        "fixed-effect SEs of small REML fits: statsmodels inverts its joint Hessian in (beta, "
        "Psi) and prints 1.6546/0.1959 and 1.8882/0.2080, 11-58% larger than "
        "sqrt(diag((X'V^-1X)^-1)), which we report as lme4's vcov() and SAS print "
        "(1.4854/0.1647 and 1.4398/0.1318)",
        f"{BACKING}::test_reml_fixed_effect_ses_are_lme4s",
    ),
    "test_singular": (
        "the REML maximum of this fit is interior (group variance 5.7e-4, as lme4 finds); "
        "statsmodels stops at variance 0 with llf = inf and warns SingularMatrixWarning, we "
        "find the maximum and so do not warn (the ML fit is on the boundary: we warn there)",
        f"{BACKING}::test_singular_data_has_an_interior_reml_maximum",
    ),
    "TestMixedLM::test_pastes_vcomp": (
        "AIC/BIC of REML fits: statsmodels returns NaN; we return the REML criteria that lme4 "
        "(AIC), nlme and SAS print; the test's other assertions pass",
        f"{BACKING}::test_pastes_reml_information_criteria",
    ),
}


@contextlib.contextmanager
def patched_entry_points():
    """statsmodels' model-building names point at ours while the block runs."""
    saved = [
        (sm_mlm, "MixedLM", sm_mlm.MixedLM),
        (sm, "MixedLM", sm.MixedLM),
        (smf, "mixedlm", smf.mixedlm),
    ]
    sm_mlm.MixedLM = lmm.MixedLM
    sm.MixedLM = lmm.MixedLM
    smf.mixedlm = lmm.MixedLM.from_formula
    try:
        yield
    finally:
        for mod, name, obj in saved:
            setattr(mod, name, obj)


def load_suite():
    """The installed ``test_lme.py`` executed with our ``MixedLM`` in place of statsmodels'."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, SUITE_PATH)
    module = importlib.util.module_from_spec(spec)
    with patched_entry_points():
        spec.loader.exec_module(module)
    sys.modules[MODULE_NAME] = module
    return module


def mark_intended_differences(items) -> None:
    """Mark the suite's tests listed in :data:`INTENDED_DIFFERENCES` ``xfail(strict=True)``."""
    for item in items:
        path, _, test_id = item.nodeid.partition("::")
        if path != SUITE_FILE:
            continue
        key = test_id if test_id in INTENDED_DIFFERENCES else test_id.split("[")[0]
        if key in INTENDED_DIFFERENCES:
            reason, backing = INTENDED_DIFFERENCES[key]
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{reason} (see {backing})"))


def suite_tests(module) -> dict:
    """The module's test functions and classes, to be exposed to pytest's collection."""
    return {
        k: v
        for k, v in vars(module).items()
        if (k.startswith("test_") and callable(v))
        or (k.startswith("Test") and isinstance(v, type))
    }


def run_without(test, removed: list[str]) -> None:
    """Run one of the suite's tests with the statements ``removed`` (exact source lines,
    stripped) left out: the rest of a test whose listed assertions are intended differences.
    ``test`` is a function or method of the loaded suite module."""
    module = load_suite()
    src = textwrap.dedent(inspect.getsource(test))
    lines = src.splitlines()
    kept = [ln for ln in lines if ln.strip() not in removed]
    if len(lines) - len(kept) != len(removed):
        raise ValueError(f"not all of {removed} are statements of {test.__qualname__}")
    namespace = dict(vars(module))
    exec(compile("\n".join(kept), SUITE_PATH, "exec"), namespace)
    fn = namespace[test.__name__]
    with patched_entry_points():
        fn(None) if "self" in inspect.signature(fn).parameters else fn()
