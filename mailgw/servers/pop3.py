"""POP3 listener: the asyncio adapter around ``mailgw.protocols.pop3``.

Theory of operation
-------------------
One coroutine per connection feeds bytes into a ``Pop3Connection`` and acts
on its events; the core decides every reply and its order, the adapter only
does I/O:

* ``Authenticate`` -> the shared ``Authenticator`` (password hash in a worker
  thread, per-IP failure delay), then the exclusive maildrop lock (RFC 1939
  section 8; a second session gets ``-ERR [IN-USE]``, RFC 2449 section 8.1.2)
  and a scan of INBOX giving sizes and UIDLs.  UIDL is Dovecot's default
  ``%08Xu%08Xv`` (UID, UIDVALIDITY), stable across sessions and restarts.
* ``StartTls`` -> if any plaintext byte is buffered behind STLS, the
  connection is closed instead of upgraded (RFC 2595 section 4; the
  CVE-2011-0411 class).  Otherwise ``+OK`` then the TLS handshake.
* ``Retr``/``Top`` -> one worker-thread hop opens and reads the message
  (closing it too unless it is bigger than ``CHUNK``: those are streamed a
  chunk per hop, so memory stays bounded) and the reply goes out in one
  write.  The core byte-stuffs and sends stored bare LF as CRLF (RFC 1939
  section 3); STAT/LIST/RETR count them that way (RFC 1939 section 11),
  with the size the store gives (``mailgw.store.wire``).  A message that vanished gets ``-ERR``.
* ``Update`` (QUIT in TRANSACTION) -> the marked messages are expunged, and
  only then ``+OK`` (RFC 1939 section 6).  A dropped connection never
  deletes anything.
* Idle for ``limits.pop3_idle_timeout`` seconds (at least 10 minutes by
  default, RFC 1939 section 3) -> the connection is closed without UPDATE.
  The same limit bounds a client that stops reading a reply.
* ``Close`` (too many bad commands) -> its ``-ERR`` is sent, then the
  connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import BinaryIO

from mailgw.config.schema import ListenerConfig
from mailgw.errors import StoreError
from mailgw.protocols.pop3 import events as ev
from mailgw.protocols.pop3.connection import Pop3Connection
from mailgw.servers.context import ServerContext
from mailgw.servers.streams import StreamSession
from mailgw.store import Folder, MessageInfo
from mailgw.store.wire import wire_size

log = logging.getLogger("mailgw.pop3")

READ_SIZE = 65536
CHUNK = 1 << 20


def uidl(info: MessageInfo, uidvalidity: int) -> str:
    return f"{info.uid:08x}{uidvalidity:08x}"  # Dovecot prints %08X in lower case


def _read_message(folder: Folder, info: MessageInfo) -> bytes:
    with _open_message(folder, info) as f:
        return f.read()


def _load_message(folder: Folder, info: MessageInfo) -> tuple[bytes, BinaryIO | None]:
    """The first ``CHUNK`` bytes of a message and, if there is more, the open file.

    One worker-thread hop per RETR: a message up to ``CHUNK`` bytes (nearly
    all of them) is opened, read and closed here; a bigger one is streamed
    from the returned file, one chunk per hop, so memory stays bounded.
    """
    f = _open_message(folder, info)
    try:
        head = f.read(CHUNK)
        if len(head) < CHUNK:
            f.close()
            return head, None
    except BaseException:
        f.close()
        raise
    return head, f


def _open_message(folder: Folder, info: MessageInfo) -> BinaryIO:
    """Open a message of the maildrop (blocking); OSError if it is gone.

    Another client (IMAP) may have renamed the file since login (flag change,
    ``new/`` -> ``cur/``): the UID finds it again.
    """
    try:
        return open(info.path, "rb")
    except FileNotFoundError:
        for current in folder.messages():
            if current.uid == info.uid:
                return open(current.path, "rb")
        raise


def pop3_size(info: MessageInfo) -> int:
    """The size a POP3 client sees: every bare LF counted as CRLF (blocking)."""
    return wire_size(info)


def pop3_sizes(info: MessageInfo) -> tuple[int, bool]:
    """(POP3 size, the file has no bare LF) of a message (blocking; see mailgw.store.wire)."""
    size = wire_size(info)
    return size, size == info.size


class Pop3Session(StreamSession):
    log = log

    def __init__(
        self,
        listener: ListenerConfig,
        ctx: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(listener, ctx, reader, writer)
        self.user: str | None = None
        self.locked: str | None = None  # the maildrop lock this session holds
        self.folder: Folder | None = None
        self.messages: Sequence[MessageInfo] = ()
        self.crlf: Sequence[bool] = ()  # per message: no bare LF (CRLF size == file size)
        limits = ctx.config.limits
        self.idle_timeout = limits.pop3_idle_timeout
        tls_ok = ctx.tls is not None
        self.conn = Pop3Connection(
            hostname=ctx.config.hostname,
            tls_active=listener.tls == "implicit",
            stls_available=listener.tls == "starttls" and tls_ok,
            plaintext_auth_allowed=listener.trusted,
            max_line=limits.pop3_line_length,
            max_bad_commands=limits.bad_commands,
        )

    async def run(self) -> None:
        log.info("connect from %s on %s", self.peer_ip, self.listener.name)
        try:
            await self.send(self.conn.greeting())
            await self._loop()
        except (OSError, asyncio.IncompleteReadError) as exc:  # ssl.SSLError is an OSError
            log.info("connection from %s lost: %s", self.peer_ip, exc)
        except TimeoutError:
            log.info("client %s stopped reading: closing", self.peer_ip)
        finally:
            self._unlock()
            self.writer.close()
            log.info("disconnect %s user=%s", self.peer_ip, self.user or "-")

    def _unlock(self) -> None:
        if self.locked is not None:
            self.ctx.maildrop_locks.discard(self.locked)
            self.locked = None
            self.folder = None

    async def _loop(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is ev.NEED_DATA:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        data = await self.reader.read(READ_SIZE)
                except TimeoutError:
                    log.info("idle timeout for %s", self.peer_ip)
                    await self.send(b"-ERR Autologout; idle for too long\r\n")
                    return
                conn.receive_data(data)
            elif event is ev.PAUSED:  # the core waits for an answer we already gave: a bug
                raise RuntimeError("POP3 core paused with no pending event")
            elif isinstance(event, ev.SendData):
                await self.send(event.data)
            elif isinstance(event, ev.Authenticate):
                await self._authenticate(event)
            elif isinstance(event, ev.StartTls):
                if not await self._starttls():
                    return
            elif isinstance(event, ev.Retr):
                await self._retr(event.index)
            elif isinstance(event, ev.Top):
                await self._top(event.index, event.lines)
            elif isinstance(event, ev.Update):
                await self._update(event.deleted)
                return
            elif isinstance(event, ev.Quit):
                await self.send(conn.quit_ok())
                return
            elif isinstance(event, ev.ConnectionClosed):
                return
            elif isinstance(event, ev.Close):
                log.info("closing %s: %s", self.peer_ip, event.reason)
                await self.send(event.data)
                return
            else:  # pragma: no cover - a new event type without a branch
                raise RuntimeError(f"unhandled POP3 event {event!r}")

    async def _authenticate(self, event: ev.Authenticate) -> None:
        ctx = self.ctx
        user = await ctx.authenticator.authenticate(
            event.username, event.password, self.peer_ip, authzid=event.authzid
        )
        if user is None:
            log.info("auth failed for %r from %s", event.username, self.peer_ip)
            await self.send(self.conn.auth_failed())
            return
        if user in ctx.maildrop_locks:
            log.info("maildrop of %s in use; refused %s", user, self.peer_ip)
            await self.send(self.conn.auth_in_use())
            return
        ctx.maildrop_locks.add(user)
        self.locked = user  # released in run()'s finally, even if cancelled below
        try:
            folder, messages, sizes, crlf = await asyncio.to_thread(self._open_maildrop, user)
        except (StoreError, OSError) as exc:
            self._unlock()
            log.error("cannot open maildrop of %s: %s", user, exc)
            await self.send(self.conn.auth_failed("[SYS/TEMP] Cannot open the maildrop."))
            return
        self.user, self.folder, self.messages = user, folder, messages
        self.crlf = crlf
        log.info("login %s from %s (%d messages)", user, self.peer_ip, len(messages))
        drop = [
            (size, uidl(m, folder.uidvalidity)) for m, size in zip(messages, sizes, strict=True)
        ]
        await self.send(self.conn.auth_ok(drop))

    def _open_maildrop(self, user: str) -> tuple[Folder, list[MessageInfo], list[int], list[bool]]:
        account = self.ctx.store.account(user)
        account.ensure()
        folder = account.folder("INBOX")
        messages = folder.messages()
        pairs = [pop3_sizes(m) for m in messages]
        return folder, messages, [p[0] for p in pairs], [p[1] for p in pairs]

    async def _starttls(self) -> bool:
        conn = self.conn
        if not await self.upgrade_tls(conn.has_buffered_data(), conn.starttls_ok(), "STLS"):
            return False
        conn.tls_started()
        return True

    async def _retr(self, index: int) -> None:
        assert self.folder is not None
        info = self.messages[index]
        conn = self.conn
        try:
            head, f = await asyncio.to_thread(_load_message, self.folder, info)
        except (OSError, StoreError) as exc:  # expunged by another client (IMAP) meanwhile
            log.warning("RETR of %s for %s failed: %s", info.key, self.user, exc)
            await self.send(conn.retr_failed())
            return
        # the core byte-stuffs and turns bare LF into CRLF (the scan for one is
        # skipped when the sizes showed none); +OK has the size LIST announced
        start = conn.retr_start(crlf=self.crlf[index])
        if f is None:  # the whole message in hand: one write
            await self.send(b"".join((start, conn.body(head), conn.body_end())))
            return
        try:
            # a big one: one chunk at a time, memory stays bounded and drain()
            # applies backpressure
            await self.send(start)
            await self.send(conn.body(head))
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                await self.send(conn.body(chunk))
            await self.send(conn.body_end())
        finally:
            f.close()

    async def _top(self, index: int, lines: int) -> None:
        assert self.folder is not None
        info = self.messages[index]
        try:
            raw = await asyncio.to_thread(_read_message, self.folder, info)
        except (OSError, StoreError) as exc:
            log.warning("TOP of %s for %s failed: %s", info.key, self.user, exc)
            await self.send(self.conn.retr_failed())
            return
        await self.send(self.conn.top(raw, lines))  # the core converts bare LF too

    async def _update(self, deleted: Sequence[int]) -> None:
        folder = self.folder
        assert folder is not None
        uids = [self.messages[i].uid for i in deleted]
        token = object()
        self.ctx.active.add(token)
        try:
            if uids:
                await asyncio.to_thread(folder.expunge, uids)
        except (StoreError, OSError) as exc:
            log.error("UPDATE failed for %s: %s", self.user, exc)
            self._unlock()
            await self.send(self.conn.update_done(False, "Some deleted messages not removed"))
            return
        finally:
            self.ctx.active.discard(token)
        log.info("logout %s: %d deleted", self.user, len(uids))
        # the maildrop is free before the client hears +OK: it may log in again at once
        self._unlock()
        await self.send(self.conn.update_done(True, "Logging out."))


async def start_pop3_listener(listener: ListenerConfig, ctx: ServerContext) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        ctx.connections.add(transport)
        try:
            await Pop3Session(listener, ctx, reader, writer).run()
        finally:
            ctx.connections.discard(transport)

    ssl_ctx = None
    if listener.tls == "implicit":
        assert ctx.tls is not None
        ssl_ctx = ctx.tls.context
    return await asyncio.start_server(
        handle, listener.address, listener.port, ssl=ssl_ctx, limit=READ_SIZE * 2
    )
