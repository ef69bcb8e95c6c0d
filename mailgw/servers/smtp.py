"""The SMTP and submission listeners of ``mailgw serve`` (aiosmtpd on our loop).

Theory of operation
-------------------
``start_smtp_listener`` opens one listening socket with
``loop.create_server``; each connection gets a ``MailgwSMTP`` protocol (an
``aiosmtpd.smtp.SMTP`` subclass, which parses commands, does PIPELINING,
SIZE, 8BITMIME, SMTPUTF8, STARTTLS and AUTH) and shares the listener's
``SmtpHandler`` (the aiosmtpd hooks, where the policy lives).  Every
listener of the process runs on the same event loop; blocking work (argon2,
Maildir writes and fsyncs) goes to worker threads.

What we add to aiosmtpd (DESIGN.md "SMTP"):

* Relay policy in ``handle_RCPT``: local domains from anyone; an address or
  alias target outside them only for authenticated sessions or peers in
  ``relay_networks``, whose mail goes into the outbound spool before ``250``
  (``451 4.3.2`` when no ``relay:`` section is configured), otherwise
  ``550 5.7.1``.  Unknown local users get ``550 5.1.1``; more than
  ``max_recipients`` get ``452 4.5.3`` (RFC 5321 section 4.5.3.1.10).
* ``handle_DATA`` rejects a bare CR or LF anywhere in the content with
  ``554 5.6.11`` (RFC 5321 section 2.3.8; SMTP smuggling), prepends the trace
  headers and answers ``250`` only after every copy is fsynced
  (``LocalDelivery.deliver``, one worker-thread hop per message).  A store
  failure answers ``451 4.3.0``.
* AUTH PLAIN / LOGIN (RFC 4616, RFC 4954) are async handler methods that call
  the shared ``Authenticator`` (argon2 in a thread, per-IP failure delay
  shared with POP3/IMAP).  On an untrusted listener AUTH needs TLS: aiosmtpd
  answers ``538 5.7.11`` (RFC 4954 section 6) and does not advertise it.
  Submission listeners (RFC 6409 section 4.3) require AUTH before MAIL.
* STARTTLS with plaintext already buffered behind the command closes the
  connection (RFC 3207 section 4.2, CVE-2011-0411 class; ``starttls_injection``).
* VRFY answers 252 (RFC 5321 section 3.5.3), EXPN 502 (section 7.3).
* Command lines are bounded by ``limits.smtp_line_length`` (aiosmtpd answers
  ``500 Command line too long``, discards the line, and the reader's buffer
  stays bounded); idle connections close after ``limits.smtp_idle_timeout``
  seconds without input (RFC 5321 section 4.5.3.2.7).
* DATA content is read in blocks (``DataCollector``: the same end of data,
  limits and replies as aiosmtpd's line-by-line loop, without a Python step
  per line).
* While DATA is received or stored the connection is in ``ctx.active`` (the
  serve app waits for it to drain on SIGTERM); a delivery thread keeps its own
  token there until it has finished, even if the client went away.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import ipaddress
import itertools
import logging
import re
import secrets
import time
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session, syntax

from mailgw.auth.sasl import decode_login_step, decode_plain
from mailgw.config.schema import ListenerConfig
from mailgw.delivery.local import LocalDelivery
from mailgw.delivery.resolve import RecipientResolver
from mailgw.protocols.smtp import replies as R
from mailgw.protocols.smtp.address import AddressError, split_address
from mailgw.protocols.smtp.data import TERMINATOR, DataCollector, find_bare_cr_lf
from mailgw.protocols.smtp.trace import received_header, with_protocol
from mailgw.servers.context import ServerContext
from mailgw.servers.tls import starttls_injection

log = logging.getLogger("mailgw.smtp")

IDENT = "ESMTP mailgw"
MIN_DATA_LINE = 1001  # RFC 5321 section 4.5.3.1.6: 998 octets + CRLF (+ a stuffed dot)

_has_control = re.compile(r"[\x00-\x1f\x7f]").search

# Queue ids: a random start per process, then a counter (no urandom per message).
_queue_seq = itertools.count(secrets.randbits(24))


def new_queue_id() -> str:
    """A short id for log lines and ``queued as``: time (sortable) + a per-process
    sequence number from a random start (unique within the second for 16M ids)."""
    return f"{int(time.time()):X}{next(_queue_seq) & 0xFFFFFF:06X}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


class MailgwSession(Session):
    """aiosmtpd's Session without the deprecation warning on ``login_data``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.user: str | None = None  # canonical user after AUTH

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class MailgwEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        # local user -> the RCPT TO address that reached it (first one wins)
        self.deliveries: dict[str, str] = {}
        # addresses outside the local domains, for the outbound queue (in RCPT order)
        self.remote: list[str] = []


