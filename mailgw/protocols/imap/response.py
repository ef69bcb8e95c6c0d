"""Sans-IO parser of IMAP server responses (the client side of RFC 3501).

Theory of operation
-------------------
**Framing.**  A response is a line that may be interrupted by literals: a line
ending in ``{n}`` (or ``~{n}``, RFC 3516 literal8) is followed by exactly ``n``
octets and then the rest of the response (RFC 3501 4.3, 7.5).  Bytes go in
with :meth:`ResponseParser.receive_data` (``b""`` is EOF);
:meth:`ResponseParser.next_event` hands out one event at a time or
:data:`NEED_DATA`.

**Literals are not buffered when large.**  A literal of at most
``inline_literal_max`` octets (a folder name, a header field) is kept inline.
A larger one (a ``BODY[]``) is handed out as it arrives: :class:`LiteralStart`
(size), :class:`LiteralData` chunks, :class:`LiteralEnd`; the parsed response
that follows holds a :class:`Streamed` placeholder (its index among this
response's streamed literals) where the literal's value would be.  The caller
routes the chunks to a sink (``BodyWriter``) and swaps the placeholder.

**Parsing** (RFC 3501 7 and the section 9 grammar): ``+`` continuation
(:class:`Continuation`), tagged completion (:class:`Tagged`), untagged status
``OK/NO/BAD/BYE/PREAUTH`` (:class:`Status`) with response codes (7.1:
UIDVALIDITY, UIDNEXT, PERMANENTFLAGS, CAPABILITY; RFC 4315 APPENDUID,
COPYUID; RFC 7889 APPENDLIMIT), CAPABILITY (7.2.1), LIST/LSUB (7.2.2-3, RFC
5258 extended data), STATUS (7.2.4), SEARCH (7.2.5), RFC 4731 ESEARCH, FLAGS
(7.2.6), RFC 2342 NAMESPACE, RFC 5161 ENABLED, EXISTS/RECENT (7.3),
EXPUNGE (7.4.1) and FETCH (7.4.2; UID, FLAGS, INTERNALDATE, RFC822.SIZE,
``BODY[section]<origin>``, anything else as a generic value).  Unknown
untagged responses become :class:`OtherUntagged`.

**Errors.**  Anything malformed, a line longer than ``max_line`` octets or a
response bigger than ``max_response`` raises :class:`ResponseError` (a
:class:`RemoteProtocolError`); the parser then stays failed.  Any other
exception is a bug.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final

from mailgw.protocols.errors import ProtocolError, RemoteProtocolError


class ResponseError(RemoteProtocolError):
    """The server's response broke the protocol (no reply is sent for it)."""

    def __init__(self, text: str) -> None:
        ProtocolError.__init__(self, text)
        self.reply = b""
        self.text = text


