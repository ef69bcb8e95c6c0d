"""Placeholder until the probe command lands (issue 6)."""

from __future__ import annotations

from typing import Any


def register(app: Any) -> None:
    return None
