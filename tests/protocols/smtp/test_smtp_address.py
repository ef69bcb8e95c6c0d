"""Envelope address parsing (mailgw.protocols.smtp.address)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.protocols.smtp.address import (
    AddressError,
    canonical_address,
    check_lengths,
    is_null,
    lookup_key,
    normalize_domain,
    split_address,
    unquote_local,
)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("alice@example.org", ("alice", "example.org")),
        ("Alice@Example.ORG", ("Alice", "example.org")),
        ("<bob@Example.org>", ("bob", "example.org")),
        ('"a b"@example.org', ('"a b"', "example.org")),
        ('"a@b"@example.org', ('"a@b"', "example.org")),
        ("<>", ("", "")),
        ("", ("", "")),
        ("Postmaster", ("Postmaster", "")),
        ("<@relay.example:alice@example.org>", ("alice", "example.org")),
        ("user@[192.0.2.1]", ("user", "[192.0.2.1]")),
        ("user@example.org.", ("user", "example.org")),
        ("jörg@bücher.example", ("jörg", "xn--bcher-kva.example")),
        ("用户@例子.广告", ("用户", "xn--fsqu00a.xn--4rr70v")),
    ],
)
def test_split_address(addr: str, expected: tuple[str, str]) -> None:
    assert split_address(addr) == expected


@pytest.mark.parametrize("addr", ["@example.org", "alice@", "a@" + "x" * 64 + "ü.example"])
def test_split_address_errors(addr: str) -> None:
    with pytest.raises(AddressError):
        split_address(addr)


def test_null_and_canonical() -> None:
    assert is_null("<>") and is_null(" ") and not is_null("a@b")
    assert canonical_address("<Bob@EXAMPLE.org>") == "Bob@example.org"
    assert canonical_address("<>") == ""
    assert normalize_domain("Bücher.Example") == "xn--bcher-kva.example"


def test_lookup_key_unquotes_and_lowercases() -> None:
    assert unquote_local('"a\\"b"') == 'a"b'
    assert lookup_key('"Alice"') == "alice"
    assert lookup_key("ALICE") == "alice"


def test_lengths() -> None:
    assert check_lengths("a" * 64, "example.org")
    assert not check_lengths("a" * 65, "example.org")
    assert not check_lengths("a", "x" * 256)


@given(st.text(max_size=80))
def test_split_address_never_crashes(text: str) -> None:
    try:
        _local, domain = split_address(text)
    except AddressError:
        return
    assert domain == domain.lower()
