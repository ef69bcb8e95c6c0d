"""USER / PASS (RFC 1939 section 7) and the [AUTH] / [IN-USE] codes (RFC 3206, RFC 2449)."""

from __future__ import annotations

from mailgw.protocols.pop3 import Authenticate, SendData, State

from .helpers import FakeApp, make_conn, run, sent

PLAINTEXT = (
    b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
)


def test_user_pass_success(bytewise: bool) -> None:
    conn = make_conn()
    out, events = run(conn, b"USER alice\r\nPASS secret pw\r\n", bytewise=bytewise)
    assert out == b"+OK\r\n+OK Logged in.\r\n"
    assert sent(events) == [Authenticate("USER", "alice", "secret pw", "")]
    assert conn.state is State.TRANSACTION


def test_password_not_in_repr() -> None:
    assert "secret" not in repr(Authenticate("USER", "alice", "secret", ""))


def test_user_pass_failure_then_retry(bytewise: bool) -> None:
    conn = make_conn()
    data = b"USER alice\r\nPASS wrong\r\nPASS secret pw\r\nUSER alice\r\nPASS secret pw\r\n"
    out, _ = run(conn, data, bytewise=bytewise)
    assert out == (
        b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
        b"-ERR No user name given.\r\n+OK\r\n+OK Logged in.\r\n"
    )
    assert conn.state is State.TRANSACTION


def test_pass_without_user() -> None:
    conn = make_conn()
    out, _events = run(conn, b"PASS secret\r\n")
    assert out == b"-ERR No user name given.\r\n"
    assert conn.state is State.AUTHORIZATION
    assert conn.bad_commands == 0


def test_user_pass_case_insensitive_and_lf_only() -> None:
    out, events = run(make_conn(), b"user bob\npAsS hunter2\n")
    assert out == b"+OK\r\n+OK Logged in.\r\n"
    assert sent(events) == [Authenticate("USER", "bob", "hunter2", "")]


def test_long_user_and_password_are_allowed() -> None:
    user = "first.last.persons@subdomain.example.net.uk"
    assert len(user) > 40
    password = "p" * 100
    app = FakeApp(users={user: password})
    out, _events = run(make_conn(), f"USER {user}\r\nPASS {password}\r\n".encode(), app=app)
    assert out == b"+OK\r\n+OK Logged in.\r\n"


def test_user_without_argument() -> None:
    out, _ = run(make_conn(), b"USER\r\nUSER \r\n")
    assert out == b"-ERR Missing argument.\r\n" * 2


def test_password_must_be_utf8() -> None:
    conn = make_conn()
    out, _ = run(conn, b"USER alice\r\nPASS \xff\xfe\r\n")
    assert out == b"+OK\r\n-ERR Invalid UTF-8 in password.\r\n"
    assert conn.bad_commands == 1


def test_utf8_password() -> None:
    app = FakeApp(users={"alice": "pässwörd"})
    out, _ = run(make_conn(), "USER alice\r\nPASS pässwörd\r\n".encode(), app=app)
    assert out == b"+OK\r\n+OK Logged in.\r\n"


def test_in_use() -> None:
    conn = make_conn()
    out, _ = run(conn, b"USER alice\r\nPASS secret pw\r\n", app=FakeApp(in_use=True))
    assert out == b"+OK\r\n-ERR [IN-USE] Mailbox is in use by another session.\r\n"
    assert conn.state is State.AUTHORIZATION


def test_plaintext_disallowed_without_tls(bytewise: bool) -> None:
    conn = make_conn(plaintext_auth_allowed=False)
    out, events = run(conn, b"USER alice\r\nPASS secret pw\r\n", bytewise=bytewise)
    assert out == PLAINTEXT * 2
    assert all(isinstance(e, SendData) for e in events)
    assert conn.bad_commands == 0


def test_plaintext_disallowed_but_tls_active() -> None:
    conn = make_conn(plaintext_auth_allowed=False, tls_active=True)
    out, _ = run(conn, b"USER alice\r\nPASS secret pw\r\n")
    assert out == b"+OK\r\n+OK Logged in.\r\n"


def test_apop_is_not_offered() -> None:
    out, _ = run(make_conn(), b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n")
    assert out == b"-ERR Unknown command.\r\n"


def test_temporary_failure_has_one_response_code() -> None:
    conn = make_conn()
    conn.receive_data(b"USER alice\r\nPASS secret pw\r\nPASS x\r\n")
    conn.next_event()
    conn.next_event()
    assert conn.auth_temp_failure() == b"-ERR [SYS/TEMP] Cannot open the maildrop.\r\n"
    assert conn.state is State.AUTHORIZATION
    conn.receive_data(b"USER alice\r\nPASS secret pw\r\n")
    assert conn.next_event() == SendData(b"-ERR No user name given.\r\n")
    conn.next_event()
    conn.next_event()
    assert conn.auth_failed("[SYS/PERM] Gone.") == b"-ERR [SYS/PERM] Gone.\r\n"
