"""IMAP lexical layer: command framing with literals, and the token scanner.

Theory of operation
-------------------
**Framing** (:class:`Framer`).  An IMAP command is a line that may be
interrupted by literals: a line ending in ``{n}`` (synchronizing) or
``{n+}`` (RFC 7888 non-synchronizing) is followed by exactly ``n`` octets and
then the rest of the command (RFC 3501 section 4.3 and 7.5).  The framer
collects one command at a time into a single byte string, literal headers and
literal data inline exactly as on the wire (CRLF after every literal header),
and reports:

- :class:`LiteralStart` at each literal header, then waits: the connection
  decides (limits, state, APPEND streaming) and calls ``accept_literal()``,
  ``skip_literal()`` or ``drop_command()``;
- :class:`Chunk` for *streamed* literals (APPEND message bodies): their bytes
  are handed out as they arrive and never kept; the command records the
  literal's offset so the parser knows it has no inline data;
- :class:`Complete` with a :class:`RawCommand` at the final CRLF;
- :class:`TooLong` when a line exceeds ``max_line`` octets (CRLF included)
  or the whole command exceeds ``max_command``; the rest is then *discarded
  as it arrives* (never buffered), including any non-synchronizing literal
  the discarded line announces, so literal data is never taken for commands.

A bare LF is accepted as a line end (lenient, as most servers are).

**Scanning** (:class:`Scanner`).  Token rules of RFC 3501 section 9, named as
in the formal syntax: ``atom``, ``astring``, ``string``, ``quoted``,
``literal``, ``nstring``, ``number``, ``nz-number``, ``list-mailbox``,
``tag``.  Errors raise :class:`ParseError` (text for a BAD reply).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- RFC 3501 section 9 character classes ------------------------------------

_CTL = frozenset(range(0x00, 0x20)) | {0x7F}
# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM_SPECIALS = _CTL | frozenset(b'(){ %*"\\]')
ATOM_CHARS = frozenset(range(0x01, 0x80)) - _ATOM_SPECIALS  # ATOM-CHAR
ASTRING_CHARS = ATOM_CHARS | {ord("]")}  # ASTRING-CHAR = ATOM-CHAR / resp-specials
LIST_CHARS = ATOM_CHARS | frozenset(b"%*]")  # list-char
TAG_CHARS = ASTRING_CHARS - {ord("+")}  # tag = 1*<any ASTRING-CHAR except "+">

_LITERAL_AT_END = re.compile(rb"\{([0-9]{1,20})(\+?)\}\Z")
_TAIL_KEEP = 32  # bytes of a discarded line kept to spot a trailing literal header
_HEAD_KEEP = 64  # bytes of an over-long line kept to find its tag


class ParseError(Exception):
    """A syntax (or semantic) error in a client command.

    ``status`` is BAD for syntax errors; a few semantic refusals are NO
    (e.g. SEARCH with an unsupported charset: ``NO [BADCHARSET ...]``).
    """

    def __init__(self, text: str, *, status: str = "BAD", code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.code = code


# --- framing -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawCommand:
    """One complete command; ``streamed`` are offsets of streamed literal headers."""

    data: bytes
    streamed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LiteralStart:
    prefix: bytes  # the command so far, up to and including this literal's header + CRLF
    size: int
    sync: bool  # False for RFC 7888 ``{n+}``
    offset: int  # offset of "{" in the command


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes
    final: bool


@dataclass(frozen=True, slots=True)
class Complete:
    raw: RawCommand


@dataclass(frozen=True, slots=True)
class Line:
    """A whole line in raw-line mode (SASL responses, DONE), terminator removed."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TooLong:
    head: bytes  # the first octets of the command, to recover its tag
    what: str  # "Line" or "Command"


FramerItem = LiteralStart | Chunk | Complete | Line | TooLong

_LINE, _PENDING, _LITERAL, _STREAM, _SKIP, _DISCARD = range(6)


