"""statsmodels' own MixedLM tests (``statsmodels/regression/tests/test_lme.py``, run from the
installed statsmodels) against our MixedLM with the Independence residual structure.

See ``tests/_statsmodels_suite.py`` for the mechanism and the list of intended differences.
"""

import os

import pytest

from ._statsmodels_suite import SUITE_PATH, load_suite, patched_entry_points, suite_tests

if not os.path.exists(SUITE_PATH):  # a statsmodels installed without its tests
    pytest.skip(f"statsmodels' tests are not installed ({SUITE_PATH})", allow_module_level=True)

globals().update(suite_tests(load_suite()))


@pytest.fixture(autouse=True)
def _our_mixedlm():
    with patched_entry_points():
        yield
