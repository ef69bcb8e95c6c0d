"""A queue runner over a real spool and store, with a scripted fake SMTP client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mailgw.config.schema import Config, ListenerConfig, RelayConfig, RouteConfig
from mailgw.relay.client import (
    DeliveryResult,
    OutMessage,
    RecipientResult,
    RouteAuthError,
    TargetsUnavailable,
)
from mailgw.relay.routing import RoutingError, Target
from mailgw.relay.runner import QueueRunner
from mailgw.relay.spool import Spool
from mailgw.store import Store

LOCAL = "office.example"
ISP = RouteConfig(name="isp", hosts=("smarthost.test",), port=2525, max_per_connection=50)
MX = RouteConfig(
    name="direct", kind="mx", port=25, tls_required=False, tls_verify=False, domains=("mx.test",)
)


class Users:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def exists(self, user: str) -> bool:
        return user in self.names


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Reply = Callable[[OutMessage, str], str]  # (message, recipient) -> reply text


@dataclass
class FakeClient:
    """``client.deliver`` stand-in: replies from ``reply``; ``down`` raises
    TargetsUnavailable; ``auth_fail`` raises RouteAuthError on route isp."""

    reply: Reply = lambda msg, rcpt: "250 2.0.0 Ok"
    down: bool = False
    auth_fail: str | None = None
    delay: float = 0.0
    calls: list[tuple[str, list[OutMessage], str | None]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def messages(self) -> list[OutMessage]:
        return [m for _, batch, _ in self.calls for m in batch]

    async def __call__(
        self, targets: Any, route: Any, batch: list[OutMessage], *, helo_name: str | None = None
    ) -> list[DeliveryResult]:
        self.calls.append((route.name, list(batch), helo_name))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.auth_fail is not None and route.name == "isp":
                raise RouteAuthError("auth", route=route.name, reply=self.auth_fail)
            if self.down:
                raise TargetsUnavailable("451 4.4.1 connect to smarthost.test: Connection refused")
            results = []
            for msg in batch:
                result = DeliveryResult(msg.id)
                for rcpt in msg.recipients:
                    text = self.reply(msg, rcpt)
                    status = {"2": "ok", "5": "perm"}.get(text[0], "temp")
                    result.recipients.append(
                        RecipientResult(rcpt, status, text, "smarthost.test")  # type: ignore[arg-type]
                    )
                results.append(result)
            return results
        finally:
            self.active -= 1


@dataclass
class Harness:
    tmp: Path
    config: Config
    spool: Spool
    store: Store
    client: FakeClient
    clock: Clock
    runner: QueueRunner
    resolved: list[tuple[str, str]]

    def enqueue(self, sender: str, rcpts: list[str], data: bytes | None = None) -> str:
        body = (
            data
            or (
                f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: test\r\n"
                f"Message-ID: <{len(self.spool.entries())}.{self.clock.now}@test>\r\n\r\nhello\r\n"
            ).encode()
        )
        return self.spool.enqueue(sender, rcpts, body, source="smtp", now=self.clock.now)

    def run(self) -> Any:
        return asyncio.run(self.runner.run_once())

    def inbox(self, user: str) -> list[bytes]:
        md = self.config.mail_root / user / "Maildir"
        return [
            p.read_bytes()
            for sub in ("new", "cur")
            if (md / sub).is_dir()
            for p in sorted((md / sub).iterdir())
        ]


def make_harness(tmp: Path, **relay: Any) -> Harness:
    routes = relay.pop("routes", (ISP, MX))
    relay_config = RelayConfig(
        routes=routes, spool_dir=tmp / "queue", **{"retry_min": 300.0, **relay}
    )
    config = Config(
        data_dir=tmp,
        hostname="mail.office.example",
        domains=(LOCAL,),
        listeners=(ListenerConfig("smtp", "smtp", "127.0.0.1", 0),),
        relay=relay_config,
    )
    spool = Spool(config.queue_dir)
    spool.ensure_dirs()
    store = Store(config.mail_root)
    client = FakeClient()
    clock = Clock()
    resolved: list[tuple[str, str]] = []

    async def resolve(route: Any, dest: str) -> list[Target]:
        resolved.append((route.name, dest))
        if dest == "nxdomain.test":
            raise RoutingError("550 5.1.2 nxdomain.test: no such domain", permanent=True)
        return [Target("127.0.0.1", route.port, dest)]

    runner = QueueRunner(
        config,
        spool,
        store=store,
        userdb=Users("alice", "postmaster"),
        deliver=client,
        resolve=resolve,
        clock=clock,
        rand=lambda low, high: 1.0,
    )
    return Harness(tmp, config, spool, store, client, clock, runner, resolved)


def with_relay(config: Config, **changes: Any) -> Config:
    assert config.relay is not None
    return replace(config, relay=replace(config.relay, **changes))
