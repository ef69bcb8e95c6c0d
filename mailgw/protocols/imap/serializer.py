"""IMAP response serializer: Python values -> response bytes (RFC 3501 section 7).

Theory of operation
-------------------
Responses are built from a small value model and always end in CRLF:

- ``None`` -> ``NIL``; ``int`` -> ``number``; ``Atom("\\\\Seen")`` -> the atom as is;
- ``str`` / ``bytes`` -> a ``string`` (RFC 3501 section 4.3): a ``quoted``
  string when every octet is a 7-bit TEXT-CHAR other than NUL and the value
  is short, else a ``literal`` ``{n}`` CRLF octets.  Strings are UTF-8
  encoded; 8-bit, CR, LF or NUL force a literal (quoted strings cannot carry
  them; a server may always use a literal).  ``Literal(b"...")`` forces one;
- ``list`` / ``tuple`` -> a parenthesised list (RFC 3501 section 4.4);
- ``Raw(b"...")`` -> pre-encoded bytes (e.g. ``BODY[]`` as a data item name).

Status responses (7.1): ``tagged()``, ``untagged()`` with an optional
response code (``[UIDVALIDITY 3]``), ``continuation()`` (7.5).  Untagged
data (7.2-7.4): ``capability()``, ``flags()``, ``exists()``, ``recent()``,
``expunge()``, ``fetch()``, ``search()``, ``esearch()``, ``list_()``,
``status()``, ``enabled()``.  Text from the application must be one line of
printable text; anything else is a :class:`LocalProtocolError`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailgw.protocols.errors import LocalProtocolError
from mailgw.protocols.imap.utf7 import encode_mutf7

CRLF = b"\r\n"
MAX_QUOTED = 1024  # longer strings go out as literals: easier on line-based clients
_STATUSES = frozenset({"OK", "NO", "BAD", "PREAUTH", "BYE"})


@dataclass(frozen=True, slots=True)
class Atom:
    """Sent verbatim: flags, keywords, NIL-like names (must contain no SP/CTL)."""

    value: str


@dataclass(frozen=True, slots=True)
class Literal:
    """Always sent as a literal."""

    value: bytes


@dataclass(frozen=True, slots=True)
class Raw:
    """Pre-encoded octets inserted as is (e.g. ``BODY[HEADER]`` item names)."""

    value: bytes


Value = None | int | str | bytes | Atom | Literal | Raw | Sequence["Value"]


def _quotable(data: bytes) -> bool:
    # QUOTED-CHAR is a 7-bit TEXT-CHAR; NUL is not a CHAR (RFC 3501 section 9).
    if len(data) > MAX_QUOTED:
        return False
    return all(0x01 <= b <= 0x7F and b not in (0x0A, 0x0D) for b in data)


def string(value: str | bytes | bytearray) -> bytes:
    """string = quoted / literal, chosen as the module docstring says."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if _quotable(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def astring(value: str | bytes) -> bytes:
    """An atom when the value is a plain atom (not NIL), else a string."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if data and data.upper() != b"NIL" and all(_is_astring_char(b) for b in data):
        return data
    return string(data)


def _is_astring_char(b: int) -> bool:
    return 0x20 < b < 0x7F and b not in b'(){%*"\\'


def mailbox(name: str) -> bytes:
    """A mailbox name: modified UTF-7 (RFC 3501 5.1.3), as astring."""
    return astring(encode_mutf7(name))


def value(v: Value) -> bytes:
    if v is None:
        return b"NIL"
    if isinstance(v, bool):
        raise LocalProtocolError("booleans have no IMAP form")
    if isinstance(v, int):
        if v < 0:
            raise LocalProtocolError(f"negative number {v}")
        return str(v).encode("ascii")
    if isinstance(v, str | bytes | bytearray):
        return string(v)
    if isinstance(v, Atom):
        return _atom(v.value)
    if isinstance(v, Literal):
        return literal(v.value)
    if isinstance(v, Raw):
        return v.value
    return b"(" + b" ".join(value(item) for item in v) + b")"


def _atom(text: str) -> bytes:
    data = text.encode("utf-8")
    if not data or any(b <= 0x20 or b >= 0x7F or b in b'(){"' for b in data):
        raise LocalProtocolError(f"not an atom: {text!r}")
    return data


def _text(text: str) -> bytes:
    if "\r" in text or "\n" in text or not text.isprintable():
        raise LocalProtocolError(f"response text must be one printable line: {text!r}")
    return text.encode("utf-8")


def _code(code: str | None) -> bytes:
    if code is None:
        return b""
    if "]" in code or not code or not code.isprintable() or "\r" in code:
        raise LocalProtocolError(f"invalid response code {code!r}")
    return b"[" + code.encode("utf-8") + b"] "


def _status(status: str) -> bytes:
    if status not in _STATUSES:
        raise LocalProtocolError(f"invalid status {status!r}")
    return status.encode("ascii")


# --- status responses (RFC 3501 7.1) ------------------------------------------


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text`` CRLF (RFC 3501 section 7.1)."""
    if status not in ("OK", "NO", "BAD"):
        raise LocalProtocolError(f"invalid tagged status {status!r}")
    return _atom(tag) + b" " + _status(status) + b" " + _code(code) + _text(text) + CRLF


