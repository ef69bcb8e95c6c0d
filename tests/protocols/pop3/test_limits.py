"""Line length, bad-command limit and pipelining (RFC 2449 sections 4 and 6.6)."""

from __future__ import annotations

import tracemalloc

from mailgw.protocols.pop3 import NEED_DATA, Close, ConnectionClosed, SendData, State

from .helpers import MSG1, FakeApp, make_conn, run, sent


def test_long_line_is_rejected_and_discarded(bytewise: bool) -> None:
    conn = make_conn(max_line=64)
    data = b"NOOP " + b"x" * 200 + b"\r\nCAPA\r\n"
    out, _ = run(conn, data, bytewise=bytewise)
    assert out.startswith(b"-ERR Line too long.\r\n+OK\r\nCAPA\r\n")
    assert conn.bad_commands == 1


def test_line_length_boundary() -> None:
    conn = make_conn(max_line=16)
    ok = b"USER " + b"a" * 9 + b"\r\n"  # exactly 16 octets
    assert len(ok) == 16
    assert run(conn, ok)[0] == b"+OK\r\n"
    assert run(conn, b"USER " + b"a" * 10 + b"\r\n")[0] == b"-ERR Line too long.\r\n"
    conn2 = make_conn(max_line=16)
    for b in ok:  # byte by byte: the partial line never counts as too long early
        conn2.receive_data(bytes([b]))
    assert conn2.next_event() == SendData(b"+OK\r\n")


def test_megabyte_line_does_not_grow_memory() -> None:
    conn = make_conn(max_line=4096)
    chunk = b"A" * 65536
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(16):  # 1 MiB without a newline
            conn.receive_data(chunk)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 4096 + 2048
    assert conn.next_event() == SendData(b"-ERR Line too long.\r\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"rest of the long line\r\nCAPA\r\n")
    event = conn.next_event()
    assert isinstance(event, SendData)
    assert event.data.startswith(b"+OK\r\nCAPA")


def test_whole_megabyte_line_in_one_call() -> None:
    conn = make_conn()
    conn.receive_data(b"X" * (1 << 20) + b"\r\nCAPA\r\n")
    assert conn.next_event() == SendData(b"-ERR Line too long.\r\n")
    assert isinstance(conn.next_event(), SendData)


def test_long_line_cancels_sasl_continuation() -> None:
    conn = make_conn(max_line=32)
    out, events = run(conn, b"AUTH PLAIN\r\n" + b"A" * 100 + b"\r\nCAPA\r\n")
    assert out.startswith(b"+ \r\n-ERR Line too long.\r\n+OK\r\nCAPA\r\n")
    assert sent(events) == []


def test_bad_command_limit(bytewise: bool) -> None:
    conn = make_conn(max_bad_commands=3)
    data = b"FOO\r\nSTAT\r\nLIST 1 2 3\r\nBAR\r\nCAPA\r\n"
    out, events = run(conn, data, bytewise=bytewise)
    assert out == (
        b"-ERR Unknown command.\r\n"
        b"-ERR Command not valid in this state.\r\n"
        b"-ERR Command not valid in this state.\r\n"
        b"-ERR Too many bad commands.\r\n"
    )
    assert events[-1] == Close(
        reason="too many bad commands", data=b"-ERR Too many bad commands.\r\n"
    )
    assert conn.state is State.CLOSED
    conn.receive_data(b"CAPA\r\n")
    assert conn.next_event() == ConnectionClosed()


def test_failed_message_commands_do_not_count() -> None:
    conn = make_conn(max_bad_commands=1)
    run(conn, b"USER alice\r\nPASS secret pw\r\n")
    _out, events = run(conn, b"LIST 9\r\n" * 30 + b"DELE x\r\n" * 30)
    assert not any(isinstance(e, Close) for e in events)
    assert conn.bad_commands == 0


def test_pipelining_keeps_reply_order(bytewise: bool) -> None:
    conn = make_conn()
    data = (
        b"CAPA\r\nUSER alice\r\nPASS secret pw\r\nSTAT\r\nRETR 1\r\nDELE 1\r\n"
        b"LIST 1\r\nUIDL\r\nTOP 2 0\r\nNOOP\r\nQUIT\r\n"
    )
    out, events = run(conn, data, bytewise=bytewise, app=FakeApp(chunk=5))
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "SendData", "SendData", "Authenticate", "SendData", "Retr", "SendData",
        "SendData", "SendData", "Top", "SendData", "Update", "ConnectionClosed",
    ]  # fmt: skip
    capa_end = b"IMPLEMENTATION mailgw\r\n.\r\n"
    after_capa = out[out.index(capa_end) + len(capa_end) :]
    assert after_capa.startswith(b"+OK\r\n+OK Logged in.\r\n+OK 3 ")
    assert f"+OK {len(MSG1)} octets\r\n".encode() in after_capa
    tail = after_capa[after_capa.index(b"..dot line") :]
    assert tail.startswith(
        b"..dot line\r\nline 3\r\n.\r\n+OK Message 1 deleted.\r\n"
        b"-ERR Message 1 already deleted.\r\n+OK\r\n2 UID00002\r\n3 UID00003\r\n.\r\n"
        b"+OK\r\nSubject: two\r\n\r\n.\r\n+OK\r\n+OK Logging out.\r\n"
    )
