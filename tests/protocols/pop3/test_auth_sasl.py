"""AUTH PLAIN (RFC 5034, RFC 4616)."""

from __future__ import annotations

import base64

import pytest

from mailgw.protocols.pop3 import Authenticate, State
from mailgw.protocols.sasl import decode_plain

from .helpers import make_conn, run, sent

PLAINTEXT = (
    b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
)


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


def test_auth_plain_initial_response(bytewise: bool) -> None:
    conn = make_conn()
    out, events = run(
        conn, b"AUTH PLAIN " + b64(b"\0alice\0secret pw") + b"\r\n", bytewise=bytewise
    )
    assert out == b"+OK Logged in.\r\n"
    assert sent(events) == [Authenticate("PLAIN", "alice", "secret pw", "")]
    assert conn.state is State.TRANSACTION


def test_auth_plain_continuation(bytewise: bool) -> None:
    conn = make_conn()
    data = b"auth plain\r\n" + b64(b"alice\0alice\0secret pw") + b"\r\n"
    out, events = run(conn, data, bytewise=bytewise)
    assert out == b"+ \r\n+OK Logged in.\r\n"
    assert sent(events) == [Authenticate("PLAIN", "alice", "secret pw", "alice")]


def test_auth_plain_long_initial_response_not_limited_to_40() -> None:
    password = "x" * 200
    data = b"AUTH PLAIN " + b64(b"\0alice\0" + password.encode()) + b"\r\n"
    out, events = run(make_conn(), data)
    assert sent(events) == [Authenticate("PLAIN", "alice", password, "")]
    assert out == b"-ERR [AUTH] Authentication failed.\r\n"


def test_auth_cancel(bytewise: bool) -> None:
    conn = make_conn()
    out, events = run(conn, b"AUTH PLAIN\r\n*\r\nCAPA\r\n", bytewise=bytewise)
    assert out.startswith(b"+ \r\n-ERR Authentication cancelled.\r\n+OK\r\nCAPA\r\n")
    assert sent(events) == []
    assert conn.bad_commands == 0


@pytest.mark.parametrize(
    "response",
    [
        b"!!!!",  # not base64
        b"AGFsaWNlAHNlY3JldA",  # missing padding
        b"AGFsaWNlAHNlY3JldA== ",  # trailing space inside the line is not base64
        b64(b"alice\0secret"),  # two fields
        b64(b"\0\0secret"),  # empty authcid
        b64(b"\0alice\0"),  # empty password
        b64(b"\0al\xffice\0pw"),  # not UTF-8
        b"",  # empty response
    ],
)
def test_auth_bad_response(response: bytes, bytewise: bool) -> None:
    conn = make_conn()
    out, events = run(conn, b"AUTH PLAIN\r\n" + response + b"\r\n", bytewise=bytewise)
    assert out == b"+ \r\n-ERR Invalid SASL PLAIN response.\r\n"
    assert sent(events) == []
    assert conn.bad_commands == 1
    assert conn.state is State.AUTHORIZATION


def test_auth_initial_response_equals_means_empty() -> None:
    out, _ = run(make_conn(), b"AUTH PLAIN =\r\n")
    assert out == b"-ERR Invalid SASL PLAIN response.\r\n"


def test_auth_unsupported_mechanism() -> None:
    out, _ = run(make_conn(), b"AUTH CRAM-MD5\r\nAUTH LOGIN\r\n")
    assert out == b"-ERR Unsupported authentication mechanism.\r\n" * 2


def test_auth_list_mechanisms() -> None:
    assert run(make_conn(), b"AUTH\r\n")[0] == b"+OK\r\nPLAIN\r\n.\r\n"
    assert run(make_conn(plaintext_auth_allowed=False), b"AUTH\r\n")[0] == b"+OK\r\n.\r\n"


def test_auth_plain_disallowed_without_tls() -> None:
    conn = make_conn(plaintext_auth_allowed=False)
    out, events = run(conn, b"AUTH PLAIN " + b64(b"\0alice\0secret pw") + b"\r\n")
    assert out == PLAINTEXT
    assert sent(events) == []


def test_auth_continuation_line_is_not_a_command() -> None:
    out, events = run(make_conn(), b"AUTH PLAIN\r\nQUIT\r\n")
    assert out == b"+ \r\n-ERR Invalid SASL PLAIN response.\r\n"
    assert sent(events) == []


def test_auth_mechanism_argument_limited_to_40() -> None:
    out, _ = run(make_conn(), b"AUTH " + b"P" * 41 + b"\r\n")
    assert out == b"-ERR Argument too long.\r\n"


def test_decode_plain_table() -> None:
    assert decode_plain(b64(b"\0u\0p")) == ("", "u", "p")
    assert decode_plain(b64(b"z\0u\0p w")) == ("z", "u", "p w")
    for bad in (b"", b"====", b"AA=A", b64(b"\0u\0p") + b"AA==", b64(b"a\0b\0c\0d")):
        with pytest.raises(ValueError):
            decode_plain(bad)
