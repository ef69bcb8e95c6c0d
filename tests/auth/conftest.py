"""Fixtures for the auth tests: cheap argon2 parameters (test-only switch)."""

from __future__ import annotations

import pytest

from mailgw.auth.hashing import FAST_ENV


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAST_ENV, "1")
