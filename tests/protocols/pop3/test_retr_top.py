"""RETR and TOP (RFC 1939 sections 5 and 7) with byte-stuffing (section 3)."""

from __future__ import annotations

import pytest

from mailgw.protocols.pop3 import (
    NEED_DATA,
    PAUSED,
    LocalProtocolError,
    Pop3Connection,
    Retr,
    SendData,
    Top,
)

from .helpers import MSG1, MSG2, MSG3, FakeApp, login, make_conn, run, sent


@pytest.fixture
def conn() -> Pop3Connection:
    c = make_conn()
    login(c)
    return c


RETR1 = (
    f"+OK {len(MSG1)} octets\r\n".encode()
    + b"Subject: one\r\nFrom: a@example.org\r\n\r\nline 1\r\n..dot line\r\nline 3\r\n.\r\n"
)
RETR2 = (
    f"+OK {len(MSG2)} octets\r\n".encode()
    + b"Subject: two\r\n\r\n...two dots\r\nlast line no newline\r\n.\r\n"
)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_retr_any_chunk_size(conn: Pop3Connection, chunk: int, bytewise: bool) -> None:
    out, events = run(conn, b"RETR 1\r\nRETR 2\r\n", bytewise=bytewise, app=FakeApp(chunk=chunk))
    assert out == RETR1 + RETR2
    assert sent(events) == [Retr(msg=1, index=0), Retr(msg=2, index=1)]


def test_retr_manual_chunks(conn: Pop3Connection) -> None:
    conn.receive_data(b"RETR 3\r\nNOOP\r\n")
    assert conn.next_event() == Retr(msg=3, index=2)
    assert conn.next_event() is PAUSED
    out = conn.retr_start()  # size from the maildrop
    out += conn.body(b"..a\r")
    out += conn.body(b"\n.b\r\n")
    out += conn.body(b".")
    out += conn.body(b"\r\n")
    out += conn.body_end()
    assert out == f"+OK {len(MSG3)} octets\r\n".encode() + b"...a\r\n..b\r\n..\r\n.\r\n"
    assert conn.next_event() == SendData(b"+OK\r\n")
    assert conn.next_event() is NEED_DATA


def test_retr_failed(conn: Pop3Connection) -> None:
    conn.receive_data(b"RETR 1\r\n")
    conn.next_event()
    assert conn.retr_failed() == b"-ERR Message is no longer available.\r\n"
    assert conn.next_event() is NEED_DATA


def test_top(conn: Pop3Connection, bytewise: bool) -> None:
    out, events = run(conn, b"TOP 1 0\r\nTOP 1 1\r\ntop 1 2\r\nTOP 2 5\r\n", bytewise=bytewise)
    assert sent(events) == [
        Top(msg=1, index=0, lines=0),
        Top(msg=1, index=0, lines=1),
        Top(msg=1, index=0, lines=2),
        Top(msg=2, index=1, lines=5),
    ]
    headers = b"+OK\r\nSubject: one\r\nFrom: a@example.org\r\n\r\n"
    assert out == (
        headers
        + b".\r\n"
        + headers
        + b"line 1\r\n.\r\n"
        + headers
        + b"line 1\r\n..dot line\r\n.\r\n"
        + b"+OK\r\nSubject: two\r\n\r\n...two dots\r\nlast line no newline\r\n.\r\n"
    )


@pytest.mark.parametrize(
    ("message", "lines", "reply"),
    [
        (b"A: 1\r\n\r\nb1\r\nb2\r\n", 1, b"+OK\r\nA: 1\r\n\r\nb1\r\n.\r\n"),
        (b"A: 1\n\nb1\nb2\n", 1, b"+OK\r\nA: 1\r\n\r\nb1\r\n.\r\n"),
        (b"A: 1\r\n", 3, b"+OK\r\nA: 1\r\n.\r\n"),  # no body at all
        (b"A: 1", 0, b"+OK\r\nA: 1\r\n.\r\n"),
        (b"\r\n.body\r\n", 0, b"+OK\r\n\r\n.\r\n"),  # empty header
        (b"\r\n.body\r\n", 1, b"+OK\r\n\r\n..body\r\n.\r\n"),
        (b"", 10, b"+OK\r\n.\r\n"),
    ],
)
def test_top_table(conn: Pop3Connection, message: bytes, lines: int, reply: bytes) -> None:
    conn.receive_data(b"TOP 1 %d\r\n" % lines)
    assert isinstance(conn.next_event(), Top)
    assert conn.top(message) == reply


def test_answers_out_of_turn_are_local_errors(conn: Pop3Connection) -> None:
    with pytest.raises(LocalProtocolError):
        conn.retr_start(10)
    with pytest.raises(LocalProtocolError):
        conn.body(b"x")
    conn.receive_data(b"TOP 1 0\r\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.retr_start(10)
    with pytest.raises(LocalProtocolError):
        conn.auth_ok([])
    conn.top(MSG1)
    conn.receive_data(b"RETR 1\r\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.body_end()
    conn.retr_start(1)
    with pytest.raises(LocalProtocolError):
        conn.retr_failed()
    with pytest.raises(LocalProtocolError):
        conn.retr_start(-1)
