"""Byte transcripts: LOGIN, AUTHENTICATE (SASL-IR), STARTTLS, CAPABILITY, NOOP, LOGOUT, ID."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import (
    NEED_DATA,
    ConnectionClosed,
    ContinuationNeeded,
    ImapConnection,
)
from mailgw.protocols.imap.state import State

from .helpers import A, N, S, check

PLAIN = b"AGFsaWNlAHNlY3JldCBwdw=="  # \0alice\0secret pw


def test_login_atoms_quoted_and_escapes() -> None:
    check(
        b'a1 LOGIN alice "se\\"cr\\\\et pw"\r\na2 login "bob" hunter2\r\n',
        [c.Login("a1", "alice", 'se"cr\\et pw'), c.Login("a2", "bob", "hunter2")],
        state=N,
    )


def test_login_synchronizing_literals() -> None:
    check(
        b"a1 LOGIN {5}\r\nalice {9}\r\nsecret pw\r\n",
        [
            ContinuationNeeded("a1", 5),
            ContinuationNeeded("a1", 9),
            c.Login("a1", "alice", "secret pw"),
        ],
        state=N,
    )


def test_login_literal_plus_and_utf8() -> None:
    pw = "pässwörd".encode()
    check(
        b"a1 LOGIN alice {%d+}\r\n%s\r\n" % (len(pw), pw),
        [c.Login("a1", "alice", "pässwörd")],
        state=N,
    )


def test_login_in_wrong_state_is_bad_before_literal() -> None:
    # no "+" for a command that cannot run: BAD at the literal header
    check(
        b"a1 LOGIN {5}\r\na2 NOOP\r\n",
        [b"a1 BAD LOGIN not valid in this state\r\n", c.Noop("a2")],
        state=A,
    )


def test_login_wrong_state_non_sync_literal_is_skipped() -> None:
    check(
        b"a1 LOGIN {9+}\r\na2 NOOP\r\n x\r\na3 NOOP\r\n",
        [b"a1 BAD LOGIN not valid in this state\r\n", c.Noop("a3")],
        state=A,
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"a1 LOGIN alice", b"a1 BAD Missing argument\r\n"),
        (b"a1 LOGIN alice pw extra", b"a1 BAD Unexpected extra arguments\r\n"),
        (b'a1 LOGIN "alice pw', b"a1 BAD Unterminated quoted string\r\n"),
        (b"a1 LOGIN  alice pw", b"a1 BAD Expected user name\r\n"),
        (b"a1 LOGIN alice \xff", b"a1 BAD Expected password\r\n"),
        (b"a1 LOGIN alice {3+}\r\n\xff\xfe\xfd", b"a1 BAD Invalid UTF-8 in password\r\n"),
        (b"a1 FOO", b"a1 BAD Unknown command\r\n"),
        (b"+1 NOOP", b"* BAD Missing or invalid tag\r\n"),
        (b"a1", b"a1 BAD Missing command\r\n"),
    ],
)
def test_login_errors(line: bytes, reply: bytes) -> None:
    check(line + b"\r\n", [reply], state=N)


def test_authenticate_plain_sasl_ir() -> None:
    check(
        b"a1 AUTHENTICATE plain " + PLAIN + b"\r\na2 AUTHENTICATE PLAIN =\r\n",
        [
            c.Authenticate("a1", "PLAIN", b"\0alice\0secret pw"),
            c.Authenticate("a2", "PLAIN", b""),
        ],
        state=N,
    )


def test_authenticate_bad_base64() -> None:
    check(b"a1 AUTHENTICATE PLAIN abc\r\n", [b"a1 BAD Invalid base64\r\n"], state=N)


def test_authenticate_challenge_response_and_cancel() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a1 AUTHENTICATE PLAIN\r\n")
    assert conn.next_event() == c.Authenticate("a1", "PLAIN", None)
    assert conn.sasl_continue() == b"+ \r\n"
    for piece in (PLAIN[:5], PLAIN[5:] + b"\r\n"):
        assert conn.next_event() is NEED_DATA
        conn.receive_data(piece)
    assert conn.next_event() == c.SaslResponse("a1", b"\0alice\0secret pw")
    conn.sasl_done()
    conn.receive_data(b"a2 AUTHENTICATE PLAIN\r\n")
    assert conn.next_event() == c.Authenticate("a2", "PLAIN", None)
    assert conn.sasl_continue(b"x") == b"+ eA==\r\n"
    conn.receive_data(b"*\r\na3 NOOP\r\n")
    assert conn.next_event() == c.SaslResponse("a2", None)
    assert conn.next_event() == c.Noop("a3")


def test_sasl_continue_without_authenticate_is_local_error() -> None:
    from mailgw.protocols.errors import LocalProtocolError

    with pytest.raises(LocalProtocolError):
        ImapConnection().sasl_continue()


def test_any_state_commands() -> None:
    for state in (N, A, S):
        check(
            b"a CAPABILITY\r\nb noop\r\nc LOGOUT\r\nd NOOP\r\n",
            [c.Capability("a"), c.Noop("b"), c.Logout("c")],  # nothing after LOGOUT
            state=state,
        )


def test_logout_enters_logout_state() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a LOGOUT\r\n")
    assert conn.next_event() == c.Logout("a")
    assert conn.state is State.LOGOUT
    assert conn.next_event() == ConnectionClosed()


def test_id() -> None:
    check(
        b'a ID NIL\r\nb ID ("name" "mutt" "version" NIL)\r\nc ID ()\r\n',
        [c.Id("a", None), c.Id("b", (("name", "mutt"), ("version", None))), c.Id("c", ())],
        state=N,
    )


def test_id_too_many_pairs() -> None:
    pairs = b" ".join(b'"k%d" "v"' % i for i in range(31))
    check(b"a ID (" + pairs + b")\r\n", [b"a BAD Too many ID parameters\r\n"], state=N)


def test_starttls_and_buffered_data() -> None:
    conn = ImapConnection()
    conn.receive_data(b"a STARTTLS\r\n")
    assert conn.next_event() == c.StartTls("a")
    assert not conn.has_buffered_data()
    conn.receive_data(b"a STARTTLS\r\nb LOGIN x y\r\n")  # injection attempt
    assert conn.next_event() == c.StartTls("a")
    assert conn.has_buffered_data()
    conn.tls_started()
    assert not conn.has_buffered_data()
    assert conn.next_event() is NEED_DATA


def test_starttls_only_before_auth() -> None:
    check(b"a STARTTLS\r\n", [b"a BAD STARTTLS not valid in this state\r\n"], state=A)
