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
import os
import sys

import statsmodels
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.regression import mixed_linear_model as sm_mlm

import statsmodels_lmm_ext as lmm

SUITE_PATH = os.path.join(
    os.path.dirname(statsmodels.__file__), "regression", "tests", "test_lme.py"
)
MODULE_NAME = "statsmodels.regression.tests._test_lme_against_statsmodels_lmm_ext"

#: test id (relative to the suite module; a parametrised test may be named without its
#: parameters) -> (reason, test of ours backing our value)
INTENDED_DIFFERENCES: dict[str, tuple[str, str]] = {}


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


def suite_tests(module) -> dict:
    """The module's test functions and classes, to be exposed to pytest's collection."""
    return {
        k: v
        for k, v in vars(module).items()
        if (k.startswith("test_") and callable(v)) or (k.startswith("Test") and isinstance(v, type))
    }
