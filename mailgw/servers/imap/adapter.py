"""IMAP listener: the asyncio adapter around ``mailgw.protocols.imap``.

Theory of operation
-------------------
One coroutine per connection feeds bytes into an ``ImapConnection`` (the
sans-IO core: framing, literals, limits, state table) and acts on its
events; commands go to ``ImapSession.dispatch`` (``session.py``), which
runs one handler per command family.  The adapter does the I/O:

* Greeting ``* OK [CAPABILITY ...]`` (RFC 3501 7.1.1); implicit-TLS
  listeners are wrapped from the first byte, STARTTLS is ``auth.py``.
* ``ContinuationNeeded`` -> ``+`` (RFC 3501 7.5) or, for an APPEND literal
  into a missing mailbox, ``NO [TRYCREATE]`` before the data is sent;
  ``AppendData`` -> the append spool (a Maildir tmp/ file, never memory).
* ``RemoteProtocolError`` -> its BAD reply; any spooled APPEND is aborted.
  ``Bye`` (too many bad commands, an oversized LITERAL+) -> written, closed.
* Autologout (RFC 3501 5.4: at least 30 minutes; ``limits.imap_idle_timeout``)
  -> ``* BYE`` and close; the same limit bounds a client that stops reading.
* IDLE (RFC 2177): while idling, wait for the client's next bytes *or* a
  store change event / the poll interval (``changes.py``); on a wake-up the
  view is synchronised and its updates are written immediately.
* On any end of the connection, spooled APPEND tmp files are deleted and
  the change subscription is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mailgw.config.schema import ListenerConfig
from mailgw.protocols.errors import RemoteProtocolError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.protocols.imap.connection import (
    NEED_DATA,
    AppendData,
    Bye,
    ConnectionClosed,
    ContinuationNeeded,
)
from mailgw.servers.context import ServerContext
from mailgw.servers.imap import changes
from mailgw.servers.imap.session import ImapSession

log = logging.getLogger("mailgw.imap")

READ_SIZE = 65536


class ImapHandler:
    def __init__(self, sess: ImapSession) -> None:
        self.sess = sess
        self._read_task: asyncio.Task[bytes] | None = None

    async def run(self) -> None:
        sess = self.sess
        log.info("connect from %s on %s", sess.peer_ip, sess.listener.name)
        try:
            caps = "CAPABILITY " + " ".join(sess.capabilities())
            host = sess.ctx.config.hostname
            await sess.send(s.untagged("OK", f"{host} mailgw IMAP4rev1 ready", caps))
            await self._loop()
        except (OSError, asyncio.IncompleteReadError) as exc:  # ssl.SSLError is an OSError
            log.info("connection from %s lost: %s", sess.peer_ip, exc)
        except TimeoutError:
            log.info("client %s stopped reading: closing", sess.peer_ip)
        finally:
            if self._read_task is not None:
                self._read_task.cancel()
            sess.appends.abort()
            sess.close()
            sess.writer.close()
            log.info("disconnect %s user=%s", sess.peer_ip, sess.user or "-")

    async def _loop(self) -> None:
        sess = self.sess
        conn = sess.conn
        while not sess.closing:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                sess.appends.abort()
                sess.idle_tag = None
                await sess.send(exc.reply)
                continue
            if event is NEED_DATA:
                data = await self._read()
                if data is None:
                    return
                conn.receive_data(data)
            elif isinstance(event, ContinuationNeeded):
                await sess.send(await sess.appends.continuation(event))
            elif isinstance(event, AppendData):
                await sess.appends.data(event)
            elif isinstance(event, ConnectionClosed):
                return
            elif isinstance(event, Bye):
                log.info("closing %s: %s", sess.peer_ip, event.reason)
                await sess.send(event.data)
                return
            elif isinstance(event, c.Command):
                token = object()
                sess.ctx.active.add(token)  # SIGTERM lets the command finish
                try:
                    await sess.dispatch(event)
                finally:
                    sess.ctx.active.discard(token)
            else:  # pragma: no cover - a new event type without a branch
                raise RuntimeError(f"unhandled IMAP event {event!r}")

    async def _autologout(self) -> None:
        log.info("autologout of %s (user=%s)", self.sess.peer_ip, self.sess.user or "-")
        await self.sess.send(s.bye("Autologout; idle for too long"))

    async def _read(self) -> bytes | None:
        """The client's next bytes; None after an autologout."""
        sess = self.sess
        loop = asyncio.get_running_loop()
        deadline = loop.time() + sess.idle_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._autologout()
                return None
            if self._read_task is None:
                self._read_task = asyncio.ensure_future(sess.reader.read(READ_SIZE))
            read_task = self._read_task
            done: set[asyncio.Future[Any]]
            if sess.idle_tag is None:
                only: set[asyncio.Future[Any]] = {read_task}
                done, _ = await asyncio.wait(only, timeout=remaining)
            else:
                wake: asyncio.Future[Any] = asyncio.ensure_future(sess.wake.wait())
                timeout = min(remaining, changes.poll_interval(sess.ctx))
                waiting: set[asyncio.Future[Any]] = {read_task, wake}
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                wake.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await wake
            if read_task in done:
                self._read_task = None
                return read_task.result()
            if sess.idle_tag is not None and sess.selected is not None:
                await sess.sync()
                await sess.send(sess.updates(True))


async def start_imap_listener(listener: ListenerConfig, ctx: ServerContext) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        ctx.connections.add(transport)
        try:
            await ImapHandler(ImapSession(listener, ctx, reader, writer)).run()
        finally:
            ctx.connections.discard(transport)

    ssl_ctx = None
    if listener.tls == "implicit":
        assert ctx.tls is not None
        ssl_ctx = ctx.tls.context
    return await asyncio.start_server(
        handle, listener.address, listener.port, ssl=ssl_ctx, limit=READ_SIZE * 2
    )
