"""Shared test helpers: the byte-transcript driver for :class:`ImapConnection`.

``transcript(data)`` feeds ``data`` then EOF and returns the events (protocol
errors as their reply bytes); ``check(data, expected)`` asserts that feeding the
bytes whole and one byte at a time both give ``expected`` followed by
``ConnectionClosed()``.  ``N``/``A``/``S`` abbreviate the three session states.
"""

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


def one(a: int, b: int | None = None) -> c.SequenceSet:
    """The sequence set ``a`` (or ``a:b``)."""
    return c.SequenceSet((c.SeqRange(a, a if b is None else b),))
