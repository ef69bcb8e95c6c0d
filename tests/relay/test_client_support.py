"""Support for the relay client tests (no tests here): aiosmtpd with a recording handler,
and a raw scripted SMTP server that keeps the exact bytes it received."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK = "127.0.0.1"
USER, PASSWORD = "gw", "s3cret-pw"


@dataclass
class Received:
    mail_from: str
    mail_options: list[str]
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    session: int  # index of the connection it came over


@dataclass
class Recorder:
    """aiosmtpd handler: records messages; recipients whose local part starts with
    ``perm``/``temp`` are refused with 550/451; a sender starting with ``rejectdata``
    gets 554 at the end of data."""

    pipelining: bool = False
    messages: list[Received] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if not any(s is session for s in self.sessions):
            self.sessions.append(session)
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.partition("@")[0]
        if local.startswith("perm"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("temp"):
            return f"451 4.2.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (envelope.mail_from or "").startswith("rejectdata"):
            return "554 5.6.0 content rejected"
        index = next(i for i, s in enumerate(self.sessions) if s is session)
        content = envelope.original_content or b""
        self.messages.append(
            Received(
                envelope.mail_from or "",
                list(envelope.mail_options),
                list(envelope.rcpt_tos),
                content,
                session.ssl is not None  # STARTTLS; implicit TLS shows on the transport
                or (
                    server.transport is not None
                    and server.transport.get_extra_info("sslcontext") is not None
                ),
                index,
            )
        )
        return f"250 2.0.0 Ok: queued as M{len(self.messages)}"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


def start_aiosmtpd(handler: Recorder, port: int, **kwargs: Any) -> Controller:
    controller = Controller(handler, hostname=LOOPBACK, port=port, **kwargs)
    controller.start()
    return controller


def server_tls_context(cert: Any) -> ssl.SSLContext:
    """A server context from a trustme LeafCert."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


# --- a raw scripted server ------------------------------------------------------------


@dataclass
class RawServer:
    """Minimal SMTP server keeping the exact bytes of every DATA section.

    ``capabilities``: EHLO keywords; ``on_command(line) -> reply | None`` may
    override a reply (``"CLOSE"`` closes the connection instead of replying).
    """

    capabilities: tuple[str, ...] = ("PIPELINING", "8BITMIME")
    on_command: Callable[[str], str | None] | None = None
    wire: list[bytes] = field(default_factory=list)  # DATA sections, terminator included
    commands: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> RawServer:
        self.server = await asyncio.start_server(self._client, LOOPBACK, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 raw.test ESMTP\r\n")
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.commands.append(line)
                verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
                override = self.on_command(line) if self.on_command else None
                if override == "CLOSE":
                    return
                if override is not None:
                    writer.write(override.encode() + b"\r\n")
                elif verb == "EHLO":
                    caps = ["raw.test", *self.capabilities]
                    text = "".join(f"250-{c}\r\n" for c in caps[:-1]) + f"250 {caps[-1]}\r\n"
                    writer.write(text.encode())
                elif verb == "DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    chunks: list[bytes] = []
                    while True:
                        chunk = await reader.readline()
                        if not chunk:
                            return
                        chunks.append(chunk)
                        if chunk == b".\r\n":
                            break
                    self.wire.append(b"".join(chunks))
                    writer.write(b"250 2.0.0 Ok\r\n")
                elif verb == "QUIT":
                    writer.write(b"221 2.0.0 Bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"250 2.0.0 Ok\r\n")
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
