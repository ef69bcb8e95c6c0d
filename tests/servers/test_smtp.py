"""The SMTP listener, driven with smtplib: delivery, trace headers, TLS, AUTH."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgw.config.schema import Config
from mailgw.servers.context import ServerContext
from mailgw.servers.smtp import start_smtp_listener
from mailgw.store import Store
from tests.servers.conftest import USERS, FakeSleep, TlsCerts, build_context

MSG = (
    b"From: Sender <sender@example.net>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: test\r\n"
    b"\r\n"
    b"Hello.\r\n"
    b".a line that starts with a dot\r\n"
    b"..two dots\r\n"
    b"last line\r\n"
)

Start = Callable[..., tuple[str, int]]


def messages(data_dir: Path, user: str) -> list[bytes]:
    folder = Store(data_dir / "mail").account(user).folder("INBOX")
    return [folder.read(info) for info in folder.messages()]


def split_trace(raw: bytes) -> tuple[list[bytes], bytes]:
    """(Return-Path, Delivered-To, Received (unfolded)), and the rest."""
    rp, rest = raw.split(b"\r\n", 1)
    dt, rest = rest.split(b"\r\n", 1)
    m = re.match(rb"(Received: .*?\r\n)(?![\t ])", rest, re.DOTALL)
    assert m is not None
    return [rp, dt, m.group(1)], rest[m.end() :]


def connect(start: Start, name: str = "smtp-plain") -> smtplib.SMTP:
    host, port = start(start_smtp_listener, name)
    return smtplib.SMTP(host, port, local_hostname="client.example", timeout=30)


def test_greeting_and_ehlo(start_listener: Start) -> None:
    with connect(start_listener, "smtp") as s:
        code, text = s.ehlo()
        assert code == 250
        assert text.startswith(b"mx.example.org")
        for ext in ("size", "8bitmime", "smtputf8", "pipelining", "starttls"):
            assert s.has_extn(ext), ext
        assert s.esmtp_features["size"] == str(50 * 1024 * 1024)
        assert not s.has_extn("auth")  # untrusted plaintext: AUTH only after STARTTLS


def test_deliver_to_one_user(start_listener: Start, data_dir: Path) -> None:
    with connect(start_listener) as s:
        s.ehlo()
        assert s.mail("sender@example.net")[0] == 250
        assert s.rcpt("alice@example.org")[0] == 250
        code, text = s.data(MSG)
    assert code == 250
    m = re.fullmatch(rb"2\.0\.0 Ok: queued as (\w+)", text)
    assert m is not None
    queue_id = m.group(1)
    (raw,) = messages(data_dir, "alice")
    (rp, dt, received), rest = split_trace(raw)
    assert rp == b"Return-Path: <sender@example.net>"
    assert dt == b"Delivered-To: alice@example.org"
    assert received.startswith(b"Received: from client.example ([127.0.0.1])\r\n\t")
    assert b"by mx.example.org (mailgw) with ESMTP id " + queue_id + b"\r\n\t" in received
    assert b"\tfor <alice@example.org>; " in received
    assert rest == MSG  # exactly the bytes sent, dots unstuffed
    assert messages(data_dir, "bob") == []


def test_helo_gives_smtp_keyword(start_listener: Start, data_dir: Path) -> None:
    with connect(start_listener) as s:
        s.helo()
        s.sendmail("sender@example.net", ["bob@example.org"], MSG)
    (raw,) = messages(data_dir, "bob")
    assert b" with SMTP id " in raw.split(b"\r\n\r\n", 1)[0]


def test_deliver_to_several_users(start_listener: Start, data_dir: Path) -> None:
    with connect(start_listener) as s:
        refused = s.sendmail("<>", ["alice@example.org", "BOB@Example.ORG"], MSG)
    assert refused == {}
    for user, rcpt in (("alice", b"alice@example.org"), ("bob", b"BOB@Example.ORG")):
        (raw,) = messages(data_dir, user)
        (rp, dt, received), rest = split_trace(raw)
        assert rp == b"Return-Path: <>"
        assert dt == b"Delivered-To: " + rcpt
        assert b" for " not in received  # two recipients: no "for" clause
        assert rest == MSG


def test_alias_and_catch_all(
    start_listener: Start, make_config: Callable[..., Config], data_dir: Path
) -> None:
    config = make_config(
        aliases={"team@example.org": ("alice", "bob@example.org")},
        catch_all={"example.org": "bob"},
    )
    ctx = build_context(config)
    host, port = start_listener(start_smtp_listener, "smtp-plain", ctx)
    with smtplib.SMTP(host, port, timeout=30) as s:
        assert s.sendmail("x@example.net", ["team@example.org"], MSG) == {}
        assert s.sendmail("x@example.net", ["whoever@example.org", "bob@example.org"], MSG) == {}
    alice = messages(data_dir, "alice")
    bob = messages(data_dir, "bob")
    assert len(alice) == 1 and len(bob) == 2
    assert b"Delivered-To: team@example.org\r\n" in alice[0]
    # bob reached twice in one transaction (catch-all and directly): one copy
    delivered_to = sorted(raw.split(b"\r\n")[1] for raw in bob)
    assert delivered_to == [b"Delivered-To: team@example.org", b"Delivered-To: whoever@example.org"]


def test_smtputf8_address(
    start_listener: Start, make_config: Callable[..., Config], data_dir: Path
) -> None:
    ctx = build_context(make_config(aliases={"jörg@example.org": ("alice",)}))
    host, port = start_listener(start_smtp_listener, "smtp-plain", ctx)
    body = "Subject: Grüße\r\nFrom: jörg@example.org\r\n\r\nGrüße aus Köln\r\n".encode()
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        assert s.has_extn("smtputf8")
        refused = s.sendmail("ärger@example.net", ["jörg@example.org"], body, ["SMTPUTF8"])
    assert refused == {}
    (raw,) = messages(data_dir, "alice")
    (rp, dt, received), rest = split_trace(raw)
    assert rp == "Return-Path: <ärger@example.net>".encode()
    assert dt == "Delivered-To: jörg@example.org".encode()
    assert b" with UTF8SMTP id " in received
    assert rest == body


def test_unicode_address_needs_smtputf8(start_listener: Start) -> None:
    with connect(start_listener) as s:
        s.ehlo()
        s.command_encoding = "utf-8"
        code, text = s.mail("ärger@example.net")
        assert (code, text[:6]) == (553, b"5.6.7 ")
        assert s.mail("a@example.net")[0] == 250
        assert s.rcpt("jörg@example.org")[0] == 553


def test_8bitmime_body(start_listener: Start, data_dir: Path) -> None:
    body = (
        b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n"
        b"\xe4\xf6\xfc\xff\x80\r\n"
    )
    with connect(start_listener) as s:
        s.ehlo()
        assert s.has_extn("8bitmime")
        assert s.sendmail("a@example.net", ["alice@example.org"], body, ["BODY=8BITMIME"]) == {}
    (raw,) = messages(data_dir, "alice")
    assert split_trace(raw)[1] == body


def test_submission_requires_auth(start_listener: Start, tls_certs: TlsCerts) -> None:
    with connect(start_listener, "submission") as s:
        s.ehlo()
        code, text = s.mail("alice@example.org")
        assert code == 530
        assert text.startswith(b"5.7.0")
        s.starttls(context=tls_certs.client_context())
        s.ehlo()
        assert s.mail("alice@example.org")[0] == 530
        s.login("alice", USERS["alice"])
        assert s.mail("alice@example.org")[0] == 250
        assert s.rcpt("bob@example.org")[0] == 250


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial_response", [True, False])
def test_starttls_and_auth(
    start_listener: Start,
    tls_certs: TlsCerts,
    data_dir: Path,
    mechanism: str,
    initial_response: bool,
) -> None:
    with connect(start_listener, "smtp") as s:
        s.starttls(context=tls_certs.client_context())
        s.ehlo()
        assert s.has_extn("auth")
        assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        assert not s.has_extn("starttls")
        s.user, s.password = "alice@example.org", USERS["alice"]
        authobject = s.auth_plain if mechanism == "PLAIN" else s.auth_login
        code, text = s.auth(mechanism, authobject, initial_response_ok=initial_response)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        assert s.sendmail("alice@example.org", ["bob@example.org"], MSG) == {}
    (raw,) = messages(data_dir, "bob")
    (_rp, _dt, received), _ = split_trace(raw)
    assert b"(using TLSv1." in received
    assert b" with ESMTPSA id " in received


def test_wrong_password(
    start_listener: Start,
    tls_certs: TlsCerts,
    server_context: ServerContext,
    fake_sleep: FakeSleep,
) -> None:
    with connect(start_listener, "smtp") as s:
        s.starttls(context=tls_certs.client_context())
        s.ehlo()
        s.user, s.password = "alice", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            s.auth("PLAIN", s.auth_plain)
        assert info.value.smtp_code == 535
        assert info.value.smtp_error == b"5.7.8 Authentication credentials invalid"
        # the session goes on: a right password afterwards works
        s.user, s.password = "alice", USERS["alice"]
        assert s.auth("LOGIN", s.auth_login)[0] == 235
    # the success reset the address's failure count
    assert server_context.limiter.failures("127.0.0.1") == 0
    assert fake_sleep.delays == [1.0]


@pytest.mark.parametrize("name", ["submissions", "smtps"])
def test_implicit_tls(
    start_listener: Start, tls_certs: TlsCerts, data_dir: Path, name: str
) -> None:
    host, port = start_listener(start_smtp_listener, name)
    with smtplib.SMTP_SSL(host, port, context=tls_certs.client_context(), timeout=30) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.has_extn("auth")
        s.login("bob", USERS["bob"])
        assert s.sendmail("bob@example.org", ["alice@example.org"], MSG) == {}
    (raw,) = messages(data_dir, "alice")
    assert b" with ESMTPSA id " in raw.split(b"\r\n\r\n", 1)[0]


def test_rset_and_second_transaction(start_listener: Start, data_dir: Path) -> None:
    with connect(start_listener) as s:
        s.ehlo()
        s.mail("a@example.net")
        s.rcpt("alice@example.org")
        assert s.rset()[0] == 250
        assert s.sendmail("a@example.net", ["bob@example.org"], MSG) == {}
        assert s.sendmail("a@example.net", ["bob@example.org"], MSG) == {}
    assert messages(data_dir, "alice") == []
    assert len(messages(data_dir, "bob")) == 2


def test_active_is_empty_after_delivery(
    start_listener: Start, server_context: ServerContext
) -> None:
    with connect(start_listener) as s:
        s.sendmail("a@example.net", ["bob@example.org"], MSG)
    assert server_context.active == set()


def test_250_only_after_delivery_and_drain_tracking(
    start_listener: Start,
    server_context: ServerContext,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reply waits for LocalDelivery.deliver; ctx.active holds the transaction
    meanwhile, and keeps holding it when the client disappears before the store is done."""
    import select
    import socket
    import threading
    import time

    from mailgw.delivery.local import LocalDelivery

    entered, release = threading.Event(), threading.Event()
    real = LocalDelivery.deliver

    def slow_deliver(self: LocalDelivery, *args: object, **kwargs: object) -> list[str]:
        entered.set()
        assert release.wait(30)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalDelivery, "deliver", slow_deliver)
    host, port = start_listener(start_smtp_listener, "smtp-plain")

    def wait(cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not cond():
            assert time.monotonic() < deadline
            time.sleep(0.01)

    # 1. client waits: no reply before the copy is stored
    sock = socket.create_connection((host, port), timeout=30)
    f = sock.makefile("rwb")
    f.readline()
    f.write(b"HELO c\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    f.flush()
    assert [f.readline()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    f.write(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    f.flush()
    assert entered.wait(30)
    assert server_context.active  # the delivery is in flight
    # nothing answered yet (the store is blocked, so this is not a race)
    assert select.select([sock], [], [], 0)[0] == []
    release.set()
    assert f.readline().startswith(b"250 2.0.0 Ok: queued as ")
    wait(lambda: not server_context.active)
    f.close()
    sock.close()

    # 2. client hangs up during the store: the token stays until the thread is done
    entered.clear()
    release.clear()
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        s.mail("a@example.net")
        s.rcpt("bob@example.org")
        s.putcmd("DATA")
        assert s.getreply()[0] == 354
        s.send(b"Subject: y\r\n\r\nbody\r\n.\r\n")
        assert entered.wait(30)
        s.close()  # hang up without waiting for the reply
    wait(lambda: not server_context.connections)  # the server saw the hang-up
    assert server_context.active  # ... and still waits for the store
    release.set()
    wait(lambda: not server_context.active)
    assert len(messages(data_dir, "alice")) == 1
    assert len(messages(data_dir, "bob")) == 1  # stored, though never acknowledged
