"""The IMAP probe (ports 143 and 993).

Theory of operation
-------------------
1. Greeting (RFC 3501 7.1 / RFC 9051 7.1): ``* OK`` (not logged in),
   ``* PREAUTH`` (already logged in), ``* BYE`` (refused: ``rejected``);
   anything else is ``garbage``.  A ``[CAPABILITY ...]`` response code in the
   greeting (7.1) saves the CAPABILITY command.  Slower than ``tarpit_after``:
   ``tarpit``.
2. ``CAPABILITY`` (RFC 3501 6.1.1): an untagged ``* CAPABILITY`` then the
   tagged ``OK``.  ``STARTTLS`` and ``LOGINDISABLED`` (6.2.1), ``AUTH=mech``
   (6.2.2) are read from it.
3. ``STARTTLS`` (6.2.1): tagged ``OK`` then the handshake; the client MUST
   discard cached capabilities, so CAPABILITY is asked again over TLS.
4. Login test: ``LOGIN`` (6.2.3) with quoted strings (or literals, 4.3, for
   values a quoted string cannot hold); ``AUTHENTICATE PLAIN`` (6.2.2, RFC 4616)
   when LOGINDISABLED is advertised.  Only over TLS unless ``insecure``.
5. ``LOGOUT`` (6.1.3): ``* BYE`` then the tagged ``OK``.

Responses are read line by line; a line ending in a literal ``{n}`` (4.3) has
its ``n`` bytes read and the line continued, so literals never confuse the
reader.  Commands are sent one at a time, each after the previous completed.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailgw.probe.conn import ProbeFailure, Session, run_probe
from mailgw.probe.model import ProbeResult

if TYPE_CHECKING:
    from mailgw.probe.runner import ProbeOptions
    from mailgw.probe.targets import Target

_LITERAL = re.compile(r"\{(\d+)\+?\}$")
_CAP_CODE = re.compile(r"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
MAX_UNTAGGED = 1000
MAX_LITERAL = 1 << 20


@dataclass
class Tagged:
    status: str  # OK, NO, BAD, or "+" for a continuation request
    text: str
    untagged: list[str] = field(default_factory=list)


async def read_line(session: Session) -> str:
    """One response line with its literals inlined (as ``{n}`` followed by the text)."""
    line = await session.readline()
    while (match := _LITERAL.search(line)) is not None:
        size = int(match.group(1))
        if size > MAX_LITERAL:
            raise ProbeFailure("garbage", f"a {size}-byte literal in a response")
        data = await session.readexactly(size)
        line += "\r\n" + data.decode("utf-8", "replace") + await session.readline()
    return line


async def read_tagged(session: Session, tag: str) -> Tagged:
    """Untagged lines up to the tagged completion of ``tag`` (or a ``+`` continuation)."""
    untagged: list[str] = []
    while True:
        line = await read_line(session)
        if line.startswith("* "):
            if line[2:].upper().startswith("BYE"):
                raise ProbeFailure("rejected", f"the server said {line[:200]}")
            untagged.append(line[2:])
            if len(untagged) > MAX_UNTAGGED:
                raise ProbeFailure("garbage", "too many untagged responses")
            continue
        if line == "+" or line.startswith("+ "):
            return Tagged("+", line[2:], untagged)
        head, _, rest = line.partition(" ")
        if head == tag:
            status, _, text = rest.partition(" ")
            status = status.upper()
            if status not in ("OK", "NO", "BAD"):
                raise ProbeFailure("garbage", f"not an IMAP completion: {line[:120]!r}")
            return Tagged(status, text, untagged)
        raise ProbeFailure("garbage", f"not an IMAP response: {line[:120]!r}")


class Tags:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"p{self.n}"


def parse_capabilities(text: str) -> list[str]:
    return [word for word in text.split() if word]


async def capability(session: Session, tags: Tags) -> list[str]:
    tag = tags.next()
    await session.send(f"{tag} CAPABILITY")
    done = await read_tagged(session, tag)
    caps: list[str] = []
    for line in done.untagged:
        if line.upper().startswith("CAPABILITY "):
            caps += parse_capabilities(line[11:])
    if done.status != "OK" and not caps:
        raise ProbeFailure("garbage", f"CAPABILITY failed: {done.status} {done.text}")
    return caps


def auth_mechanisms(caps: list[str]) -> list[str]:
    mechs: list[str] = []
    for cap in caps:
        if cap.upper().startswith("AUTH="):
            mech = cap[5:].upper()
            if mech and mech not in mechs:
                mechs.append(mech)
    return mechs


def _upper(caps: list[str]) -> set[str]:
    return {c.upper() for c in caps}


def quote(value: str) -> str | None:
    """An IMAP quoted string (RFC 3501 4.3), or None when a literal is needed."""
    if any(c in value for c in "\r\n\0") or not value.isascii():
        return None
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _login_command(session: Session, tags: Tags, user: str, password: str) -> Tagged:
    tag = tags.next()
    parts: list[str | bytes] = []
    for value in (user, password):
        quoted = quote(value)
        parts.append(quoted if quoted is not None else value.encode("utf-8"))
    # send quoted strings inline; a literal: "{n}" then wait for "+", then its bytes
    line = f"{tag} LOGIN"
    for part in parts:
        if isinstance(part, str):
            line += " " + part
            continue
        await session.send(f"{line} {{{len(part)}}}")
        go = await read_tagged(session, tag)
        if go.status != "+":
            return go
        assert session.writer is not None
        session.writer.write(part)
        line = ""
    await session.send(line)
    return await read_tagged(session, tag)


async def _authenticate_plain(session: Session, tags: Tags, user: str, password: str) -> Tagged:
    tag = tags.next()
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    if "SASL-IR" in _upper(session.result.capabilities_tls or session.result.capabilities):
        await session.send(f"{tag} AUTHENTICATE PLAIN {token}")  # RFC 4959
        return await read_tagged(session, tag)
    await session.send(f"{tag} AUTHENTICATE PLAIN")
    go = await read_tagged(session, tag)
    if go.status != "+":
        return go
    await session.send(token)
    done = await read_tagged(session, tag)
    if done.status == "+":  # another challenge: abort the exchange (RFC 3501 6.2.2)
        await session.send("*")
        done = await read_tagged(session, tag)
    return done


async def _login(session: Session, tags: Tags, caps: list[str]) -> None:
    result, options = session.result, session.options
    assert options.user is not None and options.password is not None
    if not session.tls_active and not options.insecure:
        result.login, result.login_error = "skipped", "no TLS: not sending a password in clear"
        return
    upper = _upper(caps)
    async with session.phase("login"):
        if "LOGINDISABLED" not in upper:
            done = await _login_command(session, tags, options.user, options.password)
        elif "AUTH=PLAIN" in upper:
            done = await _authenticate_plain(session, tags, options.user, options.password)
        else:
            result.login, result.login_error = "skipped", "LOGINDISABLED and no AUTH=PLAIN"
            return
    if done.status == "OK":
        result.login = "ok"
    else:
        result.login, result.login_error = "failed", f"{done.status} {done.text}".strip()


async def _body(session: Session) -> None:
    result, tags = session.result, Tags()
    async with session.phase("banner"):
        greeting = await read_line(session)
    result.banner = greeting
    result.tarpit = result.timings["banner"] > session.options.tarpit_after
    word = greeting[2:].split(" ", 1)[0].upper() if greeting.startswith("* ") else ""
    if word == "BYE":
        raise ProbeFailure("rejected", f"greeting {greeting[:200]}")
    if word not in ("OK", "PREAUTH"):
        raise ProbeFailure("garbage", f"not an IMAP greeting: {greeting[:120]!r}")
    async with session.phase("capabilities"):
        code = _CAP_CODE.search(greeting)
        caps = parse_capabilities(code.group(1)) if code else await capability(session, tags)
    if session.tls_active:
        result.capabilities_tls = caps
        result.auth_mechanisms = auth_mechanisms(caps)
    else:
        result.capabilities = caps
        result.auth_before_tls = auth_mechanisms(caps)
        result.auth_mechanisms = list(result.auth_before_tls)
        result.starttls_offered = "STARTTLS" in _upper(caps)
    if result.starttls_offered and word == "OK":
        tag = tags.next()
        session.mark("starttls")
        await session.send(f"{tag} STARTTLS")
        done = await read_tagged(session, tag)
        if done.status != "OK":
            result.starttls_ok = False
            raise ProbeFailure("tls_failed", f"STARTTLS refused: {done.status} {done.text}")
        try:
            await session.start_tls()
        except ProbeFailure:
            result.starttls_ok = False
            raise
        result.starttls_ok = True
        async with session.phase("capabilities_tls"):
            caps = await capability(session, tags)
        result.capabilities_tls = caps
        result.auth_mechanisms = auth_mechanisms(caps)
    if session.options.user is not None and session.options.password is not None:
        if word == "OK":
            await _login(session, tags, caps)
        else:
            result.login, result.login_error = "skipped", "PREAUTH: logged in without a password"
    result.state = "ok"
    tag = tags.next()

    async def bye() -> None:
        try:
            await read_tagged(session, tag)
        except ProbeFailure:  # "* BYE" is the expected answer to LOGOUT
            await read_tagged(session, tag)

    await session.polite_close(f"{tag} LOGOUT", bye)


async def probe_imap(
    target: Target,
    options: ProbeOptions,
    deadline: float | None = None,
    *,
    result: ProbeResult | None = None,
) -> ProbeResult:
    """Probe an IMAP or IMAPS port; never raises (see ProbeResult.state)."""
    return await run_probe(target, options, _body, deadline, result)


__all__ = ["auth_mechanisms", "parse_capabilities", "probe_imap", "quote", "read_tagged"]
