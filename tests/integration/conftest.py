import os
import pytest

BIN = os.environ.get("WEBPOOLD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "webpoold")


@pytest.fixture
def webpoold_bin():
    return os.path.abspath(BIN)
