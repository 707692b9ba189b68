import pytest

from ecrm.workflows import engine


@pytest.fixture(autouse=True)
def _fresh_rules():
    """The compiled-rule cache lives in the process; each test starts from its own database state."""
    engine.invalidate()
    engine._recent.clear()
    engine._counts.clear()
    yield
    engine.invalidate()
    engine._recent.clear()
