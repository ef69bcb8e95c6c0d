"""Helpers for the IMAP listener tests (on top of ``tests/servers/conftest.py``).

Import the fixture into a test module (``from tests.servers.imap.imap_fixtures
import imap_fixture  # noqa: F401``); it is then available as ``imap``:

* ``imap.start(listener="imap-trusted", ctx=None) -> port``: an IMAP listener
  from ``LISTENERS`` below (all 127.0.0.1 port 0) on the loop thread.
* ``imap.context(**limits) -> ServerContext`` over the same data directory.
* ``imap.client(port, login=True) -> imaplib.IMAP4`` (logged in as alice),
  ``imap.client_ssl(port)``, ``imap.imapclient(port)`` (imapclient),
  ``imap.raw(port) -> RawClient`` for byte transcripts.
* ``imap.deliver(data, user="alice", folder="INBOX") -> key`` and
  ``imap.folder(user, name)``: a fresh store view, as another process would.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import imapclient
import pytest

from mailgw.config.schema import Config, ListenerConfig
from mailgw.servers.context import ServerContext
from mailgw.servers.imap import start_imap_listener
from mailgw.store import Folder, Store
from tests.servers.conftest import LOOPBACK, USERS, FakeSleep, LoopThread, TlsCerts, build_context

TIMEOUT = 30.0

LISTENERS: dict[str, ListenerConfig] = {
    lc.name: lc
    for lc in (
        ListenerConfig("imap", "imap", LOOPBACK, 0, "starttls"),
        ListenerConfig("imap-plain", "imap", LOOPBACK, 0, "none"),
        ListenerConfig("imap-trusted", "imap", LOOPBACK, 0, "none", trusted=True),
        ListenerConfig("imaps", "imap", LOOPBACK, 0, "implicit"),
    )
}


class RawClient:
    """A blocking line-oriented client on a plain socket, for byte-exact checks."""

    def __init__(self, host: str, port: int) -> None:
        self.sock: socket.socket = socket.create_connection((host, port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        line = self.file.readline()
        assert line, "server closed the connection"
        return line

    def until_tagged(self, tag: bytes) -> list[bytes]:
        """Every line up to and including the one starting with ``tag``."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, tag: bytes, command: bytes) -> list[bytes]:
        self.send(tag + b" " + command + b"\r\n")
        return self.until_tagged(tag)

    def read_to_eof(self) -> bytes:
        chunks = []
        while chunk := self.file.read1(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def login(self, user: str = "alice") -> None:
        reply = self.cmd(b"L1", f'LOGIN {user} "{USERS[user]}"'.encode())
        assert reply[-1].startswith(b"L1 OK"), reply

    def starttls(self, context: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class ImapHarness:
    def __init__(
        self,
        start_listener: Callable[..., tuple[str, int]],
        loop_thread: LoopThread,
        ctx: ServerContext,
        make_config: Callable[..., Config],
        tls_certs: TlsCerts,
        fake_sleep: FakeSleep,
    ) -> None:
        self._start = start_listener
        self.loop = loop_thread
        self.ctx = ctx
        self.make_config = make_config
        self.tls = tls_certs
        self.sleep = fake_sleep
        self.host = LOOPBACK
        self._closers: list[Callable[[], Any]] = []

    def start(self, listener: str = "imap-trusted", ctx: ServerContext | None = None) -> int:
        _, port = self._start(start_imap_listener, LISTENERS[listener], ctx or self.ctx)
        return port

    def context(self, **limits: Any) -> ServerContext:
        return build_context(self.make_config(limits=limits), self.sleep)

    def store(self) -> Store:
        return Store(self.ctx.config.mail_root)

    def folder(self, user: str = "alice", name: str = "INBOX") -> Folder:
        return self.store().account(user).folder(name)

    def deliver(self, data: bytes, user: str = "alice", folder: str = "INBOX") -> str:
        return self.folder(user, folder).deliver(data)

    def client(self, port: int, login: bool = True, user: str = "alice") -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, port, timeout=TIMEOUT)
        self._closers.append(client.shutdown)
        if login:
            typ, _ = client.login(user, USERS[user])
            assert typ == "OK"
        return client

    def client_ssl(self, port: int) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL(
            self.host, port, ssl_context=self.tls.client_context(), timeout=TIMEOUT
        )
        self._closers.append(client.shutdown)
        return client

    def imapclient(self, port: int, login: bool = True, user: str = "alice") -> Any:
        client = imapclient.IMAPClient(self.host, port, ssl=False, timeout=TIMEOUT)
        self._closers.append(client.shutdown)
        if login:
            client.login(user, USERS[user])
        return client

    def raw(self, port: int, greeting: bool = True) -> RawClient:
        client = RawClient(self.host, port)
        self._closers.append(client.close)
        if greeting:
            assert client.line().startswith(b"* OK ")
        return client

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                closer()


@pytest.fixture(name="imap")
def imap_fixture(
    start_listener: Callable[..., tuple[str, int]],
    loop_thread: LoopThread,
    server_context: ServerContext,
    make_config: Callable[..., Config],
    tls_certs: TlsCerts,
    fake_sleep: FakeSleep,
) -> Iterator[ImapHarness]:
    harness = ImapHarness(
        start_listener, loop_thread, server_context, make_config, tls_certs, fake_sleep
    )
    yield harness
    harness.close()
