"""The POP3 probe (ports 110 and 995).

Theory of operation
-------------------
1. Greeting (RFC 1939 4): ``+OK ...`` is ready; ``-ERR ...`` refuses service
   (``rejected``); anything else is ``garbage``.  Slower than ``tarpit_after``:
   ``tarpit``.
2. ``CAPA`` (RFC 2449 5): ``+OK`` and a multi-line list ended by ``.``
   (dot-stuffed, RFC 1939 3); ``-ERR`` means no CAPA support (no capabilities).
   ``STLS`` (RFC 2595 4) offers STARTTLS; ``SASL mech ...`` (RFC 2449 6.3,
   RFC 5034) lists the AUTH mechanisms; ``USER`` says USER/PASS works.
3. ``STLS``: ``+OK`` then the handshake; afterwards CAPA again, since the
   server may offer more over TLS (RFC 2595 4: the client MUST discard what it
   knew).  ``-ERR``: offered but not working (``tls_failed``).
4. Login test: ``AUTH PLAIN`` with an initial response (RFC 5034 4) when SASL
   PLAIN is offered, else ``USER``/``PASS`` (RFC 1939 7).  Only over TLS unless
   ``insecure``.  A POP3 server locks the maildrop for the session (RFC 1939 8;
   ``-ERR [IN-USE]``, RFC 2449 8.1.2), so login tests of one user on one server
   address (POP3 and POP3S ports alike) take turns: a lock held from the login
   to the end of the session.
5. ``QUIT`` (RFC 1939 6).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from mailgw.probe.conn import ProbeFailure, Session, run_probe
from mailgw.probe.model import ProbeResult

if TYPE_CHECKING:
    from mailgw.probe.runner import ProbeOptions
    from mailgw.probe.targets import Target

MAX_CAPA_LINES = 256

_maildrop_locks: dict[tuple[int, str | None, str], asyncio.Lock] = {}


@contextlib.asynccontextmanager
async def maildrop_turn(address: str | None, user: str) -> AsyncIterator[None]:
    """One login session per (server address, user) at a time within this event loop."""
    key = (id(asyncio.get_running_loop()), address, user)
    async with _maildrop_locks.setdefault(key, asyncio.Lock()):
        yield


async def read_status(session: Session) -> tuple[bool, str]:
    """(positive, text) of a ``+OK``/``-ERR`` line; garbage otherwise."""
    line = await session.readline()
    if line.startswith("+OK"):
        return True, line[3:].strip()
    if line.startswith("-ERR"):
        return False, line[4:].strip()
    raise ProbeFailure("garbage", f"not a POP3 status line: {line[:120]!r}")


async def read_multiline(session: Session) -> list[str]:
    lines: list[str] = []
    while True:
        line = await session.readline()
        if line == ".":
            return lines
        lines.append(line[1:] if line.startswith(".") else line)
        if len(lines) > MAX_CAPA_LINES:
            raise ProbeFailure("garbage", "a CAPA list without an end")


async def capa(session: Session) -> list[str]:
    await session.send("CAPA")
    ok, _ = await read_status(session)
    return await read_multiline(session) if ok else []


def sasl_mechanisms(capabilities: list[str]) -> list[str]:
    mechs: list[str] = []
    for cap in capabilities:
        words = cap.split()
        if words and words[0].upper() == "SASL":
            mechs += [w.upper() for w in words[1:] if w.upper() not in mechs]
    return mechs


def _names(capabilities: list[str]) -> set[str]:
    return {cap.split()[0].upper() for cap in capabilities if cap.split()}


async def _login(session: Session, capabilities: list[str]) -> None:
    result, options = session.result, session.options
    assert options.user is not None and options.password is not None
    if not session.tls_active and not options.insecure:
        result.login, result.login_error = "skipped", "no TLS: not sending a password in clear"
        return
    user, password = options.user, options.password
    async with session.phase("login"):
        if "PLAIN" in sasl_mechanisms(capabilities):
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            await session.send(f"AUTH PLAIN {token}")
            line = await session.readline()
            if line.startswith("+ ") or line == "+":  # no initial response support
                await session.send(token)
                line = await session.readline()
            ok, text = line.startswith("+OK"), line
            if not ok and not line.startswith("-ERR"):
                raise ProbeFailure("garbage", f"not a POP3 status line: {line[:120]!r}")
        else:
            await session.send(f"USER {user}")
            ok, text = await read_status(session)
            if ok:
                await session.send(f"PASS {password}")
                ok, text = await read_status(session)
            text = f"-ERR {text}".strip()
    if ok:
        result.login = "ok"
    else:
        result.login, result.login_error = "failed", text


async def _body(session: Session) -> None:
    result = session.result
    async with session.phase("banner"):
        ok, text = await read_status(session)
    result.banner = ("+OK " if ok else "-ERR ") + text
    result.tarpit = result.timings["banner"] > session.options.tarpit_after
    if not ok:
        raise ProbeFailure("rejected", f"greeting -ERR {text}")
    async with session.phase("capabilities"):
        capabilities = await capa(session)
    if session.tls_active:
        result.capabilities_tls = capabilities
        result.auth_mechanisms = sasl_mechanisms(capabilities)
    else:
        result.capabilities = capabilities
        result.auth_before_tls = sasl_mechanisms(capabilities)
        result.auth_mechanisms = list(result.auth_before_tls)
        result.starttls_offered = "STLS" in _names(capabilities)
    if result.starttls_offered:
        session.mark("starttls")
        await session.send("STLS")
        ok, text = await read_status(session)
        if not ok:
            result.starttls_ok = False
            raise ProbeFailure("tls_failed", f"STLS refused: -ERR {text}")
        try:
            await session.start_tls()
        except ProbeFailure:
            result.starttls_ok = False
            raise
        result.starttls_ok = True
        async with session.phase("capabilities_tls"):
            capabilities = await capa(session)
        result.capabilities_tls = capabilities
        result.auth_mechanisms = sasl_mechanisms(capabilities)
    user = session.options.user
    if user is None or session.options.password is None:
        result.state = "ok"
        await session.polite_close("QUIT", lambda: read_status(session))
        return
    async with maildrop_turn(result.address, user):
        await _login(session, capabilities)
        result.state = "ok"
        await session.polite_close("QUIT", lambda: read_status(session))


async def probe_pop3(
    target: Target,
    options: ProbeOptions,
    deadline: float | None = None,
    *,
    result: ProbeResult | None = None,
) -> ProbeResult:
    """Probe a POP3 or POP3S port; never raises (see ProbeResult.state)."""
    return await run_probe(target, options, _body, deadline, result)


__all__ = ["probe_pop3", "read_multiline", "read_status", "sasl_mechanisms"]
