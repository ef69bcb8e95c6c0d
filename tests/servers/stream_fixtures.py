"""What the IMAP and POP3 listener test helpers share.

* :class:`RawStreamClient`: a blocking client on a plain socket for byte-exact
  checks (``send``, ``line``, ``read_to_eof``, ``starttls``, ``close``); the
  protocol modules add their commands.
* :class:`StreamHarness`: the state of a listener fixture (loop thread, server
  context, TLS certificates, fake sleep), ``context(**limits)``, ``store()``
  and the clients to close at teardown (:meth:`StreamHarness.track`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from mailgw.config.schema import Config
from mailgw.servers.context import ServerContext
from mailgw.store import Store
from tests.servers.conftest import LOOPBACK, FakeSleep, LoopThread, TlsCerts, build_context

TIMEOUT = 30.0

T = TypeVar("T")


class RawStreamClient:
    """A blocking line-oriented client on a plain socket."""

    def __init__(
        self, host: str, port: int, *, source: str | None = None, rcvbuf: int | None = None
    ) -> None:
        self.host = host
        self.sock: socket.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        if rcvbuf is not None:  # before connect(), so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One reply line, CRLF included; AssertionError at EOF."""
        line = self.file.readline()
        assert line, "server closed the connection"
        return line

    def read_to_eof(self) -> bytes:
        """Everything the server sends until it closes (socket timeout: error)."""
        chunks = []
        while chunk := self.file.read1(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def starttls(self, context: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class StreamHarness:
    """Base of the ``imap`` and ``pop3`` fixtures' harnesses."""

    # what closing a client at teardown may raise
    close_errors: tuple[type[BaseException], ...] = (OSError,)

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

    def context(self, **limits: Any) -> ServerContext:
        return build_context(self.make_config(limits=limits), self.sleep)

    def store(self) -> Store:
        return Store(self.ctx.config.mail_root)

    def track(self, client: T, closer: Callable[[], Any]) -> T:
        """``client``, with ``closer`` run at teardown."""
        self._closers.append(closer)
        return client

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(*self.close_errors):
                closer()
