"""A POP3 mailbox as a migration source (one folder, INBOX).

Theory of operation (a small client on asyncio streams; not poplib, which
holds whole messages as lists of lines):

* Connect: implicit TLS for ``pop3s`` (RFC 8314), else the greeting, then
  ``CAPA`` (RFC 2449 5; a server without it gives ``-ERR`` and an empty list)
  and ``STLS`` when it is listed (RFC 2595 4), then ``CAPA`` again (the list
  may change after TLS, RFC 2595 4).  Certificates are verified unless
  :class:`~mailgw.migrate.model.TlsOptions` says ``insecure``; ``ca_file``
  replaces the system CAs.  Without TLS the password is sent only to a
  loopback peer or with ``allow_plaintext``; otherwise ``ConnectFailed``.
* Login: ``AUTH PLAIN`` with an initial response (RFC 5034, RFC 4616) when
  CAPA lists ``SASL ... PLAIN``, else ``USER``/``PASS`` (RFC 1939 7).  ``-ERR``
  -> :class:`~mailgw.errors.LoginFailed`.
* ``snapshot``: ``UIDL`` (RFC 1939 7) gives the keys and ``LIST`` (RFC 1939 5)
  the sizes.  A server without UIDL: every message is downloaded once, keyed
  ``sha256:<hash>`` (``:<n>`` added for the n-th copy, n >= 2) and kept in one
  spool file that ``fetch`` then reads from.
* ``fetch``: ``RETR`` (RFC 1939 5); with ``PIPELINING`` (RFC 2449 6.6) up to
  :data:`WINDOW` commands are in flight, else one at a time.  Multi-line
  responses end at ``.CRLF``; a leading ``.`` is removed (dot-unstuffing,
  RFC 1939 3).  Lines stream into a :class:`~mailgw.migrate.body.BodyWriter`;
  INTERNALDATE is :func:`~mailgw.migrate.headers.message_date` of the header.
* ``delete``: ``DELE`` for each key, then ``QUIT``: the deletions commit in the
  UPDATE state (RFC 1939 6), so the endpoint is closed afterwards.
* Errors after connect (lost connection, timeout, protocol) ->
  :class:`~mailgw.errors.EndpointError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import BinaryIO

from mailgw.errors import ConnectFailed, EndpointError, LoginFailed
from mailgw.migrate.body import BodyWriter, MessageBody
from mailgw.migrate.headers import message_date
from mailgw.migrate.model import (
    INBOX,
    FetchedMessage,
    FolderInfo,
    FolderName,
    FolderSnapshot,
    MessageMeta,
    TlsOptions,
    client_context,
)

TIMEOUT = 120.0  # seconds for any one server reply
WINDOW = 8  # RETR commands in flight with PIPELINING
LINE_LIMIT = 1 << 20


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class _Lost(Exception):
    """The connection broke or timed out (mapped by the caller)."""


class Pop3Source:
    """POP3 (RFC 1939) source; see the module doc."""

    separator = "/"

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        implicit_tls: bool,
        tls: TlsOptions,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.implicit_tls = implicit_tls
        self.tls = tls
        shown = f"[{host}]" if ":" in host else host
        self.display = f"{'pop3s' if implicit_tls else 'pop3'}://{user}@{shown}:{port}"
        self.capabilities: dict[str, list[str]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending = 0  # RETR replies not read yet (pipelining)
        self._numbers: dict[str, int] = {}  # key -> message number of this session
        self._spool: BinaryIO | None = None  # without UIDL: the downloaded messages
        self._spooled: dict[str, tuple[int, int]] = {}  # key -> (offset, size) in the spool

    # --- wire ---------------------------------------------------------------------

    async def _readline(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        try:
            while True:
                try:
                    parts.append(await asyncio.wait_for(self._reader.readuntil(b"\n"), TIMEOUT))
                    break
                except asyncio.LimitOverrunError as exc:  # a very long line: take a piece
                    parts.append(await self._reader.readexactly(exc.consumed))
        except asyncio.IncompleteReadError as exc:
            raise _Lost("connection closed by the server") from exc
        except (TimeoutError, OSError) as exc:
            raise _Lost(f"no reply ({exc.__class__.__name__})") from exc
        return b"".join(parts) if len(parts) > 1 else parts[0]

    def _send(self, line: str) -> None:
        assert self._writer is not None
        self._writer.write(line.encode("utf-8") + b"\r\n")

    async def _drain(self) -> None:
        assert self._writer is not None
        try:
            await asyncio.wait_for(self._writer.drain(), TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise _Lost(f"cannot send ({exc.__class__.__name__})") from exc

    async def _status(self) -> tuple[bool, str]:
        line = (await self._readline()).rstrip(b"\r\n").decode("utf-8", "replace")
        if line.startswith("+OK"):
            return True, line[3:].strip()
        if line.startswith("-ERR"):
            return False, line[4:].strip()
        if line.startswith("+"):  # SASL continuation (RFC 5034 4)
            return True, line
        raise _Lost(f"unexpected reply {line[:80]!r}")

    async def _command(self, line: str) -> tuple[bool, str]:
        await self._skip_pending()
        self._send(line)
        await self._drain()
        return await self._status()

    async def _multiline(self) -> AsyncIterator[bytes]:
        """The lines of a multi-line response, dot-unstuffed, up to the final ``.``."""
        while True:
            line = await self._readline()
            if line[:1] == b".":
                if line in (b".\r\n", b".\n"):
                    return
                line = line[1:]
            yield line

    async def _skip_pending(self) -> None:
        """Read the replies to RETRs still in flight (a consumer that stopped early)."""
        while self._pending > 0:
            self._pending -= 1
            ok, _ = await self._status()
            if ok:
                async for _ in self._multiline():
                    pass

    async def _lines(self, command: str) -> list[str] | None:
        ok, _ = await self._command(command)
        if not ok:
            return None
        return [raw.decode("utf-8", "replace").strip() async for raw in self._multiline()]

    # --- Endpoint -------------------------------------------------------------------

    async def connect(self) -> None:
        ctx = client_context(self.tls)
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=ctx if self.implicit_tls else None,
                    server_hostname=self.host if self.implicit_tls else None,
                    limit=LINE_LIMIT,
                ),
                TIMEOUT,
            )
        except ssl.SSLError as exc:
            raise ConnectFailed(f"{self.display}: TLS failed: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{self.display}: cannot connect: {exc}") from exc
        try:
            await self._start(ctx)
        except _Lost as exc:
            await self._abort()
            raise ConnectFailed(f"{self.display}: {exc}") from exc
        except BaseException:
            await self._abort()
            raise

    async def _start(self, ctx: ssl.SSLContext) -> None:
        ok, text = await self._status()
        if not ok:
            raise ConnectFailed(f"{self.display}: server refused the session: {text}")
        await self._capa()
        secure = self.implicit_tls
        if not secure and "STLS" in self.capabilities:
            ok, text = await self._command("STLS")
            if not ok:
                raise ConnectFailed(f"{self.display}: STLS refused: {text}")
            assert self._writer is not None
            try:
                await asyncio.wait_for(
                    self._writer.start_tls(ctx, server_hostname=self.host), TIMEOUT
                )
            except (ssl.SSLError, OSError, TimeoutError) as exc:
                raise ConnectFailed(f"{self.display}: TLS failed: {exc}") from exc
            secure = True
            await self._capa()
        if not secure:
            assert self._writer is not None
            peer = self._writer.get_extra_info("peername")
            address = peer[0] if isinstance(peer, tuple) and peer else ""
            if not (is_loopback(address) or self.tls.allow_plaintext):
                raise ConnectFailed(
                    f"{self.display}: the server offers no STLS; refusing to send the password "
                    "in plaintext (use pop3s:// or allow plaintext explicitly)"
                )
        await self._login()

    async def _capa(self) -> None:
        lines = await self._lines("CAPA")
        caps: dict[str, list[str]] = {}
        for line in lines or []:
            words = line.split()
            if words:
                caps[words[0].upper()] = [w.upper() for w in words[1:]]
        self.capabilities = caps

    async def _login(self) -> None:
        if "PLAIN" in self.capabilities.get("SASL", []):
            token = f"\0{self.user}\0{self._password}".encode()
            ok, text = await self._command("AUTH PLAIN " + base64.b64encode(token).decode())
            if ok and text.startswith("+"):  # no initial response taken: send it now
                ok, text = await self._command(base64.b64encode(token).decode())
        else:
            ok, text = await self._command(f"USER {self.user}")
            if ok:
                ok, text = await self._command(f"PASS {self._password}")
        if not ok:
            raise LoginFailed(f"{self.display}: login refused: {text}")

    async def _abort(self) -> None:
        self._pending = 0
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(_Lost, OSError):
                await self._command("QUIT")
        await self._abort()
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._spooled.clear()

    def clone(self) -> Pop3Source:
        return Pop3Source(
            self.host,
            self.port,
            self.user,
            self._password,
            implicit_tls=self.implicit_tls,
            tls=self.tls,
        )

    async def list_folders(self) -> list[FolderInfo]:
        return [FolderInfo(INBOX)]

    # --- Source ---------------------------------------------------------------------

    def _check(self, folder: FolderName) -> None:
        if folder != INBOX:
            raise EndpointError(f"{self.display}: POP3 has only INBOX, not {'/'.join(folder)!r}")
        if self._writer is None:
            raise EndpointError(f"{self.display}: not connected")

    async def snapshot(self, folder: FolderName) -> FolderSnapshot:
        self._check(folder)
        try:
            return await self._snapshot()
        except _Lost as exc:
            await self._abort()
            raise EndpointError(f"{self.display}: {exc}") from exc

    async def _snapshot(self) -> FolderSnapshot:
        listing = await self._lines("LIST")
        if listing is None:
            raise EndpointError(f"{self.display}: LIST refused")
        sizes: dict[int, int] = {}
        for line in listing:
            words = line.split()
            if len(words) >= 2 and words[0].isdigit() and words[1].isdigit():
                sizes[int(words[0])] = int(words[1])
        uidl = await self._lines("UIDL")
        if uidl is None:
            return await self._snapshot_by_hash(sizes)
        self._numbers = {}
        metas: list[MessageMeta] = []
        for line in uidl:
            words = line.split(None, 1)
            if len(words) == 2 and words[0].isdigit() and int(words[0]) in sizes:
                n, key = int(words[0]), words[1].strip()
                self._numbers[key] = n
                metas.append(MessageMeta(key=key, size=sizes[n]))
        return FolderSnapshot(0, metas)

    async def _snapshot_by_hash(self, sizes: dict[int, int]) -> FolderSnapshot:
        """No UIDL: download everything once into a spool; keys are content hashes."""
        if self._spool is not None:
            self._spool.close()
        self._spool = tempfile.TemporaryFile(prefix="mailgw-pop3-")  # noqa: SIM115
        self._spooled = {}
        self._numbers = {}
        metas: list[MessageMeta] = []
        seen: dict[str, int] = {}
        numbers = sorted(sizes)
        async for n, body in self._retrieve(numbers):
            seen[body.sha256] = seen.get(body.sha256, 0) + 1
            key = f"sha256:{body.sha256}"
            if seen[body.sha256] > 1:
                key += f":{seen[body.sha256]}"
            offset = self._spool.seek(0, 2)
            for chunk in body.chunks():
                self._spool.write(chunk)
            self._spooled[key] = (offset, body.size)
            self._numbers[key] = n
            date = message_date(body.header_bytes())
            metas.append(MessageMeta(key=key, size=sizes[n], internaldate=date))
            body.close()
        self._spool.flush()
        return FolderSnapshot(0, metas)

    async def _retrieve(self, numbers: Sequence[int]) -> AsyncIterator[tuple[int, MessageBody]]:
        """RETR each number (pipelined when offered); messages the server refuses are
        left out."""
        await self._skip_pending()
        window = WINDOW if "PIPELINING" in self.capabilities else 1
        sent = 0
        for i, n in enumerate(numbers):
            while sent < len(numbers) and sent < i + window:
                self._send(f"RETR {numbers[sent]}")
                sent += 1
                self._pending += 1
            await self._drain()
            self._pending -= 1
            ok, _ = await self._status()
            if not ok:
                continue
            writer = BodyWriter()
            try:
                async for line in self._multiline():
                    writer.write(line)
            except BaseException:
                writer.abort()
                raise
            yield n, writer.finish()

    async def fetch(
        self, folder: FolderName, metas: Sequence[MessageMeta]
    ) -> AsyncIterator[FetchedMessage]:
        self._check(folder)
        by_key = {m.key: m for m in metas}
        if not self._numbers:  # no snapshot on this connection yet: message numbers needed
            await self.snapshot(folder)
        if self._spool is not None:
            for meta in metas:
                body = self._from_spool(meta.key)
                if body is not None:
                    date = message_date(body.header_bytes())
                    yield FetchedMessage(replace(meta, internaldate=date), body)
            return
        keys = [m.key for m in metas if m.key in self._numbers]
        by_number = {self._numbers[k]: by_key[k] for k in keys}
        try:
            async for n, body in self._retrieve([self._numbers[k] for k in keys]):
                meta = by_number[n]
                yield FetchedMessage(
                    replace(meta, internaldate=message_date(body.header_bytes())), body
                )
        except _Lost as exc:
            await self._abort()
            raise EndpointError(f"{self.display}: {exc}") from exc

    def _from_spool(self, key: str) -> MessageBody | None:
        where = self._spooled.get(key)
        if where is None or self._spool is None:
            return None
        offset, size = where
        writer = BodyWriter(canonicalize=False)
        self._spool.seek(offset)
        left = size
        while left > 0:
            chunk = self._spool.read(min(left, 1 << 16))
            if not chunk:
                break
            writer.write(chunk)
            left -= len(chunk)
        return writer.finish()

    async def delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        self._check(folder)
        try:
            for key in keys:
                n = self._numbers.get(key)
                if n is None:
                    continue
                ok, text = await self._command(f"DELE {n}")
                if not ok:
                    raise EndpointError(f"{self.display}: DELE {n} refused: {text}")
            ok, text = await self._command("QUIT")  # RFC 1939 6: UPDATE state commits
            if not ok:
                raise EndpointError(f"{self.display}: the server did not remove messages: {text}")
        except _Lost as exc:
            raise EndpointError(f"{self.display}: {exc}") from exc
        finally:
            await self._abort()
            self._numbers = {}


__all__ = ["Pop3Source", "is_loopback"]
