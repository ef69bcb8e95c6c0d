"""The SMTP probe (ports 25, 587 and 465).

Theory of operation
-------------------
One command at a time; the probe reads the whole reply before it sends the
next command, so it never pipelines, advertised or not (RFC 2920 section 3.1
allows a client to pipeline only after PIPELINING was offered).

1. Greeting (RFC 5321 4.2, 4.3.1): a reply of one or more lines
   ``NNN-text`` ... ``NNN text``.  ``220`` is service ready; ``421`` or
   ``554`` (any 4xx/5xx) refuses service: state ``rejected``.  A line that is
   not a reply is ``garbage``.  A greeting slower than ``tarpit_after`` marks
   the result ``tarpit``.
2. ``EHLO`` (RFC 5321 4.1.1.1); if refused with 5xx, ``HELO`` (no extensions).
   The first line names the server; the others are the extensions, kept as
   sent.  SIZE (RFC 1870), PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
   SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030), AUTH (RFC 4954; also the old
   ``AUTH=`` form), STARTTLS (RFC 3207).
3. STARTTLS (RFC 3207 4): ``220`` then the handshake; afterwards the client
   MUST forget what it knew and send EHLO again (4.2).  A ``454``/other answer
   means STARTTLS is offered but not working (``tls_failed``).
4. Login test (RFC 4954 4): ``AUTH PLAIN`` with an initial response (RFC 4616)
   or ``AUTH LOGIN``; ``235`` is success, ``535`` a wrong password.  Only over
   TLS unless ``insecure``.
5. ``QUIT`` (RFC 5321 4.1.1.10).
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

from mailgw.probe.conn import ProbeFailure, Session, run_probe
from mailgw.probe.model import ProbeResult, SmtpInfo

if TYPE_CHECKING:
    from mailgw.probe.runner import ProbeOptions
    from mailgw.probe.targets import Target

_REPLY_LINE = re.compile(r"^(\d{3})([ -])(.*)$|^(\d{3})$")
MAX_REPLY_LINES = 256


async def read_reply(session: Session) -> tuple[int, list[str]]:
    """One SMTP reply: (code, text of each line) (RFC 5321 4.2.1)."""
    lines: list[str] = []
    code: int | None = None
    while True:
        line = await session.readline()
        match = _REPLY_LINE.match(line)
        if match is None:
            raise ProbeFailure("garbage", f"not an SMTP reply: {line[:120]!r}")
        this = int(match.group(1) or match.group(4))
        if code is not None and this != code:
            raise ProbeFailure("garbage", f"reply code changed within a reply: {line[:120]!r}")
        code = this
        lines.append(match.group(3) or "")
        if match.group(2) != "-" or len(lines) >= MAX_REPLY_LINES:
            return code, lines


async def command(session: Session, line: str) -> tuple[int, list[str]]:
    await session.send(line)
    code, lines = await read_reply(session)
    if code == 421:  # RFC 5321 3.8: the server is shutting the channel
        raise ProbeFailure("rejected", f"421 {' '.join(lines)}")
    return code, lines


def _keywords(extensions: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ext in extensions:
        keyword, _, params = ext.strip().partition(" ")
        keyword = keyword.upper()
        if keyword.startswith("AUTH="):  # the pre-RFC 4954 form
            params, keyword = keyword[5:] + " " + params, "AUTH"
        found[keyword] = (found.get(keyword, "") + " " + params).strip()
    return found


def auth_mechanisms(extensions: list[str]) -> list[str]:
    mechs: list[str] = []
    for mech in _keywords(extensions).get("AUTH", "").upper().split():
        if mech not in mechs:
            mechs.append(mech)
    return mechs


def smtp_info(extensions: list[str], ehlo_host: str | None) -> SmtpInfo:
    keywords = _keywords(extensions)
    size: int | None = None
    if "SIZE" in keywords:
        param = keywords["SIZE"].split()
        size = int(param[0]) if param and param[0].isdigit() else 0
    return SmtpInfo(
        size_limit=size,
        pipelining="PIPELINING" in keywords,
        eightbitmime="8BITMIME" in keywords,
        smtputf8="SMTPUTF8" in keywords,
        chunking="CHUNKING" in keywords,
        ehlo_host=ehlo_host,
    )


def _first_word(text: str) -> str | None:
    words = text.split()
    return words[0] if words else None


async def ehlo(session: Session) -> tuple[list[str], str | None]:
    """(extensions, the name the server gave) from EHLO, or HELO when EHLO is refused."""
    name = session.options.ehlo_name
    code, lines = await command(session, f"EHLO {name}")
    if code == 250:
        return lines[1:], _first_word(lines[0])
    if 500 <= code < 600:
        code, lines = await command(session, f"HELO {name}")
        if code == 250:
            return [], _first_word(lines[0])
    raise ProbeFailure("rejected", f"EHLO/HELO refused: {code} {' '.join(lines)}")


async def _login(session: Session, mechanisms: list[str]) -> None:
    result, options = session.result, session.options
    assert options.user is not None and options.password is not None
    if not session.tls_active and not options.insecure:
        result.login, result.login_error = "skipped", "no TLS: not sending a password in clear"
        return
    user, password = options.user, options.password
    async with session.phase("login"):
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            code, lines = await command(session, f"AUTH PLAIN {token}")
            if code == 334:  # an empty challenge: the server ignored the initial response
                code, lines = await command(session, token)
        elif "LOGIN" in mechanisms:
            code, lines = await command(session, "AUTH LOGIN")
            if code == 334:
                code, lines = await command(session, base64.b64encode(user.encode()).decode())
            if code == 334:
                code, lines = await command(session, base64.b64encode(password.encode()).decode())
        else:
            result.login = "skipped"
            result.login_error = f"no PLAIN or LOGIN mechanism offered ({mechanisms or 'none'})"
            return
    if code == 235:
        result.login = "ok"
    else:
        result.login, result.login_error = "failed", f"{code} {' '.join(lines)}"


async def _body(session: Session) -> None:
    result = session.result
    async with session.phase("banner"):
        code, lines = await read_reply(session)
    result.banner = "\n".join(f"{code} {text}".rstrip() for text in lines)
    result.tarpit = result.timings["banner"] > session.options.tarpit_after
    if code != 220:
        state = "rejected" if 400 <= code < 600 else "garbage"
        raise ProbeFailure(state, f"greeting {code} {' '.join(lines)}")
    async with session.phase("capabilities"):
        extensions, ehlo_host = await ehlo(session)
    if session.tls_active:  # implicit TLS
        result.capabilities_tls = extensions
        result.auth_mechanisms = auth_mechanisms(extensions)
    else:
        result.capabilities = extensions
        result.auth_before_tls = auth_mechanisms(extensions)
        result.auth_mechanisms = list(result.auth_before_tls)
        result.starttls_offered = "STARTTLS" in _keywords(extensions)
    result.smtp = smtp_info(extensions, ehlo_host)
    if result.starttls_offered:
        session.mark("starttls")
        code, lines = await command(session, "STARTTLS")
        if code != 220:
            result.starttls_ok = False
            raise ProbeFailure("tls_failed", f"STARTTLS refused: {code} {' '.join(lines)}")
        try:
            await session.start_tls()
        except ProbeFailure:
            result.starttls_ok = False
            raise
        result.starttls_ok = True
        async with session.phase("capabilities_tls"):
            extensions, ehlo_host = await ehlo(session)
        result.capabilities_tls = extensions
        result.auth_mechanisms = auth_mechanisms(extensions)
        result.smtp = smtp_info(extensions, ehlo_host)
    if session.options.user is not None and session.options.password is not None:
        await _login(session, result.auth_mechanisms)
    result.state = "ok"
    await session.polite_close("QUIT", lambda: read_reply(session))


async def probe_smtp(
    target: Target,
    options: ProbeOptions,
    deadline: float | None = None,
    *,
    result: ProbeResult | None = None,
) -> ProbeResult:
    """Probe an SMTP, submission or SMTPS port; never raises (see ProbeResult.state).

    ``deadline`` is an event-loop time (``loop.time()``); ``result`` is filled in place.
    """
    return await run_probe(target, options, _body, deadline, result)


__all__ = ["auth_mechanisms", "probe_smtp", "read_reply", "smtp_info"]
