"""The SMTP delivery client of the relay: one connection, several messages.

Theory of operation
-------------------
:func:`deliver` takes the ordered targets of a route, the route and a batch of
queued messages.  It sends at most ``route.max_per_connection`` messages per
connection and opens a new connection for the rest.

Connection (RFC 5321 section 3.1, 4.2): the targets are tried in order until
one answers with a 220 greeting, completes EHLO (HELO if EHLO is refused,
section 4.1.4), TLS and authentication.  A target that cannot be reached,
greets with 4xx/5xx, does not offer STARTTLS while TLS is required ("TLS
required but not offered"), fails the TLS handshake or the certificate check,
or answers AUTH with a 4xx is skipped; when none is left :class:`TargetsUnavailable`
is raised (temporary for every recipient).  An AUTH rejected with 5xx (or a
server without AUTH PLAIN/LOGIN, or an unreadable password) raises
:class:`RouteAuthError` at once: the runner holds the route instead of
bouncing.  The password is read when needed and never logged.

TLS: ``implicit`` wraps the socket from the first byte (RFC 8314 section 3.3);
``starttls`` upgrades after EHLO (RFC 3207 section 4) when offered and
discards what was learnt before (section 4.2: EHLO again).  Certificates are
verified against the system CAs or ``ca_file``, with the host name of the
target (MX exchange or smarthost name), unless ``tls_verify`` is off.

A message (RFC 5321 section 3.3): ``MAIL FROM`` with ``SIZE=`` (RFC 1870)
when offered, ``BODY=8BITMIME`` (RFC 6152) when the data has 8-bit bytes and
it is offered, ``SMTPUTF8`` (RFC 6531 section 3.4) when an envelope address
has a non-ASCII local part (a non-ASCII domain alone is sent as its A-label);
without the extension such a message fails permanently with 5.6.7, and a
message above the server's SIZE fails with 5.3.4 before it is sent.  One
``RCPT TO`` per recipient, each reply classified: 2xx ok, 4xx temporary,
5xx permanent (section 4.2.1).  Then ``DATA`` and the message with canonical
CRLF line endings (section 2.3.8: bare CR and LF are converted, never sent)
and dot-stuffing (section 4.5.2), through ``mailgw.protocols.smtp.data``.
The reply to the end of data decides for every recipient accepted at RCPT.

PIPELINING (RFC 2920): when offered, MAIL, every RCPT and DATA go in one
write (with the RSET of a failed transaction before them), so a message
costs two round trips: envelope, content.  The content is not sent together
with the next envelope: see the note in ``_Session.send``.  After a transaction
that ended before its content was sent (MAIL refused, no recipient
accepted) an ``RSET`` clears the state (section 4.1.1.5); after an end of
data the transaction is already over (section 4.1.1.4), so no RSET is needed.

A connection lost or timed out (the timeouts of section 4.5.3.2) makes every
recipient without a final reply temporary.  A message whose end-of-data
reply was lost may have been delivered: the queue then sends it again (the
at-least-once rule).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailgw.errors import MailgwError
from mailgw.protocols.smtp.address import AddressError, split_address
from mailgw.protocols.smtp.data import dot_stuff
from mailgw.relay.routing import Route, Target

log = logging.getLogger("mailgw.relay.client")

Status = Literal["ok", "temp", "perm"]

MAX_REPLY_LINE = 65536


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait; RFC 5321 section 4.5.3.2 minimums by default."""

    connect: float = 30.0
    greeting: float = 300.0
    command: float = 300.0  # EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET
    data_init: float = 120.0  # the 354
    data_end: float = 600.0  # the reply to the final dot
    quit: float = 10.0


DEFAULT_TIMEOUTS = Timeouts()


class RouteAuthError(MailgwError):
    """The route's credentials were refused (or cannot be used): hold the route."""

    def __init__(self, message: str, *, route: str, reply: str) -> None:
        super().__init__(message)
        self.route = route
        self.reply = reply


class TargetsUnavailable(MailgwError):
    """No target could be used: every recipient is temporarily deferred."""

    def __init__(self, reply: str, *, errors: Sequence[str] = ()) -> None:
        super().__init__(reply)
        self.reply = reply
        self.errors = tuple(errors)


@dataclass
class OutMessage:
    """One queued message to send: bytes in memory or the spool file."""

    id: str
    sender: str  # "" for the null sender
    recipients: list[str]
    data: bytes | None = None
    data_path: Path | None = None
    smtputf8: bool = False  # the message was received with SMTPUTF8 (RFC 6531)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.data_path is None:
            raise ValueError(f"message {self.id} has neither data nor data_path")
        return self.data_path.read_bytes()


