"""Security properties of the SMTP listener, driven with smtplib and raw sockets.

Relay policy, AUTH only over TLS, STARTTLS command injection, SMTP smuggling,
line and size limits, the shared auth-failure delay, VRFY/EXPN.
"""

from __future__ import annotations

import base64
import itertools
import logging
import shutil
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgw.config.schema import Config
from mailgw.servers.context import ServerContext
from mailgw.servers.smtp import start_smtp_listener
from mailgw.store import Store
from tests.servers.conftest import USERS, FakeSleep, TlsCerts, build_context

Start = Callable[..., tuple[str, int]]
MSG = b"Subject: test\r\n\r\nbody\r\n"


def messages(data_dir: Path, user: str) -> list[bytes]:
    folder = Store(data_dir / "mail").account(user).folder("INBOX")
    return [folder.read(info) for info in folder.messages()]


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait until the server thread has done something (no timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class Raw:
    """A line-oriented raw client: exact bytes out, replies in."""

    def __init__(self, host: str, port: int, source: tuple[str, int] | None = None) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            (host, port), timeout=30, source_address=source
        )
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self) -> tuple[int, bytes]:
        """One (possibly multi-line) reply: code and the text of its last line."""
        while True:
            line = self.line()
            if line[3:4] != b"-":
                return int(line[:3]), line[4:]

    def cmd(self, data: bytes) -> tuple[int, bytes]:
        self.send(data)
        return self.reply()

    def read_to_eof(self) -> bytes:
        out, self.buf = self.buf, b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out

    def close(self) -> None:
        self.sock.close()


def raw(start: Start, name: str = "smtp-plain", ctx: ServerContext | None = None) -> Raw:
    host, port = start(start_smtp_listener, name, ctx)
    r = Raw(host, port)
    assert r.reply()[0] == 220
    assert r.cmd(b"EHLO client.example\r\n")[0] == 250
    return r


# --- relay policy -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smtp-plain", "smtp", "smtps"])
def test_unauthenticated_relay_refused(
    start_listener: Start, tls_certs: TlsCerts, data_dir: Path, name: str
) -> None:
    host, port = start_listener(start_smtp_listener, name)
    if name == "smtps":
        s: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, context=tls_certs.client_context(), timeout=30
        )
    else:
        s = smtplib.SMTP(host, port, timeout=30)
    with s:
        s.ehlo()
        assert s.mail("spammer@example.net")[0] == 250
        code, text = s.rcpt("victim@elsewhere.example")
        assert code == 550
        assert text == b"5.7.1 <victim@elsewhere.example>: Relay access denied"
        # a local recipient in the same transaction is still fine
        assert s.rcpt("alice@example.org")[0] == 250
        assert s.data(MSG)[0] == 250
    assert len(messages(data_dir, "alice")) == 1


@pytest.mark.parametrize("name", ["submission", "submissions"])
def test_submission_refuses_unauthenticated(
    start_listener: Start, tls_certs: TlsCerts, name: str
) -> None:
    host, port = start_listener(start_smtp_listener, name)
    if name == "submissions":
        s: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, context=tls_certs.client_context(), timeout=30
        )
    else:
        s = smtplib.SMTP(host, port, timeout=30)
    with s:
        s.ehlo()
        assert s.mail("spammer@example.net") == (530, b"5.7.0 Authentication required")
        assert s.rcpt("victim@elsewhere.example")[0] == 530
        assert s.docmd("DATA")[0] == 530


def test_authenticated_relay_waits_for_queue(start_listener: Start, tls_certs: TlsCerts) -> None:
    host, port = start_listener(start_smtp_listener, "submission")
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.starttls(context=tls_certs.client_context())
        s.login("alice", USERS["alice"])
        s.mail("alice@example.org")
        code, text = s.rcpt("friend@elsewhere.example")
    assert code == 451
    assert text == (
        b"4.3.2 <friend@elsewhere.example>: relaying is not available yet: "
        b"outbound queue not configured"
    )


