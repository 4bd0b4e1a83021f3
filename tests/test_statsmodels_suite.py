"""statsmodels' own MixedLM tests (``statsmodels/regression/tests/test_lme.py``, run from the
installed statsmodels) against our MixedLM with the Independence residual structure.

See ``tests/_statsmodels_suite.py`` for the mechanism and the list of intended differences.
"""

import pytest

from ._statsmodels_suite import load_suite, patched_entry_points, suite_tests

globals().update(suite_tests(load_suite()))


@pytest.fixture(autouse=True)
def _our_mixedlm():
    with patched_entry_points():
        yield
