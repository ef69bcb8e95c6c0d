"""The connection every protocol probe speaks over, and the frame around a probe.

Theory of operation
-------------------
:func:`run_probe` is the one frame around each protocol probe: it fills a
:class:`~mailgw.probe.model.ProbeResult` *in place* (so whoever cancels the
probe still has what was gathered), bounds the whole probe by an absolute
deadline (``asyncio.timeout_at``), and turns every outcome into a state --
a probe never raises:

* :class:`ProbeFailure` carries the state the protocol code decided
  (``closed``, ``garbage``, ``rejected``, ``tls_failed``, ...);
* the deadline becomes ``timeout`` naming the phase that did not finish;
* a refused connection ``refused``, an unresolvable name ``dns_failed``;
* anything else ``error`` with the exception text.

:class:`Session` resolves the host (``getaddrinfo``, or a dnspython resolver
given in the options), connects to the addresses in order, reads CRLF lines
(a line longer than :data:`MAX_LINE` without an end is garbage; EOF is
``closed``), writes commands, and upgrades to TLS in place with
``StreamWriter.start_tls`` -- the same way for STARTTLS (RFC 3207, RFC 2595)
and implicit TLS (RFC 8314: the handshake right after connecting).  Before an
upgrade it refuses to go on if the server sent bytes after the reply that
started TLS (a plaintext injection, CVE-2011-0411).  Each step is timed with
:meth:`Session.phase` into ``result.timings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mailgw.probe.model import ProbeResult
from mailgw.probe.tlsinfo import inspect_tls, probe_context

if TYPE_CHECKING:
    from mailgw.probe.runner import ProbeOptions
    from mailgw.probe.targets import Target

MAX_LINE = 16384  # bytes: a longer "line" is not a mail protocol
QUIT_TIMEOUT = 2.0  # seconds to wait for the answer to QUIT/LOGOUT (within the deadline)


class ProbeFailure(Exception):
    """The probe ends here with ``state`` (a model.State value) and ``message``."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


