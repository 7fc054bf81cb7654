"""Shared test settings: the two notebooks as fixtures; tests that grade whole classes of notebooks end to end are `heavy`."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY_FIXTURES = {"graded", "hostile_run", "rows", "unprivileged_run"}  # module fixtures that grade many notebooks


# The longest files first: `make test` runs files in parallel (pytest-xdist, --dist loadfile), and a long file
# started last would finish alone. Measured with --durations: the answer key's nbval run about 5 min, the corpus
# and the hostile run about 4 each, the fixtures' grading run 2, the unprivileged hostile run 2-3, the
# cards' variants (test_spec.py) about 3 (92 variants: 3:15 on a quiet 2-core machine), the Dask tests 2, the challenge's graded folder 1, the property tests 0.7.
LONGEST_FIRST = [
    "solution.ipynb",
    "tests/test_corpus.py",
    "tests/test_grade_sandbox.py",
    "tests/test_grade_unprivileged.py",
    "tests/test_grade.py",
    "tests/test_spec.py",
    "tests/test_grade_dask.py",
    "tests/test_grade_challenge.py",
    "tests/test_grade_preflight.py",
    "tests/test_grade_bounds.py",
    "tests/test_handout.py",
]


def pytest_collection_modifyitems(items):
    """Mark every test that uses a heavy fixture as heavy (CI runs those on the default backend only); order the
    files longest first."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("heavy")
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(ROOT).as_posix(), len(rank)))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """A cache folder of the test run's own: the grader keeps its results store's secret (and, without --out, the
    stores) in $XDG_CACHE_HOME/dae-lab, which must not be the tester's."""
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session", autouse=True)
def cheap_training():
    """The checks judge no training plan (checks.models.card_training): the notebooks the tests grade train cheaply,
    as each test needs, not for the cards' 10 and 30 epochs of batch 128. tests/test_spec.py and the training tests
    of tests/test_checks.py judge the cards' plan themselves."""
    import os

    from checks.spec import TRAINING_SETTING

    os.environ[TRAINING_SETTING] = "any"


@pytest.fixture(scope="module")
def solution():
    """The answer key, solution.ipynb, as stored."""
    return nbformat.read(ROOT / "solution.ipynb", as_version=4)


@pytest.fixture(scope="module")
def index():
    """The student notebook, index.ipynb, as stored."""
    return nbformat.read(ROOT / "index.ipynb", as_version=4)
