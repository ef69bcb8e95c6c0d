"""Tests for the RFC 3501 5.1.3 modified UTF-7 codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.protocols.imap.utf7 import decode_mutf7, encode_mutf7

TABLE = [
    ("INBOX", "INBOX"),
    ("", ""),
    ("&", "&-"),
    ("x&y", "x&-y"),
    ("Données", "Donn&AOk-es"),
    ("Ünï", "&ANw-n&AO8-"),
    ("Çø", "&AMcA+A-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3 example
    ("😀", "&2D3eAA-"),
    ("a\tb", "a&AAk-b"),
]


@pytest.mark.parametrize(("text", "wire"), TABLE)
def test_table(text: str, wire: str) -> None:
    assert encode_mutf7(text) == wire
    assert decode_mutf7(wire) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&",  # unterminated
        "&AOk",  # unterminated
        "&AGE-",  # encodes printable "a"
        "&AOk-&AOk-",  # adjacent runs
        "&AO=-",  # padding
        "&AOl-",  # non-zero leftover bits
        "caf\u00e9",  # raw non-ASCII
        "a\x00b",  # raw control
        "&A-",  # too short
        "&2D0-",  # lone high surrogate
        "&*AA-",  # invalid base64 character
    ],
)
def test_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_mutf7(bad)


def test_encode_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        encode_mutf7("a\ud800b")


@given(st.text())
def test_round_trip(text: str) -> None:
    wire = encode_mutf7(text)
    assert all("\x20" <= c <= "\x7e" for c in wire)
    # the base64 alphabet uses "," for "/", and never "." (the Maildir++ separator)
    assert ("/" in wire) == ("/" in text)
    assert ("." in wire) == ("." in text)
    assert decode_mutf7(wire) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_is_direct(text: str) -> None:
    assert encode_mutf7(text) == text.replace("&", "&-")