@dataclass(frozen=True)
class RecipientResult:
    """The fate of one recipient in this attempt; ``reply`` is the server's reply
    (code and text on one line) or ours for local failures."""

    address: str
    status: Status
    reply: str
    remote: str | None = None  # the target that gave the reply (for DSN Remote-MTA)


@dataclass
class DeliveryResult:
    message_id: str
    recipients: list[RecipientResult] = field(default_factory=list)

    @property
    def all_ok(self) -> bool:
        return all(r.status == "ok" for r in self.recipients)


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """``"250 2.0.0 Ok"``; a multi-line reply joined with spaces."""
        return f"{self.code} " + " ".join(line for line in self.lines if line)

    @property
    def status(self) -> Status:
        return status_of(self.code)


def status_of(code: int) -> Status:
    """RFC 5321 section 4.2.1: 2yz/3yz positive, 4yz transient, 5yz permanent."""
    if 200 <= code < 400:
        return "ok"
    if 400 <= code < 500:
        return "temp"
    return "perm"


class _TargetFailed(Exception):
    """This target is unusable now; try the next one."""


class _ConnectionLost(Exception):
    pass


class _Connection:
    """One SMTP session over asyncio streams (client side)."""

    def __init__(self, target: Target, route: Route, timeouts: Timeouts) -> None:
        self.target = target
        self.route = route
        self.timeouts = timeouts
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.extensions: dict[str, str] = {}
        self.tls = False
        self.broken = False  # no QUIT: the session is out of step or the link is gone
        self._buffer: list[bytes] = []

    # --- low level ----------------------------------------------------------------

    def queue(self, data: bytes) -> None:
        self._buffer.append(data)

    async def flush(self) -> None:
        if not self._buffer:
            return
        assert self.writer is not None
        data = b"".join(self._buffer)
        self._buffer.clear()
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeouts.data_end)
        except (TimeoutError, OSError) as exc:
            raise _ConnectionLost(f"write failed: {_describe(exc)}") from exc

    async def read_reply(self, timeout: float) -> Reply:
        assert self.reader is not None
        lines: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.reader.readline()
                    if not raw.endswith(b"\n"):
                        raise _ConnectionLost("connection closed by the server")
                    line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                    if len(line) < 3 or not line[:3].isdigit():
                        raise _ConnectionLost(f"malformed reply {line[:80]!r}")
                    lines.append(line[4:])
                    if len(line) == 3 or line[3] != "-":
                        return Reply(int(line[:3]), tuple(lines))
        except TimeoutError as exc:
            raise _ConnectionLost(f"timeout after {timeout:g} s waiting for a reply") from exc
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            raise _ConnectionLost(f"read failed: {_describe(exc)}") from exc

    async def command(self, line: str, timeout: float | None = None) -> Reply:
        self.queue(line.encode("utf-8") + b"\r\n")
        await self.flush()
        return await self.read_reply(timeout or self.timeouts.command)

    # --- session setup ------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        route = self.route
        ctx = ssl.create_default_context(
            cafile=str(route.ca_file) if route.ca_file is not None else None
        )
        if not route.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def open(self, helo_name: str) -> None:
        """Connect, greeting, EHLO, TLS, AUTH; raises _TargetFailed or RouteAuthError."""
        route, target = self.route, self.target
        implicit = route.tls == "implicit"
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=self._ssl_context() if implicit else None,
                    server_hostname=target.server_name if implicit else None,
                    limit=MAX_REPLY_LINE,
                ),
                self.timeouts.connect,
            )
        except ssl.SSLError as exc:
            raise _TargetFailed(f"TLS handshake with {target} failed: {_describe(exc)}") from exc
        except (TimeoutError, OSError) as exc:
            raise _TargetFailed(f"connect to {target} failed: {_describe(exc)}") from exc
        self.tls = implicit
        greeting = await self._expect(self.read_reply(self.timeouts.greeting), "greeting")
        if greeting.code != 220:
            raise _TargetFailed(f"{target} greeted with {greeting.text}")
        await self._ehlo(helo_name)
        if route.tls == "starttls" and not self.tls:
            if "STARTTLS" in self.extensions:
                await self._starttls(helo_name)
            elif route.tls_required:
                raise _TargetFailed(f"TLS required but not offered by {target}")
        if route.username:
            await self._auth()

    async def _expect(self, awaitable: Awaitable[Reply], what: str) -> Reply:
        try:
            return await awaitable
        except _ConnectionLost as exc:
            self.broken = True
            raise _TargetFailed(f"{self.target}: {what}: {exc}") from exc

    async def _ehlo(self, helo_name: str) -> None:
        reply = await self._expect(self.command(f"EHLO {helo_name}"), "EHLO")
        if reply.code == 250:
            self.extensions = {}
            for line in reply.lines[1:]:
                keyword, _, params = line.partition(" ")
                self.extensions[keyword.upper()] = params.strip()
            return
        if reply.code < 500:  # 421 and other temporary refusals: this server, not EHLO
            raise _TargetFailed(f"{self.target} refused EHLO: {reply.text}")
        # RFC 5321 section 4.1.4 / 3.2: an old server refuses EHLO; HELO has no extensions
        reply = await self._expect(self.command(f"HELO {helo_name}"), "HELO")
        if reply.code != 250:
            raise _TargetFailed(f"{self.target} refused EHLO/HELO: {reply.text}")
        self.extensions = {}

    async def _starttls(self, helo_name: str) -> None:
        reply = await self._expect(self.command("STARTTLS"), "STARTTLS")
        if reply.code != 220:
            if self.route.tls_required:
                raise _TargetFailed(f"{self.target} refused STARTTLS: {reply.text}")
            return
        assert self.writer is not None
        try:
            await asyncio.wait_for(
                self.writer.start_tls(self._ssl_context(), server_hostname=self.target.server_name),
                self.timeouts.command,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self.broken = True
            raise _TargetFailed(
                f"TLS handshake with {self.target} failed: {_describe(exc)}"
            ) from exc
        self.tls = True
        await self._ehlo(helo_name)  # RFC 3207 section 4.2

    def _password(self) -> str:
        route = self.route
        try:
            if route.password_file is not None:
                return route.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            if route.password_env is not None:
                value = os.environ.get(route.password_env)
                if value is None:
                    raise RouteAuthError(
                        f"route {route.name}: environment variable {route.password_env} is not set",
                        route=route.name,
                        reply="454 4.7.0 no password for the route",
                    )
                return value
        except OSError as exc:
            raise RouteAuthError(
                f"route {route.name}: cannot read password file {route.password_file}: "
                f"{exc.strerror}",
                route=route.name,
                reply="454 4.7.0 no password for the route",
            ) from exc
        raise RouteAuthError(
            f"route {route.name}: username set but no password_file or password_env",
            route=route.name,
            reply="454 4.7.0 no password for the route",
        )

    async def _auth(self) -> None:
        """AUTH PLAIN (RFC 4616) or LOGIN, as RFC 4954 section 4 describes."""
        route = self.route
        username = route.username or ""
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" not in mechanisms and "LOGIN" not in mechanisms:
            raise RouteAuthError(
                f"route {route.name}: {self.target} offers no AUTH PLAIN or LOGIN "
                f"(offered: {' '.join(mechanisms) or 'none'}"
                f"{'' if self.tls else '; not over TLS'})",
                route=route.name,
                reply="530 5.7.0 no usable authentication mechanism",
            )
        password = self._password()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
            reply = await self._expect(self.command(f"AUTH PLAIN {token}"), "AUTH")
        else:
            reply = await self._expect(self.command("AUTH LOGIN"), "AUTH")
            for secret in (username, password):
                if reply.code != 334:
                    break
                reply = await self._expect(
                    self.command(base64.b64encode(secret.encode()).decode("ascii")), "AUTH"
                )
        if reply.code == 235:
            return
        if 400 <= reply.code < 500:
            raise _TargetFailed(f"{self.target} AUTH failed temporarily: {reply.text}")
        raise RouteAuthError(
            f"route {route.name}: authentication as {username} refused by {self.target}: "
            f"{reply.text}",
            route=route.name,
            reply=reply.text,
        )

    async def close(self) -> None:
        writer = self.writer
        if writer is None:
            return
        try:
            if not (self.broken or writer.is_closing()):
                self.queue(b"QUIT\r\n")
                await self.flush()
                await self.read_reply(self.timeouts.quit)
        except (_ConnectionLost, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), self.timeouts.quit)
            self.writer = None