def untagged(status: str, text: str, code: str | None = None) -> bytes:
    """``* OK|NO|BAD|PREAUTH|BYE [code] text`` CRLF."""
    return b"* " + _status(status) + b" " + _code(code) + _text(text) + CRLF


def continuation(text: str = "Ready for literal data") -> bytes:
    """``+ text`` CRLF (RFC 3501 section 7.5)."""
    return b"+ " + _text(text) + CRLF


def continuation_base64(data: bytes) -> bytes:
    """A SASL challenge: ``+ base64`` CRLF (RFC 3501 section 6.2.2); empty for b""."""
    return b"+ " + base64.b64encode(data) + CRLF


def data(*items: Value | Raw) -> bytes:
    """Untagged data: ``*`` then the items separated by SP (lists parenthesised)."""
    return b"* " + b" ".join(value(item) for item in items) + CRLF


# --- untagged data (RFC 3501 7.2-7.4) ---------------------------------------------


def capability(caps: Iterable[str]) -> bytes:
    return b"* CAPABILITY " + b" ".join(_atom(cap) for cap in caps) + CRLF


def enabled(caps: Iterable[str]) -> bytes:  # RFC 5161 section 3.2
    return b"* ENABLED" + b"".join(b" " + _atom(cap) for cap in caps) + CRLF


def flags(flag_names: Iterable[str]) -> bytes:
    return b"* FLAGS " + value([Atom(f) for f in flag_names]) + CRLF


def exists(n: int) -> bytes:
    return b"* %d EXISTS\r\n" % _count(n)


def recent(n: int) -> bytes:
    return b"* %d RECENT\r\n" % _count(n)


def expunge(seq: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % _count(seq, nonzero=True)


def _count(n: int, nonzero: bool = False) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < (1 if nonzero else 0):
        raise LocalProtocolError(f"invalid number {n!r}")
    return n


def fetch(seq: int, items: Sequence[tuple[str | Raw, Value]]) -> bytes:
    """``* seq FETCH (name value ...)``; names are atoms (``"FLAGS"``) or ``Raw``
    (``BODY[1.MIME]<0>``); values use the value model (strings choose quoted or
    literal by themselves)."""
    parts: list[bytes] = []
    for name, item in items:
        parts.append(name.value if isinstance(name, Raw) else _atom(name))
        parts.append(value(item))
    return b"* %d FETCH (" % _count(seq, nonzero=True) + b" ".join(parts) + b")" + CRLF


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SEARCH n...`` (RFC 3501 7.2.5), ``(MODSEQ n)`` from RFC 7162 3.1.5."""
    out = b"* SEARCH" + b"".join(b" %d" % _count(n, nonzero=True) for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % _count(modseq)
    return out + CRLF


def esearch(tag: str, uid: bool, items: Sequence[tuple[str, int | str]]) -> bytes:
    """``* ESEARCH (TAG "t") [UID] MIN 1 ALL 1:3`` (RFC 4731 section 3.1)."""
    out = b'* ESEARCH (TAG "' + _atom(tag) + b'")'
    if uid:
        out += b" UID"
    for name, item in items:
        out += b" " + _atom(name) + b" " + (_atom(item) if isinstance(item, str) else value(item))
    return out + CRLF


def list_(attributes: Iterable[str], delimiter: str | None, name: str, kind: str = "LIST") -> bytes:
    """``* LIST (\\HasNoChildren) "." INBOX`` (RFC 3501 7.2.2); kind LSUB for 7.2.3."""
    if kind not in ("LIST", "LSUB"):
        raise LocalProtocolError(f"invalid list kind {kind!r}")
    delim = value(delimiter) if delimiter is not None else b"NIL"
    attrs = value([Atom(a) for a in attributes])
    return b"* " + kind.encode() + b" " + attrs + b" " + delim + b" " + mailbox(name) + CRLF


def status(name: str, items: Sequence[tuple[str, int]]) -> bytes:
    """``* STATUS name (MESSAGES 3 UIDNEXT 9)`` (RFC 3501 7.2.4)."""
    body = b" ".join(_atom(k) + b" %d" % _count(v) for k, v in items)
    return b"* STATUS " + mailbox(name) + b" (" + body + b")" + CRLF


def bye(text: str, code: str | None = None) -> bytes:
    return untagged("BYE", text, code)