class SmtpHandler:
    """aiosmtpd hooks for one listener (shared by its connections; no per-connection state).

    Attribute names matter: aiosmtpd treats every ``handle_*`` attribute as a
    hook and every ``auth_*`` attribute as an AUTH mechanism.
    """

    def __init__(self, listener: ListenerConfig, ctx: ServerContext) -> None:
        self.listener = listener
        self.ctx = ctx
        self.resolver = RecipientResolver(ctx.config, ctx.userdb)
        self.delivery = LocalDelivery(ctx.store)

    # --- helpers -------------------------------------------------------------------

    @staticmethod
    def _conn(server: SMTP) -> MailgwSMTP:
        assert isinstance(server, MailgwSMTP)
        return server

    def relay_allowed(self, session: Session, ip: str) -> bool:
        """Authenticated sessions and peers in ``relay_networks`` may relay."""
        if session.authenticated:
            return True
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(
            addr.version == net.version and addr in net for net in self.ctx.config.relay_networks
        )

    # --- hooks -----------------------------------------------------------------------

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        self._conn(server).event("helo %s", _shown(hostname))
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self._conn(server).event("ehlo %s", _shown(hostname))
        # aiosmtpd handles pipelined commands in order but does not say so
        # (RFC 2920); the last line ("250 HELP") must stay last.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        conn = self._conn(server)
        try:
            split_address(address)
        except AddressError:
            conn.event("mail from %s rejected: bad address", _shown(address))
            return R.R553_BAD_SENDER.format(addr=address)
        if _has_control(address):
            conn.event("mail from %s rejected: control characters", _shown(address))
            return R.R553_BAD_SENDER.format(addr="?")
        if not address.isascii() and not envelope.smtp_utf8:
            conn.event("mail from %s rejected: SMTPUTF8 not declared", _shown(address))
            return R.R553_NEED_SMTPUTF8
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        # Accepted MAIL/RCPT are debug lines: the "delivered" line carries them.
        conn.debug("mail from <%s> %s", address.strip("<>"), " ".join(mail_options))
        return R.R250_SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        conn = self._conn(server)
        assert isinstance(envelope, MailgwEnvelope)
        if len(envelope.rcpt_tos) >= self.ctx.config.limits.max_recipients:
            conn.event("rcpt <%s> rejected: too many recipients", address)
            return R.R452_TOO_MANY_RCPTS
        if _has_control(address):
            conn.event("rcpt %s rejected: control characters", _shown(address))
            return R.R501_BAD_ADDRESS.format(addr="?")
        if not address.isascii() and not envelope.smtp_utf8:
            conn.event("rcpt %s rejected: SMTPUTF8 not declared", _shown(address))
            return R.R553_NEED_SMTPUTF8
        res = self.resolver.resolve(address)
        if res.kind == "unknown":
            conn.event("rcpt <%s> rejected: user unknown", address)
            return R.R550_NO_SUCH_USER.format(addr=address)
        if res.kind == "nonlocal":
            if not self.relay_allowed(session, conn.peer_ip):
                conn.event("rcpt <%s> rejected: relay denied", address)
                return R.R550_RELAY_DENIED.format(addr=address)
            if self.ctx.spool is None:
                conn.event("rcpt <%s> deferred: relay queue not configured", address)
                return R.R451_NO_RELAY_QUEUE.format(addr=address)
            for target in res.remote:
                if target not in envelope.remote:
                    envelope.remote.append(target)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        for user in res.users:
            envelope.deliveries.setdefault(user, address)
        conn.debug("rcpt <%s> accepted: %s", address, ",".join(res.users))
        return R.R250_RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        conn = self._conn(server)
        assert isinstance(envelope, MailgwEnvelope)
        data = envelope.original_content or b""
        bad = find_bare_cr_lf(data)
        if bad is not None:
            conn.event("data rejected: bare CR or LF at offset %d (%d bytes)", bad, len(data))
            return R.R554_BARE_LF
        queue_id = new_queue_id()
        tls = conn.tls_info()
        received = received_header(
            helo=session.host_name,
            peer_ip=conn.peer_ip,
            by_host=self.ctx.config.hostname,
            protocol=with_protocol(
                esmtp=session.extended_smtp,
                tls=tls is not None,
                auth=bool(session.authenticated),
                smtputf8=envelope.smtp_utf8,
            ),
            queue_id=queue_id,
            recipient=envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None,
            tls=tls,
        )
        users = list(envelope.deliveries)
        try:
            if users:
                await conn.run_blocking(
                    self.delivery.deliver,
                    users,
                    data,
                    envelope_from=envelope.mail_from or "<>",
                    original_rcpt=dict(envelope.deliveries),
                    received=received,
                )
            if envelope.remote:
                # local copies first: a failure after them makes the client retry, and a
                # duplicate in a local mailbox is better than one sent to the outside world
                queued = await conn.run_blocking(self._enqueue, envelope, received, data)
                users.append(f"queue:{queued}")
        except Exception:
            log.exception("%s id=%s delivery failed for %s", conn.tag, queue_id, ",".join(users))
            return R.R451_LOCAL_ERROR
        if envelope.remote and self.ctx.relay_wake is not None:
            self.ctx.relay_wake()
        # The one INFO line per message: envelope, size, mailboxes and id.
        conn.event(
            "delivered id=%s size=%d from=<%s> rcpt=%s to=%s",
            queue_id,
            len(data),
            (envelope.mail_from or "").strip("<>"),
            ",".join(f"<{a}>" for a in envelope.rcpt_tos),
            ",".join(users),
        )
        return R.R250_QUEUED.format(id=queue_id)

    def _enqueue(self, envelope: MailgwEnvelope, received: str, data: bytes) -> str:
        """Blocking: the message, with our Received line, durable in the outbound spool."""
        assert self.ctx.spool is not None
        sender = (envelope.mail_from or "").strip("<>")
        head = (received + "\r\n").encode("utf-8")
        return self.ctx.spool.enqueue(sender, envelope.remote, head + data, source="smtp")

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp session error: %s: %s", type(error).__name__, error, exc_info=error)
        if isinstance(error, ValueError | asyncio.LimitOverrunError):
            return "500 5.5.2 Error: line too long or malformed"
        return "451 4.3.0 Error: internal error, please try again later"

    # --- AUTH mechanisms (RFC 4954; aiosmtpd calls handler.auth_<MECH>(server, args)) ----

    async def _check(
        self, server: SMTP, login: str, password: str, authzid: str = ""
    ) -> AuthResult:
        conn = self._conn(server)
        user = await self.ctx.authenticator.authenticate(
            login, password, conn.peer_ip, authzid=authzid
        )
        if user is None:
            conn.event("auth failed login=%s", _shown(login))
            return AuthResult(success=False, handled=False)
        conn.event("auth ok user=%s", user)
        assert server.session is not None
        if isinstance(server.session, MailgwSession):
            server.session.user = user
        return AuthResult(success=True, auth_data=user)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            raw = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(raw, bytes):  # "*" or bad base64: already answered
                return AuthResult(success=False, handled=True)
            token = base64.b64encode(raw)
        else:
            token = args[1].encode("ascii", "replace")
        try:
            authzid, login, password = decode_plain(token)
        except ValueError:
            await server.push(R.R501_BAD_PLAIN)
            return AuthResult(success=False, handled=True)
        return await self._check(server, login, password, authzid)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        try:
            if len(args) == 1:
                raw = await server.challenge_auth("Username:")
                if not isinstance(raw, bytes):
                    return AuthResult(success=False, handled=True)
                login = raw.decode("utf-8")
            else:
                login = decode_login_step(args[1].encode("ascii", "replace"))
            raw = await server.challenge_auth("Password:")
            if not isinstance(raw, bytes):
                return AuthResult(success=False, handled=True)
            password = raw.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            await server.push(R.R501_BAD_BASE64)
            return AuthResult(success=False, handled=True)
        if not login or not password or "\0" in login + password:
            await server.push(R.R501_BAD_BASE64)
            return AuthResult(success=False, handled=True)
        return await self._check(server, login, password)


