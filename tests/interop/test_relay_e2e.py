"""The queue runner against a real Postfix smarthost on loopback.

Outage and recovery (exactly once, by Message-ID in Postfix's Maildirs), a
5xx for one recipient (DSN into the local sender's mailbox), lifetime expiry,
a wrong smarthost password (Postfix SASL through Dovecot: route held, no
bounce), SIGKILL during a pass (nothing lost, at most one duplicate) and the
runner inside ``serve`` (MailServer with a ``relay:`` section).
"""

from __future__ import annotations

import asyncio
import collections
import email
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailgw.config.schema import Config, ListenerConfig, RelayConfig, RouteConfig
from mailgw.relay.runner import QueueRunner
from mailgw.relay.spool import Spool
from mailgw.store import Store
from tests.interop import peers
from tests.interop.peers import LOOPBACK, DovecotInstance, PostfixInstance, write_plain_passwd
from tests.relay.runner_fixtures import Clock, Users

ROOT = Path(__file__).resolve().parents[2]


def route_to(pf: PostfixInstance, **changes: Any) -> RouteConfig:
    base = RouteConfig(
        name="isp",
        hosts=(f"{LOOPBACK}:{pf.port}",),
        tls="none",
        tls_required=False,
        tls_verify=False,
        max_per_connection=20,
        concurrency=2,
    )
    return replace(base, **changes)


def make_config(tmp: Path, route: RouteConfig, **relay: Any) -> Config:
    return Config(
        data_dir=tmp,
        hostname="gw.office.example",
        domains=("office.example",),
        listeners=(ListenerConfig("smtp", "smtp", "127.0.0.1", 0),),
        relay=RelayConfig(routes=(route,), spool_dir=tmp / "queue", **relay),
    )


class Gateway:
    """Spool + store + runner with a fake clock and fixed jitter."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = Clock(time.time())
        self.spool = Spool(config.queue_dir)
        self.store = Store(config.mail_root)
        self.runner = QueueRunner(
            config,
            self.spool,
            store=self.store,
            userdb=Users("alice"),
            clock=self.clock,
            rand=lambda low, high: 1.0,
        )

    def send(self, i: int, rcpts: list[str], sender: str = "alice@office.example") -> str:
        data = (
            f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: relay {i}\r\n"
            f"Message-ID: <relay-{i}@office.example>\r\n\r\nbody {i}\r\n"
        ).encode()
        return self.spool.enqueue(sender, rcpts, data, source="smtp", now=self.clock.now)

    def run(self) -> Any:
        return asyncio.run(self.runner.run_once())

    def inbox(self, user: str = "alice") -> list[bytes]:
        md = self.config.mail_root / user / "Maildir"
        return [p.read_bytes() for sub in ("new", "cur") for p in sorted((md / sub).glob("*"))]


def message_ids(pf: PostfixInstance, user: str) -> list[str]:
    ids = []
    for path in pf.messages(user):
        msg = email.message_from_bytes(path.read_bytes())
        ids.append(str(msg["Message-ID"]))
    return ids


def test_outage_then_recovery_delivers_each_exactly_once(
    postfix: PostfixInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = Gateway(make_config(tmp_path, route_to(postfix), retry_min=60.0, retry_max=600.0))
    port = postfix.port
    postfix.stop()
    for i in range(12):
        gw.send(i, [("alice", "bob")[i % 2] + "@peer.test"])
    start = gw.clock.now
    stats = gw.run()
    assert stats.deferred == 12 and stats.delivered == 0
    entries = gw.spool.entries()
    assert {e.next_attempt for e in entries} == {start + 60}
    assert all("451" in (e.recipients[0].last_reply or "") for e in entries)
    # not due: nothing is tried
    gw.clock.now += 30
    assert gw.run().entries == 0
    gw.clock.now = start + 60
    assert gw.run().deferred == 12
    assert {e.attempts for e in gw.spool.entries()} == {2}
    assert {e.next_attempt for e in gw.spool.entries()} == {start + 60 + 120}
    # the smarthost is back on the same port
    monkeypatch.setattr(peers, "free_port", lambda: port)
    postfix.start()
    assert postfix.port == port
    gw.clock.now = start + 180
    stats = gw.run()
    assert stats.delivered == 12
    assert gw.spool.entries() == []
    postfix.wait_for_messages(6, "alice")
    postfix.wait_for_messages(6, "bob")
    got = message_ids(postfix, "alice") + message_ids(postfix, "bob")
    assert collections.Counter(got) == {f"<relay-{i}@office.example>": 1 for i in range(12)}


def test_one_recipient_refused_gets_a_dsn_others_delivered(
    postfix: PostfixInstance, tmp_path: Path
) -> None:
    gw = Gateway(make_config(tmp_path, route_to(postfix)))
    gw.send(1, ["alice@peer.test", "ghost@peer.test", "bob@peer.test"])
    stats = gw.run()
    assert (stats.delivered, stats.failed, stats.dsns) == (3, 1, 1)  # 2 remote + the DSN
    postfix.wait_for_messages(1, "alice")
    postfix.wait_for_messages(1, "bob")
    (dsn,) = gw.inbox("alice")
    assert dsn.startswith(b"Return-Path: <>\r\n")
    assert b"Final-Recipient: rfc822; ghost@peer.test" in dsn
    assert b"Status: 5.1.1" in dsn and b"Action: failed" in dsn
    assert b"Diagnostic-Code: smtp; 550 5.1.1 <ghost@peer.test>" in dsn
    assert b"Remote-MTA: dns; " in dsn
    assert b"Message-ID: <relay-1@office.example>" in dsn  # the original's headers
    assert b"body 1" not in dsn
    assert gw.spool.entries() == []


def test_lifetime_expiry_bounces(tmp_path: Path) -> None:
    closed = peers.free_port()  # nothing listens there: connection refused
    route = RouteConfig(name="isp", hosts=(f"{LOOPBACK}:{closed}",), tls="none", tls_required=False)
    gw = Gateway(make_config(tmp_path, route, lifetime=3600.0, delay_warning=None))
    gw.send(1, ["bob@far.example"])
    assert gw.run().deferred == 1
    gw.clock.now += 3600
    stats = gw.run()
    assert stats.failed == 1 and stats.dsns == 1
    (dsn,) = gw.inbox("alice")
    assert b"Status: 5.4.7" in dsn and b"delivery time expired" in dsn
    assert gw.spool.entries() == []


SASL_PASSWORD = "right-password"


def test_wrong_smarthost_password_holds_the_route(
    postfix_factory: Callable[..., PostfixInstance],
    dovecot_factory: Callable[..., DovecotInstance],
    peer_dir: Path,
    tmp_path: Path,
) -> None:
    socket_path = peer_dir / "sasl" / "auth"
    socket_path.parent.mkdir(mode=0o755)
    passwd = peer_dir / "sasl.passwd"
    write_plain_passwd(passwd, {"office": SASL_PASSWORD})
    conf = f"""