# --- per message -------------------------------------------------------------------


def _xtext_free(addr: str) -> str:
    return "<>" if addr in ("", "<>") else f"<{addr}>"


def _ascii_domain(addr: str) -> tuple[str, bool]:
    """(address with an A-label domain, needs SMTPUTF8)."""
    if addr.isascii() or addr in ("", "<>"):
        return addr, False
    try:
        local, domain = split_address(addr)
    except AddressError:
        return addr, True
    if not local.isascii():
        return addr, True
    return f"{local}@{domain}" if domain else local, False


@dataclass
class _Prepared:
    msg: OutMessage
    wire: bytes  # dot-stuffed data with terminator
    mail: str
    rcpts: list[tuple[str, str]]  # (original address, as sent)


def _prepare(msg: OutMessage, ext: dict[str, str]) -> _Prepared | str:
    """The commands for ``msg`` on a server with extensions ``ext``, or the
    reply text of a permanent local failure."""
    data = msg.read()
    wire = dot_stuff(data)
    sender, utf8 = _ascii_domain(msg.sender)
    rcpts: list[tuple[str, str]] = []
    for r in msg.recipients:
        sent, need = _ascii_domain(r)
        utf8 = utf8 or need
        rcpts.append((r, sent))
    utf8 = utf8 or msg.smtputf8
    params: list[str] = []
    size = len(wire) - 3  # RFC 1870: the message size, without the terminator
    if "SIZE" in ext:
        limit = ext["SIZE"].split()[0] if ext["SIZE"] else "0"
        if limit.isdigit() and int(limit) > 0 and size > int(limit):
            return f"552 5.3.4 message size {size} exceeds the server's limit {limit}"
        params.append(f"SIZE={size}")
    if "8BITMIME" in ext and not data.isascii():
        params.append("BODY=8BITMIME")
    if utf8:
        if "SMTPUTF8" not in ext:
            return "553 5.6.7 the server does not support SMTPUTF8, needed by this message"
        params.append("SMTPUTF8")
    mail = "MAIL FROM:" + _xtext_free(sender) + "".join(" " + p for p in params)
    return _Prepared(msg, wire, mail, rcpts)


