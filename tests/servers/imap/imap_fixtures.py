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

import imaplib
from collections.abc import Callable, Iterator
from typing import Any

import imapclient
import pytest

from mailgw.config.schema import Config, ListenerConfig
from mailgw.servers.context import ServerContext
from mailgw.servers.imap import start_imap_listener
from mailgw.store import Folder
from tests.servers.conftest import LOOPBACK, USERS, FakeSleep, LoopThread, TlsCerts
from tests.servers.stream_fixtures import TIMEOUT, RawStreamClient, StreamHarness

LISTENERS: dict[str, ListenerConfig] = {
    lc.name: lc
    for lc in (
        ListenerConfig("imap", "imap", LOOPBACK, 0, "starttls"),
        ListenerConfig("imap-plain", "imap", LOOPBACK, 0, "none"),
        ListenerConfig("imap-trusted", "imap", LOOPBACK, 0, "none", trusted=True),
        ListenerConfig("imaps", "imap", LOOPBACK, 0, "implicit"),
    )
}


class RawClient(RawStreamClient):
    """A blocking IMAP client on a plain socket, for byte-exact checks."""

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

    def login(self, user: str = "alice") -> None:
        reply = self.cmd(b"L1", f'LOGIN {user} "{USERS[user]}"'.encode())
        assert reply[-1].startswith(b"L1 OK"), reply


class ImapHarness(StreamHarness):
    close_errors = (OSError, imaplib.IMAP4.error)

    def start(self, listener: str = "imap-trusted", ctx: ServerContext | None = None) -> int:
        _, port = self._start(start_imap_listener, LISTENERS[listener], ctx or self.ctx)
        return port

    def folder(self, user: str = "alice", name: str = "INBOX") -> Folder:
        return self.store().account(user).folder(name)

    def deliver(self, data: bytes, user: str = "alice", folder: str = "INBOX") -> str:
        return self.folder(user, folder).deliver(data)

    def client(self, port: int, login: bool = True, user: str = "alice") -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, port, timeout=TIMEOUT)
        self.track(client, client.shutdown)
        if login:
            typ, _ = client.login(user, USERS[user])
            assert typ == "OK"
        return client

    def client_ssl(self, port: int) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL(
            self.host, port, ssl_context=self.tls.client_context(), timeout=TIMEOUT
        )
        return self.track(client, client.shutdown)

    def imapclient(self, port: int, login: bool = True, user: str = "alice") -> Any:
        client = imapclient.IMAPClient(self.host, port, ssl=False, timeout=TIMEOUT)
        self.track(client, client.shutdown)
        if login:
            client.login(user, USERS[user])
        return client

    def raw(self, port: int, greeting: bool = True) -> RawClient:
        client = RawClient(self.host, port)
        self.track(client, client.close)
        if greeting:
            assert client.line().startswith(b"* OK ")
        return client


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