service auth {{
  unix_listener {socket_path} {{
    mode = 0666
  }}
}}
"""
    dovecot_factory(peer_dir / "dc", passwd, protocols=("pop3",), extra_conf=conf)
    pf = postfix_factory(
        users=("alice",),
        domain="peer.test",
        main_extra={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(socket_path),
            "smtpd_tls_auth_only": "no",
            "mynetworks": "",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
        },
    )
    secret = tmp_path / "smarthost.pass"
    secret.write_text("wrong-password\n")
    route = route_to(pf, username="office", password_file=secret)
    gw = Gateway(make_config(tmp_path, route))
    qids = [gw.send(i, ["alice@peer.test"]) for i in range(3)]
    stats = gw.run()
    assert stats.held_routes == ["isp"] and stats.failed == 0 and stats.dsns == 0
    for qid in qids:
        entry = gw.spool.load(qid)
        assert entry.held
        assert (entry.held_reason or "").startswith("smarthost authentication failed: 535")
        assert entry.recipients[0].state == "pending"
    assert gw.inbox("alice") == []  # no bounce
    assert gw.run().entries == 0  # held: not retried
    # the operator fixes the password and releases the queue
    secret.write_text(SASL_PASSWORD + "\n")
    for qid in qids:
        entry = gw.spool.release(qid)
        entry.next_attempt = gw.clock.now
        gw.spool.save(entry)
    assert gw.run().delivered == 3
    pf.wait_for_messages(3, "alice")
    assert sorted(message_ids(pf, "alice")) == [f"<relay-{i}@office.example>" for i in range(3)]


KILL_SCRIPT = textwrap.dedent(
    """
    import asyncio, pickle, sys
    from mailgw.relay.runner import QueueRunner
    from mailgw.relay.spool import Spool
    from mailgw.store import Store
    from tests.relay.runner_fixtures import Users

    config = pickle.loads(bytes.fromhex(sys.argv[1]))
    spool = Spool(config.queue_dir)
    runner = QueueRunner(config, spool, store=Store(config.mail_root), userdb=Users("alice"))
    print("ready", flush=True)
    asyncio.run(runner.run_once())
    print("done", flush=True)
    """
)


def test_sigkill_during_a_pass_loses_nothing(postfix: PostfixInstance, tmp_path: Path) -> None:
    import pickle

    count = 150
    # one message per connection, one connection: at most one message in flight
    route = route_to(postfix, max_per_connection=1, concurrency=1)
    config = make_config(tmp_path, route)
    gw = Gateway(config)
    for i in range(count):
        gw.send(i, ["alice@peer.test"])
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, pickle.dumps(config).hex()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while len(postfix.messages("alice")) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = len(gw.spool.entries())
    assert 0 < left < count, "the kill must land in the middle of the pass"
    gw.clock.now = time.time() + 1
    stats = gw.run()
    assert gw.spool.entries() == []
    assert stats.delivered == left
    postfix.wait_for_messages(count, "alice")
    time.sleep(0.5)  # a duplicate still in Postfix's queue would land now
    got = collections.Counter(message_ids(postfix, "alice"))
    assert set(got) == {f"<relay-{i}@office.example>" for i in range(count)}
    duplicates = sum(n - 1 for n in got.values())
    assert duplicates <= 1, got.most_common(3)


def test_serve_runs_the_queue_and_stops_cleanly(postfix: PostfixInstance, tmp_path: Path) -> None:
    from mailgw.servers.app import MailServer

    config = make_config(tmp_path, route_to(postfix))
    (tmp_path / "users.passwd").write_text("")
    spool = Spool(config.queue_dir)
    spool.enqueue(
        "alice@office.example", ["bob@peer.test"], b"Subject: s\r\n\r\nx\r\n", source="smtp"
    )

    async def scenario() -> None:
        server = MailServer(config)
        await server.start()
        assert server.runner is not None
        for _ in range(1000):
            if not spool.entries():
                break
            await asyncio.sleep(0.02)
        await server.close(timeout=10)
        assert server._runner_task is None

    asyncio.run(scenario())
    assert spool.entries() == []
    postfix.wait_for_messages(1, "bob")
