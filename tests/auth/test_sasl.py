"""SASL PLAIN and LOGIN decoding: table tests and Hypothesis."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.auth.sasl import (
    LOGIN_PASSWORD_CHALLENGE,
    LOGIN_USERNAME_CHALLENGE,
    decode_base64,
    decode_login_step,
    decode_plain,
    encode_plain,
)


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


def test_plain_basic() -> None:
    assert decode_plain(b64(b"\0alice\0secret")) == ("", "alice", "secret")
    assert decode_plain(b64(b"admin\0alice\0s e:c")) == ("admin", "alice", "s e:c")
    assert decode_plain(b64("\0jörg\0pässword".encode())) == ("", "jörg", "pässword")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"alice\0secret",  # one NUL
        b"\0alice\0secret\0",  # three NULs
        b"\0\0secret",  # empty authcid
        b"\0alice\0",  # empty password
        b"\0alice\0\xff\xfe",  # not UTF-8
        b"\xc0\0alice\0x",
    ],
)
def test_plain_bad_messages(raw: bytes) -> None:
    with pytest.raises(ValueError) as info:
        decode_plain(b64(raw))
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "token",
    [
        b"AGFsaWNlAHNlY3JldA",  # missing padding
        b"AGFsaWNl AHNlY3JldA==",  # space
        b"AGFsaWNlAHNlY3JldA==\r\n",  # CRLF left on
        b"AGFsaWNlAHNlY3JldA=",  # wrong padding
        b"AGFsaWNlAHNlY3JldA===",
        b"=AGFsaWNlAHNlY3JldA=",
        b"AGFsaWNl*HNlY3JldA==",  # non-alphabet (RFC 4648 3.3)
        b"AGFsaWNl-HNlY3JldA==",  # base64url alphabet
        b"AGFsaWNlAHNlY3JldB==",  # non-canonical pad bits (RFC 4648 3.5)
        b"*",
        "AGFsaWNlAHNlY3Jld\u00c4==".encode(),
    ],
)
def test_strict_base64(token: bytes) -> None:
    with pytest.raises(ValueError):
        decode_plain(token)


def test_base64_reference() -> None:
    assert decode_plain(b"AGFsaWNlAHNlY3JldA==") == ("", "alice", "secret")


def test_login_steps() -> None:
    assert decode_login_step(b64(b"alice")) == "alice"
    assert decode_login_step(b64("pä ss".encode())) == "pä ss"
    assert decode_login_step(b"") == ""
    for bad in (b64(b"a\0b"), b64(b"\xff"), b"YWxpY2U", b"!!!!"):
        with pytest.raises(ValueError):
            decode_login_step(bad)
    assert base64.b64decode(LOGIN_USERNAME_CHALLENGE) == b"Username:"
    assert base64.b64decode(LOGIN_PASSWORD_CHALLENGE) == b"Password:"


safe = st.text(st.characters(exclude_characters="\0", exclude_categories=["Cs"]))


@given(authzid=safe, authcid=safe.filter(bool), password=safe.filter(bool))
def test_plain_round_trip(authzid: str, authcid: str, password: str) -> None:
    assert decode_plain(encode_plain(authcid, password, authzid)) == (authzid, authcid, password)


@given(st.binary(max_size=300))
def test_plain_any_bytes_value_error_only(data: bytes) -> None:
    try:
        _authzid, authcid, password = decode_plain(data)
    except ValueError:
        return
    # accepted: it must have been canonical base64 of a valid message
    assert base64.b64encode(base64.b64decode(data, validate=True)) == data
    assert authcid and password


@given(st.binary(max_size=300))
def test_plain_any_message_value_error_only(raw: bytes) -> None:
    try:
        result = decode_plain(b64(raw))
    except ValueError:
        assert raw.count(b"\0") != 2 or b"\0\0" in raw or raw.endswith(b"\0") or not _utf8(raw)
        return
    assert "\0".join(result).encode() == raw


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(st.binary(max_size=200))
def test_base64_accepts_exactly_canonical(raw: bytes) -> None:
    token = b64(raw)
    assert decode_base64(token) == raw
    for bad in (token + b"=", b" " + token, token.replace(b"A", b"-", 1)):
        if bad != token:
            with pytest.raises(ValueError):
                decode_base64(bad)


@given(st.text(max_size=100))
def test_login_any_text(text: str) -> None:
    token = text.encode("utf-8", "surrogatepass")
    try:
        decoded = decode_login_step(token)
    except ValueError:
        return
    assert base64.b64encode(decoded.encode()) == token
