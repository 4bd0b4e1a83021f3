import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).parent / "results"


def load_reference(name: str) -> dict:
    """A JSON file of reference values produced by an R script in tests/results/."""
    with open(RESULTS / name) as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def nlme_cases():
    return load_reference("nlme_structures.json")["cases"]
