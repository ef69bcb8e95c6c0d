"""STLS (RFC 2595 section 4) and plaintext command injection (CVE-2011-0411)."""

from __future__ import annotations

import pytest

from mailgw.protocols.pop3 import (
    NEED_DATA,
    PAUSED,
    LocalProtocolError,
    SendData,
    StartTls,
    State,
)

from .helpers import FakeApp, make_conn, run, sent


def test_stls_then_login(bytewise: bool) -> None:
    app = FakeApp()
    conn = make_conn(plaintext_auth_allowed=False)
    out, events = run(conn, b"STLS\r\n", bytewise=bytewise, app=app)
    assert out == b"+OK Begin TLS negotiation.\r\n"
    assert sent(events) == [StartTls()]
    assert app.buffered_at_stls == [False]
    assert conn.tls_active
    out, _ = run(conn, b"CAPA\r\nUSER alice\r\nPASS secret pw\r\n", bytewise=bytewise)
    assert b"STLS" not in out
    assert b"SASL PLAIN\r\n" in out
    assert out.endswith(b".\r\n+OK\r\n+OK Logged in.\r\n")


def test_pipelined_command_after_stls_is_detected_and_dropped() -> None:
    conn = make_conn()
    conn.receive_data(b"STLS\r\nUSER evil\r\nPASS x\r\n")
    assert conn.next_event() == StartTls()
    assert conn.next_event() is PAUSED
    assert conn.has_buffered_data()
    # An adapter closes here.  If it upgraded anyway, nothing pre-TLS survives:
    assert conn.starttls_ok() == b"+OK Begin TLS negotiation.\r\n"
    assert conn.next_event() is PAUSED
    conn.tls_started()
    assert not conn.has_buffered_data()
    assert conn.next_event() is NEED_DATA


def test_partial_line_after_stls_counts_as_buffered() -> None:
    conn = make_conn()
    conn.receive_data(b"STLS\r\nUS")
    assert conn.next_event() == StartTls()
    assert conn.has_buffered_data()


def test_user_before_stls_is_forgotten() -> None:
    conn = make_conn()
    out, _ = run(conn, b"USER alice\r\nSTLS\r\nPASS secret pw\r\n")
    # PASS was buffered before the handshake and is dropped by tls_started().
    assert out == b"+OK\r\n+OK Begin TLS negotiation.\r\n"
    out, _ = run(conn, b"PASS secret pw\r\n")
    assert out == b"-ERR No user name given.\r\n"


def test_stls_unavailable_or_active() -> None:
    assert run(make_conn(stls_available=False), b"STLS\r\n")[0] == (
        b"-ERR STLS is not available.\r\n"
    )
    assert run(make_conn(tls_active=True), b"STLS\r\n")[0] == b"-ERR TLS is already active.\r\n"


def test_stls_twice() -> None:
    conn = make_conn()
    run(conn, b"STLS\r\n")
    assert run(conn, b"STLS\r\n")[0] == b"-ERR TLS is already active.\r\n"


def test_stls_in_transaction_is_wrong_state() -> None:
    conn = make_conn()
    run(conn, b"USER alice\r\nPASS secret pw\r\n")
    out, events = run(conn, b"STLS\r\n")
    assert out == b"-ERR Command not valid in this state.\r\n"
    assert events == [SendData(out)]
    assert conn.state is State.TRANSACTION


def test_tls_started_without_starttls_ok_is_misuse() -> None:
    conn = make_conn()
    conn.receive_data(b"STLS\r\n")
    assert conn.next_event() == StartTls()
    with pytest.raises(LocalProtocolError):
        conn.tls_started()