class _NeedData(enum.Enum):
    """More bytes are needed (an enum so that ``is NEED_DATA`` narrows types)."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA

# --- events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Streamed:
    """Placeholder for a literal handed out as LiteralData (index within the response)."""

    index: int
    size: int


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """``[NAME value]`` of RFC 3501 7.1; ``value`` parsed for the known codes."""

    name: str
    value: object = None


@dataclass(frozen=True, slots=True)
class LiteralStart:
    size: int


@dataclass(frozen=True, slots=True)
class LiteralData:
    data: bytes


@dataclass(frozen=True, slots=True)
class LiteralEnd:
    pass


@dataclass(frozen=True, slots=True)
class Continuation:
    text: str


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: str
    status: str  # OK / NO / BAD
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Status:
    """Untagged OK / NO / BAD / BYE / PREAUTH."""

    status: str
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Capability:
    caps: frozenset[str]  # upper-cased


@dataclass(frozen=True, slots=True)
class ListResponse:
    kind: str  # LIST / LSUB
    attrs: frozenset[str]  # as sent ("\\Noselect", "\\Sent")
    delimiter: str | None
    name: bytes  # the wire name (modified UTF-7 unless UTF8=ACCEPT)
    extended: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusData:
    mailbox: bytes
    items: dict[str, int]


@dataclass(frozen=True, slots=True)
class Search:
    numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ESearch:
    tag: str | None
    uid: bool
    data: dict[str, object]


@dataclass(frozen=True, slots=True)
class Flags:
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Namespace:
    """Each of personal / other users / shared: a tuple of (prefix, delimiter)."""

    personal: tuple[tuple[bytes, str | None], ...]
    other: tuple[tuple[bytes, str | None], ...]
    shared: tuple[tuple[bytes, str | None], ...]


@dataclass(frozen=True, slots=True)
class Enabled:
    caps: frozenset[str]


@dataclass(frozen=True, slots=True)
class Exists:
    count: int


@dataclass(frozen=True, slots=True)
class Recent:
    count: int


@dataclass(frozen=True, slots=True)
class Expunge:
    seq: int


@dataclass(frozen=True, slots=True)
class Fetch:
    """``* seq FETCH (...)``.  Keys upper-case: ``UID`` int, ``FLAGS`` tuple[str],
    ``INTERNALDATE`` datetime, ``RFC822.SIZE`` int, ``BODY[...]`` bytes / None /
    :class:`Streamed` (the caller may swap it in place), others generic values."""

    seq: int
    items: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OtherUntagged:
    name: str
    data: bytes


Untagged = (
    Status
    | Capability
    | ListResponse
    | StatusData
    | Search
    | ESearch
    | Flags
    | Namespace
    | Enabled
    | Exists
    | Recent
    | Expunge
    | Fetch
    | OtherUntagged
)
Response = Continuation | Tagged | Untagged
Event = Response | LiteralStart | LiteralData | LiteralEnd

# --- framing -----------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"~?\{([0-9]{1,20})\+?\}\Z")
_LITERAL_HERE = re.compile(rb"~?\{([0-9]{1,20})\+?\}\r\n")
MAX_LINE = 1 << 20
MAX_RESPONSE = 8 << 20
INLINE_LITERAL_MAX = 1 << 16


class ResponseParser:
    """Feed server bytes, take events (see the module docstring)."""

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_response: int = MAX_RESPONSE,
        inline_literal_max: int = INLINE_LITERAL_MAX,
    ) -> None:
        self.max_line = max_line
        self.max_response = max_response
        self.inline_literal_max = inline_literal_max
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf known to hold no LF
        self._eof = False
        self._error: ResponseError | None = None
        self._events: deque[Event] = deque()
        self._reset()

    def _reset(self) -> None:
        self._parts = bytearray()  # the response so far, inline literals included
        self._lits: dict[int, Streamed | int] = {}
        self._streams = 0
        self._stream_left = 0  # > 0 while a literal streams
        self._inline_need = -1  # >= 0 while waiting for an inline literal

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events (STARTTLS injection check)."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """No response is partly received."""
        return not self._parts and self._stream_left == 0 and self._inline_need < 0

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        self._buf += data

    def next_event(self) -> Event | _NeedData:
        if self._error is not None:
            raise self._error
        try:
            if self._events:
                return self._events.popleft()
            event = self._step()
        except ResponseError as exc:
            self._error = exc
            raise
        return NEED_DATA if event is None else event

    def _fail(self, text: str) -> ResponseError:
        return ResponseError(text)

    def _step(self) -> Event | None:
        while True:
            if self._stream_left > 0:
                if not self._buf:
                    if self._eof:
                        raise self._fail("connection closed inside a literal")
                    return None
                n = min(self._stream_left, len(self._buf))
                chunk = bytes(self._buf[:n])
                del self._buf[:n]
                self._scan = 0
                self._stream_left -= n
                if self._stream_left == 0:
                    self._events.append(LiteralEnd())
                return LiteralData(chunk)
            if self._inline_need >= 0:
                if len(self._buf) < self._inline_need:
                    if self._eof:
                        raise self._fail("connection closed inside a literal")
                    return None
                self._parts += self._buf[: self._inline_need]
                del self._buf[: self._inline_need]
                self._scan = 0
                self._inline_need = -1
                continue
            lf = self._buf.find(b"\n", self._scan)
            if lf < 0:
                self._scan = len(self._buf)
                if len(self._buf) > self.max_line:
                    raise self._fail(f"response line longer than {self.max_line} octets")
                if self._eof and (self._buf or self._parts):
                    raise self._fail("connection closed inside a response")
                return None
            if lf + 1 > self.max_line:
                raise self._fail(f"response line longer than {self.max_line} octets")
            end = lf - 1 if lf > 0 and self._buf[lf - 1] == 0x0D else lf
            line = bytes(self._buf[:end])
            del self._buf[: lf + 1]
            self._scan = 0
            self._parts += line
            if len(self._parts) > self.max_response:
                raise self._fail(f"response longer than {self.max_response} octets")
            m = _LITERAL_AT_END.search(line)
            if m is None:
                data, lits = bytes(self._parts), self._lits
                self._reset()
                return _parse_response(data, lits)
            size = int(m.group(1))
            self._parts += b"\r\n"
            offset = len(self._parts)
            if size <= self.inline_literal_max:
                if len(self._parts) + size > self.max_response:
                    raise self._fail(f"response longer than {self.max_response} octets")
                self._lits[offset] = size
                self._inline_need = size
                continue
            self._lits[offset] = Streamed(self._streams, size)
            self._streams += 1
            self._stream_left = size
            return LiteralStart(size)


# --- parsing -----------------------------------------------------------------

_DIGITS = re.compile(rb"[0-9]{1,20}")
_ATOM = re.compile(rb'[^\x00-\x20\x7f()"{\]\[\\%*]+')
_FLAG = re.compile(rb'\\?[^\x00-\x20\x7f()"{\]\\%*]+|\\\*')
_GENERIC_ATOM = re.compile(rb'[^\x00-\x20\x7f()"]+')
_TAG = re.compile(rb'[^\x00-\x20\x7f(){%*"\\+]+')
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DATE_TIME = re.compile(
    r"\A([ 0-9]?[0-9])-([A-Za-z]{3})-([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([-+])([0-9]{2})([0-9]{2})\Z"
)
_INT_CODES = frozenset({"UIDVALIDITY", "UIDNEXT", "UNSEEN", "HIGHESTMODSEQ", "APPENDLIMIT"})
_SET_MAX = 1_000_000  # members of an expanded uid-set


def parse_internaldate(text: str) -> datetime:
    """RFC 3501 9 ``date-time`` (without the quotes) -> aware datetime."""
    m = _DATE_TIME.match(text)
    if m is None or m.group(2).upper() not in _MONTHS:
        raise ResponseError(f"bad date-time {text!r}")
    day, _, year, hh, mi, ss, sign, zh, zm = m.groups()
    offset = timedelta(hours=int(zh), minutes=int(zm))
    try:
        tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year), _MONTHS[m.group(2).upper()], int(day), int(hh), int(mi), int(ss), tzinfo=tz
        )
    except ValueError as exc:
        raise ResponseError(f"bad date-time {text!r}: {exc}") from None


def parse_uid_set(text: str) -> tuple[int, ...]:
    """``1,3:5`` -> (1, 3, 4, 5) (RFC 4315 uid-set; no ``*``)."""
    out: list[int] = []
    for item in text.split(","):
        lo, sep, hi = item.partition(":")
        if not lo.isdigit() or (sep and not hi.isdigit()) or len(lo) > 20 or len(hi) > 20:
            raise ResponseError(f"bad uid-set {text!r}")
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b:
            a, b = b, a
        if len(out) + (b - a + 1) > _SET_MAX:
            raise ResponseError("uid-set too large")
        out.extend(range(a, b + 1))
    return tuple(out)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class _Reader:
    def __init__(self, data: bytes, lits: dict[int, Streamed | int]) -> None:
        self.data = data
        self.lits = lits
        self.pos = 0

    def fail(self, what: str) -> ResponseError:
        near = self.data[self.pos : self.pos + 30]
        return ResponseError(f"{what} at octet {self.pos} near {near!r}")

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self, n: int = 1) -> bytes:
        return self.data[self.pos : self.pos + n]

    def sp(self) -> None:
        if self.peek() != b" ":
            raise self.fail("expected a space")
        self.pos += 1

    def expect(self, token: bytes) -> None:
        if self.peek(len(token)) != token:
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def end(self) -> None:
        while self.peek() == b" ":  # trailing spaces: tolerated
            self.pos += 1
        if not self.at_end():
            raise self.fail("unexpected data")

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def match(self, rx: re.Pattern[bytes], what: str) -> bytes:
        m = rx.match(self.data, self.pos)
        if m is None:
            raise self.fail(f"expected {what}")
        self.pos = m.end()
        return m.group(0)

    def atom(self) -> str:
        return self.match(_ATOM, "an atom").decode("ascii", "replace")

    def number(self) -> int:
        return int(self.match(_DIGITS, "a number"))

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        i = self.pos
        while i < len(data):
            c = data[i]
            if c == 0x22:
                self.pos = i + 1
                return bytes(out)
            if c == 0x5C and i + 1 < len(data):
                i += 1
                c = data[i]
            elif c in (0x0D, 0x0A):
                break
            out.append(c)
            i += 1
        self.pos = i
        raise self.fail("unterminated quoted string")

    def literal(self) -> bytes | Streamed:
        m = _LITERAL_HERE.match(self.data, self.pos)
        if m is None or m.end() not in self.lits:
            raise self.fail("bad literal")
        lit = self.lits[m.end()]
        if isinstance(lit, Streamed):
            self.pos = m.end()
            return lit
        self.pos = m.end() + lit
        return self.data[m.end() : self.pos]

    def string(self) -> bytes | Streamed:
        c = self.peek()
        if c == b'"':
            return self.quoted()
        if c in (b"{", b"~"):
            return self.literal()
        raise self.fail("expected a string")

    def small_string(self) -> bytes:
        s = self.string()
        if isinstance(s, Streamed):
            raise self.fail("literal too large here")
        return s

    def nstring(self) -> bytes | Streamed | None:
        if self.peek(3).upper() == b"NIL" and not _is_atom_char(self.peek(4)[3:]):
            self.pos += 3
            return None
        return self.string()

    def astring(self) -> bytes:
        if self.peek() in (b'"', b"{", b"~"):
            return self.small_string()
        return self.match(_GENERIC_ATOM, "an astring")

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        out: list[str] = []
        while self.peek() != b")":
            if out:
                self.sp()
            out.append(self.match(_FLAG, "a flag").decode("ascii", "replace"))
        self.pos += 1
        return tuple(out)

    def value(self, depth: int = 0) -> object:
        """A generic value: list (tuple), string (bytes), NIL (None), number or atom."""
        if depth > 50:
            raise self.fail("nesting too deep")
        c = self.peek()
        if c == b"(":
            self.pos += 1
            items: list[object] = []
            while self.peek() != b")":
                if items:
                    self.sp()
                items.append(self.value(depth + 1))
            self.pos += 1
            return tuple(items)
        if c in (b'"', b"{", b"~"):
            return self.string()
        token = self.match(_GENERIC_ATOM, "a value")
        if token.upper() == b"NIL":
            return None
        if token.isdigit() and len(token) <= 20:
            return int(token)
        return token.decode("ascii", "replace")

    def delimiter(self) -> str | None:
        v = self.nstring()
        if isinstance(v, Streamed):
            raise self.fail("bad delimiter")
        return None if v is None else _text(v)


def _is_atom_char(c: bytes) -> bool:
    return bool(c) and _GENERIC_ATOM.match(c) is not None


def _parse_response(data: bytes, lits: dict[int, Streamed | int]) -> Response:
    r = _Reader(data, lits)
    if data[:1] == b"+":
        return Continuation(_text(data[1:].removeprefix(b" ")))
    if data[:2] == b"* ":
        r.pos = 2
        return _untagged(r)
    tag = r.match(_TAG, "a tag").decode("ascii", "replace")
    r.sp()
    status = r.atom().upper()
    if status not in ("OK", "NO", "BAD"):
        raise r.fail(f"bad tagged status {status!r}")
    code, text = _resp_text(r)
    return Tagged(tag, status, code, text)


def _resp_text(r: _Reader) -> tuple[ResponseCode | None, str]:
    if r.at_end():
        return None, ""
    r.sp()
    code = None
    if r.peek() == b"[":
        close = r.data.find(b"]", r.pos)
        if close < 0:
            raise r.fail("unterminated response code")
        inner = r.data[r.pos + 1 : close]
        r.pos = close + 1
        code = _resp_code(inner)
        if r.peek() == b" ":
            r.pos += 1
    return code, _text(r.rest())


def _resp_code(inner: bytes) -> ResponseCode:
    name_b, _, arg_b = inner.partition(b" ")
    name = name_b.decode("ascii", "replace").upper()
    if not name or _ATOM.fullmatch(name_b) is None:
        raise ResponseError(f"bad response code {inner!r}")
    arg = arg_b.decode("ascii", "replace").strip()
    if name in _INT_CODES:
        if not arg.isdigit() or len(arg) > 20:
            raise ResponseError(f"bad {name} value {arg!r}")
        return ResponseCode(name, int(arg))
    if name == "PERMANENTFLAGS":
        r = _Reader(arg_b.strip(), {})
        flags = r.flag_list()
        r.end()
        return ResponseCode(name, frozenset(flags))
    if name == "CAPABILITY":
        return ResponseCode(name, frozenset(arg.upper().split()))
    if name in ("APPENDUID", "COPYUID"):
        fields = arg.split()
        if len(fields) != (2 if name == "APPENDUID" else 3) or not fields[0].isdigit():
            raise ResponseError(f"bad {name} {arg!r}")
        if len(fields[0]) > 20:
            raise ResponseError(f"bad {name} {arg!r}")
        sets = tuple(parse_uid_set(f) for f in fields[1:])
        return ResponseCode(name, (int(fields[0]), *sets))
    return ResponseCode(name, arg or None)


def _untagged(r: _Reader) -> Untagged:
    if r.peek().isdigit():
        n = r.number()
        r.sp()
        kind = r.atom().upper()
        if kind == "EXISTS":
            r.end()
            return Exists(n)
        if kind == "RECENT":
            r.end()
            return Recent(n)
        if kind == "EXPUNGE":
            r.end()
            return Expunge(n)
        if kind == "FETCH":
            r.sp()
            return Fetch(n, _msg_att(r))
        return OtherUntagged(kind, r.rest().removeprefix(b" "))
    kind = r.atom().upper()
    if kind in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
        code, text = _resp_text(r)
        return Status(kind, code, text)
    if kind in ("CAPABILITY", "ENABLED"):
        caps = frozenset(_text(r.rest()).upper().split())
        return Capability(caps) if kind == "CAPABILITY" else Enabled(caps)
    if kind in ("LIST", "LSUB"):
        r.sp()
        attrs = r.flag_list()
        r.sp()
        delim = r.delimiter()
        r.sp()
        name = r.astring()
        ext: tuple[object, ...] = ()
        if r.peek() == b" " and r.peek(2).strip():
            r.sp()
            v = r.value()
            ext = v if isinstance(v, tuple) else (v,)
        r.end()
        return ListResponse(kind, frozenset(attrs), delim, name, ext)
    if kind == "STATUS":
        r.sp()
        mailbox = r.astring()
        r.sp()
        r.expect(b"(")
        items: dict[str, int] = {}
        while r.peek() != b")":
            if items:
                r.sp()
            key = r.atom().upper()
            r.sp()
            items[key] = r.number()
        r.pos += 1
        r.end()
        return StatusData(mailbox, items)
    if kind == "SEARCH":
        nums: list[int] = []
        while r.peek() == b" " and r.peek(2) != b" (":
            r.sp()
            if r.at_end():
                break
            nums.append(r.number())
        if r.peek(2) == b" (":  # RFC 7162 (MODSEQ n)
            r.sp()
            r.value()
        r.end()
        return Search(tuple(nums))
    if kind == "ESEARCH":
        return _esearch(r)
    if kind == "FLAGS":
        r.sp()
        flags = r.flag_list()
        r.end()
        return Flags(flags)
    if kind == "NAMESPACE":
        spaces = []
        for _ in range(3):
            r.sp()
            spaces.append(_namespace(r))
        r.end()
        return Namespace(spaces[0], spaces[1], spaces[2])
    return OtherUntagged(kind, r.rest().removeprefix(b" "))


def _esearch(r: _Reader) -> ESearch:
    tag: str | None = None
    uid = False
    data: dict[str, object] = {}
    if r.peek(2) == b" (":
        r.sp()
        v = r.value()
        if (
            not isinstance(v, tuple)
            or len(v) != 2
            or not isinstance(v[0], str)
            or v[0].upper() != "TAG"
            or not isinstance(v[1], bytes)
        ):
            raise r.fail("bad ESEARCH correlator")
        tag = _text(v[1])
    while not r.at_end():
        r.sp()
        key = r.atom().upper()
        if key == "UID" and not data:
            uid = True
            continue
        r.sp()
        data[key] = r.value()
    return ESearch(tag, uid, data)


def _namespace(r: _Reader) -> tuple[tuple[bytes, str | None], ...]:
    if r.peek(3).upper() == b"NIL":
        r.pos += 3
        return ()
    r.expect(b"(")
    out: list[tuple[bytes, str | None]] = []
    while r.peek() == b"(":
        r.pos += 1
        prefix = r.small_string()
        r.sp()
        delim = r.delimiter()
        while r.peek() == b" ":  # namespace-response-extension
            r.sp()
            r.value()
        r.expect(b")")
        out.append((prefix, delim))
    r.expect(b")")
    if not out:
        raise r.fail("empty namespace list")
    return tuple(out)


def _att_name(r: _Reader) -> str:
    start = r.pos
    r.match(_ATOM, "a FETCH item")
    if r.peek() == b"[":
        close = r.data.find(b"]", r.pos)
        if close < 0:
            raise r.fail("unterminated section")
        r.pos = close + 1
        if r.peek() == b"<":
            r.pos += 1
            r.number()
            r.expect(b">")
    return r.data[start : r.pos].decode("ascii", "replace").upper()


def _msg_att(r: _Reader) -> dict[str, object]:
    r.expect(b"(")
    items: dict[str, object] = {}
    first = True
    while r.peek() != b")":
        if not first:
            r.sp()
        first = False
        name = _att_name(r)
        r.sp()
        if name in ("UID", "RFC822.SIZE"):
            items[name] = r.number()
        elif name == "FLAGS":
            items[name] = r.flag_list()
        elif name == "INTERNALDATE":
            items[name] = parse_internaldate(_text(r.small_string()))
        elif name.startswith(("BODY[", "BINARY[", "RFC822")) and name != "RFC822.SIZE":
            items[name] = r.nstring()
        else:
            items[name] = r.value()
    r.pos += 1
    r.end()
    return items


__all__ = [
    "NEED_DATA",
    "Capability",
    "Continuation",
    "ESearch",
    "Enabled",
    "Event",
    "Exists",
    "Expunge",
    "Fetch",
    "Flags",
    "ListResponse",
    "LiteralData",
    "LiteralEnd",
    "LiteralStart",
    "Namespace",
    "OtherUntagged",
    "Recent",
    "Response",
    "ResponseCode",
    "ResponseError",
    "ResponseParser",
    "Search",
    "Status",
    "StatusData",
    "Streamed",
    "Tagged",
    "Untagged",
    "parse_internaldate",
    "parse_uid_set",
]
