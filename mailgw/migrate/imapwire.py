"""An asyncio IMAP client connection for the migration (RFC 3501), on the sans-IO
:mod:`mailgw.protocols.imap.response` parser.

Theory of operation
-------------------
**Connect** (:meth:`ImapClient.connect`): TCP with a timeout, TLS first for
``imaps`` (implicit TLS, RFC 8314), the greeting (RFC 3501 7.1: ``OK``,
``PREAUTH``, or ``BYE`` -> :class:`ConnectFailed`), CAPABILITY, then STARTTLS
(6.2.1) whenever it is offered on a plain connection.  Before the upgrade the
parser must hold no buffered bytes (plaintext injection, CVE-2011-0411 class).
Certificates are verified by default (``TlsOptions.insecure`` turns that off,
``ca_file`` replaces the system store).  Without TLS the password goes out only
to a loopback address or with ``TlsOptions.allow_plaintext``.

**Login** (:meth:`ImapClient.login`): AUTHENTICATE PLAIN (RFC 4616) with the
initial response inline when SASL-IR (RFC 4959) is offered, else LOGIN with
quoted or literal arguments; LOGINDISABLED (6.2.3) forbids LOGIN.  Capabilities
are refreshed afterwards (from the tagged OK's code or a CAPABILITY command).
Passwords are never logged (only command verbs are).

**Commands** are lists of parts: ``bytes`` (already formatted) and
:class:`Literal` (bytes or a :class:`MessageBody`, streamed chunk by chunk).
A literal is sent non-synchronizing (``{n+}``, RFC 7888) when LITERAL+ is
offered (or LITERAL- for at most 4096 octets), else synchronizing: the client
waits for ``+`` (a tagged reply instead ends the command).  :meth:`send`
returns the tag without waiting, so several commands can be pipelined;
:meth:`wait` reads responses until that tag's completion, handing untagged
responses to a callback.  Completions of other tags read meanwhile are kept.

**Bodies.**  Literals larger than the parser's inline limit stream into a
:class:`BodyWriter`; FETCH items holding them get the finished
:class:`MessageBody` in place of the placeholder.

Errors: :class:`ConnectFailed` during connect, :class:`LoginFailed` for a
refused login, :class:`EndpointError` afterwards (lost connection, protocol
error, timeout).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import re
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mailgw.errors import ConnectFailed, EndpointError, LoginFailed
from mailgw.migrate.body import BodyWriter, MessageBody
from mailgw.migrate.model import TlsOptions, client_context
from mailgw.protocols.imap.response import (
    NEED_DATA,
    Capability,
    Continuation,
    Exists,
    Expunge,
    Fetch,
    LiteralData,
    LiteralEnd,
    LiteralStart,
    Response,
    ResponseError,
    ResponseParser,
    Status,
    Streamed,
    Tagged,
)

log = logging.getLogger(__name__)

READ_SIZE = 1 << 16
_ATOM_SAFE = re.compile(rb"[!#$&'+-Z^-z|~]+\Z")  # ATOM-CHAR minus specials (conservative)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Literal:
    """A literal command argument: raw bytes or a message body (streamed)."""

    data: bytes | MessageBody

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.size


Part = bytes | Literal


def astring(value: str | bytes) -> Part:
    """An ``astring`` argument: atom if safe, quoted if it can be, else a literal."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if data and _ATOM_SAFE.match(data):
        return data
    if all(0x01 <= c <= 0x7F and c not in (0x0D, 0x0A) for c in data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return Literal(data)


def quoted(value: str) -> bytes:
    """A quoted string of ASCII text (no CR/LF)."""
    data = value.encode("ascii")
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def format_internaldate(dt: datetime) -> str:
    """RFC 3501 9 ``date-time``: ``"01-Jan-1999 10:00:00 +0100"`` (without quotes)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    off = dt.utcoffset()
    minutes = int(off.total_seconds() // 60) if off is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def uid_set(uids: Iterable[int]) -> bytes:
    """Sorted, compressed sequence-set: ``1:3,7``."""
    out: list[str] = []
    run: list[int] = []
    for u in sorted(set(uids)):
        if run and u == run[1] + 1:
            run[1] = u
            continue
        if run:
            out.append(str(run[0]) if run[0] == run[1] else f"{run[0]}:{run[1]}")
        run = [u, u]
    if run:
        out.append(str(run[0]) if run[0] == run[1] else f"{run[0]}:{run[1]}")
    return ",".join(out).encode("ascii")


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class CommandFailed(EndpointError):
    """A command got NO or BAD; ``reply`` is the tagged response."""

    def __init__(self, message: str, reply: Tagged) -> None:
        super().__init__(message)
        self.reply = reply


Handler = Callable[[Response], None]


class ImapClient:
    """One IMAP client connection (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        implicit_tls: bool,
        tls: TlsOptions,
        timeout: float = 30.0,
        inline_literal_max: int = 1 << 16,
    ) -> None:
        self.host = host
        self.port = port
        self.implicit_tls = implicit_tls
        self.tls = tls
        self.timeout = timeout
        self.display = f"{'imaps' if implicit_tls else 'imap'}://{host}:{port}"
        self.capabilities: frozenset[str] = frozenset()
        self.secure = False
        self.preauth = False
        self.exists = 0  # EXISTS of the selected mailbox, kept current
        self.bye: str | None = None
        self._parser = ResponseParser(inline_literal_max=inline_literal_max)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tagno = 0
        self._backlog: deque[Response] = deque()
        self._done: dict[str, Tagged] = {}
        self._pending: list[str] = []  # tags sent and not yet completed, in order
        self._writers: list[BodyWriter] = []
        self._bodies: list[MessageBody] = []

    # --- connection ---------------------------------------------------------------

    def has(self, cap: str) -> bool:
        return cap.upper() in self.capabilities

    async def connect(self) -> None:
        """Connect, read the greeting, STARTTLS when offered.  Raises ConnectFailed."""
        ctx = client_context(self.tls) if self.implicit_tls else None
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=ctx if self.implicit_tls else None,
                    server_hostname=self.host if self.implicit_tls else None,
                    limit=READ_SIZE * 4,
                ),
                self.timeout,
            )
            self.secure = self.implicit_tls
            greeting = await self.read()
            if not isinstance(greeting, Status) or greeting.status not in ("OK", "PREAUTH"):
                text = greeting.text if isinstance(greeting, Status) else repr(greeting)
                raise ConnectFailed(f"{self.display}: the server refused the connection: {text}")
            self.preauth = greeting.status == "PREAUTH"
            if greeting.code is not None and greeting.code.name == "CAPABILITY":
                self.capabilities = _caps(greeting.code.value)
            else:
                await self.refresh_capabilities()
            if not self.secure and self.has("STARTTLS") and not self.preauth:
                await self._starttls(client_context(self.tls))
        except ConnectFailed:
            await self.abort()
            raise
        except (OSError, TimeoutError, EndpointError, ssl.SSLError) as exc:
            await self.abort()
            raise ConnectFailed(f"{self.display}: cannot connect: {_why(exc)}") from None

    async def _starttls(self, ctx: ssl.SSLContext) -> None:
        reply, _ = await self.run(b"STARTTLS")
        if reply.status != "OK":
            raise ConnectFailed(f"{self.display}: STARTTLS refused: {reply.text}")
        if self._parser.buffered or self._backlog:
            raise ConnectFailed(f"{self.display}: data injected before the TLS handshake")
        assert self._writer is not None
        await asyncio.wait_for(self._writer.start_tls(ctx, server_hostname=self.host), self.timeout)
        self.secure = True
        await self.refresh_capabilities()  # RFC 3501 6.2.1: capabilities may change

    async def refresh_capabilities(self) -> None:
        caps: list[frozenset[str]] = []
        await self.check(
            b"CAPABILITY", on=lambda r: caps.append(r.caps) if isinstance(r, Capability) else None
        )
        if caps:
            self.capabilities = caps[-1]

    async def login(self, user: str, password: str) -> None:
        """Authenticate (see the module docstring).  Raises LoginFailed / ConnectFailed."""
        if self.preauth:
            return
        if not self.secure and not (is_loopback(self.host) or self.tls.allow_plaintext):
            raise ConnectFailed(
                f"{self.display} offers no STARTTLS: refusing to send the password in "
                "plaintext (use imaps://, or allow plaintext explicitly)"
            )
        try:
            if self.has("AUTH=PLAIN"):
                reply = await self._auth_plain(user, password)
            elif self.has("LOGINDISABLED"):
                raise LoginFailed(
                    f"{self.display}: the server disables LOGIN (LOGINDISABLED) and offers "
                    "no AUTHENTICATE PLAIN"
                )
            else:
                reply, _ = await self.run(b"LOGIN", b" ", astring(user), b" ", astring(password))
        except EndpointError as exc:
            raise LoginFailed(f"{self.display}: login failed: {exc}") from None
        if reply.status != "OK":
            raise LoginFailed(f"{self.display}: login as {user!r} refused: {reply.text}")
        try:
            if reply.code is not None and reply.code.name == "CAPABILITY":
                self.capabilities = _caps(reply.code.value)
            else:
                await self.refresh_capabilities()
        except EndpointError as exc:
            raise LoginFailed(f"{self.display}: after login: {exc}") from None

    async def _auth_plain(self, user: str, password: str) -> Tagged:
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        if self.has("SASL-IR"):
            reply, _ = await self.run(b"AUTHENTICATE PLAIN ", token)
            return reply
        tag = self._next_tag()
        self._pending.append(tag)
        await self._write(tag.encode() + b" AUTHENTICATE PLAIN\r\n")
        if await self._await_continuation(tag):
            await self._write(token + b"\r\n")
        return await self.wait(tag)

    async def logout(self) -> None:
        """LOGOUT (best effort) and close."""
        if self._writer is not None and self.bye is None:
            with contextlib.suppress(EndpointError, OSError, TimeoutError):
                await asyncio.wait_for(self.run(b"LOGOUT"), 5)
        await self.abort()

    async def abort(self) -> None:
        """Close the connection now; discard partial bodies."""
        for w in self._writers:
            w.abort()
        self._writers.clear()
        for b in self._bodies:
            b.close()
        self._bodies.clear()
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    @property
    def connected(self) -> bool:
        return self._writer is not None

    # --- sending ----------------------------------------------------------------

    def _next_tag(self) -> str:
        self._tagno += 1
        return f"M{self._tagno}"

    async def _write(self, data: bytes) -> None:
        if self._writer is None:
            raise EndpointError(f"{self.display}: not connected")
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise EndpointError(f"{self.display}: connection lost: {_why(exc)}") from None

    async def _write_literal_data(self, lit: Literal) -> None:
        data = lit.data
        if isinstance(data, bytes):
            await self._write(data)
            return
        if data.in_memory:
            await self._write(data.read())
            return
        f = await asyncio.to_thread(data.open)
        try:
            while chunk := await asyncio.to_thread(f.read, READ_SIZE):
                await self._write(chunk)
        finally:
            f.close()

    def _nonsync(self, size: int) -> bool:
        return self.has("LITERAL+") or (self.has("LITERAL-") and size <= 4096)

    async def send(self, *parts: Part) -> str:
        """Send one command (tag added); returns the tag without waiting for the reply.
        With a synchronizing literal, waits for ``+``; a tagged reply instead is kept
        for :meth:`wait` and the rest of the command is not sent."""
        tag = self._next_tag()
        verb = parts[0].split(b" ", 1)[0] if parts and isinstance(parts[0], bytes) else b"?"
        log.debug("%s: %s %s", self.display, tag, verb.decode("ascii", "replace"))
        self._pending.append(tag)
        line = bytearray(tag.encode() + b" ")
        for part in parts:
            if isinstance(part, bytes):
                line += part
                continue
            if self._nonsync(part.size):
                line += b"{%d+}\r\n" % part.size
                await self._write(bytes(line))
                line.clear()
                await self._write_literal_data(part)
                continue
            line += b"{%d}\r\n" % part.size
            await self._write(bytes(line))
            line.clear()
            if not await self._await_continuation(tag):
                return tag
            await self._write_literal_data(part)
        line += b"\r\n"
        await self._write(bytes(line))
        return tag

    async def _await_continuation(self, tag: str) -> bool:
        """Wait for ``+`` (True) or this tag's completion (False, kept for wait());
        other responses read meanwhile are queued for :meth:`read`."""
        while True:
            resp = await self._read_wire()
            if isinstance(resp, Continuation):
                return True
            if isinstance(resp, Tagged) and resp.tag == tag:
                self._done[tag] = resp
                return False
            self._backlog.append(resp)

    # --- receiving --------------------------------------------------------------

    async def read(self) -> Response:
        """The next response (backlog first); streamed FETCH bodies filled in."""
        if self._backlog:
            return self._backlog.popleft()
        return await self._read_wire()

    async def _read_wire(self) -> Response:
        while True:
            try:
                event = self._parser.next_event()
            except ResponseError as exc:
                raise EndpointError(f"{self.display}: protocol error: {exc}") from None
            if event is NEED_DATA:
                await self._fill()
                continue
            if isinstance(event, LiteralStart):
                self._writers.append(BodyWriter())
            elif isinstance(event, LiteralData):
                self._writers[-1].write(event.data)
            elif isinstance(event, LiteralEnd):
                self._bodies.append(self._writers.pop().finish())
            else:
                return self._complete(event)

    def _complete(self, resp: Response) -> Response:
        bodies: list[MessageBody | None] = list(self._bodies)
        self._bodies = []
        if isinstance(resp, Fetch):
            for key, value in list(resp.items.items()):
                if isinstance(value, Streamed) and value.index < len(bodies):
                    resp.items[key] = bodies[value.index]
                    bodies[value.index] = None
        for b in bodies:
            if b is not None:
                b.close()
        if isinstance(resp, Exists):
            self.exists = resp.count
        elif isinstance(resp, Expunge):
            self.exists = max(0, self.exists - 1)
        elif isinstance(resp, Status) and resp.status == "BYE":
            self.bye = resp.text
        elif isinstance(resp, Tagged) and resp.tag in self._pending:
            self._pending.remove(resp.tag)
        return resp

    async def _fill(self) -> None:
        if self._reader is None:
            raise EndpointError(f"{self.display}: not connected")
        try:
            data = await asyncio.wait_for(self._reader.read(READ_SIZE), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise EndpointError(f"{self.display}: connection lost: {_why(exc)}") from None
        if not data:
            why = f" (server said BYE: {self.bye})" if self.bye else ""
            raise EndpointError(f"{self.display}: connection closed by the server{why}")
        self._parser.receive_data(data)

    async def wait(self, tag: str, on: Handler | None = None) -> Tagged:
        """Read until ``tag`` completes; other responses go to ``on`` (bodies in
        unhandled FETCHes are closed when ``on`` is None)."""
        while True:
            done = await self.step(tag, on)
            if done is not None:
                return done

    async def step(self, tag: str, on: Handler | None = None) -> Tagged | None:
        """Read one response: ``tag``'s completion is returned; another tag's is kept
        for its own :meth:`wait`; anything else goes to ``on`` (or is dropped)."""
        if tag in self._done:
            return self._done.pop(tag)
        resp = await self.read()
        if isinstance(resp, Tagged):
            if resp.tag == tag:
                return resp
            self._done[resp.tag] = resp
            return None
        if on is not None:
            on(resp)
        elif isinstance(resp, Fetch):
            close_bodies(resp)
        return None

    async def run(self, *parts: Part, on: Handler | None = None) -> tuple[Tagged, list[Response]]:
        """Send and wait; returns the completion and the untagged responses (unless ``on``)."""
        got: list[Response] = []
        tag = await self.send(*parts)
        reply = await self.wait(tag, on if on is not None else got.append)
        return reply, got

    async def check(self, *parts: Part, on: Handler | None = None) -> list[Response]:
        """:meth:`run`, raising :class:`CommandFailed` unless the reply is OK."""
        reply, got = await self.run(*parts, on=on)
        if reply.status != "OK":
            head = parts[0] if parts and isinstance(parts[0], bytes) else b"?"
            words = head.split(b" ")
            n = 2 if words[0].upper() == b"UID" and len(words) > 1 else 1
            verb = b" ".join(words[:n]).decode("ascii", "replace")
            why = f"{reply.status} {reply.text}"
            raise CommandFailed(f"{self.display}: {verb} failed: {why}", reply)
        return got

    async def drain(self) -> None:
        """Complete every command still outstanding (an abandoned pipeline)."""
        while self._pending:
            await self.wait(self._pending[0])
        self._done.clear()

    @property
    def pending(self) -> Sequence[str]:
        return tuple(self._pending)


def close_bodies(resp: Fetch) -> None:
    for value in resp.items.values():
        if isinstance(value, MessageBody):
            value.close()


def _caps(value: object) -> frozenset[str]:
    return value if isinstance(value, frozenset) else frozenset()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    return str(exc) or type(exc).__name__


__all__ = [
    "CommandFailed",
    "ImapClient",
    "Literal",
    "Part",
    "astring",
    "close_bodies",
    "format_internaldate",
    "is_loopback",
    "quoted",
    "uid_set",
]
