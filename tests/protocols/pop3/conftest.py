from __future__ import annotations

import pytest


@pytest.fixture(params=[False, True], ids=["whole", "bytewise"])
def bytewise(request: pytest.FixtureRequest) -> bool:
    """Run a transcript test twice: fed whole, and fed one byte at a time."""
    return bool(request.param)