class Framer:
    def __init__(self, max_line: int, max_command: int) -> None:
        if max_line < 16 or max_command < max_line:
            raise ValueError("max_line must be >= 16 and max_command >= max_line")
        self.max_line = max_line
        self.max_command = max_command
        self.raw_lines = False  # next lines are not commands (SASL, IDLE)
        self._buf = bytearray()
        self._cmd = bytearray()
        self._streamed: list[int] = []
        self._mode = _LINE
        self._scan = 0  # bytes of _buf already searched for LF
        self._remaining = 0
        self._literal_size = 0
        self._pending: LiteralStart | None = None
        self._tail = b""

    # --- inspection --------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Octets held in memory (received bytes not yet used + the partial command)."""
        return len(self._buf) + len(self._cmd)

    def has_data(self) -> bool:
        return bool(self._buf) or bool(self._cmd) or self._mode != _LINE

    @property
    def streamed_offsets(self) -> tuple[int, ...]:
        """Offsets of the streamed literals of the command being built."""
        return tuple(self._streamed)

    @property
    def in_command(self) -> bool:
        """True between a literal header and the end of its command."""
        return bool(self._cmd) or self._mode != _LINE

    # --- input -------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buf += data

    def clear(self) -> None:
        self._buf.clear()
        self._reset_command()
        self._mode = _LINE
        self._scan = 0
        self._tail = b""

    def _reset_command(self) -> None:
        self._cmd.clear()
        self._streamed.clear()
        self._pending = None

    # --- decisions at a LiteralStart ---------------------------------------

    def accept_literal(self, stream: bool) -> None:
        """Read the announced literal: into the command, or as streamed Chunks."""
        pending = self._take_pending()
        self._remaining = self._literal_size = pending.size
        if stream:
            self._streamed.append(pending.offset)
            self._mode = _STREAM
        else:
            self._mode = _LITERAL

    def skip_literal(self) -> None:
        """The command is refused; discard the literal and the rest of the command."""
        pending = self._take_pending()
        self._reset_command()
        self._remaining = pending.size
        self._mode = _SKIP

    def drop_command(self) -> None:
        """The command is refused before a synchronizing literal: the client sends no more."""
        self._take_pending()
        self._reset_command()
        self._mode = _LINE

    def abort_literal(self) -> None:
        """Forget an accepted literal of which no octet was read (the server refused it)."""
        if self._mode not in (_LITERAL, _STREAM) or self._remaining != self._literal_size:
            raise RuntimeError("no unread accepted literal")
        self._reset_command()
        self._mode = _LINE

    def _take_pending(self) -> LiteralStart:
        if self._mode != _PENDING or self._pending is None:
            raise RuntimeError("no literal decision is pending")
        pending = self._pending
        self._pending = None
        return pending

    # --- output ------------------------------------------------------------

    def next(self) -> FramerItem | None:
        """The next framing item, or None when more data is needed (or a decision)."""
        while True:
            mode = self._mode
            if mode == _LINE:
                return self._line()
            if mode == _PENDING:
                return None
            if mode == _LITERAL:
                take = min(self._remaining, len(self._buf))
                self._cmd += self._buf[:take]
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return None
                self._mode = _LINE
                continue
            if mode == _STREAM:
                if self._remaining and not self._buf:
                    return None
                take = min(self._remaining, len(self._buf))
                chunk = bytes(self._buf[:take])
                del self._buf[:take]
                self._remaining -= take
                final = self._remaining == 0
                if final:
                    self._mode = _LINE
                return Chunk(chunk, final)
            if mode == _SKIP:
                take = min(self._remaining, len(self._buf))
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return None
                self._mode = _DISCARD
                self._tail = b""
                continue
            # _DISCARD: drop up to the next LF; follow a trailing {n+}
            if not self._discard():
                return None

    def _discard(self) -> bool:
        nl = self._buf.find(b"\n")
        if nl < 0:
            self._tail = (self._tail + bytes(self._buf[-_TAIL_KEEP:]))[-_TAIL_KEEP:]
            self._buf.clear()
            return False
        self._tail = (self._tail + bytes(self._buf[max(0, nl - _TAIL_KEEP) : nl]))[-_TAIL_KEEP:]
        del self._buf[: nl + 1]
        tail, self._tail = self._tail.rstrip(b"\r"), b""
        m = _LITERAL_AT_END.search(tail)
        if m and m.group(2):  # a non-synchronizing literal follows: skip its data too
            self._remaining = int(m.group(1))
            self._mode = _SKIP
        else:  # none, or synchronizing (the client waits for "+", which never comes)
            self._mode = _LINE
        return True

    def _too_long(self, what: str) -> TooLong:
        head = bytes(self._cmd[:_HEAD_KEEP]) if self._cmd else bytes(self._buf[:_HEAD_KEEP])
        self._reset_command()
        self._scan = 0
        self._mode = _DISCARD
        self._tail = b""
        return TooLong(head, what)

    def _line(self) -> FramerItem | None:
        nl = self._buf.find(b"\n", self._scan)
        if nl < 0:
            self._scan = len(self._buf)
            # An unterminated line needs at least one more octet (the LF).
            if len(self._buf) >= self.max_line:
                return self._too_long("Line")
            if len(self._cmd) + len(self._buf) >= self.max_command:
                return self._too_long("Command")
            return None
        self._scan = 0
        if nl + 1 > self.max_line:
            return self._too_long("Line")
        if len(self._cmd) + nl + 1 > self.max_command:
            return self._too_long("Command")
        line = bytes(self._buf[:nl])
        del self._buf[: nl + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if self.raw_lines and not self._cmd:
            return Line(line)
        m = _LITERAL_AT_END.search(line)
        if m is None:
            self._cmd += line
            raw = RawCommand(bytes(self._cmd), tuple(self._streamed))
            self._reset_command()
            return Complete(raw)
        offset = len(self._cmd) + m.start()
        self._cmd += line + b"\r\n"
        self._pending = LiteralStart(
            prefix=bytes(self._cmd), size=int(m.group(1)), sync=not m.group(2), offset=offset
        )
        self._mode = _PENDING
        return self._pending


# --- scanning ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamedLiteral:
    """A literal whose data went out as Chunks (an APPEND message)."""

    size: int


_NUMBER_MAX = 2**32 - 1  # RFC 3501 section 9: number is 32-bit unsigned
_NUMBER64_MAX = 2**63 - 1  # RFC 7162 section 7: mod-sequence-value


class Scanner:
    """A cursor over one :class:`RawCommand` with the RFC 3501 section 9 token rules."""

    def __init__(self, raw: RawCommand | bytes) -> None:
        if isinstance(raw, bytes):
            raw = RawCommand(raw)
        self.data = raw.data
        self.streamed = frozenset(raw.streamed)
        self.pos = 0

    # --- primitives ----------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def peek_bytes(self, n: int) -> bytes:
        return self.data[self.pos : self.pos + n]

    def accept(self, token: bytes) -> bool:
        """Consume ``token`` (case-insensitive) if it comes next."""
        end = self.pos + len(token)
        if self.data[self.pos : end].upper() == token.upper():
            self.pos = end
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        if not self.accept(token):
            raise ParseError(f"Expected {what or repr(token.decode())}")

    def sp(self) -> None:
        """SP: exactly one space (RFC 3501 section 9)."""
        if self.peek() != 0x20:
            raise ParseError("Expected a space" if not self.at_end() else "Missing argument")
        self.pos += 1

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("Unexpected extra arguments")

    def _run(self, chars: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        n = len(data)
        i = start
        while i < n and data[i] in chars:
            i += 1
        self.pos = i
        return data[start:i]

    # --- RFC 3501 section 9 rules ---------------------------------------------

    def atom(self, what: str = "atom") -> str:
        """atom = 1*ATOM-CHAR"""
        token = self._run(ATOM_CHARS)
        if not token:
            raise ParseError(f"Expected {what}")
        return token.decode("ascii")

    def tag(self) -> str:
        """tag = 1*<any ASTRING-CHAR except "+">"""
        token = self._run(TAG_CHARS)
        if not token:
            raise ParseError("Missing or invalid tag")
        return token.decode("ascii")

    def number(self, what: str = "number", *, nonzero: bool = False, bits64: bool = False) -> int:
        """number = 1*DIGIT (unsigned 32-bit); nz-number = digit-nz *DIGIT"""
        token = self._run(frozenset(b"0123456789"))
        if not token or len(token) > 20:
            raise ParseError(f"Expected {what}")
        value = int(token)
        if value > (_NUMBER64_MAX if bits64 else _NUMBER_MAX) or (nonzero and value == 0):
            raise ParseError(f"Invalid {what}")
        return value

    def quoted(self) -> bytes:
        """quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = TEXT-CHAR except
        quoted-specials, or "\\" quoted-specials.  8-bit octets are accepted
        (they are decoded as UTF-8 later), NUL, CR and LF are not."""
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ParseError("Unterminated quoted string")
            c = data[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise ParseError("Invalid escape in quoted string")
                out.append(data[self.pos])
                self.pos += 1
            elif c in (0x00, 0x0A, 0x0D):
                raise ParseError("Invalid character in quoted string")
            else:
                out.append(c)

    def literal(self) -> bytes | StreamedLiteral:
        """literal = "{" number ["+"] "}" CRLF *CHAR8 (RFC 3501; RFC 7888 adds "+")"""
        start = self.pos
        self.expect(b"{")
        size = self.number("literal size")
        self.accept(b"+")
        self.expect(b"}\r\n", "literal")
        if start in self.streamed:
            return StreamedLiteral(size)
        end = self.pos + size
        if end > len(self.data):  # the framer guarantees this; keep the parser total
            raise ParseError("Truncated literal")
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def string(self, what: str = "string") -> bytes:
        """string = quoted / literal"""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            value = self.literal()
            if isinstance(value, StreamedLiteral):
                raise ParseError(f"Unexpected message literal where {what} was expected")
            return value
        raise ParseError(f"Expected {what}")

    def astring(self, what: str = "astring") -> bytes:
        """astring = 1*ASTRING-CHAR / string"""
        if self.peek() in (0x22, 0x7B):
            return self.string(what)
        token = self._run(ASTRING_CHARS)
        if not token:
            raise ParseError(f"Expected {what}")
        return token

    def nstring(self, what: str = "nstring") -> bytes | None:
        """nstring = string / nil"""
        if self.peek() in (0x22, 0x7B):
            return self.string(what)
        self.expect(b"NIL", what)
        return None

    def list_mailbox(self) -> bytes:
        """list-mailbox = 1*list-char / string"""
        if self.peek() in (0x22, 0x7B):
            return self.string("mailbox pattern")
        token = self._run(LIST_CHARS)
        if not token:
            raise ParseError("Expected mailbox pattern")
        return token


def decode_text(value: bytes, what: str) -> str:
    """Strings are US-ASCII in IMAP4rev1; we accept UTF-8 (a superset), nothing else."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"Invalid UTF-8 in {what}") from None
