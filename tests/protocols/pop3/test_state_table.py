"""Every command in every state (RFC 1939 section 3: wrong state gets -ERR)."""

from __future__ import annotations

import pytest

from mailgw.protocols.pop3 import SendData, State
from mailgw.protocols.pop3.state import COMMANDS, allowed, lookup

from .helpers import login, make_conn, run

WRONG = b"-ERR Command not valid in this state.\r\n"

TRANSACTION_ONLY = [b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"NOOP", b"RSET", b"TOP 1 1", b"UIDL"]
AUTHORIZATION_ONLY = [b"USER alice", b"PASS x", b"AUTH PLAIN", b"STLS"]


@pytest.mark.parametrize("command", TRANSACTION_ONLY)
def test_transaction_commands_in_authorization(command: bytes, bytewise: bool) -> None:
    conn = make_conn()
    out, events = run(conn, command + b"\r\n", bytewise=bytewise)
    assert out == WRONG
    assert events == [SendData(WRONG)]
    assert conn.bad_commands == 1
    assert conn.state is State.AUTHORIZATION


@pytest.mark.parametrize("command", AUTHORIZATION_ONLY)
def test_authorization_commands_in_transaction(command: bytes, bytewise: bool) -> None:
    conn = make_conn()
    login(conn)
    out, _events = run(conn, command + b"\r\n", bytewise=bytewise)
    assert out == WRONG
    assert conn.state is State.TRANSACTION


def test_table_shape() -> None:
    assert set(COMMANDS) == {
        b"USER", b"PASS", b"AUTH", b"STLS", b"CAPA", b"QUIT",
        b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL",
    }  # fmt: skip
    for spec in COMMANDS.values():
        assert State.UPDATE not in spec.states
        assert State.CLOSED not in spec.states
    retr = lookup(b"rEtR")
    assert retr is not None
    assert allowed(retr, State.TRANSACTION)
    assert not allowed(retr, State.AUTHORIZATION)
    assert lookup(b"APOP") is None
