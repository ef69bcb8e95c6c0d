"""SMTP into the outbound queue: relayed mail is in the spool before ``250``.

With a spool in the context (``relay:`` configured), an authenticated
session or a peer in ``relay_networks`` may send to outside domains; the
message, with our Received line, is durable in the spool before the reply,
local recipients of the same transaction get their copies, and the runner is
woken.  Without a spool the answer stays ``451 4.3.2``
(test_smtp_security.py).
"""

from __future__ import annotations

import ipaddress
import smtplib
from collections.abc import Callable
from pathlib import Path

from mailgw.config.schema import Config
from mailgw.relay.spool import Spool
from mailgw.servers.context import ServerContext
from mailgw.servers.smtp import start_smtp_listener
from mailgw.store import Store
from tests.servers.conftest import USERS, TlsCerts, build_context

MSG = (
    b"From: alice@example.org\r\nTo: friend@elsewhere.example\r\nSubject: out\r\n"
    b"Message-ID: <relay-1@example.org>\r\n\r\nHello out there.\r\n..dot line\r\n"
)


def _with_spool(ctx: ServerContext, root: Path) -> list[int]:
    woken: list[int] = []
    ctx.spool = Spool(root)
    ctx.spool.ensure_dirs()
    ctx.relay_wake = lambda: woken.append(1)
    return woken


def test_authenticated_submission_is_queued_before_250(
    start_listener: Callable[..., tuple[str, int]],
    server_context: ServerContext,
    tls_certs: TlsCerts,
    tmp_path: Path,
) -> None:
    woken = _with_spool(server_context, tmp_path / "queue")
    host, port = start_listener(start_smtp_listener, "submission", server_context)
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.starttls(context=tls_certs.client_context())
        s.login("alice", USERS["alice"])
        refused = s.sendmail(
            "alice@example.org", ["friend@elsewhere.example", "bob@example.org"], MSG
        )
    assert refused == {}
    assert server_context.spool is not None
    entries = server_context.spool.entries()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.sender == "alice@example.org"
    assert [r.address for r in entry.recipients] == ["friend@elsewhere.example"]
    assert entry.source == "smtp"
    data = server_context.spool.message_path(entry.id).read_bytes()
    assert data.startswith(b"Received: from ")
    assert b"with ESMTPSA" in data.split(b"\r\n\r\n", 1)[0]
    assert data.endswith(MSG)
    assert woken == [1]
    # bob (local) got his copy in the same transaction, and only bob
    store = Store(server_context.config.mail_root)
    assert len(store.account("bob").folder("INBOX").messages()) == 1


def test_relay_networks_and_alias_to_remote_are_queued(
    start_listener: Callable[..., tuple[str, int]],
    make_config: Callable[..., Config],
    tmp_path: Path,
) -> None:
    aliases = {"fwd@example.org": ("friend@elsewhere.example", "alice")}
    ctx = build_context(
        make_config(aliases=aliases, relay_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    _with_spool(ctx, tmp_path / "queue")
    host, port = start_listener(start_smtp_listener, "smtp-plain", ctx)
    with smtplib.SMTP(host, port, timeout=30) as s:
        assert s.sendmail("someone@example.net", ["fwd@example.org"], MSG) == {}
    assert ctx.spool is not None
    (entry,) = ctx.spool.entries()
    assert entry.sender == "someone@example.net"
    assert [r.address for r in entry.recipients] == ["friend@elsewhere.example"]
    store = Store(ctx.config.mail_root)
    assert len(store.account("alice").folder("INBOX").messages()) == 1


def test_unauthenticated_relay_still_refused_with_a_spool(
    start_listener: Callable[..., tuple[str, int]],
    server_context: ServerContext,
    tmp_path: Path,
) -> None:
    _with_spool(server_context, tmp_path / "queue")
    host, port = start_listener(start_smtp_listener, "smtp-plain", server_context)
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo()
        s.mail("spammer@example.net")
        assert s.rcpt("victim@elsewhere.example")[0] == 550
    assert server_context.spool is not None
    assert server_context.spool.entries() == []


def test_spool_failure_answers_451_and_queues_nothing(
    start_listener: Callable[..., tuple[str, int]],
    server_context: ServerContext,
    tls_certs: TlsCerts,
    tmp_path: Path,
) -> None:
    root = tmp_path / "queue"
    _with_spool(server_context, root)
    # a file where the spool's message directory must be: every enqueue fails (even as root)
    msg_dir = root / "msg"
    msg_dir.rmdir()
    msg_dir.write_bytes(b"not a directory")
    host, port = start_listener(start_smtp_listener, "submission", server_context)
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.starttls(context=tls_certs.client_context())
        s.login("alice", USERS["alice"])
        s.mail("alice@example.org")
        assert s.rcpt("friend@elsewhere.example")[0] == 250
        code, _text = s.data(MSG)
    assert code == 451
