"""Fuzz: any bytes, in every state, give events / NEED_DATA / PAUSED or RemoteProtocolError.

Each example is fed whole and one byte at a time; both must also write the
same bytes and produce the same events (chunking never changes behaviour),
except after STLS, where tls_started() drops whatever the client had pipelined.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mailgw.protocols.pop3 import (
    Authenticate,
    Close,
    ConnectionClosed,
    Event,
    Pop3Connection,
    Quit,
    RemoteProtocolError,
    Retr,
    SendData,
    StartTls,
    Top,
    Update,
)

from .helpers import FakeApp, login, make_conn, run

EVENT_TYPES = (SendData, Authenticate, StartTls, Retr, Top, Update, Quit, ConnectionClosed, Close)

FRAGMENTS = [
    b"USER alice",
    b"PASS secret pw",
    b"AUTH PLAIN",
    b"AUTH PLAIN " + base64.b64encode(b"\0alice\0secret pw"),
    base64.b64encode(b"\0alice\0secret pw"),
    b"*",
    b"STLS",
    b"CAPA",
    b"QUIT",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"LIST 0",
    b"UIDL 2",
    b"RETR 1",
    b"RETR 3",
    b"TOP 2 1",
    b"TOP 1 99999999999999999999",
    b"DELE 1",
    b"RSET",
    b"NOOP",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b".",
    b"\x00",
    b"\xff",
    b"A" * 70,
]

chunk = st.one_of(
    st.binary(min_size=1, max_size=80),
    st.sampled_from(FRAGMENTS),
    st.sampled_from(FRAGMENTS).map(lambda f: f + b"\r\n"),
)
streams = st.lists(chunk, max_size=25).map(b"".join)


def after_user(conn: Pop3Connection) -> None:
    assert run(conn, b"USER alice\r\n")[0] == b"+OK\r\n"


def in_sasl(conn: Pop3Connection) -> None:
    assert run(conn, b"AUTH PLAIN\r\n")[0] == b"+ \r\n"


def nothing(conn: Pop3Connection) -> None:
    pass


SETUPS: dict[str, Callable[[Pop3Connection], None]] = {
    "authorization": nothing,
    "after_user": after_user,
    "sasl_continuation": in_sasl,
    "transaction": login,
}

CONFIGS = [
    {},
    {"plaintext_auth_allowed": False},
    {"plaintext_auth_allowed": False, "tls_active": True},
    {"max_line": 48, "max_bad_commands": 3},
]


def feed(setup: str, config: dict[str, object], data: bytes, bytewise: bool) -> tuple:
    conn = make_conn(**config)
    SETUPS[setup](conn)
    try:
        out, events = run(conn, data, bytewise=bytewise, app=FakeApp(chunk=3), eof=True)
    except RemoteProtocolError as exc:  # allowed by the contract
        assert exc.reply.startswith(b"-ERR ")
        return ("remote-error", exc.reply)
    check(events)
    return (out, events)


def check(events: list[Event]) -> None:
    for event in events:
        assert isinstance(event, EVENT_TYPES)
    for event in events[:-1]:
        assert not isinstance(event, ConnectionClosed | Close)
    for event in events:
        if isinstance(event, SendData):
            assert event.data.startswith((b"+OK", b"-ERR", b"+ "))
            assert event.data.endswith(b"\r\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    setup=st.sampled_from(sorted(SETUPS)),
    config=st.sampled_from(CONFIGS),
    data=streams,
)
def test_fuzz_every_state(setup: str, config: dict[str, object], data: bytes) -> None:
    # Without TLS, plaintext-disallowed connections never get past AUTHORIZATION.
    assume(setup == "authorization" or config != {"plaintext_auth_allowed": False})
    whole = feed(setup, config, data, bytewise=False)
    bytewise = feed(setup, config, data, bytewise=True)
    if b"STLS" not in data.upper():  # tls_started() drops what was buffered: chunking matters
        assert whole == bytewise


@settings(max_examples=150, deadline=None)
@given(setup=st.sampled_from(sorted(SETUPS)), data=st.binary(max_size=300))
def test_fuzz_raw_bytes(setup: str, data: bytes) -> None:
    whole = feed(setup, {}, data, bytewise=False)
    bytewise = feed(setup, {}, data, bytewise=True)
    if b"STLS" not in data.upper():
        assert whole == bytewise
