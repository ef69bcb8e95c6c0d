"""STAT, LIST, UIDL, DELE, RSET, NOOP (RFC 1939 sections 5 and 7)."""

from __future__ import annotations

import pytest

from mailgw.protocols.pop3 import Pop3Connection, SendData

from .helpers import MSG1, MSG2, MSG3, login, make_conn, run

S1, S2, S3 = len(MSG1), len(MSG2), len(MSG3)


@pytest.fixture
def conn() -> Pop3Connection:
    c = make_conn()
    login(c)
    return c


def test_stat(conn: Pop3Connection, bytewise: bool) -> None:
    out, events = run(conn, b"STAT\r\n", bytewise=bytewise)
    assert out == f"+OK 3 {S1 + S2 + S3}\r\n".encode()
    assert events == [SendData(out)]


def test_list_all_and_one(conn: Pop3Connection, bytewise: bool) -> None:
    out, _ = run(conn, b"LIST\r\nlist 2\r\n", bytewise=bytewise)
    assert (
        out
        == (
            f"+OK 3 messages ({S1 + S2 + S3} octets)\r\n1 {S1}\r\n2 {S2}\r\n3 {S3}\r\n.\r\n"
            f"+OK 2 {S2}\r\n"
        ).encode()
    )


def test_uidl_all_and_one(conn: Pop3Connection, bytewise: bool) -> None:
    out, _ = run(conn, b"UIDL\r\nUIDL 3\r\n", bytewise=bytewise)
    assert out == b"+OK\r\n1 UID00001\r\n2 UID00002\r\n3 UID00003\r\n.\r\n+OK 3 UID00003\r\n"


def test_dele_hides_message_and_rset_restores(conn: Pop3Connection, bytewise: bool) -> None:
    data = b"DELE 2\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 2\r\nRETR 2\r\nTOP 2 0\r\nDELE 2\r\n"
    data += b"RSET\r\nSTAT\r\n"
    out, events = run(conn, data, bytewise=bytewise)
    assert all(isinstance(e, SendData) for e in events)
    assert out == (
        b"+OK Message 2 deleted.\r\n"
        + f"+OK 2 {S1 + S3}\r\n".encode()
        + f"+OK 2 messages ({S1 + S3} octets)\r\n1 {S1}\r\n3 {S3}\r\n.\r\n".encode()
        + b"+OK\r\n1 UID00001\r\n3 UID00003\r\n.\r\n"
        + b"-ERR Message 2 already deleted.\r\n" * 5
        + f"+OK maildrop has 3 messages ({S1 + S2 + S3} octets)\r\n".encode()
        + f"+OK 3 {S1 + S2 + S3}\r\n".encode()
    )
    assert conn.bad_commands == 0


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"LIST 0", b"-ERR No such message, only 3 in maildrop.\r\n"),
        (b"LIST 4", b"-ERR No such message, only 3 in maildrop.\r\n"),
        (b"UIDL 99999999999999999999", b"-ERR No such message, only 3 in maildrop.\r\n"),
        (b"DELE 0", b"-ERR No such message, only 3 in maildrop.\r\n"),
        (b"RETR 4", b"-ERR No such message, only 3 in maildrop.\r\n"),
        (b"LIST x", b"-ERR Invalid message number.\r\n"),
        (b"LIST -1", b"-ERR Invalid message number.\r\n"),
        (b"LIST +1", b"-ERR Invalid message number.\r\n"),
        (b"DELE 1_0", b"-ERR Invalid message number.\r\n"),
        ("RETR １".encode(), b"-ERR Invalid message number.\r\n"),
        (b"TOP 1 x", b"-ERR Invalid number of lines.\r\n"),
        (b"TOP 1 -1", b"-ERR Invalid number of lines.\r\n"),
    ],
)
def test_bad_numbers_are_not_fatal(conn: Pop3Connection, command: bytes, reply: bytes) -> None:
    out, _ = run(conn, command + b"\r\n")
    assert out == reply
    assert conn.bad_commands == 0


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"LIST 1 2", b"-ERR Too many arguments.\r\n"),
        (b"STAT 1", b"-ERR Too many arguments.\r\n"),
        (b"RETR", b"-ERR Missing argument.\r\n"),
        (b"DELE", b"-ERR Missing argument.\r\n"),
        (b"TOP 1", b"-ERR Missing argument.\r\n"),
        (b"LIST " + b"1" * 41, b"-ERR Argument too long.\r\n"),
        (b"FOO", b"-ERR Unknown command.\r\n"),
        (b"", b"-ERR Unknown command.\r\n"),
    ],
)
def test_syntax_errors_count_as_bad(conn: Pop3Connection, command: bytes, reply: bytes) -> None:
    out, _ = run(conn, command + b"\r\n")
    assert out == reply
    assert conn.bad_commands == 1


def test_forty_digit_argument_is_accepted(conn: Pop3Connection) -> None:
    out, _ = run(conn, b"LIST " + b"0" * 39 + b"1\r\n")
    assert out == f"+OK 1 {S1}\r\n".encode()


def test_noop(conn: Pop3Connection, bytewise: bool) -> None:
    assert run(conn, b"NOOP\r\nnoop\r\n", bytewise=bytewise)[0] == b"+OK\r\n+OK\r\n"


def test_empty_maildrop() -> None:
    conn = make_conn()
    conn.receive_data(b"USER alice\r\nPASS secret pw\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 1\r\n")
    assert conn.next_event() == SendData(b"+OK\r\n")
    conn.next_event()
    assert conn.auth_ok([]) == b"+OK Logged in.\r\n"
    replies = [conn.next_event() for _ in range(4)]
    assert replies == [
        SendData(b"+OK 0 0\r\n"),
        SendData(b"+OK 0 messages (0 octets)\r\n.\r\n"),
        SendData(b"+OK\r\n.\r\n"),
        SendData(b"-ERR No such message, only 0 in maildrop.\r\n"),
    ]
