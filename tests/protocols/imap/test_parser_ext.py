"""Byte transcripts: IDLE/DONE, NAMESPACE, ENABLE, UNSELECT."""

from __future__ import annotations

from typing import Any

from mailgw.protocols.errors import RemoteProtocolError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import (
    NEED_DATA,
    AppendData,
    Bye,
    ConnectionClosed,
    ImapConnection,
)
from mailgw.protocols.imap.state import State

N = State.NOT_AUTHENTICATED
A = State.AUTHENTICATED
S = State.SELECTED

# --- transcript driver (kept in each file: this test folder has no package) ---


def transcript(
    data: bytes, *, state: State = State.SELECTED, bytewise: bool = False, **kw: Any
) -> list[object]:
    """Feed ``data`` then EOF; return events, with errors as their reply bytes
    and consecutive AppendData chunks of one message merged."""
    conn = ImapConnection(state=state, **kw)
    out: list[object] = []
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                out.append(exc.reply)
                continue
            if event is NEED_DATA:
                break
            last = out[-1] if out else None
            if isinstance(event, AppendData) and isinstance(last, AppendData) and not last.final:
                out[-1] = AppendData(event.tag, last.chunk + event.chunk, event.final)
            else:
                out.append(event)
            if isinstance(event, ConnectionClosed | Bye):
                return out
    return out


def check(data: bytes, expected: list[object], state: State = State.SELECTED, **kw: Any) -> None:
    """Whole and one byte at a time give the same events; EOF closes."""
    for bytewise in (False, True):
        assert transcript(data, state=state, bytewise=bytewise, **kw) == [
            *expected,
            ConnectionClosed(),
        ], f"bytewise={bytewise}"


def test_idle_done() -> None:
    check(
        b"a IDLE\r\ndone\r\nb IDLE\r\nDONE\r\nc NOOP\r\n",
        [c.Idle("a"), c.Done("a"), c.Idle("b"), c.Done("b"), c.Noop("c")],
        state=A,
    )


def test_idle_anything_but_done_is_bad_and_ends_idle() -> None:
    check(
        b"a IDLE\r\nb NOOP\r\nc NOOP\r\n",
        [c.Idle("a"), b"a BAD Expected DONE\r\n", c.Noop("c")],
    )


def test_idle_literal_header_is_not_a_literal() -> None:
    check(
        b"a IDLE\r\nDONE {5}\r\nb NOOP\r\n", [c.Idle("a"), b"a BAD Expected DONE\r\n", c.Noop("b")]
    )


def test_idling_flag() -> None:
    conn = ImapConnection(state=S)
    conn.receive_data(b"a IDLE\r\n")
    assert conn.next_event() == c.Idle("a") and conn.idling
    conn.receive_data(b"DONE\r\n")
    assert conn.next_event() == c.Done("a") and not conn.idling


def test_namespace_enable_unselect() -> None:
    check(
        b"a NAMESPACE\r\nb ENABLE condstore utf8=accept\r\nc UNSELECT\r\nd ENABLE\r\n",
        [
            c.Namespace("a"),
            c.Enable("b", ("CONDSTORE", "UTF8=ACCEPT")),
            c.Unselect("c"),
            b"d BAD Missing argument\r\n",
        ],
    )


def test_extension_states() -> None:
    check(
        b"a NAMESPACE\r\nb ENABLE X\r\nc IDLE\r\nd UNSELECT\r\ne MOVE 1 x\r\n",
        [
            b"a BAD NAMESPACE not valid in this state\r\n",
            b"b BAD ENABLE not valid in this state\r\n",
            b"c BAD IDLE not valid in this state\r\n",
            b"d BAD UNSELECT not valid in this state\r\n",
            b"e BAD MOVE not valid in this state\r\n",
        ],
        state=N,
    )
