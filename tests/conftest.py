"""Shared test settings: tests that grade whole classes of notebooks end to end are marked `heavy`."""

HEAVY_FIXTURES = {"graded", "hostile_run", "rows"}  # module fixtures that grade many notebooks


def pytest_collection_modifyitems(items):
    """Mark every test that uses a heavy fixture as heavy (CI runs those on the default backend only)."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("heavy")