class MailgwSMTP(SMTP):
    """aiosmtpd's protocol with our limits, logging, STARTTLS guard and drain tracking."""

    def __init__(
        self,
        handler: SmtpHandler,
        listener: ListenerConfig,
        ctx: ServerContext,
        *,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        limits = ctx.config.limits
        self.listener = listener
        self.ctx = ctx
        self.conn_id = secrets.token_hex(4)
        self.peer_ip = "?"
        self.tag = f"smtp[{listener.name}] {self.conn_id}"
        # Instance attributes, read by SMTP.__init__ (the StreamReader limit) and
        # by _handle_client; the class-level dict of aiosmtpd is shared by all
        # instances, so each connection gets its own.
        self.line_length_limit = max(MIN_DATA_LINE, limits.smtp_line_length + 2)
        self.command_size_limit = limits.smtp_line_length
        self.command_size_limits = collections.defaultdict(lambda: limits.smtp_line_length)
        self._last_input = loop.time()
        self._delivering = False
        tls_context = None
        if listener.tls == "starttls" and ctx.tls is not None:
            tls_context = ctx.tls.context
        super().__init__(
            handler,
            data_size_limit=limits.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=ctx.config.hostname,
            ident=IDENT,
            tls_context=tls_context,
            timeout=float(limits.smtp_idle_timeout),
            # AUTH needs TLS unless the listener is trusted; implicit TLS is TLS.
            auth_require_tls=not (listener.trusted or listener.tls == "implicit"),
            # Set below: passing it here makes aiosmtpd warn on trusted listeners.
            auth_required=False,
            loop=loop,
        )
        self._auth_required = listener.protocol == "submission"

    # --- session objects ------------------------------------------------------------

    def _create_session(self) -> Session:
        return MailgwSession(self.loop)

    def _create_envelope(self) -> Envelope:
        return MailgwEnvelope()

    # --- logging -------------------------------------------------------------------

    def event(self, fmt: str, *args: object) -> None:
        """One log line per session event, tagged with listener, connection and peer."""
        log.info("%s %s " + fmt, self.tag, self.peer_ip, *args)

    def debug(self, fmt: str, *args: object) -> None:
        """Like :meth:`event` at DEBUG (details the INFO lines already summarise)."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s " + fmt, self.tag, self.peer_ip, *args)

    def tls_info(self) -> str | None:
        """``"TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"`` on a TLS connection, else None."""
        transport = self.transport
        ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cipher = ssl_object.cipher()
        name = cipher[0] if cipher else "unknown"
        return f"{ssl_object.version()} with cipher {name}"

    # --- connection life cycle -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None and self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername")
            if isinstance(peer, tuple) and peer:
                self.peer_ip = str(peer[0])
            self.ctx.connections.add(transport)
            self._raw_transport = transport
            self.event("connect tls=%s", self.listener.tls)
        else:
            self.event("starttls done: %s", self.tls_info())

    def connection_lost(self, error: Exception | None) -> None:
        raw = getattr(self, "_raw_transport", None)
        if raw is not None:
            self.ctx.connections.discard(raw)
        self.event("disconnect%s", f" ({error})" if error else "")
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        self._last_input = self.loop.time()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        # Idle means no input for the whole period (aiosmtpd counts from the
        # last command, which would cut off a long DATA), and never while our
        # own delivery is in progress.
        idle = self.loop.time() - self._last_input
        if self._delivering or idle < self._timeout_duration:
            remaining = self._timeout_duration - idle
            self._reset_timeout(max(remaining, 1.0) if not self._delivering else None)
            return
        self.event("idle timeout")
        super()._timeout_cb()

    async def run_blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a thread; ``ctx.active`` holds a token until it has returned,
        even if this connection is cancelled meanwhile."""
        token = object()
        self.ctx.active.add(token)
        # One executor hop; the future (not a Task) is shielded, so cancelling
        # this coroutine leaves it running and its callback drops the token.
        future = self.loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
        future.add_done_callback(lambda _f: self.ctx.active.discard(token))
        self._delivering = True
        try:
            return await asyncio.shield(future)
        finally:
            self._delivering = False

    # --- commands we change ------------------------------------------------------------

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        buffered = len(self._reader._buffer)  # type: ignore[attr-defined]
        if not arg and self.tls_context and starttls_injection(buffered):
            self.event("starttls refused: %d bytes pipelined after the command", buffered)
            await self.push(R.R554_STARTTLS_PIPELINED)
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_STARTTLS(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.ctx.active.add(self)
        try:
            await self._data(arg)
        finally:
            self.ctx.active.discard(self)

    async def _data(self, arg: str) -> None:
        """aiosmtpd's ``smtp_DATA`` (1.4.6) with the content read in blocks.

        Same checks, replies, limits and end of data (``DataCollector``); the
        reader is asked for what ``DataCollector.next_read`` allows (mostly all
        up to the next CRLF.CRLF; past the reader's limit, what it holds), so
        nothing after the terminator is consumed: pipelined commands stay in
        the buffer for the command loop.
        """
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        collector = DataCollector(max_line=self.line_length_limit, max_size=self.data_size_limit)
        reader = self._reader
        while True:
            if self.transport is None:
                return  # connection gone: nothing is delivered
            size = collector.next_read()
            try:
                if size is None:
                    block = await reader.readuntil(TERMINATOR)
                else:
                    block = await reader.readexactly(size)
            except asyncio.LimitOverrunError as exc:
                # No separator within the reader's limit: take what cannot hold one.
                block = await reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                self._writer.close()  # EOF inside DATA
                return
            except asyncio.CancelledError:
                # The connection got reset during DATA (aiosmtpd does the same).
                self._writer.close()
                raise
            end = collector.feed(block)
            if end is not None:
                # next_read() never lets a read go past the terminator
                assert end == len(block), (end, len(block))
                break
        if collector.state == DataCollector.TOO_LONG:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            self._set_post_data_state()
            return
        if collector.state == DataCollector.TOO_MUCH:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        content = collector.content()
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str) -> None:
        if not arg:
            await self.push(R.R501_VRFY_SYNTAX)
            return
        await self.push(R.R252_VRFY)

    async def smtp_EXPN(self, arg: str) -> None:
        await self.push(R.R502_EXPN)


async def start_smtp_listener(listener: ListenerConfig, ctx: ServerContext) -> asyncio.Server:
    """Listen on ``listener.address:port`` (port 0: any free port) on the running loop."""
    loop = asyncio.get_running_loop()
    # aiosmtpd logs every command line at INFO on "mail.log"; our event lines
    # replace that.  Left alone if the application configured that logger.
    aiosmtpd_log = logging.getLogger("mail.log")
    if aiosmtpd_log.level == logging.NOTSET:
        aiosmtpd_log.setLevel(logging.WARNING)
    handler = SmtpHandler(listener, ctx)
    ssl_context = None
    if listener.tls == "implicit":
        if ctx.tls is None:
            raise ValueError(f"listener {listener.name}: implicit TLS needs a certificate")
        ssl_context = ctx.tls.context
    server = await loop.create_server(
        lambda: MailgwSMTP(handler, listener, ctx, loop=loop),
        listener.address,
        listener.port,
        ssl=ssl_context,
    )
    for sock in server.sockets:
        host, port = sock.getsockname()[:2]
        log.info(
            "smtp[%s] listening on %s:%d (%s, tls=%s%s)",
            listener.name,
            host,
            port,
            listener.protocol,
            listener.tls,
            ", trusted" if listener.trusted else "",
        )
    return server


__all__ = ["MailgwSMTP", "SmtpHandler", "new_queue_id", "start_smtp_listener"]
