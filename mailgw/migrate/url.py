"""Endpoint URLs of ``mailgw migrate``: parse them, show them without secrets.

Theory of operation.  An endpoint is named by a small URL (a subset of RFC 3986
generic syntax; the scheme names follow RFC 5092 for IMAP and RFC 2384 for POP)::

    imap://USER@HOST[:PORT]     port 143; STARTTLS when offered (RFC 3501 6.2.1)
    imaps://USER@HOST[:PORT]    port 993; TLS from the first byte (RFC 8314 3.3)
    pop3://USER@HOST[:PORT]     port 110; STLS when offered (RFC 2595 4)
    pop3s://USER@HOST[:PORT]    port 995; TLS from the first byte (RFC 8314 3.3)
    maildir:PATH                a Maildir root (cur/new/tmp), Maildir++ folders
    mbox:PATH                   an mbox file, or a directory tree of mbox files

``pop://`` and ``pops://`` (RFC 2384 3) are accepted as aliases.

* USER is percent-decoded (RFC 3986 2.1): ``user%40example.com`` is the login
  ``user@example.com``.  An unencoded ``@`` in the user part is also accepted:
  the host starts after the *last* ``@``.
* A password in the URL (``user:secret@host``, deprecated by RFC 3986 3.2.1) is
  refused: it would show in ``ps`` and the shell history.  Passwords come from
  a password file, an environment variable or a prompt.
* HOST is a name, an IPv4 address or an IPv6 literal in brackets (RFC 3986
  3.2.2): ``imap://u@[::1]:1143``.
* A path after the host (RFC 5092 mailbox part) is refused: the URL names a
  server; folders are chosen with ``--include``/``--exclude``/``--map``.
* PATH may be relative (to the current directory) or start with ``~``; it is
  made absolute, so the same endpoint maps to the same state file from any
  directory.  ``maildir:///srv/x`` (an empty authority) is ``maildir:/srv/x``.
* POP3 has no way to store messages (RFC 1939), so it is a source only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

from mailgw.errors import UsageError

Role = Literal["source", "destination"]

NETWORK_KINDS = ("imap", "imaps", "pop3", "pop3s")
FILE_KINDS = ("maildir", "mbox")
DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}
_ALIASES = {"pop": "pop3", "pops": "pop3s"}
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_USER_SAFE = "!$&'()*+,;="  # sub-delims kept readable in the display
EXAMPLES = (
    "imap://USER@HOST[:PORT], imaps://..., pop3://..., pop3s://..., maildir:PATH or mbox:PATH"
)


@dataclass(frozen=True)
class EndpointSpec:
    """A parsed endpoint.  Network kinds have ``user``/``host``/``port``;
    file kinds have an absolute ``path``."""

    kind: str  # imap, imaps, pop3, pop3s, maildir, mbox
    user: str | None = None
    host: str | None = None
    port: int | None = None
    path: Path | None = None

    @property
    def is_network(self) -> bool:
        return self.kind in NETWORK_KINDS

    @property
    def implicit_tls(self) -> bool:
        """TLS from the first byte (imaps, pop3s) rather than STARTTLS/STLS."""
        return self.kind in ("imaps", "pop3s")

    @property
    def needs_password(self) -> bool:
        return self.is_network

    @property
    def display(self) -> str:
        """The endpoint as a URL, never with a password: ``imap://alice@host:143``."""
        if self.is_network:
            host = self.host or ""
            if ":" in host:
                host = f"[{host}]"
            user = quote(self.user or "", safe=_USER_SAFE)
            return f"{self.kind}://{user}@{host}:{self.port}"
        return f"{self.kind}:{self.path}"

    def __str__(self) -> str:
        return self.display


def _redact(text: str) -> str:
    """``imap://user:secret@host`` -> ``imap://user:***@host`` (for error messages)."""
    scheme, sep, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{path}"


def _fail(text: str, role: Role, why: str) -> UsageError:
    return UsageError(f"{role} {_redact(text)!r}: {why}")


