"""MIME structure scanner: raw message bytes -> a tree of parts with byte offsets.

Theory of operation
-------------------
:func:`parse` scans a stored message (CRLF or bare-LF line ends, any octets)
once and returns a :class:`Message`: the original buffer plus a tree of
:class:`Part` objects that hold *offsets* into it, never copies of bodies.
The rules follow RFC 2045/2046 as Dovecot's ``message-parser.c`` applies
them, so that BODYSTRUCTURE, sizes and section numbers agree with Dovecot
on the same Maildir:

- A header block ends at the first empty line (RFC 5322 2.1); a line that
  starts with SP/HTAB continues the previous field (RFC 5322 2.2.3).  A
  header without an empty line runs to the end of the data (empty body).
- Content-* fields only count when the entity is MIME: it has Mime-Version
  or Content-Type (RFC 2045 4; Dovecot is lenient about Mime-Version), or
  it is a body part of a multipart (RFC 2046 5.1).  Without a usable
  Content-Type an entity is text/plain (RFC 2045 5.2), message/rfc822 in a
  multipart/digest (RFC 2046 5.1.5).
- Boundaries (RFC 2046 5.1.1): a line that *starts* with ``--boundary``
  closes the current body part; with ``--`` after it, the multipart.  The
  [CR]LF before the boundary line belongs to the boundary, not to the part.
  Boundaries of all enclosing multiparts are active, the longest match
  wins (ties: the innermost), and a line matching an outer boundary closes
  every inner part as well (a missing inner close-delimiter).  A boundary
  line inside a body part's header block ends that header.
- A multipart without a boundary parameter, or whose boundary never
  occurs, has no children.  message/rfc822 (RFC 2046 5.2.1) has exactly one
  child: the embedded message, which runs to the end of the part.
- Nesting is bounded (:data:`MAX_DEPTH`, :data:`MAX_PARTS`): deeper
  multiparts and message/rfc822 parts are treated as opaque leaves.

Sizes are "as on the wire": each bare LF counts as CRLF (RFC 3501 2.3.4
RFC822.SIZE; 7.4.2 body size), computed with ``bytes.count`` over offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_DEPTH = 100  #: nested multipart / message/rfc822 levels (Dovecot's default)
MAX_PARTS = 10000  #: parts in one message (Dovecot's default)

TEXT = "text"
MULTIPART = "multipart"
MESSAGE = "message"  # message/rfc822 (only this subtype is structured)
OTHER = "other"

_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(slots=True, eq=False)
class Header:
    """One header field: ``name`` as written (trailing WSP removed), ``value``
    the raw octets after the colon and leading WSP, folding line ends kept."""

    name: bytes
    value: bytes
    start: int  # offset of the field's first octet
    end: int  # offset after its last line end


@dataclass(slots=True, eq=False)
class ContentType:
    """A parsed Content-Type (RFC 2045 5.1), case as written."""

    type: str
    subtype: str | None
    params: list[tuple[str, str]]
    broken: bool = False


@dataclass(slots=True, eq=False)
class Part:
    """One MIME entity.  ``data[header_start:body_start]`` is its header block
    (with the empty line), ``data[body_start:body_end]`` its body."""

    header_start: int
    body_start: int = 0
    body_end: int = 0
    headers: list[Header] = field(default_factory=list)
    kind: str = TEXT  # TEXT / MULTIPART / MESSAGE / OTHER
    is_mime: bool = False
    content_type: ContentType | None = None  # only when is_mime and present
    boundary: bytes | None = None
    children: list[Part] = field(default_factory=list)  # MESSAGE: exactly one

    @property
    def header_end(self) -> int:
        return self.body_start

    def get(self, name: str) -> list[Header]:
        """Every field called ``name`` (case-insensitive), in order."""
        key = name.lower().encode("ascii")
        return [h for h in self.headers if h.name.lower() == key]


@dataclass(slots=True, eq=False)
class Message:
    """A parsed message: the buffer (not copied) and its root part."""

    data: bytes
    root: Part
    crlf_only: bool  # no bare LF anywhere: wire form == stored form

    def size(self, start: int, end: int) -> int:
        """Octets of ``data[start:end]`` with every bare LF counted as CRLF."""
        if end <= start:
            return 0
        if self.crlf_only:
            return end - start
        lf = self.data.count(b"\n", start, end)
        crlf = self.data.count(b"\r\n", start, end)
        return end - start + lf - crlf

    def lines(self, start: int, end: int) -> int:
        """Line count as IMAP reports it: the number of LFs in the range."""
        return self.data.count(b"\n", start, end) if end > start else 0

    def wire(self, start: int, end: int) -> bytes:
        """``data[start:end]`` with bare LFs turned into CRLF."""
        if end <= start:
            return b""
        chunk = self.data[start:end]
        if self.crlf_only or chunk.count(b"\n") == chunk.count(b"\r\n"):
            return chunk
        return _BARE_LF.sub(b"\r\n", chunk)

    @property
    def total_size(self) -> int:
        return self.size(0, len(self.data))


# --- header fields ------------------------------------------------------------------------


def _parse_header(
    data: bytes, pos: int, boundaries: list[bytes]
) -> tuple[list[Header], int, int, tuple[int, int] | None]:
    """Parse a header block at ``pos``.

    Returns ``(headers, header_end, body_start, hit)``: normally ``header_end
    == body_start`` is just after the empty line; when a boundary line
    interrupts the header, ``hit = (line_start, boundary index)`` and the
    [CR]LF before that line is not part of the header.
    """
    headers: list[Header] = []
    n = len(data)
    start = pos
    fields: list[tuple[int, int, int]] = []  # (field start, value start, name end)
    while pos < n:
        if boundaries and data.startswith(b"--", pos):
            idx = _match_boundary(data, pos + 2, boundaries)
            if idx is not None:
                end = _before_newline(data, pos, start)
                _close(data, fields, headers, end)
                return headers, end, end, (pos, idx)
        nl = data.find(b"\n", pos)
        line_end = n if nl < 0 else nl + 1
        content_end = n if nl < 0 else (nl - 1 if nl > pos and data[nl - 1] == 0x0D else nl)
        if content_end == pos and nl >= 0:  # the empty line: end of header
            _close(data, fields, headers, pos)
            return headers, line_end, line_end, None
        if not (fields and data[pos] in (0x20, 0x09)):  # else: a continuation line
            colon = data.find(b":", pos, content_end)
            if colon < 0:
                name_end = value_start = content_end  # no colon: all name, no value
            else:
                name_end = colon
                value_start = colon + 1
                while value_start < content_end and data[value_start] in (0x20, 0x09):
                    value_start += 1
            fields.append((pos, value_start, name_end))
        pos = line_end
    _close(data, fields, headers, n)
    return headers, n, n, None


def _close(data: bytes, fields: list[tuple[int, int, int]], out: list[Header], end: int) -> None:
    for i, (start, value_start, name_end) in enumerate(fields):
        f_end = fields[i + 1][0] if i + 1 < len(fields) else end
        value = data[value_start:f_end] if value_start < f_end else b""
        out.append(
            Header(
                name=data[start:name_end].rstrip(b" \t"),
                value=value.rstrip(b"\r\n"),
                start=start,
                end=f_end,
            )
        )


# --- RFC 822 / 2045 lexical helpers (Dovecot's rfc822-parser) ------------------------------

_ATEXT = frozenset(b"!#$%&'*+-/=?^_`{|}~") | frozenset(range(0x30, 0x3A))
_ATEXT |= frozenset(range(0x41, 0x5B)) | frozenset(range(0x61, 0x7B)) | frozenset(range(0x80, 256))
_TOKEN = (_ATEXT - frozenset(b"/=?")) | frozenset(b".")


class Lexer:
    """A cursor over a header value with RFC 5322 CFWS skipping."""

    __slots__ = ("data", "end", "last_comment", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: bytes | None = None

    def at_end(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_comment(self) -> int:
        data, level = self.data, 1
        self.pos += 1
        start = self.pos
        parts: list[bytes] = []
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0x28:
                level += 1
            elif c == 0x29:
                level -= 1
                if level == 0:
                    parts.append(data[start : self.pos])
                    self.last_comment = b"".join(parts)
                    self.pos += 1
                    return 1 if self.pos < self.end else 0
            elif c == 0x5C:
                parts.append(data[start : self.pos])
                start = self.pos + 1
                self.pos += 1
                if self.pos >= self.end:
                    return -1
            self.pos += 1
        return -1

    def skip_lwsp(self) -> int:
        """Skip WSP, CR, LF and comments: 1 more data, 0 at end, -1 broken."""
        data = self.data
        while self.pos < self.end:
            c = data[self.pos]
            if c in (0x20, 0x09, 0x0D, 0x0A):
                self.pos += 1
                continue
            if c != 0x28:
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < self.end else 0

    def token(self, chars: frozenset[int] = _TOKEN) -> tuple[bytes, int]:
        data, start = self.data, self.pos
        while self.pos < self.end and data[self.pos] in chars:
            self.pos += 1
        value = data[start : self.pos]
        if self.pos >= self.end:
            return value, 0
        return value, self.skip_lwsp()

    def atom(self) -> tuple[bytes, int]:
        if self.pos >= self.end or self.data[self.pos] not in _ATEXT:
            return b"", -1
        return self.token(_ATEXT)

    def quoted_string(self) -> tuple[bytes, int]:
        """At a DQUOTE: the unescaped content (folding CR/LF removed)."""
        data = self.data
        self.pos += 1
        out = bytearray()
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0x22:
                self.pos += 1
                return bytes(out), self.skip_lwsp()
            if c == 0x0A:
                if out and out[-1] == 0x0D:
                    out.pop()
            elif c == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return bytes(out), -1
                out.append(data[self.pos])
            else:
                out.append(c)
            self.pos += 1
        return bytes(out), -1


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def parse_params(lx: Lexer) -> list[tuple[str, str]]:
    """``*(";" attribute "=" value)`` with RFC 2231 continuations merged the
    way Dovecot does (``name*0``/``name*1`` joined; ``name*`` values raw)."""
    plain: list[tuple[bytes, bytes]] = []
    ext: list[tuple[bytes, int, bool, bytes]] = []
    while True:
        ret, key, value = _content_param(lx)
        if ret == 0:
            break
        if ret < 0:
            if lx.at_end():
                break
            lx.pos += 1
            continue
        star = key.find(b"*")
        if star >= 0:  # name*, name*N or name*N*: RFC 2231 3-4 (parsed as Dovecot does)
            rest = key[star + 1 :] if len(key) > star + 1 else key[star:]
            idx = 0
            digits = 0
            if len(key) > star + 1:
                while digits < len(rest) and 0x30 <= rest[digits] <= 0x39:
                    idx = idx * 10 + rest[digits] - 0x30
                    digits += 1
            rest = rest[digits:]
            extended = rest.startswith(b"*")
            if extended:
                rest = rest[1:]
            if not rest:
                ext.append((key[:star], idx, extended, value))
                continue
        plain.append((key, value))
    result = [(_text(k), _text(v)) for k, v in plain]
    if not ext:
        return result
    ext.sort(key=lambda p: (p[0], p[1]))
    i = 0
    while i < len(ext):
        j = i
        ok, have_ext, next_idx = True, False, 0
        while j < len(ext) and ext[j][0].lower() == ext[i][0].lower():
            if ext[j][1] != next_idx:
                ok = False
            have_ext = have_ext or ext[j][2]
            next_idx += 1
            j += 1
        if not ok:
            for name, idx, extended, value in ext[i:j]:
                key = b"%s*%d*" % (name, idx) if extended else b"%s*%d" % (name, idx)
                result.append((_text(key), _text(value)))
        else:
            buf = bytearray()
            if not ext[i][2] and have_ext:
                buf += b"''"
            for _name, _idx, extended, value in ext[i:j]:
                buf += value.replace(b"%", b"%25") if not extended and have_ext else value
            key = ext[i][0] + (b"*" if have_ext else b"")
            result.append((_text(key), _text(bytes(buf))))
        i = j
    return result


def _content_param(lx: Lexer) -> tuple[int, bytes, bytes]:
    if lx.at_end():
        return 0, b"", b""
    if lx.peek() != 0x3B:
        return -1, b"", b""
    lx.pos += 1
    if lx.skip_lwsp() <= 0:
        return -1, b"", b""
    key, ret = lx.token()
    if ret <= 0 or lx.peek() != 0x3D:
        return -1, b"", b""
    lx.pos += 1
    ret = lx.skip_lwsp()
    value = b""
    if ret <= 0:
        pass  # broken / no value
    elif lx.peek() == 0x22:
        value, ret = lx.quoted_string()
    elif lx.peek() == 0x3D:  # workaround for name==?utf-8?b?...?=
        start = lx.pos
        while not lx.at_end() and lx.peek() not in (0x3B, 0x20, 0x09, 0x0D, 0x0A):
            lx.pos += 1
        value = lx.data[start : lx.pos]
    else:
        value, ret = lx.token()
    return (-1 if ret < 0 else 1), key, value


def parse_content_type(value: bytes) -> ContentType:
    """RFC 2045 5.1 ``type "/" subtype *(";" parameter)``, leniently."""
    lx = Lexer(value)
    lx.skip_lwsp()
    broken = True
    ctype, subtype = b"", None
    if lx.skip_lwsp() > 0:
        ctype, ret = lx.token()
        if ret > 0 and lx.peek() == 0x2F:
            lx.pos += 1
            subtype = b""
            if lx.skip_lwsp() > 0:
                subtype, ret = lx.token()
                broken = ret < 0
    params = [] if broken else parse_params(lx)
    return ContentType(_text(ctype), None if subtype is None else _text(subtype), params, broken)


# --- the scanner --------------------------------------------------------------------------


def _match_boundary(data: bytes, pos: int, boundaries: list[bytes]) -> int | None:
    """Index of the longest boundary that ``data[pos:]`` starts with (ties:
    the innermost, i.e. the last in the list)."""
    best: int | None = None
    best_len = -1
    for i in range(len(boundaries) - 1, -1, -1):
        b = boundaries[i]
        if len(b) > best_len and data.startswith(b, pos):
            best, best_len = i, len(b)
    return best


def _find_boundary(
    data: bytes, pos: int, boundaries: list[bytes], at_line_start: bool
) -> tuple[int, int] | None:
    """The first line at or after ``pos`` that is a boundary line:
    ``(line_start, boundary index)``."""
    if not boundaries:
        return None
    if at_line_start and data.startswith(b"--", pos):
        idx = _match_boundary(data, pos + 2, boundaries)
        if idx is not None:
            return pos, idx
    i = pos
    while True:
        j = data.find(b"\n--", i)
        if j < 0:
            return None
        idx = _match_boundary(data, j + 3, boundaries)
        if idx is not None:
            return j + 1, idx
        i = j + 1


def _before_newline(data: bytes, line_start: int, floor: int) -> int:
    """Where a part ends when a boundary line starts at ``line_start``."""
    end = line_start
    if end > floor and data[end - 1] == 0x0A:
        end -= 1
        if end > floor and data[end - 1] == 0x0D:
            end -= 1
    return end


class _Scanner:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.parts = 0

    def entity(
        self,
        pos: int,
        boundaries: list[bytes],
        depth: int,
        in_multipart: bool,
        in_digest: bool,
    ) -> tuple[Part, tuple[int, int] | None]:
        """Parse one entity starting at ``pos``; returns it and the boundary
        line that ended it (``(line_start, index into boundaries)``) or None
        at the end of the data."""
        data = self.data
        self.parts += 1
        part = Part(header_start=pos, is_mime=in_multipart)
        headers, _header_end, body_start, hit = _parse_header(data, pos, boundaries)
        part.headers = headers
        part.body_start = body_start
        ctype: ContentType | None = None
        for h in headers:
            lname = h.name.lower()
            if lname == b"mime-version":
                part.is_mime = True
            elif lname == b"content-type":
                part.is_mime = True
                if ctype is None:
                    ctype = parse_content_type(h.value)
        if not part.is_mime:
            ctype = None
        part.content_type = ctype
        if ctype is None:
            part.kind = MESSAGE if in_digest else TEXT
        else:
            t = ctype.type.lower()
            sub = (ctype.subtype or "").lower()
            if t == "message" and sub == "rfc822" and ctype.subtype is not None:
                part.kind = MESSAGE
            elif t == "text":
                part.kind = TEXT
            elif t == "multipart" and ctype.subtype is not None:
                part.kind = MULTIPART
            else:
                part.kind = OTHER
            if part.kind == MULTIPART and not ctype.broken:
                for k, v in ctype.params:
                    if k.lower() == "boundary":
                        part.boundary = v.encode("utf-8", "surrogateescape")
                        break
        too_deep = depth >= MAX_DEPTH or self.parts >= MAX_PARTS
        if hit is not None:  # a boundary line cut the header: empty body
            part.body_end = body_start
            if part.kind == MESSAGE and not too_deep:
                child = Part(header_start=body_start, body_start=body_start, body_end=body_start)
                part.children.append(child)
            return part, hit
        if part.kind == MESSAGE and not too_deep:
            child, hit = self.entity(body_start, boundaries, depth + 1, False, False)
            part.children.append(child)
            part.body_end = child.body_end
            return part, hit
        if part.kind == MULTIPART and part.boundary is not None and not too_deep:
            return self._multipart(part, boundaries, depth)
        hit = _find_boundary(data, body_start, boundaries, True)
        part.body_end = len(data) if hit is None else _before_newline(data, hit[0], body_start)
        return part, hit

    def _multipart(
        self, part: Part, outer: list[bytes], depth: int
    ) -> tuple[Part, tuple[int, int] | None]:
        data = self.data
        assert part.boundary is not None
        bounds = [*outer, part.boundary]
        own = len(bounds) - 1
        digest = part.content_type is not None and (part.content_type.subtype or "").lower() == (
            "digest"
        )
        hit = _find_boundary(data, part.body_start, bounds, True)
        while True:
            if hit is None:
                part.body_end = len(data)
                return part, None
            line_start, idx = hit
            if idx != own:  # an enclosing multipart's boundary: we end too
                part.body_end = _before_newline(data, line_start, part.body_start)
                return part, hit
            after = line_start + 2 + len(part.boundary)
            if data.startswith(b"--", after):  # close-delimiter: epilogue follows
                hit = _find_boundary(data, after, outer, False)
                if hit is None:
                    part.body_end = len(data)
                    return part, None
                part.body_end = _before_newline(data, hit[0], part.body_start)
                return part, hit
            nl = data.find(b"\n", after)
            if nl < 0:  # boundary line at the very end: no part follows
                part.body_end = len(data)
                return part, None
            child, hit = self.entity(nl + 1, bounds, depth + 1, True, digest)
            part.children.append(child)
            if hit is not None and hit[1] < len(outer):
                part.body_end = _before_newline(data, hit[0], part.body_start)
                return part, hit


def parse(data: bytes) -> Message:
    """Scan ``data`` (a whole stored message) into a :class:`Message`; never raises
    on malformed input."""
    data = bytes(data)
    crlf_only = data.count(b"\n") == data.count(b"\r\n")
    root, _hit = _Scanner(data).entity(0, [], 0, False, False)
    return Message(data=data, root=root, crlf_only=crlf_only)


def walk(part: Part) -> list[Part]:
    """The part and all its descendants, depth-first."""
    out = [part]
    for child in part.children:
        out.extend(walk(child))
    return out
