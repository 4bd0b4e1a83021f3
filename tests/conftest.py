import json
from pathlib import Path

import pytest

import statsmodels_lmm_ext as lmm

from ._statsmodels_suite import mark_intended_differences

RESULTS = Path(__file__).parent / "results"


def pytest_collection_modifyitems(config, items):
    mark_intended_differences(items)


def load_reference(name: str) -> dict:
    """A JSON file of reference values produced by an R script in tests/results/."""
    with open(RESULTS / name) as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def nlme_cases():
    return load_reference("nlme_structures.json")["cases"]


def fev_data():
    """The FEV data without missing responses (missing visits: several visit patterns)."""
    d = lmm.datasets.load("fev_data")
    return d[d["FEV1"].notna()].reset_index(drop=True)


@pytest.fixture(scope="module", params=["pattern", "group"])
def ar1_fit(request):
    """Random intercept + AR(1) residuals on integer visits with gaps (ML fit), with the engine
    batching visit patterns or single groups."""
    m = lmm.mixedlm(
        "FEV1 ~ ARMCD + AVISIT",
        fev_data(),
        groups="USUBJID",
        cov_struct=lmm.AR1(time="VISITN"),
        engine=request.param,
    )
    assert m.engine.mode == request.param
    return m.fit(reml=False)
