"""ImapConnection: limits, bad-command count, EOF, state switching, misuse."""

from __future__ import annotations

import pytest

from mailgw.protocols.errors import RemoteProtocolError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import (
    NEED_DATA,
    AppendData,
    Bye,
    ConnectionClosed,
    ContinuationNeeded,
    ImapConnection,
)
from mailgw.protocols.imap.state import State

from .helpers import A, N, S, check, transcript


def test_line_limit_before_and_after_auth() -> None:
    line = b"a LOGIN x " + b"y" * 8200 + b"\r\n"
    check(line + b"b NOOP\r\n", [b"a BAD Line too long\r\n", c.Noop("b")], state=N)
    conn = ImapConnection()
    conn.set_authenticated(True)
    assert conn.state is State.AUTHENTICATED
    conn.receive_data(b'a SELECT "' + b"y" * 8200 + b'"\r\n')
    assert conn.next_event() == c.Select("a", "y" * 8200)
    conn.receive_data(b"a NOOP " + b"y" * 65536 + b"\r\n")
    with pytest.raises(RemoteProtocolError) as exc:
        conn.next_event()
    assert exc.value.reply == b"a BAD Line too long\r\n"


def test_over_long_line_is_not_buffered() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a NOOP ")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"x" * 9000)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    for _ in range(200):  # 2 MB more of the same line
        conn.receive_data(b"x" * 10_000)
        assert conn.next_event() is NEED_DATA
        assert conn.buffered_size == 0
    conn.receive_data(b"\r\nb NOOP\r\n")
    assert conn.next_event() == c.Noop("b")


def test_pre_auth_literal_limited_to_line_limit() -> None:
    check(
        b"a LOGIN {9000}\r\nb LOGIN {8000}\r\n",
        [b"a BAD Literal too large.\r\n", ContinuationNeeded("b", 8000)],
        state=N,
    )


def test_oversized_sync_literal_gets_bad_unread() -> None:
    check(
        b"a SEARCH TEXT {65537}\r\nb NOOP\r\n",
        [b"a BAD Literal too large.\r\n", c.Noop("b")],
    )


def test_oversized_non_sync_literal_is_bye_without_buffering() -> None:
    conn = ImapConnection(state=S)
    conn.receive_data(b"a SEARCH TEXT {100000000+}\r\n" + b"x" * 65536)
    event = conn.next_event()
    assert event == Bye("literal too large", b"* BYE [TOOBIG] Literal too large.\r\n")
    assert conn.buffered_size == 0
    conn.receive_data(b"x" * 65536)
    assert conn.next_event() == ConnectionClosed()


def test_too_many_bad_commands_is_bye() -> None:
    events = transcript(b"a FOO\r\n" * 5, state=N, max_bad_commands=3)
    assert events == [
        b"a BAD Unknown command\r\n",
        b"a BAD Unknown command\r\n",
        b"a BAD Unknown command\r\n",
        Bye(
            "too many bad commands",
            b"a BAD Unknown command\r\n* BYE Too many invalid commands.\r\n",
        ),
    ]


def test_no_replies_do_not_count_as_bad() -> None:
    events = transcript(b"a SEARCH CHARSET X ALL\r\n" * 3, max_bad_commands=1)
    assert events == [b"a NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset\r\n"] * 3 + [
        ConnectionClosed()
    ]


def test_empty_lines_ignored_and_garbage_untagged() -> None:
    check(
        b"\r\n\r\n(x\r\na NOOP\r\n",
        [b"* BAD Missing or invalid tag\r\n", c.Noop("a")],
        state=N,
    )


def test_eof_mid_command_and_mid_append() -> None:
    check(b"a LOGIN {5}\r\nab", [ContinuationNeeded("a", 5)], state=N)
    check(b"a APPEND x {5+}\r\nab", [AppendData("a", b"ab", False)], state=A)


def test_receive_after_eof_is_local_error() -> None:
    from mailgw.protocols.errors import LocalProtocolError

    conn = ImapConnection()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    conn.receive_data(b"more")  # closed: ignored
    conn2 = ImapConnection()
    conn2.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn2.receive_data(b"x")


def test_set_state_transitions() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a SELECT INBOX\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    conn.set_state(State.SELECTED)
    conn.receive_data(b"b FETCH 1 UID\r\n")
    assert conn.next_event() == c.Fetch(
        "b", c.SequenceSet((c.SeqRange(1, 1),)), (c.FetchAtt("UID"),)
    )
    conn.set_state(State.LOGOUT)
    assert conn.next_event() == ConnectionClosed()


def test_wrong_state_command_with_literal_gets_no_continuation() -> None:
    check(
        b"a SELECT {5}\r\nb NOOP\r\n",
        [b"a BAD SELECT not valid in this state\r\n", c.Noop("b")],
        state=N,
    )
