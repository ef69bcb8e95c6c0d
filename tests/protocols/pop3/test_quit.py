"""QUIT in AUTHORIZATION (RFC 1939 section 4) and TRANSACTION -> UPDATE (section 6); EOF."""

from __future__ import annotations

from mailgw.protocols.pop3 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Quit,
    SendData,
    State,
    Update,
)

from .helpers import FakeApp, login, make_conn, run, sent


def test_quit_in_authorization(bytewise: bool) -> None:
    conn = make_conn()
    out, events = run(conn, b"QUIT\r\nCAPA\r\n", bytewise=bytewise)
    assert out == b"+OK Logging out.\r\n"
    assert sent(events) == [Quit(), ConnectionClosed()]
    assert conn.state is State.CLOSED
    conn.receive_data(b"NOOP\r\n")  # ignored once closed
    assert conn.next_event() == ConnectionClosed()


def test_quit_in_transaction_reports_deleted_indexes(bytewise: bool) -> None:
    app = FakeApp()
    conn = make_conn()
    login(conn, app)
    out, events = run(conn, b"DELE 3\r\nDELE 1\r\nQUIT\r\n", bytewise=bytewise, app=app)
    assert out == b"+OK Message 3 deleted.\r\n+OK Message 1 deleted.\r\n+OK Logging out.\r\n"
    assert sent(events) == [Update(deleted=(0, 2)), ConnectionClosed()]
    assert app.expunged == [(0, 2)]


def test_rset_then_quit_deletes_nothing() -> None:
    app = FakeApp()
    conn = make_conn()
    login(conn, app)
    run(conn, b"DELE 1\r\nRSET\r\nQUIT\r\n", app=app)
    assert app.expunged == [()]


def test_update_state_and_failure() -> None:
    conn = make_conn()
    login(conn)
    conn.receive_data(b"DELE 2\r\nQUIT\r\n")
    assert conn.next_event() == SendData(b"+OK Message 2 deleted.\r\n")
    assert conn.next_event() == Update(deleted=(1,))
    assert conn.state is State.UPDATE
    assert conn.next_event() is PAUSED
    assert conn.update_done(False) == b"-ERR Some deleted messages not removed.\r\n"
    assert conn.state is State.CLOSED
    assert conn.next_event() == ConnectionClosed()


def test_eof_in_transaction_is_not_update() -> None:
    conn = make_conn()
    login(conn)
    _out, events = run(conn, b"DELE 1\r\n", eof=True)
    assert sent(events) == [ConnectionClosed()]


def test_eof_processes_buffered_lines_first() -> None:
    conn = make_conn()
    conn.receive_data(b"CAPA\r\nNOOP")
    conn.receive_data(b"")
    conn.receive_data(b"")  # repeated EOF is harmless
    assert isinstance(conn.next_event(), SendData)
    assert conn.next_event() == ConnectionClosed()  # the partial "NOOP" is dropped
    assert conn.next_event() == ConnectionClosed()


def test_eof_while_paused_waits_for_the_answer() -> None:
    conn = make_conn()
    conn.receive_data(b"USER alice\r\nPASS secret pw\r\n")
    conn.receive_data(b"")
    assert conn.next_event() == SendData(b"+OK\r\n")
    conn.next_event()
    assert conn.next_event() is PAUSED
    conn.auth_failed()
    assert conn.next_event() == ConnectionClosed()


def test_need_data_between_lines() -> None:
    conn = make_conn()
    conn.receive_data(b"QU")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"IT\r")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\n")
    assert conn.next_event() == Quit()
