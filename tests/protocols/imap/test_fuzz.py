"""Hypothesis: any bytes, in every state, whole or one byte at a time, give only
events / NEED_DATA or RemoteProtocolError (never another exception); the
parser and scanner raise only ParseError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgw.protocols.errors import RemoteProtocolError
from mailgw.protocols.imap.commands import Command
from mailgw.protocols.imap.connection import (
    NEED_DATA,
    AppendData,
    Bye,
    ConnectionClosed,
    ContinuationNeeded,
    ImapConnection,
)
from mailgw.protocols.imap.lexer import ParseError
from mailgw.protocols.imap.parser import parse_command
from mailgw.protocols.imap.state import State

STATES = list(State)[:3]

# Fragments that steer random data into the interesting corners of the grammar.
FRAGMENTS = [
    b"a ",
    b"UID ",
    b"FETCH ",
    b"SEARCH ",
    b"STORE ",
    b"APPEND ",
    b"LOGIN ",
    b"LIST ",
    b"SELECT ",
    b"IDLE",
    b"DONE",
    b"AUTHENTICATE PLAIN",
    b"STATUS ",
    b"ID ",
    b"ENABLE ",
    b"1:*",
    b"$",
    b"(",
    b")",
    b"[",
    b"]",
    b"<0.5>",
    b"BODY.PEEK[",
    b"HEADER.FIELDS (",
    b'"',
    b"\\",
    b"{3}",
    b"{2+}",
    b"{0}",
    b"{99999999+}",
    b"\r\n",
    b"\n",
    b" ",
    b"NIL",
    b"INBOX",
    b"&",
    b"-",
    b"OR ",
    b"NOT ",
    b"SINCE 1-Feb-1994",
    b"CHARSET UTF-8 ",
    b"+FLAGS.SILENT ",
    b"\\Seen",
    b"(UNCHANGEDSINCE 1)",
    b"(CHANGEDSINCE 1 VANISHED)",
    b'" 1-Jan-2024 00:00:00 +0000"',
    b"RETURN (",
    b"\x00",
    b"\xff",
]
streams = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=8), max_size=60).map(b"".join),
)

EVENTS = (Command, ContinuationNeeded, AppendData, ConnectionClosed, Bye)


def drive(data: bytes, state: State, bytewise: bool) -> None:
    conn = ImapConnection(
        state=state,
        max_line_before_auth=128,
        max_line_after_auth=256,
        max_literal=64,
        append_limit=200,
        max_bad_commands=1000,
    )
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        for _ in range(10_000):
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                assert exc.reply.endswith(b"\r\n")
                continue
            if event is NEED_DATA:
                break
            assert isinstance(event, EVENTS), event
            if isinstance(event, ConnectionClosed | Bye):
                return
        else:
            raise AssertionError("next_event() did not settle")
        assert conn.buffered_size <= 256 + 64 + len(piece) + 64


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=streams, state=st.sampled_from(STATES))
def test_connection_whole(data: bytes, state: State) -> None:
    drive(data, state, bytewise=False)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=streams, state=st.sampled_from(STATES))
def test_connection_bytewise(data: bytes, state: State) -> None:
    drive(data, state, bytewise=True)


@settings(max_examples=300, deadline=None)
@given(data=streams)
def test_parser_raises_only_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_command(data)
