"""Shared test settings: the two notebooks as fixtures; tests that grade whole classes of notebooks end to end are `heavy`."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY_FIXTURES = {"graded", "hostile_run", "rows"}  # module fixtures that grade many notebooks


def pytest_collection_modifyitems(items):
    """Mark every test that uses a heavy fixture as heavy (CI runs those on the default backend only)."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("heavy")


@pytest.fixture(scope="module")
def solution():
    """The answer key, solution.ipynb, as stored."""
    return nbformat.read(ROOT / "solution.ipynb", as_version=4)


@pytest.fixture(scope="module")
def index():
    """The student notebook, index.ipynb, as stored."""
    return nbformat.read(ROOT / "index.ipynb", as_version=4)
