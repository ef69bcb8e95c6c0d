"""Placeholder until the migrate command lands (issue 5)."""

from __future__ import annotations

from typing import Any


def register(app: Any) -> None:
    return None