def test_relay_networks_and_alias_to_remote(
    start_listener: Start, make_config: Callable[..., Config]
) -> None:
    import ipaddress

    aliases = {"fwd@example.org": ("friend@elsewhere.example",)}
    open_ctx = build_context(
        make_config(aliases=aliases, relay_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    closed_ctx = build_context(
        make_config(aliases=aliases, relay_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    )
    for ctx, expected in ((open_ctx, 451), (closed_ctx, 550)):
        host, port = start_listener(start_smtp_listener, "smtp-plain", ctx)
        with smtplib.SMTP(host, port, timeout=30) as s:
            s.ehlo()
            s.mail("someone@example.net")
            assert s.rcpt("friend@elsewhere.example")[0] == expected
            assert s.rcpt("fwd@example.org")[0] == expected


# --- AUTH needs TLS -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smtp", "submission"])
def test_auth_refused_in_plaintext_then_allowed_after_starttls(
    start_listener: Start, tls_certs: TlsCerts, server_context: ServerContext, name: str
) -> None:
    host, port = start_listener(start_smtp_listener, name)
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        assert not s.has_extn("auth")
        code, text = s.docmd("AUTH", "PLAIN " + plain("alice", USERS["alice"]))
        assert code == 538
        assert text == b"5.7.11 Encryption required for requested authentication mechanism"
        assert s.mail("alice@example.org")[0] in (250, 530)
        s.rset()
        s.starttls(context=tls_certs.client_context())
        s.ehlo()
        assert s.has_extn("auth")
        assert s.login("alice", USERS["alice"])[0] == 235
    # the refused attempt never reached the password check
    assert server_context.limiter.failures("127.0.0.1") == 0


def test_auth_allowed_on_trusted_plaintext_listener(start_listener: Start) -> None:
    host, port = start_listener(start_smtp_listener, "smtp-trusted")
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        assert s.has_extn("auth")
        assert s.login("bob@example.org", USERS["bob"])[0] == 235


# --- STARTTLS injection (CVE-2011-0411 class) -------------------------------------------------


def test_starttls_with_pipelined_plaintext_closes(
    start_listener: Start, tls_certs: TlsCerts
) -> None:
    r = raw(start_listener, "smtp")
    r.send(b"STARTTLS\r\nNOOP\r\n")  # one segment
    rest = r.read_to_eof()
    assert rest.startswith(b"554 5.5.1 ")
    assert b"220" not in rest
    assert b"250" not in rest
    # A TLS handshake on what is left fails: the connection is gone.
    with pytest.raises((ssl.SSLError, OSError)):
        tls = tls_certs.client_context().wrap_socket(r.sock, server_hostname="127.0.0.1")
        tls.recv(1)  # pragma: no cover - only reached if the handshake worked
    r.close()


def test_plaintext_after_starttls_reply_is_never_executed(
    start_listener: Start, tls_certs: TlsCerts
) -> None:
    r = raw(start_listener, "smtp")
    assert r.cmd(b"STARTTLS\r\n")[0] == 220
    r.send(b"NOOP\r\n")  # injected before the handshake
    rest = r.read_to_eof()  # the server's TLS layer gives up on it
    assert b"250" not in rest
    r.close()


def test_starttls_alone_works(start_listener: Start, tls_certs: TlsCerts) -> None:
    r = raw(start_listener, "smtp")
    assert r.cmd(b"STARTTLS\r\n")[0] == 220
    r.sock = tls_certs.client_context().wrap_socket(r.sock, server_hostname="127.0.0.1")
    assert r.cmd(b"NOOP\r\n")[0] == 250
    assert r.cmd(b"MAIL FROM:<a@example.net>\r\n")[0] == 503  # EHLO again first (RFC 3207 4.2)
    r.close()


# --- SMTP smuggling --------------------------------------------------------------------------


@pytest.mark.parametrize("fake_end", [b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\n"])
def test_smuggling_never_makes_two_messages(
    start_listener: Start, data_dir: Path, fake_end: bytes
) -> None:
    r = raw(start_listener)
    assert r.cmd(b"MAIL FROM:<sender@example.net>\r\n")[0] == 250
    assert r.cmd(b"RCPT TO:<alice@example.org>\r\n")[0] == 250
    assert r.cmd(b"DATA\r\n")[0] == 354
    smuggled = (
        b"MAIL FROM:<admin@example.org>\r\n"
        b"RCPT TO:<bob@example.org>\r\n"
        b"DATA\r\n"
        b"Subject: smuggled\r\n\r\nsmuggled\r\n"
    )
    r.send(b"Subject: first\r\n\r\nfirst" + fake_end + smuggled + b".\r\n")
    code, text = r.reply()
    assert code == 554
    assert text.startswith(b"5.6.11 ")
    assert r.cmd(b"QUIT\r\n")[0] == 221
    assert b"250" not in r.read_to_eof()
    assert messages(data_dir, "alice") == []
    assert messages(data_dir, "bob") == []


def test_data_end_then_pipelined_commands_in_one_packet(
    start_listener: Start, data_dir: Path
) -> None:
    """DATA content is read in blocks: what follows ".\\r\\n" stays commands."""
    r = raw(start_listener)
    r.send(b"MAIL FROM:<sender@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(3)] == [250, 250, 354]
    second = b"MAIL FROM:<other@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
    r.send(b"Subject: one\r\n\r\n..dot\r\n.\r\n" + second)
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    r.send(b".\r\nRSET\r\n")  # an empty message, then a command in the same packet
    assert [r.reply()[0] for _ in range(2)] == [250, 250]
    assert r.cmd(b"QUIT\r\n")[0] == 221
    (one,) = messages(data_dir, "alice")
    assert one.endswith(b"\r\nSubject: one\r\n\r\n.dot\r\n")
    (two,) = messages(data_dir, "bob")
    assert two.startswith(b"Return-Path: <other@example.net>\r\n")
    assert two.split(b"\r\n")[-1] == b""  # the trace headers and nothing else
    assert b"\r\n\r\n" not in two


def test_big_message_in_odd_pieces_is_stored_exactly(start_listener: Start, data_dir: Path) -> None:
    """Far beyond the reader's limit, sent in pieces that split CRLF and CRLF.CRLF."""
    body = b"".join(
        (b"." if i % 7 == 0 else b"") + b"line %d " % i + b"x" * (i % 90) + b"\r\n"
        for i in range(3000)
    )
    wire = b"Subject: big\r\n\r\n" + body + b".\r\n"
    r = raw(start_listener)
    r.send(b"MAIL FROM:<sender@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(3)] == [250, 250, 354]
    pos = 0
    for size in itertools.cycle((1, 2, 3, 4, 5, 4099, 7, 65536)):
        if pos >= len(wire):
            break
        r.send(wire[pos : pos + size])
        pos += size
    assert r.reply()[0] == 250
    (stored,) = messages(data_dir, "alice")
    unstuffed = b"".join(
        (line[1:] if line.startswith(b".") else line) + b"\r\n" for line in body.split(b"\r\n")[:-1]
    )
    assert stored.endswith(b"\r\nSubject: big\r\n\r\n" + unstuffed)


@pytest.mark.parametrize("body", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\n\nb\r\n", b"a\r\r\n"])
def test_bare_cr_lf_rejected(start_listener: Start, data_dir: Path, body: bytes) -> None:
    r = raw(start_listener)
    r.cmd(b"MAIL FROM:<sender@example.net>\r\n")
    r.cmd(b"RCPT TO:<alice@example.org>\r\n")
    assert r.cmd(b"DATA\r\n")[0] == 354
    code, _ = r.cmd(b"Subject: x\r\n\r\n" + body + b".\r\n")
    assert code == 554
    # the session is still usable
    r.cmd(b"MAIL FROM:<sender@example.net>\r\n")
    r.cmd(b"RCPT TO:<alice@example.org>\r\n")
    r.cmd(b"DATA\r\n")
    assert r.cmd(b"Subject: x\r\n\r\nfine\r\n.\r\n")[0] == 250
    (stored,) = messages(data_dir, "alice")
    assert stored.endswith(b"\r\nSubject: x\r\n\r\nfine\r\n")


# --- limits ------------------------------------------------------------------------------------


def test_huge_command_line_does_not_disturb_others(start_listener: Start, data_dir: Path) -> None:
    host, port = start_listener(start_smtp_listener, "smtp-plain")
    a = Raw(host, port)
    assert a.reply()[0] == 220
    a.send(b"NOOP " + b"x" * (512 * 1024))  # half a line, still open
    with smtplib.SMTP(host, port, timeout=30) as b:  # served meanwhile
        assert b.sendmail("x@example.net", ["bob@example.org"], MSG) == {}
    a.send(b"x" * (512 * 1024) + b"\r\n")
    assert a.reply() == (500, b"Command line too long")
    assert a.cmd(b"NOOP\r\n")[0] == 250  # this connection keeps working
    a.close()
    assert len(messages(data_dir, "bob")) == 1


def test_line_length_limit_is_configurable(
    start_listener: Start, make_config: Callable[..., Config]
) -> None:
    ctx = build_context(make_config(limits={"smtp_line_length": 600}))
    r = raw(start_listener, "smtp-plain", ctx)
    assert r.cmd(b"NOOP " + b"x" * 595 + b"\r\n")[0] == 250
    assert r.cmd(b"NOOP " + b"x" * 596 + b"\r\n")[0] == 500
    assert r.cmd(b"NOOP " + b"x" * 5000 + b"\r\n")[0] == 500
    assert r.cmd(b"NOOP\r\n")[0] == 250


def test_size_limit(
    start_listener: Start, make_config: Callable[..., Config], data_dir: Path
) -> None:
    ctx = build_context(make_config(limits={"max_message_size": 2000}))
    host, port = start_listener(start_smtp_listener, "smtp-plain", ctx)
    big = b"Subject: big\r\n\r\n" + b"0123456789" * 300 + b"\r\n"
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        assert s.esmtp_features["size"] == "2000"
        code, _ = s.mail("a@example.net", ["SIZE=5000"])
        assert code == 552
        # a client that does not announce the size is stopped at DATA
        assert s.mail("a@example.net")[0] == 250
        assert s.rcpt("alice@example.org")[0] == 250
        assert s.data(big)[0] == 552
        assert s.sendmail("a@example.net", ["alice@example.org"], MSG) == {}
    assert len(messages(data_dir, "alice")) == 1


def test_max_recipients(start_listener: Start, make_config: Callable[..., Config]) -> None:
    ctx = build_context(make_config(limits={"max_recipients": 2}))
    host, port = start_listener(start_smtp_listener, "smtp-plain", ctx)
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        s.mail("a@example.net")
        assert s.rcpt("alice@example.org")[0] == 250
        assert s.rcpt("bob@example.org")[0] == 250
        assert s.rcpt("alice@example.org") == (452, b"4.5.3 Error: too many recipients")


def test_idle_timeout_closes(start_listener: Start, make_config: Callable[..., Config]) -> None:
    ctx = build_context(make_config(limits={"smtp_idle_timeout": 1}))
    r = raw(start_listener, "smtp-plain", ctx)
    assert r.read_to_eof() == b""  # the server hangs up; no reply needed
    r.close()


# --- auth failure delay -----------------------------------------------------------------------


def test_failed_auth_delays_only_that_client(
    start_listener: Start, server_context: ServerContext, fake_sleep: FakeSleep
) -> None:
    host, port = start_listener(start_smtp_listener, "smtp-trusted")
    results: list[tuple[int, bytes]] = []

    def fail_once() -> None:
        a = Raw(host, port)  # from 127.0.0.1
        a.reply()
        a.cmd(b"EHLO a.example\r\n")
        results.append(a.cmd(f"AUTH PLAIN {plain('alice', 'wrong')}\r\n".encode()))
        a.close()

    fake_sleep.hold()
    worker = threading.Thread(target=fail_once)
    worker.start()
    try:
        assert fake_sleep.entered.wait(30), "the failing client never reached the delay"
        # Another address logs in while the first client is held in its delay.
        with smtplib.SMTP(host, port, source_address=("127.0.0.2", 0), timeout=30) as b:
            assert b.login("alice", USERS["alice"])[0] == 235
        assert fake_sleep.held and worker.is_alive() and results == []
    finally:
        fake_sleep.release()
        worker.join(30)
    assert results == [(535, b"5.7.8 Authentication credentials invalid")]
    fail_once()  # a second failure from the same address waits longer
    assert fake_sleep.delays == [1.0, 2.0]
    assert server_context.limiter.failures("127.0.0.1") == 2
    assert server_context.limiter.failures("127.0.0.2") == 0


# --- VRFY, EXPN, unknown users, store failures, logging ------------------------------------------


def test_vrfy_and_expn(start_listener: Start) -> None:
    host, port = start_listener(start_smtp_listener, "smtp-plain")
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        known = s.verify("alice@example.org")
        unknown = s.verify("nobody@example.org")
        assert known[0] == unknown[0] == 252
        assert known[1] == unknown[1]  # no user enumeration
        assert s.expn("staff")[0] == 502


def test_unknown_user(start_listener: Start) -> None:
    host, port = start_listener(start_smtp_listener, "smtp-plain")
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        s.mail("a@example.net")
        assert s.rcpt("carol@example.org") == (
            550,
            b"5.1.1 <carol@example.org>: Recipient address rejected: User unknown",
        )
        assert s.docmd("DATA")[0] == 503  # no valid recipient


def test_store_failure_answers_451(start_listener: Start, data_dir: Path) -> None:
    home = data_dir / "mail" / "alice"
    shutil.rmtree(home)
    home.write_text("not a directory")
    host, port = start_listener(start_smtp_listener, "smtp-plain")
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        s.mail("a@example.net")
        s.rcpt("alice@example.org")
        code, text = s.data(MSG)
        assert (code, text[:6]) == (451, b"4.3.0 ")
        assert s.sendmail("a@example.net", ["bob@example.org"], MSG) == {}
    assert len(messages(data_dir, "bob")) == 1


def test_log_lines_and_no_password(start_listener: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    host, port = start_listener(start_smtp_listener, "smtp-trusted")
    with smtplib.SMTP(host, port, timeout=30) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("bob", "not-bobs-password")
        s.login("alice", USERS["alice"])
        s.sendmail("alice@example.org", ["bob@example.org", "nobody@example.org"], MSG)
    wait_for(lambda: "disconnect" in caplog.text)
    text = caplog.text
    for needle in (
        "connect",
        "ehlo '",
        "auth failed login='bob'",
        "auth ok user=alice",
        "rcpt <nobody@example.org> rejected: user unknown",
        "delivered id=",
        " size=",
        " from=<alice@example.org> rcpt=<bob@example.org> to=bob",
        "disconnect",
    ):
        assert needle in text, needle
    # one INFO line per message: accepted MAIL and RCPT are only debug lines
    assert "mail from <" not in text
    assert "accepted" not in text
    assert "127.0.0.1" in text
    assert USERS["alice"] not in text
    assert "not-bobs-password" not in text


def test_debug_log_has_mail_and_rcpt(
    start_listener: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailgw.smtp")
    host, port = start_listener(start_smtp_listener, "smtp-plain")
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.sendmail("carol@example.net", ["bob@example.org"], MSG)
    wait_for(lambda: "disconnect" in caplog.text)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("mail from <carol@example.net>" in m for m in debug), debug
    assert any("rcpt <bob@example.org> accepted: bob" in m for m in debug), debug
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sum("delivered id=" in m for m in info) == 1, info
