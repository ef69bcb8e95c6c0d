"""``mailgw serve``: every listener on one event loop.

Theory of operation
-------------------
``MailServer.start()`` builds the shared ``ServerContext`` (store, users,
limiter, TLS) and asks each protocol adapter to listen.  All listeners share
one asyncio loop; blocking file work (Maildir, password hashing) runs in the
default thread pool.

Signals:

* SIGTERM / SIGINT: stop accepting, let transactions in flight finish (an
  SMTP DATA being fsynced, a POP3 UPDATE), then close every connection and
  return.  Nothing acknowledged is lost: ``250`` is only sent after fsync.
* SIGHUP: reload the user database and the certificate in place; open
  connections are not dropped.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from mailgw.config.schema import Config, ListenerConfig
from mailgw.errors import ConfigError, NetworkError
from mailgw.servers.context import ServerContext

log = logging.getLogger("mailgw.serve")

DRAIN_TIMEOUT = 30.0  # seconds SIGTERM waits for transactions in flight


@dataclass(frozen=True)
class Bound:
    listener: ListenerConfig
    host: str
    port: int


class MailServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.ctx = ServerContext.build(config)
        self._servers: list[asyncio.Server] = []
        self.bound: list[Bound] = []
        self._stop = asyncio.Event()

    async def _listen(self, listener: ListenerConfig) -> asyncio.Server:
        if listener.tls != "none" and self.ctx.tls is None:
            raise ConfigError("a TLS listener needs a tls: cert/key section", key=listener.name)
        if listener.protocol in ("smtp", "submission"):
            from mailgw.servers.smtp import start_smtp_listener

            return await start_smtp_listener(listener, self.ctx)
        if listener.protocol == "pop3":
            from mailgw.servers.pop3 import start_pop3_listener

            return await start_pop3_listener(listener, self.ctx)
        if listener.protocol == "imap":
            from mailgw.servers.imap import start_imap_listener

            return await start_imap_listener(listener, self.ctx)
        raise ConfigError(
            f"protocol {listener.protocol!r} is not served by this version of mailgw",
            key=f"listeners.{listener.name}.protocol",
        )

    async def start(self) -> list[Bound]:
        for listener in self.config.listeners:
            try:
                server = await self._listen(listener)
            except OSError as exc:
                await self.close()
                why = "address already in use" if exc.errno == errno.EADDRINUSE else str(exc)
                raise NetworkError(
                    f"cannot listen on {listener.address}:{listener.port} ({listener.name}): {why}"
                ) from exc
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self.bound.append(Bound(listener, host, port))
        return self.bound

    def reload(self) -> None:
        """SIGHUP: users and certificate, in place."""
        try:
            self.ctx.userdb.reload()
            if self.ctx.tls is not None:
                self.ctx.tls.reload()
        except Exception as exc:  # keep serving with what we had
            log.error("reload failed, keeping the previous users and certificate: %s", exc)
        else:
            log.info("reloaded users and certificate")

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_until_stopped(self) -> None:
        await self._stop.wait()
        await self.close()

    async def close(self, timeout: float = DRAIN_TIMEOUT) -> None:
        for server in self._servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.ctx.active and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.ctx.active:
            log.warning("closing with %d transactions still in flight", len(self.ctx.active))
        for transport in list(self.ctx.connections):
            transport.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def install_signal_handlers(server: MailServer) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    loop.add_signal_handler(signal.SIGHUP, server.reload)

    def remove() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    return remove


async def run(config: Config, on_ready: Callable[[list[Bound]], None] | None = None) -> None:
    server = MailServer(config)
    bound = await server.start()
    remove = install_signal_handlers(server)
    try:
        if on_ready is not None:
            on_ready(bound)
        log.info("serving %d listeners", len(bound))
        await server.serve_until_stopped()
    finally:
        remove()
    log.info("stopped")