class _Session:
    """Sends messages over one open connection, pipelined when offered."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.pipelining = "PIPELINING" in conn.extensions
        self.remote = str(conn.target)
        # content sent but its end-of-data reply not read yet (pipelining)
        self.pending: tuple[_Prepared, list[str], DeliveryResult] | None = None
        self.need_rset = False

    def _fill(self, result: DeliveryResult, addrs: list[str], status: Status, text: str) -> None:
        for a in addrs:
            result.recipients.append(RecipientResult(a, status, text, self.remote))

    async def _finish_pending(self) -> None:
        """Read the end-of-data reply of the message sent last (its content is flushed)."""
        if self.pending is None:
            return
        _, accepted, result = self.pending
        self.pending = None
        try:
            reply = await self.conn.read_reply(self.conn.timeouts.data_end)
        except _ConnectionLost as exc:
            self._fill(result, accepted, "temp", _lost(exc, "end of data"))
            raise
        self._fill(result, accepted, reply.status, reply.text)

    async def send(self, msg: OutMessage, result: DeliveryResult) -> None:
        """Send one message, filling ``result``; a pending message's reply is read too.

        Raises _ConnectionLost (``result`` then holds what was answered; the
        caller makes the rest temporary).
        """
        conn = self.conn
        prepared = _prepare(msg, conn.extensions)
        if isinstance(prepared, str):
            self._fill(result, list(msg.recipients), "perm", prepared)
            return
        if self.need_rset:
            conn.queue(b"RSET\r\n")
        cmds = [prepared.mail] + [f"RCPT TO:<{sent}>" for _, sent in prepared.rcpts] + ["DATA"]
        if self.pipelining:
            for c in cmds:
                conn.queue(c.encode("utf-8") + b"\r\n")
            await conn.flush()  # the previous content (if any) goes first, in one write
            await self._finish_pending()
            if self.need_rset:
                await conn.read_reply(conn.timeouts.command)  # RSET's reply does not matter
                self.need_rset = False
            mail = await conn.read_reply(conn.timeouts.command)
            rcpt_replies = [await conn.read_reply(conn.timeouts.command) for _ in prepared.rcpts]
            data = await conn.read_reply(conn.timeouts.data_init)
        else:
            await conn.flush()
            await self._finish_pending()
            if self.need_rset:
                await conn.read_reply(conn.timeouts.command)
                self.need_rset = False
            mail = await conn.command(prepared.mail)
            rcpt_replies = []
            data = Reply(503, ("5.5.1 not sent",))
            if mail.status == "ok":
                for _, sent in prepared.rcpts:
                    rcpt_replies.append(await conn.command(f"RCPT TO:<{sent}>"))
                if any(r.status == "ok" for r in rcpt_replies):
                    data = await conn.command("DATA", conn.timeouts.data_init)
        accepted: list[str] = []
        if mail.status != "ok":
            self._fill(result, list(msg.recipients), mail.status, mail.text)
        else:
            for (addr, _), reply in zip(prepared.rcpts, rcpt_replies, strict=True):
                if reply.status == "ok":
                    accepted.append(addr)
                else:
                    result.recipients.append(
                        RecipientResult(addr, reply.status, reply.text, self.remote)
                    )
        if data.code != 354:
            if accepted:
                self._fill(result, accepted, data.status, data.text)
            self.need_rset = True
            return
        if not accepted:
            # RFC 2920 section 3.1: DATA must fail when no recipient was accepted;
            # a server that says 354 anyway would take an empty message: give up on it
            raise _ConnectionLost("server accepted DATA without a valid recipient")
        conn.queue(prepared.wire)
        self.pending = (prepared, accepted, result)
        # The content is not pipelined with the next envelope (RFC 2920 section 3.1 would
        # allow it): servers flush the end-of-data reply at once and the rest of their
        # replies later, and Nagle's algorithm then holds that second write until the
        # client's delayed ACK -- about 40 ms per message.
        await conn.flush()
        await self._finish_pending()

    async def finish(self) -> None:
        await self.conn.flush()
        await self._finish_pending()


def _lost(exc: BaseException, stage: str) -> str:
    return f"451 4.4.2 connection lost during {stage}: {exc}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def _connect(
    targets: Sequence[Target], route: Route, helo_name: str, timeouts: Timeouts
) -> _Connection:
    errors: list[str] = []
    for target in targets:
        conn = _Connection(target, route, timeouts)
        try:
            await conn.open(helo_name)
        except _TargetFailed as exc:
            log.info("route %s: %s", route.name, exc)
            errors.append(str(exc))
            await conn.close()
            continue
        except BaseException:
            await conn.close()
            raise
        return conn
    if not targets:
        errors.append(f"route {route.name}: no target to connect to")
    raise TargetsUnavailable("451 4.4.1 " + (errors[-1] if errors else "no target"), errors=errors)


async def deliver(
    targets: Sequence[Target],
    route: Route,
    batch: list[OutMessage],
    *,
    helo_name: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
) -> list[DeliveryResult]:
    """Send ``batch`` to the first usable target; one result per message, in order,
    with one :class:`RecipientResult` per recipient.

    Raises :class:`TargetsUnavailable` when no target can be used for the first
    connection and :class:`RouteAuthError` when the route's credentials are
    refused.  If a later connection (after ``max_per_connection`` messages)
    cannot be opened, its messages get temporary results instead.
    """
    helo = helo_name or socket.gethostname() or "localhost"
    results = [DeliveryResult(m.id) for m in batch]
    per_conn = max(1, route.max_per_connection)
    for start in range(0, len(batch), per_conn):
        chunk = list(
            zip(batch[start : start + per_conn], results[start : start + per_conn], strict=True)
        )
        try:
            conn = await _connect(targets, route, helo, timeouts)
        except TargetsUnavailable as exc:
            if start == 0:
                raise
            for msg, res in chunk:
                _complete(msg, res, exc.reply)
            continue
        session = _Session(conn)
        sent = 0  # messages of the chunk whose sending started
        try:
            for msg, res in chunk:
                sent += 1
                await session.send(msg, res)
            await session.finish()
        except _ConnectionLost as exc:
            conn.broken = True
            log.info("route %s: %s: %s", route.name, conn.target, exc)
            reply = _lost(exc, "the SMTP transaction")
            for msg, res in chunk[:sent]:
                _complete(msg, res, reply)
            for msg, res in chunk[sent:]:
                _complete(msg, res, f"451 4.4.2 not attempted: connection lost: {exc}")
        finally:
            await conn.close()
    for msg, res in zip(batch, results, strict=True):
        order = {addr: i for i, addr in reversed(list(enumerate(msg.recipients)))}
        res.recipients.sort(key=lambda r: order.get(r.address, len(order)))
    return results


def _complete(msg: OutMessage, result: DeliveryResult, reply: str) -> None:
    """Every recipient of ``msg`` without a result in ``result`` becomes temporary."""
    done = {r.address for r in result.recipients}
    for addr in msg.recipients:
        if addr not in done:
            result.recipients.append(RecipientResult(addr, "temp", reply))
