"""Shared fixtures for server tests (SMTP, POP3, ...).

* ``tls_certs``: a trustme CA and a server certificate for localhost,
  127.0.0.1, ::1 and mx.example.org, as files; ``tls_certs.client_context()``
  is a client SSLContext trusting the CA.
* ``data_dir``: a tmp data directory with users alice and bob (passwords in
  ``USERS``) in ``users.passwd`` and their Maildirs.  MAILGW_ARGON2_FAST=1.
* ``make_config(**overrides) -> Config``: domain example.org, hostname
  mx.example.org, the listeners in ``LISTENERS`` (all 127.0.0.1 port 0), TLS
  from ``tls_certs``.  ``limits=`` may be a dict of LimitsConfig fields.
* ``server_context``: a ``ServerContext`` over ``make_config()`` whose
  auth-failure limiter sleeps through ``FakeSleep`` (records the delays, never
  sleeps; ``ctx.limiter`` keeps the counts).  ``build_context(config,
  sleep=...)`` makes others.
* ``loop_thread``: an asyncio loop running in a background thread, so tests
  can drive the server with blocking clients (smtplib, poplib, sockets).
* ``start_listener(start_fn, listener, ctx=None) -> (host, port)``: runs
  ``await start_fn(listener, ctx)`` on the loop thread (``listener`` is a
  ``ListenerConfig`` or the name of one in ``ctx.config``); every server and
  client connection is closed at teardown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from mailgw.auth import Authenticator, AuthLimiter, UserDB
from mailgw.config.schema import Config, LimitsConfig, ListenerConfig, TlsConfig
from mailgw.servers.context import ServerContext
from mailgw.store import Store

T = TypeVar("T")

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
DOMAIN = "example.org"
HOSTNAME = "mx.example.org"
LOOPBACK = "127.0.0.1"

LISTENERS: tuple[ListenerConfig, ...] = (
    ListenerConfig("smtp", "smtp", LOOPBACK, 0, "starttls"),
    ListenerConfig("smtp-plain", "smtp", LOOPBACK, 0, "none"),
    ListenerConfig("smtp-trusted", "smtp", LOOPBACK, 0, "none", trusted=True),
    ListenerConfig("submission", "submission", LOOPBACK, 0, "starttls"),
    ListenerConfig("submissions", "submission", LOOPBACK, 0, "implicit"),
    ListenerConfig("smtps", "smtp", LOOPBACK, 0, "implicit"),
    ListenerConfig("pop3", "pop3", LOOPBACK, 0, "starttls"),
    ListenerConfig("pop3-plain", "pop3", LOOPBACK, 0, "none"),
    ListenerConfig("pop3-trusted", "pop3", LOOPBACK, 0, "none", trusted=True),
    ListenerConfig("pop3s", "pop3", LOOPBACK, 0, "implicit"),
)


# --- TLS ---------------------------------------------------------------------------


@dataclasses.dataclass
class TlsCerts:
    ca: trustme.CA
    cert: Path  # server certificate chain (PEM)
    key: Path  # server private key (PEM)
    ca_cert: Path  # the CA certificate, for clients

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", LOOPBACK, "::1", HOSTNAME)
    d = tmp_path_factory.mktemp("tls")
    cert, key, ca_cert = d / "cert.pem", d / "key.pem", d / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    key.chmod(0o600)
    ca.cert_pem.write_to_path(str(ca_cert))
    return TlsCerts(ca, cert, key, ca_cert)


# --- data directory, config, context ---------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAILGW_ARGON2_FAST", "1")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    userdb = UserDB(data / "users.passwd")
    store = Store(data / "mail")
    for user, password in USERS.items():
        userdb.add(user, password)
        store.account(user).ensure()
    return data


@pytest.fixture
def make_config(data_dir: Path, tls_certs: TlsCerts) -> Callable[..., Config]:
    def make(**overrides: Any) -> Config:
        limits = overrides.pop("limits", None)
        if isinstance(limits, dict):
            limits = dataclasses.replace(LimitsConfig(), **limits)
        config = Config(
            data_dir=data_dir,
            hostname=HOSTNAME,
            domains=(DOMAIN,),
            listeners=LISTENERS,
            tls=TlsConfig(cert=tls_certs.cert, key=tls_certs.key),
            limits=limits or LimitsConfig(),
            source="<tests>",
        )
        return dataclasses.replace(config, **overrides)

    return make


class FakeSleep:
    """Stands in for ``asyncio.sleep`` in the auth limiter.

    Records every requested delay.  While ``hold()`` is in effect, a sleeping
    session waits (in a worker thread) until ``release()``; ``entered`` is set
    whenever a sleep starts, so a test can tell that a session is held.
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.entered = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def held(self) -> bool:
        return not self._gate.is_set()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.entered.set()
        if not self._gate.is_set():
            await asyncio.to_thread(self._gate.wait, 30.0)


def build_context(config: Config, sleep: FakeSleep | None = None) -> ServerContext:
    """A ServerContext whose limiter sleeps through ``sleep`` (a new FakeSleep if None)."""
    ctx = ServerContext.build(config)
    limits = config.limits
    ctx.limiter = AuthLimiter(
        limits.auth_failure_delay,
        limits.auth_failure_max_delay,
        limits.auth_failure_window,
        sleep=sleep or FakeSleep(),
    )
    ctx.authenticator = Authenticator(ctx.userdb, ctx.limiter, config.domains)
    return ctx


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def server_context(make_config: Callable[..., Config], fake_sleep: FakeSleep) -> ServerContext:
    return build_context(make_config(), fake_sleep)


# --- event loop thread and listeners -------------------------------------------------------


class LoopThread:
    """An event loop in a daemon thread; ``run(coro)`` waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        async def cancel_rest() -> None:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_rest(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.loop.is_running():
                self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


StartFn = Callable[[ListenerConfig, ServerContext], Awaitable[asyncio.Server]]


@pytest.fixture
def start_listener(
    loop_thread: LoopThread, server_context: ServerContext
) -> Iterator[Callable[..., tuple[str, int]]]:
    started: list[tuple[asyncio.Server, ServerContext]] = []

    def start(
        start_fn: StartFn, listener: ListenerConfig | str, ctx: ServerContext | None = None
    ) -> tuple[str, int]:
        ctx = ctx or server_context
        if isinstance(listener, str):
            listener = next(lc for lc in ctx.config.listeners if lc.name == listener)

        async def go() -> asyncio.Server:
            return await start_fn(listener, ctx)

        server = loop_thread.run(go())
        started.append((server, ctx))
        host, port = server.sockets[0].getsockname()[:2]
        return host, port

    yield start

    async def close_all() -> None:
        for server, ctx in started:
            server.close()
            for transport in list(ctx.connections):
                transport.close()
        for server, _ in started:
            await server.wait_closed()

    loop_thread.run(close_all())