def _parse_port(text: str, port_text: str, role: Role) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _fail(text, role, f"port {port_text!r} is not a number from 1 to 65535")
    return int(port_text)


def _parse_hostport(text: str, hostport: str, role: Role) -> tuple[str, str | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` -> (host, port text or None)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _fail(text, role, "an IPv6 address needs a closing ']'")
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _fail(text, role, f"{host!r} is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise _fail(text, role, f"unexpected {rest!r} after the IPv6 address")
        return host, (rest[1:] if rest else None)
    if hostport.count(":") > 1:
        raise _fail(text, role, "write an IPv6 address in brackets: imap://user@[::1]:143")
    host, sep, port_text = hostport.partition(":")
    if not host:
        raise _fail(text, role, "no host name")
    if not _HOST_RE.match(host):
        raise _fail(text, role, f"{host!r} is not a host name or address")
    return host, (port_text if sep else None)


def _parse_network(text: str, kind: str, rest: str, role: Role) -> EndpointSpec:
    if not rest.startswith("//"):
        raise _fail(text, role, f"expected {kind}://USER@HOST[:PORT]")
    rest = rest[2:]
    if "?" in rest or "#" in rest:
        raise _fail(text, role, "a query or fragment is not allowed in an endpoint URL")
    authority, slash, path = rest.partition("/")
    if slash and path:
        raise _fail(
            text,
            role,
            "the URL names a server, not a folder: choose folders with "
            "--include/--exclude/--map (or --dst-folder)",
        )
    userinfo, at, hostport = authority.rpartition("@")
    if not at or not userinfo:
        raise _fail(text, role, f"no user name: write {kind}://USER@HOST (user%40domain for '@')")
    if ":" in userinfo:
        raise _fail(
            text,
            role,
            "a password in the URL is not allowed (it would show in ps and shell history): "
            "use --src-password-file/--dst-password-file or $MAILGW_SRC_PASSWORD/"
            "$MAILGW_DST_PASSWORD, or answer the prompt",
        )
    try:
        user = unquote(userinfo, errors="strict")
    except UnicodeDecodeError:
        raise _fail(text, role, "the user name is not valid UTF-8 after %-decoding") from None
    if not user or any(ord(c) < 32 or c == "\x7f" for c in user):
        raise _fail(text, role, "the user name is empty or has control characters")
    host, port_text = _parse_hostport(text, hostport, role)
    port = DEFAULT_PORTS[kind] if port_text is None else _parse_port(text, port_text, role)
    return EndpointSpec(kind=kind, user=user, host=host, port=port)


def _parse_file(text: str, kind: str, rest: str, role: Role) -> EndpointSpec:
    if rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            raise _fail(text, role, f"{kind}: paths are local: write {kind}:/path")
        rest = slash + tail
    if not rest:
        raise _fail(text, role, f"no path: write {kind}:PATH")
    if "\x00" in rest:
        raise _fail(text, role, "the path contains a NUL byte")
    return EndpointSpec(kind=kind, path=Path(os.path.abspath(os.path.expanduser(rest))))


def parse_endpoint(text: str, *, role: Role) -> EndpointSpec:
    """Parse a SOURCE or DEST argument; ``UsageError`` (exit 2) says what is wrong."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    kind = _ALIASES.get(scheme.lower(), scheme.lower())
    if not colon or not scheme or kind not in NETWORK_KINDS + FILE_KINDS:
        raise _fail(text, role, f"unknown endpoint: use {EXAMPLES}")
    if kind in NETWORK_KINDS:
        spec = _parse_network(text, kind, rest, role)
    else:
        spec = _parse_file(text, kind, rest, role)
    if role == "destination" and kind in ("pop3", "pop3s"):
        raise _fail(text, role, "POP3 can only be a source (it cannot store messages)")
    return spec


__all__ = ["DEFAULT_PORTS", "EndpointSpec", "Role", "parse_endpoint"]
