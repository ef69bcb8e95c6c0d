"""Byte transcripts: APPEND (streaming, MULTIAPPEND, limits, LITERAL+/LITERAL-)."""

import datetime as dt

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import (
    NEED_DATA,
    AppendData,
    Bye,
    ContinuationNeeded,
    ImapConnection,
)
from mailgw.protocols.imap.state import State

from .helpers import A, N, S, check, transcript

MSG = b"Subject: hi\r\n\r\nbody\r\n"
TZ = dt.timezone(dt.timedelta(hours=-7))


def msg(size: int, flags: tuple[str, ...] = (), date: dt.datetime | None = None) -> c.AppendMessage:
    return c.AppendMessage(flags, date, size)


def test_append_synchronizing() -> None:
    check(
        b"a APPEND INBOX {%d}\r\n%s\r\n" % (len(MSG), MSG),
        [
            ContinuationNeeded("a", len(MSG), "INBOX"),
            AppendData("a", MSG, True),
            c.Append("a", "INBOX", (msg(len(MSG)),)),
        ],
        state=A,
    )


def test_append_flags_date_rfc3501_example() -> None:
    check(
        b'A003 APPEND saved-messages (\\Seen) "07-Feb-1994 21:52:25 -0700" {%d+}\r\n%s\r\n'
        % (len(MSG), MSG),
        [
            AppendData("A003", MSG, True),
            c.Append(
                "A003",
                "saved-messages",
                (msg(len(MSG), ("\\Seen",), dt.datetime(1994, 2, 7, 21, 52, 25, tzinfo=TZ)),),
            ),
        ],
        state=S,
    )


def test_multiappend_and_mailbox_literal() -> None:
    check(
        b"a APPEND {6}\r\nDrafts {3}\r\none (\\Draft) {3+}\r\ntwo"
        b' " 1-Jan-2024 00:00:00 +0000" {0+}\r\n {5+}\r\nthree\r\n',
        [
            ContinuationNeeded("a", 6),
            ContinuationNeeded("a", 3, "Drafts"),
            AppendData("a", b"one", True),
            AppendData("a", b"two", True),
            AppendData("a", b"", True),
            AppendData("a", b"three", True),
            c.Append(
                "a",
                "Drafts",
                (
                    msg(3),
                    msg(3, ("\\Draft",)),
                    msg(0, (), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
                    msg(5),
                ),
            ),
        ],
        state=A,
    )


def test_append_rejected_before_continuation() -> None:
    conn = ImapConnection(state=State.AUTHENTICATED)
    conn.receive_data(b"a APPEND Nope {5}\r\n")
    assert conn.next_event() == ContinuationNeeded("a", 5, "Nope")
    assert conn.reject_literal("No such mailbox.", "TRYCREATE") == (
        b"a NO [TRYCREATE] No such mailbox.\r\n"
    )
    conn.receive_data(b"b NOOP\r\n")
    assert conn.next_event() == c.Noop("b")


def test_reject_literal_after_data_is_local_error() -> None:
    from mailgw.protocols.errors import LocalProtocolError

    conn = ImapConnection(state=State.AUTHENTICATED)
    conn.receive_data(b"a APPEND x {5}\r\nhel")
    assert conn.next_event() == ContinuationNeeded("a", 5, "x")
    assert conn.next_event() == AppendData("a", b"hel", False)
    with pytest.raises(LocalProtocolError):
        conn.reject_literal("too late")


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"a APPEND INBOX (\\Recent) {5}", b"a BAD \\Recent cannot be set by the client"),
        (b'a APPEND INBOX "31-Feb-2024 00:00:00 +0000" {5}', b"a BAD Invalid date-time"),
        (b"a APPEND INBOX junk {5}", b"a BAD Expected message literal"),
        (b'a APPEND "&Jjo" {5}', b"a BAD Mailbox name is not valid modified UTF-7"),
    ],
)
def test_bad_append_refused_before_data(line: bytes, reply: bytes) -> None:
    # no "+", no message octet read; the client sends nothing more for a1
    check(line + b"\r\nb NOOP\r\n", [reply + b"\r\n", c.Noop("b")], state=A)


def test_bad_append_non_sync_literal_is_skipped_not_parsed() -> None:
    body = b"c LOGOUT\r\n"  # message text that looks like a command
    check(
        b"a APPEND INBOX junk {%d+}\r\n%s\r\nb NOOP\r\n" % (len(body), body),
        [b"a BAD Expected message literal\r\n", c.Noop("b")],
        state=A,
    )


def test_append_error_after_message() -> None:
    check(
        b"a APPEND INBOX {2+}\r\nhi junk\r\nb NOOP\r\n",
        [AppendData("a", b"hi", True), b"a BAD Expected message literal\r\n", c.Noop("b")],
        state=A,
    )


def test_append_too_big_synchronizing_is_no_toobig() -> None:
    check(
        b"a APPEND INBOX {1001}\r\nb NOOP\r\n",
        [b"a NO [TOOBIG] Message too large.\r\n", c.Noop("b")],
        state=A,
        append_limit=1000,
    )


def test_append_too_big_literal_plus_is_bye() -> None:
    events = transcript(b"a APPEND INBOX {1001+}\r\n" + b"x" * 1001, state=A, append_limit=1000)
    assert events == [Bye("literal too large", b"* BYE [TOOBIG] Literal too large.\r\n")]


def test_literal_minus_limits_non_sync_to_4096() -> None:
    big = b"x" * 4097
    events = transcript(b"a APPEND INBOX {4097+}\r\n" + big, state=A, literal_plus=False)
    assert events == [Bye("literal too large", b"* BYE [TOOBIG] Literal too large.\r\n")]
    small = b"x" * 4096
    check(
        b"a APPEND INBOX {4096+}\r\n" + small + b"\r\n",
        [AppendData("a", small, True), c.Append("a", "INBOX", (msg(4096),))],
        state=A,
        literal_plus=False,
    )


def test_append_not_authenticated() -> None:
    check(
        b"a APPEND INBOX {5}\r\n",
        [b"a BAD APPEND not valid in this state\r\n"],
        state=N,
    )


def test_append_5mib_streamed_with_bounded_memory() -> None:
    size = 5 * 1024 * 1024
    piece = 64 * 1024
    conn = ImapConnection(state=State.AUTHENTICATED)
    conn.receive_data(b"a APPEND INBOX (\\Seen) {%d}\r\n" % size)
    assert conn.next_event() == ContinuationNeeded("a", size, "INBOX")
    received = 0
    finals = 0
    peak = 0
    block = bytes(range(256)) * (piece // 256)
    for _ in range(size // piece):
        conn.receive_data(block)
        peak = max(peak, conn.buffered_size)
        while (event := conn.next_event()) is not NEED_DATA:
            assert isinstance(event, AppendData)
            assert event.chunk == block[: len(event.chunk)]
            received += len(event.chunk)
            finals += event.final
            peak = max(peak, conn.buffered_size)
        assert conn.buffered_size < 100  # every chunk handed out: only the command line kept
    assert received == size and finals == 1
    assert peak <= piece + 8192
    conn.receive_data(b"\r\n")
    assert conn.next_event() == c.Append("a", "INBOX", (msg(size, ("\\Seen",)),))
