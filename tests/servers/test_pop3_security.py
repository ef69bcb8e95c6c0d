"""POP3 listener security: plaintext auth refusal, STLS, injection, limits, auth delay."""

from __future__ import annotations

import base64
import poplib
import socket

import pytest

from tests.servers.conftest import USERS
from tests.servers.pop3_fixtures import Pop3Harness, pop3_fixture  # noqa: F401

PLAIN_ALICE = base64.b64encode(f"\0alice\0{USERS['alice']}".encode())


def capa_names(client: poplib.POP3) -> set[str]:
    return set(client.capa())


# --- plaintext authentication (RFC 2595 section 2.2, RFC 3206 [AUTH]) ------------------


@pytest.mark.parametrize("listener", ["pop3-plain", "pop3"])
def test_untrusted_plaintext_refuses_user_pass_and_auth(pop3: Pop3Harness, listener: str) -> None:
    port = pop3.start(listener)
    raw = pop3.raw(port)
    assert raw.cmd(b"USER alice").startswith(b"-ERR [AUTH]")
    assert raw.cmd(f"PASS {USERS['alice']}".encode()).startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"AUTH PLAIN " + PLAIN_ALICE).startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"AUTH PLAIN").startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"STAT").startswith(b"-ERR")
    assert pop3.ctx.limiter.failures("127.0.0.1") == 0  # refused, not tried
    caps = capa_names(pop3.client(port))
    assert "USER" not in caps and "SASL" not in caps
    assert ("STLS" in caps) == (listener == "pop3")


def test_stls_then_user_pass_and_capa(pop3: Pop3Harness) -> None:
    pop3.deliver(b"Subject: hi\r\n\r\nover TLS\r\n")
    port = pop3.start("pop3")
    client = pop3.client(port)
    before = client.capa()
    assert "STLS" in before and "USER" not in before and "SASL" not in before
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.user("alice")
    assert client.stls(context=pop3.tls.client_context()).startswith(b"+OK")
    after = client.capa()
    assert "STLS" not in after
    assert "USER" in after and after["SASL"] == ["PLAIN"]
    client.user("alice")
    client.pass_(USERS["alice"])
    _, lines, _ = client.retr(1)
    assert lines == [b"Subject: hi", b"", b"over TLS"]
    client.quit()


def test_stls_then_auth_plain(pop3: Pop3Harness) -> None:
    port = pop3.start("pop3")
    raw = pop3.raw(port)
    assert raw.cmd(b"STLS").startswith(b"+OK")
    raw.starttls(pop3.tls.client_context())
    assert raw.cmd(b"STLS").startswith(b"-ERR")  # once only
    assert raw.cmd(b"AUTH PLAIN") == b"+ \r\n"
    assert raw.cmd(PLAIN_ALICE).startswith(b"+OK")
    assert raw.cmd(b"STAT") == b"+OK 0 0\r\n"


def test_stls_refused_where_not_offered(pop3: Pop3Harness) -> None:
    for listener in ("pop3-plain", "pop3-trusted"):
        raw = pop3.raw(pop3.start(listener))
        assert raw.cmd(b"STLS").startswith(b"-ERR")
        assert raw.cmd(b"CAPA").startswith(b"+OK")
    raw = pop3.raw(pop3.start("pop3s"), greeting=False)
    raw.starttls(pop3.tls.client_context())
    assert raw.line().startswith(b"+OK ")
    assert raw.cmd(b"STLS").startswith(b"-ERR")


def test_user_before_stls_is_forgotten(pop3: Pop3Harness) -> None:
    """RFC 2595 section 4: state from before the handshake is discarded."""
    port = pop3.start("pop3")
    raw = pop3.raw(port)
    assert raw.cmd(b"USER alice").startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"STLS").startswith(b"+OK")
    raw.starttls(pop3.tls.client_context())
    assert raw.cmd(f"PASS {USERS['alice']}".encode()).startswith(b"-ERR")
    raw.login("alice")


def test_stls_with_pipelined_plaintext_closes(pop3: Pop3Harness) -> None:
    """CVE-2011-0411 class: nothing after STLS in the same segment is ever answered."""
    pop3.deliver(b"Subject: secret\r\n\r\nx\r\n")
    port = pop3.start("pop3")
    raw = pop3.raw(port)
    raw.send(b"STLS\r\nSTAT\r\n")
    assert raw.read_to_eof() == b""
    # the listener still serves others
    other = pop3.raw(port)
    assert other.cmd(b"CAPA").startswith(b"+OK")


def test_stls_with_pipelined_plaintext_in_trusted_session(pop3: Pop3Harness) -> None:
    """Even an injected command that would work without TLS is not answered."""
    port = pop3.start("pop3")
    raw = pop3.raw(port)
    raw.send(b"STLS\r\nUSER alice\r\n")
    assert raw.read_to_eof() == b""


def test_tls_garbage_on_implicit_listener(pop3: Pop3Harness) -> None:
    port = pop3.start("pop3s")
    sock = socket.create_connection(("127.0.0.1", port), 30)
    try:
        sock.sendall(b"USER alice\r\n" * 100)
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        assert b"+OK" not in b"".join(chunks)
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    client = pop3.client_ssl(port)
    client.user("alice")
    client.pass_(USERS["alice"])


# --- limits ------------------------------------------------------------------------------


