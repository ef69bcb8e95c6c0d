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

With a ``relay:`` section the queue runner (``mailgw.relay.runner``) runs on
the same loop: it starts after the listeners and, on SIGTERM, starts no new
delivery and finishes the SMTP transactions in flight (bounded by
``DRAIN_TIMEOUT``; an attempt cut short is simply retried later: the queue is
at-least-once, see the runner's docstring).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        # the relay queue (config.relay): the SMTP server enqueues into ``spool``
        # and calls ``runner.wake()``
        self.spool: Any = None
        self.runner: Any = None
        self._runner_stop = asyncio.Event()
        self._runner_task: asyncio.Task[None] | None = None

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
        self.prepare_relay()  # before the listeners: SMTP enqueues into self.spool
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
        self.start_relay()
        return self.bound

    def prepare_relay(self) -> None:
        """The spool and the queue runner, not yet running.

        The runner always runs: ``mailgw send`` and DSNs put local mail into the
        spool too.  SMTP may queue relayed mail only when ``config.relay`` is set;
        without it, relaying stays refused with ``451 4.3.2``.
        """
        from mailgw.relay.runner import QueueRunner
        from mailgw.relay.spool import Spool

        self.spool = Spool(self.config.queue_dir)
        self.spool.ensure_dirs()
        self.runner = QueueRunner(
            self.config, self.spool, store=self.ctx.store, userdb=self.ctx.userdb
        )
        if self.config.relay is not None:
            self.ctx.spool = self.spool
        self.ctx.relay_wake = self.runner.wake

    def start_relay(self) -> None:
        """Start the queue runner's passes on this loop."""
        if self.runner is None:
            self.prepare_relay()
        self._runner_task = asyncio.create_task(self.runner.run_forever(self._runner_stop))
        log.info("relay queue runner started on %s", self.config.queue_dir)

    async def stop_relay(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """No new deliveries; wait (bounded) for the ones in flight."""
        task, self._runner_task = self._runner_task, None
        if task is None:
            return
        self._runner_stop.set()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("relay deliveries still in flight after %.0f s: cancelled", timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif task.exception() is not None:
            log.error("relay queue runner failed: %r", task.exception())

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
        relay = asyncio.create_task(self.stop_relay(timeout))
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
        await relay


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
