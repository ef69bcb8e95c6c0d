"""Any input gives a Config or a ConfigError naming the file, never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgw.config.loader import LIMIT_KEYS, LISTENER_KEYS, TOP_KEYS, load_config
from mailgw.config.schema import Config
from mailgw.errors import ConfigError

KEYS = st.sampled_from([*TOP_KEYS, *LISTENER_KEYS, *LIMIT_KEYS, "cert", "key", "x@a.example"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["smtp", "pop3", "starttls", "127.0.0.1", "::1", "a.example", "10.0.0.0/8"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)


def _load(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_bytes(data)
        try:
            assert isinstance(load_config(path), Config)
        except ConfigError as exc:
            assert exc.file == str(path)
            assert exc.line is None or exc.line >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_structured_documents(document: dict[str, Any]) -> None:
    _load(yaml.safe_dump(document).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    _load(data)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="{}[]:-,&*!|>'\"#%@`?\n ab1.", max_size=80))
def test_yaml_punctuation(text: str) -> None:
    _load(text.encode())
