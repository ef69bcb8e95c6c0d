"""What the POP3 and IMAP sessions share: one asyncio stream connection.

Theory of operation
-------------------
:class:`StreamSession` holds the listener, the server context, the stream
pair and the peer's address, and does the two pieces of I/O both protocols
do the same way:

* :meth:`StreamSession.send` writes a reply and, when the transport buffers
  it, waits for the drain at most ``idle_timeout`` seconds: a client that
  stops reading is idle too (``TimeoutError``).
* :meth:`StreamSession.upgrade_tls` is the server side of STLS / STARTTLS.
  If any plaintext byte is buffered behind the command (in the protocol core
  or in the StreamReader), the caller must close the connection instead of
  upgrading (RFC 2595 section 4, RFC 3501 6.2.1; the CVE-2011-0411 class).
  Otherwise reading stops before the positive reply, so the ClientHello that
  follows it reaches the TLS layer and not the plaintext reader, then the
  handshake runs.
"""

from __future__ import annotations

import asyncio
import logging

from mailgw.config.schema import ListenerConfig
from mailgw.servers.context import ServerContext


class StreamSession:
    """One client connection; subclasses set ``idle_timeout`` and ``log``."""

    idle_timeout: float
    log: logging.Logger

    def __init__(
        self,
        listener: ListenerConfig,
        ctx: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.listener = listener
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer_ip: str = peer[0]

    async def send(self, data: bytes) -> None:
        if not data:
            return
        writer = self.writer
        writer.write(data)
        if writer.transport.get_write_buffer_size():
            # asyncio.timeout(), unlike wait_for(), creates no task per call
            async with asyncio.timeout(self.idle_timeout):
                await writer.drain()

    async def upgrade_tls(self, core_buffered: bool, ok_reply: bytes, command: str) -> bool:
        """Send ``ok_reply`` and run the TLS handshake; False when the caller must close.

        ``core_buffered``: the protocol core holds bytes received after the command.
        """
        if core_buffered or len(getattr(self.reader, "_buffer", b"")):
            self.log.warning("plaintext pipelined after %s from %s: closing", command, self.peer_ip)
            return False
        assert self.ctx.tls is not None
        transport = self.writer.transport
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        await self.send(ok_reply)
        try:
            await self.writer.start_tls(self.ctx.tls.context)
        except (TimeoutError, OSError) as exc:
            self.log.info("TLS handshake with %s failed: %s", self.peer_ip, exc)
            return False
        return True