def test_one_mib_line_gets_err_while_others_are_served(pop3: Pop3Harness) -> None:
    pop3.deliver(b"Subject: x\r\n\r\ny\r\n")
    port = pop3.start()
    long = pop3.raw(port)
    long.login("alice")
    long.send(b"NOOP " + b"A" * (512 * 1024))
    # the reply to an over-long line may come as soon as the limit is passed
    other = pop3.client(port)
    other.user("bob")
    other.pass_(USERS["bob"])
    assert other.stat() == (0, 0)
    long.send(b"A" * (512 * 1024) + b"\r\n")
    assert long.line() == b"-ERR Line too long.\r\n"
    assert long.cmd(b"NOOP") == b"+OK\r\n"  # the session goes on
    assert long.cmd(b"STAT").startswith(b"+OK 1 ")
    other.quit()


def test_long_user_name_line_is_too_long(pop3: Pop3Harness) -> None:
    port = pop3.start()
    raw = pop3.raw(port)
    assert raw.cmd(b"USER " + b"a" * 5000) == b"-ERR Line too long.\r\n"
    raw.login("alice")


def test_bad_command_limit_closes_connection(pop3: Pop3Harness) -> None:
    ctx = pop3.context(bad_commands=3)
    port = pop3.start("pop3-trusted", ctx)
    raw = pop3.raw(port)
    for _ in range(3):
        assert raw.cmd(b"BOGUS").startswith(b"-ERR")
    assert raw.cmd(b"STAT") == b"-ERR Too many bad commands.\r\n"
    assert raw.read_to_eof() == b""


def test_bad_command_limit_with_pipelined_commands(pop3: Pop3Harness) -> None:
    ctx = pop3.context(bad_commands=2)
    port = pop3.start("pop3-trusted", ctx)
    raw = pop3.raw(port)
    raw.send(b"X\r\nY\r\nZ\r\nCAPA\r\n")
    data = raw.read_to_eof()
    assert data.count(b"-ERR") == 3 and data.endswith(b"-ERR Too many bad commands.\r\n")
    assert b"+OK" not in data


def test_idle_timeout_closes_without_update(pop3: Pop3Harness) -> None:
    ctx = pop3.context(pop3_idle_timeout=1)
    pop3.deliver(b"Subject: x\r\n\r\ny\r\n")
    port = pop3.start("pop3-trusted", ctx)
    raw = pop3.raw(port)
    raw.login("alice")
    assert raw.cmd(b"DELE 1").startswith(b"+OK")
    rest = raw.read_to_eof()  # the server closes; no wall-clock assertion
    assert rest.startswith(b"-ERR")
    pop3.wait_unlocked("alice", ctx)
    assert len(pop3.inbox().messages()) == 1


def test_client_that_stops_reading_is_dropped(pop3: Pop3Harness) -> None:
    """The idle limit also bounds a RETR that the client never reads."""
    ctx = pop3.context(pop3_idle_timeout=1)
    pop3.deliver(b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 200_000)
    port = pop3.start("pop3-trusted", ctx)
    raw = pop3.raw(port, rcvbuf=4096)
    raw.login("alice")
    raw.send(b"RETR 1\r\n")  # 16 MB that nobody reads: more than the socket buffers hold
    pop3.wait_unlocked("alice", ctx)
    assert pop3.loop.call(lambda: len(ctx.connections)) == 0
    again = pop3.raw(port)
    again.login("alice")


def test_idle_timeout_in_authorization(pop3: Pop3Harness) -> None:
    ctx = pop3.context(pop3_idle_timeout=1)
    port = pop3.start("pop3-trusted", ctx)
    raw = pop3.raw(port)
    assert raw.read_to_eof().startswith(b"-ERR")


# --- authentication failures (per-address delay) --------------------------------------------


def test_failed_logins_delayed_per_address(pop3: Pop3Harness) -> None:
    port = pop3.start()
    limiter = pop3.ctx.limiter
    bad = pop3.raw(port)
    assert bad.cmd(b"USER alice") == b"+OK\r\n"
    assert bad.cmd(b"PASS wrong").startswith(b"-ERR [AUTH]")
    assert limiter.failures("127.0.0.1") == 1
    assert pop3.sleep.delays == [limiter.delay_for(1)]

    # hold the next delay: the failing client waits, others go on
    pop3.sleep.hold()
    pop3.sleep.entered.clear()
    bad.send(b"USER alice\r\nPASS wrong-again\r\n")
    assert bad.line() == b"+OK\r\n"
    assert pop3.sleep.entered.wait(30)
    assert limiter.failures("127.0.0.1") == 2

    good = pop3.raw(port, source="127.0.0.2")
    good.login("bob")
    assert good.cmd(b"STAT") == b"+OK 0 0\r\n"
    assert limiter.failures("127.0.0.2") == 0
    assert pop3.sleep.held  # still holding the failed client
    pop3.sleep.release()
    assert bad.line().startswith(b"-ERR [AUTH]")
    assert pop3.sleep.delays == [limiter.delay_for(1), limiter.delay_for(2)]

    # a success resets the address
    bad.login("alice")
    assert limiter.failures("127.0.0.1") == 0


def test_failed_auth_plain_counts_too(pop3: Pop3Harness) -> None:
    port = pop3.start()
    raw = pop3.raw(port, source="127.0.0.3")
    wrong = base64.b64encode(b"\0alice\0nope")
    assert raw.cmd(b"AUTH PLAIN " + wrong).startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0nobody\0x")).startswith(b"-ERR [AUTH]")
    assert pop3.ctx.limiter.failures("127.0.0.3") == 2
    assert pop3.ctx.limiter.failures("127.0.0.1") == 0