def new_result(target: Target) -> ProbeResult:
    return ProbeResult(
        target=str(target),
        host=target.host,
        port=target.port,
        proto=target.proto,
        implicit_tls=target.implicit_tls,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


class Session:
    """One TCP (then maybe TLS) connection of a probe, with phase timing."""

    def __init__(self, target: Target, options: ProbeOptions, result: ProbeResult) -> None:
        self.target = target
        self.options = options
        self.result = result
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.current_phase = "start"
        self.connected_at: float | None = None
        self.tls_active = False

    # --- timing -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[None]:
        """Time the block as ``result.timings[name]`` (only when it completes)."""
        outer, self.current_phase = self.current_phase, name
        start = time.monotonic()
        yield  # an exception leaves current_phase naming this phase
        self.result.timings[name] = round(time.monotonic() - start, 6)
        self.current_phase = outer if outer != "start" else f"after {name}"

    def mark(self, step: str) -> None:
        """Name an untimed step (e.g. the STARTTLS command) for timeout messages."""
        self.current_phase = step

    # --- connecting ---------------------------------------------------------------------

    async def _addresses(self) -> list[str]:
        host = self.target.host
        if _is_ip(host):
            return [host]
        resolver = self.options.resolver
        if resolver is not None:
            from mailgw.relay.dns import DnsError, lookup_addresses

            try:
                found = await lookup_addresses(resolver, host)
            except DnsError as exc:
                raise ProbeFailure("dns_failed", f"{host}: {exc.reply}") from exc
            if not found:
                raise ProbeFailure("dns_failed", f"{host}: no such host (no A or AAAA record)")
            return found
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, self.target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except socket.gaierror as exc:
            raise ProbeFailure("dns_failed", f"{host}: {exc.strerror or exc}") from exc
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ProbeFailure("dns_failed", f"{host}: no address")
        return addresses

    async def connect(self) -> None:
        """Resolve and connect (first address that answers); TLS at once if implicit."""
        async with self.phase("dns"):
            addresses = await self._addresses()
        errors: list[str] = []
        refused = True
        async with self.phase("connect"):
            for address in addresses:
                try:
                    self.reader, self.writer = await asyncio.open_connection(
                        address, self.target.port, limit=MAX_LINE
                    )
                except ConnectionRefusedError:
                    errors.append(f"{address}: connection refused")
                    continue
                except OSError as exc:
                    refused = False
                    errors.append(f"{address}: {exc.strerror or _describe(exc)}")
                    continue
                self.result.address = address
                self.connected_at = time.monotonic()
                break
            else:
                raise ProbeFailure("refused" if refused else "error", "; ".join(errors))
        if self.target.implicit_tls:
            await self.start_tls()

    async def start_tls(self) -> None:
        """Upgrade to TLS (implicit, or after a positive STARTTLS/STLS answer)."""
        assert self.reader is not None and self.writer is not None
        if self.reader._buffer:  # type: ignore[attr-defined]
            raise ProbeFailure(
                "garbage", "the server sent data after accepting STARTTLS (plaintext injection)"
            )
        host = self.target.host
        async with self.phase("tls"):
            try:
                await self.writer.start_tls(
                    probe_context(), server_hostname=None if _is_ip(host) else host
                )
            except ssl.SSLError as exc:
                if isinstance(exc, ssl.SSLEOFError):
                    raise ProbeFailure(
                        "tls_failed", "the server closed the connection during the TLS handshake"
                    ) from exc
                raise ProbeFailure("tls_failed", f"TLS handshake failed: {exc}") from exc
            except (ConnectionError, asyncio.IncompleteReadError, EOFError) as exc:
                raise ProbeFailure(
                    "tls_failed",
                    f"the server closed the connection during the TLS handshake ({_describe(exc)})",
                ) from exc
        self.tls_active = True
        ssl_object = self.writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.result.tls = inspect_tls(ssl_object, host, ca_file=self.options.ca_file)

    # --- lines --------------------------------------------------------------------------

    async def readline(self) -> str:
        """One line without its CRLF (decoded UTF-8, bad bytes replaced)."""
        assert self.reader is not None
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProbeFailure(
                    "closed", f"connection closed in mid-line: {exc.partial[:80]!r}"
                ) from exc
            raise ProbeFailure("closed", "the server closed the connection") from exc
        except asyncio.LimitOverrunError as exc:
            raise ProbeFailure("garbage", f"a line longer than {MAX_LINE} bytes") from exc
        except (ConnectionError, ssl.SSLError) as exc:
            raise ProbeFailure("closed", f"connection lost: {_describe(exc)}") from exc
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    async def readexactly(self, count: int) -> bytes:
        assert self.reader is not None
        try:
            return await self.reader.readexactly(count)
        except asyncio.IncompleteReadError as exc:
            raise ProbeFailure("closed", "the server closed the connection") from exc
        except (ConnectionError, ssl.SSLError) as exc:
            raise ProbeFailure("closed", f"connection lost: {_describe(exc)}") from exc

    async def send(self, line: str) -> None:
        """Write one command line (CRLF added); one command at a time, never pipelined."""
        assert self.writer is not None
        try:
            self.writer.write(line.encode("utf-8") + b"\r\n")
            await self.writer.drain()
        except (ConnectionError, ssl.SSLError) as exc:
            raise ProbeFailure("closed", f"connection lost: {_describe(exc)}") from exc

    async def polite_close(self, command: str, read_answer: Callable[[], Awaitable[Any]]) -> None:
        """Say goodbye (QUIT/LOGOUT) and read the answer, briefly; errors do not matter."""
        if self.writer is None or self.writer.is_closing():
            return
        with contextlib.suppress(ProbeFailure, TimeoutError, OSError):
            async with asyncio.timeout(QUIT_TIMEOUT):
                await self.send(command)
                await read_answer()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


def _timeout_message(session: Session) -> str:
    return f"no complete answer before the deadline (in phase {session.current_phase!r})"


async def run_probe(
    target: Target,
    options: ProbeOptions,
    body: Callable[[Session], Awaitable[None]],
    deadline: float | None,
    result: ProbeResult | None,
) -> ProbeResult:
    """Run ``body`` on a new :class:`Session`; every outcome becomes ``result.state``."""
    if result is None:
        result = new_result(target)
    session = Session(target, options, result)
    start = time.monotonic()
    try:
        async with asyncio.timeout_at(deadline):
            await session.connect()
            await body(session)
    except ProbeFailure as exc:
        result.state = exc.state
        result.error = exc.message
    except TimeoutError:
        result.state = "timeout"
        result.error = _timeout_message(session)
    except asyncio.CancelledError:
        result.state = "timeout"
        result.error = _timeout_message(session)
        raise
    except Exception as exc:  # a probe never raises
        result.state = "error"
        result.error = _describe(exc)
    finally:
        if (
            result.banner is None
            and session.connected_at is not None
            and time.monotonic() - session.connected_at > options.tarpit_after
        ):
            result.tarpit = True
        session.abort()
        result.timings["total"] = round(time.monotonic() - start, 6)
    return result


__all__ = ["MAX_LINE", "ProbeFailure", "Session", "new_result", "run_probe"]
