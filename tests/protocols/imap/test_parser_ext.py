"""Byte transcripts: IDLE/DONE, NAMESPACE, ENABLE, UNSELECT."""

from __future__ import annotations

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import ImapConnection

from .helpers import A, N, S, check


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
