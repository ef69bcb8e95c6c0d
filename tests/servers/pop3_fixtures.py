"""Helpers for the POP3 listener tests (on top of ``tests/servers/conftest.py``).

Import the fixture functions into a test module (``from
tests.servers.pop3_fixtures import pop3_fixture  # noqa: F401``); the
fixture is then available as ``pop3``:

* ``pop3.start(listener="pop3-trusted", ctx=None) -> port``: a POP3 listener
  from the conftest ``LISTENERS`` on the background loop thread.
* ``pop3.context(**limits) -> ServerContext``: a context over the same data
  directory with other ``LimitsConfig`` values (its limiter never sleeps).
* ``pop3.deliver(user, data) -> key`` and ``pop3.inbox(user) -> Folder``:
  a fresh ``mailgw.store`` view, as another process would see it.
* ``pop3.client(port) -> poplib.POP3``, ``pop3.client_ssl(port)``,
  ``pop3.raw(port, source=None, rcvbuf=None) -> RawClient``: closed at
  teardown.
* ``pop3.wait_unlocked(user, ctx=None)``: waits until no session holds the
  user's maildrop (the server has finished a dropped session).
"""

from __future__ import annotations

import poplib
import time
from collections.abc import Callable, Iterator

import pytest

from mailgw.config.schema import Config
from mailgw.servers.context import ServerContext
from mailgw.servers.pop3 import start_pop3_listener
from mailgw.store import Folder
from tests.servers.conftest import USERS, FakeSleep, LoopThread, TlsCerts
from tests.servers.stream_fixtures import TIMEOUT, RawStreamClient, StreamHarness


class RawClient(RawStreamClient):
    """A blocking POP3 client on a plain socket, for byte-exact checks."""

    def cmd(self, command: bytes) -> bytes:
        self.send(command + b"\r\n")
        return self.line()

    def body(self) -> bytes:
        """The rest of a multi-line reply as sent: stuffed, terminator included."""
        parts = []
        while True:
            line = self.line()
            parts.append(line)
            if line == b".\r\n":
                return b"".join(parts)

    def multi(self, command: bytes) -> tuple[bytes, bytes]:
        """(status line, raw body) of a multi-line command."""
        status = self.cmd(command)
        assert status.startswith(b"+OK"), status
        return status, self.body()

    def login(self, user: str = "alice", password: str | None = None) -> None:
        assert self.cmd(f"USER {user}".encode()).startswith(b"+OK")
        reply = self.cmd(f"PASS {password or USERS[user]}".encode())
        assert reply.startswith(b"+OK"), reply


class Pop3Harness(StreamHarness):
    def start(self, listener: str = "pop3-trusted", ctx: ServerContext | None = None) -> int:
        _, port = self._start(start_pop3_listener, listener, ctx or self.ctx)
        return port

    def inbox(self, user: str = "alice") -> Folder:
        return self.store().account(user).folder("INBOX")

    def deliver(self, data: bytes, user: str = "alice") -> str:
        return self.inbox(user).deliver(data)

    def client(self, port: int) -> poplib.POP3:
        client = poplib.POP3(self.host, port, timeout=TIMEOUT)
        return self.track(client, client.close)

    def client_ssl(self, port: int) -> poplib.POP3_SSL:
        client = poplib.POP3_SSL(
            self.host, port, context=self.tls.client_context(), timeout=TIMEOUT
        )
        return self.track(client, client.close)

    def raw(
        self,
        port: int,
        *,
        source: str | None = None,
        greeting: bool = True,
        rcvbuf: int | None = None,
    ) -> RawClient:
        client = RawClient(self.host, port, source=source, rcvbuf=rcvbuf)
        self.track(client, client.close)
        if greeting:
            assert client.line().startswith(b"+OK ")
        return client

    def locked(self, user: str, ctx: ServerContext | None = None) -> bool:
        c = ctx or self.ctx
        return self.loop.call(lambda: user in c.maildrop_locks)

    def wait_unlocked(self, user: str, ctx: ServerContext | None = None) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.locked(user, ctx):
            assert time.monotonic() < deadline, f"maildrop of {user} still locked"
            time.sleep(0.01)


@pytest.fixture(name="pop3")
def pop3_fixture(
    start_listener: Callable[..., tuple[str, int]],
    loop_thread: LoopThread,
    server_context: ServerContext,
    make_config: Callable[..., Config],
    tls_certs: TlsCerts,
    fake_sleep: FakeSleep,
) -> Iterator[Pop3Harness]:
    harness = Pop3Harness(
        start_listener, loop_thread, server_context, make_config, tls_certs, fake_sleep
    )
    yield harness
    harness.close()


def crlf(data: bytes) -> bytes:
    """``data`` with every bare LF made CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def stuffed(data: bytes) -> bytes:
    """The RFC 1939 section 3 wire form of a CRLF message: dot-stuffed, terminated."""
    lines = data.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    out = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
    return out + b".\r\n"
