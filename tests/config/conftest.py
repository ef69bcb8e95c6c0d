"""Fixtures for configuration tests: YAML files and dummy certificate files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write dedented YAML to tmp_path/mailgw.yaml and return the path."""

    def write(text: str, name: str = "mailgw.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    """Existing cert.pem/key.pem (content is irrelevant to the loader)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return cert, key
