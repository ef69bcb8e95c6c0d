"""The mbox file format (RFC 4155, mboxrd variant): splitting, flags, writing.

Theory of operation:

* Reading.  A message starts at a ``From `` line at the start of the file or
  after an empty line; the empty line before the next ``From `` line is the
  separator, not message content.  ``>From `` with one or more ``>`` loses one
  ``>`` (mboxrd unquoting).  Flags come from ``Status:`` (``R`` -> \\Seen),
  ``X-Status:`` (``A`` \\Answered, ``F`` \\Flagged, ``T`` \\Draft, ``D``
  \\Deleted) and ``X-Keywords:`` (space or comma separated).  Those fields and
  ``X-UID``, ``X-IMAP``, ``X-IMAPbase`` are REMOVED from the message bytes, as
  Dovecot's mbox driver hides them, so a message read here hashes the same as
  the same message served by IMAP.  (Dovecot also hides ``Content-Length``; we
  keep it.)  Lines become CRLF (RFC 5322 2.1).  The file is streamed line by
  line (:func:`index_file` hashes; :func:`read_at` reads one message from its
  offset into a :class:`~mailgw.migrate.body.BodyWriter`); only one message's
  header block is held in memory, and at most :data:`HEADER_LIMIT` of it.
* Writing (:func:`write_message`).  ``From MAILER-DAEMON <asctime, UTC>``, the
  header block with our ``Status``/``X-Status``/``X-Keywords`` lines inserted
  at its end (the message's own copies of the hidden fields are dropped), the
  body with CRLF -> LF and mboxrd quoting of ``^>*From ``, and an empty
  separator line.  A message whose bytes do not end in a line break gets one,
  so it reads back with a final CRLF (a different hash).
* :func:`rewrite` replaces a file atomically (temp file, fsync, rename, fsync
  of the directory) with some messages' flags changed or messages dropped.
  Writers hold ``fcntl.flock`` on the file (:func:`locked`), re-opening it when
  a rewrite replaced it meanwhile, so two workers never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from mailgw.errors import EndpointError
from mailgw.migrate.body import BodyWriter, MessageBody
from mailgw.migrate.headers import message_date, message_id

HIDDEN = frozenset({b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap", b"x-imapbase"})
X_STATUS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
X_STATUS_LETTER = {v: k for k, v in X_STATUS.items()}
HEADER_LIMIT = 1 << 20  # a "header" longer than this is treated as body (no stripping)
SBD = ".sbd"
_UNQUOTE = re.compile(rb">+From ")
_QUOTE = re.compile(rb">*From ")
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")
_FROM_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +(\w{3}) +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))?"
    r"(?: +[A-Z]{2,5}| +[+-]\d{4})? +(\d{4})"
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}


class _Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.size += len(chunk)


def _crlf(line: bytes) -> bytes:
    if line.endswith(b"\r\n") or not line.endswith(b"\n"):
        return line
    return line[:-1] + b"\r\n"


def _is_blank(line: bytes) -> bool:
    return line == b"\n" or line == b"\r\n"


def from_line_date(line: bytes) -> datetime | None:
    """The date of a ``From sender <asctime>`` line, taken as UTC (None: none found)."""
    m = _FROM_DATE.search(line.decode("latin-1"))
    if m is None or m.group(1) not in _MONTHS:
        return None
    try:
        return datetime(
            int(m.group(6)),
            _MONTHS[m.group(1)],
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4)),
            int(m.group(5) or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def flags_of_fields(fields: Sequence[tuple[bytes, bytes]]) -> frozenset[str]:
    """IMAP flags from Status / X-Status / X-Keywords (name lower-case, value)."""
    out: set[str] = set()
    for name, value in fields:
        text = value.decode("utf-8", "replace")
        if name == b"status" and "R" in text:
            out.add("\\Seen")
        elif name == b"x-status":
            out.update(X_STATUS[c] for c in text if c in X_STATUS)
        elif name == b"x-keywords":
            out.update(k for k in re.split(r"[\s,]+", text) if k and not k.startswith("\\"))
    return frozenset(out)


def split_header(lines: list[bytes]) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """Header lines without the hidden fields (continuations included), and the
    hidden fields found: (lower-case name, unfolded value)."""
    kept: list[bytes] = []
    hidden: list[tuple[bytes, bytes]] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if dropping:
                hidden[-1] = (hidden[-1][0], hidden[-1][1] + b" " + line.strip())
                continue
            kept.append(line)
            continue
        m = _FIELD.match(line)
        name = m.group(1).lower() if m else b""
        dropping = name in HIDDEN
        if dropping:
            hidden.append((name, line[m.end() :].strip() if m else b""))
        else:
            kept.append(line)
    return kept, hidden


class _Collector:
    """Receives one message's (unquoted) lines; writes canonical bytes to ``out``."""

    def __init__(self, offset: int, from_line: bytes, out: _Sink) -> None:
        self.offset = offset
        self.from_line = from_line
        self.out = out
        self._head: list[bytes] | None = []
        self._head_size = 0
        self.header = b""  # the kept header block, canonical, with its empty line
        self.flags: frozenset[str] = frozenset()

    def feed(self, line: bytes) -> None:
        if self._head is None:
            self.out.write(_crlf(line))
            return
        if _is_blank(line):
            self._end_header(line)
            return
        self._head.append(line)
        self._head_size += len(line)
        if self._head_size > HEADER_LIMIT:  # not a sane header block: pass it through
            head, self._head = self._head, None
            for h in head:
                self.out.write(_crlf(h))

    def _end_header(self, blank: bytes | None) -> None:
        assert self._head is not None
        kept, hidden = split_header(self._head)
        self._head = None
        self.flags = flags_of_fields(hidden)
        block = b"".join(_crlf(h) for h in kept) + (b"\r\n" if blank is not None else b"")
        self.header = block
        self.out.write(block)

    def end(self) -> None:
        if self._head is not None:
            self._end_header(None)

    def date(self) -> datetime | None:
        return message_date(self.header) or from_line_date(self.from_line)


def _scan(
    f: BinaryIO,
    start: int,
    begin: Callable[[int, bytes], _Collector],
    done: Callable[[_Collector], None],
    *,
    only_one: bool = False,
) -> None:
    """Split the mbox read from ``f`` at ``start`` into messages (see the module doc)."""
    f.seek(start)
    pos = start
    cur: _Collector | None = None
    pending: bytes | None = None  # an empty line that may be the separator
    prev_blank = True  # the start of the file (or of a message) counts as after an empty line
    for line in iter(f.readline, b""):
        offset = pos
        pos += len(line)
        if prev_blank and line.startswith(b"From "):
            if cur is not None:
                cur.end()
                done(cur)
                if only_one:
                    return
            pending = None
            cur = begin(offset, line)
            prev_blank = False
            continue
        blank = _is_blank(line)
        prev_blank = blank
        if cur is None:
            if not blank:
                raise EndpointError("not an mbox file (does not start with a 'From ' line)")
            continue
        if pending is not None:
            cur.feed(pending)
            pending = None
        if blank:
            pending = line
        else:
            cur.feed(line[1:] if _UNQUOTE.match(line) else line)
    if cur is not None:
        cur.end()
        done(cur)


@dataclass
class Entry:
    offset: int
    key: str
    size: int
    flags: frozenset[str]
    date: datetime | None
    message_id: str | None


@dataclass
class Index:
    sig: tuple[int, int, int]
    entries: list[Entry] = field(default_factory=list)


def file_sig(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def index_file(path: Path) -> Index:
    """Stream the file once: keys, sizes, flags, dates, Message-IDs and offsets."""
    idx = Index(file_sig(path))
    seen: dict[str, int] = {}

    def begin(offset: int, line: bytes) -> _Collector:
        return _Collector(offset, line, _HashSink())

    def done(c: _Collector) -> None:
        sink = c.out
        assert isinstance(sink, _HashSink)
        digest = sink.hash.hexdigest()
        seen[digest] = seen.get(digest, 0) + 1
        idx.entries.append(
            Entry(
                c.offset,
                f"{digest}:{seen[digest]}",
                sink.size,
                c.flags,
                c.date(),
                message_id(c.header),
            )
        )

    with open(path, "rb") as f:
        _scan(f, 0, begin, done)
    return idx


def read_at(path: Path, offset: int) -> tuple[MessageBody, _Collector]:
    writer = BodyWriter(canonicalize=False)
    got: list[_Collector] = []
    try:
        with open(path, "rb") as f:
            _scan(f, offset, lambda o, line: _Collector(o, line, writer), got.append, only_one=True)
    except BaseException:
        writer.abort()
        raise
    if not got:
        writer.abort()
        raise EndpointError(f"{path}: no message at offset {offset}")
    return writer.finish(), got[0]


# --- writing ---------------------------------------------------------------------------


def status_lines(flags: frozenset[str]) -> list[bytes]:
    """Our Status / X-Status / X-Keywords header lines for ``flags`` (LF ends)."""
    out = [b"Status: RO\n" if "\\Seen" in flags else b"Status: O\n"]
    xs = "".join(sorted(X_STATUS_LETTER[f] for f in flags if f in X_STATUS_LETTER))
    if xs:
        out.append(f"X-Status: {xs}\n".encode())
    kws = sorted(f for f in flags if not f.startswith("\\"))
    if kws:
        out.append(("X-Keywords: " + " ".join(kws) + "\n").encode("utf-8"))
    return out


def _lf(line: bytes) -> bytes:
    return line[:-2] + b"\n" if line.endswith(b"\r\n") else line


def _quote(line: bytes) -> bytes:
    return b">" + line if _QUOTE.match(line) else line


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines (with their LF) of a chunked byte stream; the last may lack one."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            yield data[start : nl + 1]
            start = nl + 1
        rest = data[start:]
    if rest:
        yield rest


def _nl(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


def _write_head(out: BinaryIO, head: list[bytes], flags: frozenset[str]) -> None:
    kept, _ = split_header(head)
    for h in kept:
        out.write(_quote(_nl(_lf(h))))
    for s in status_lines(flags):
        out.write(s)


def write_message(
    out: BinaryIO, body: MessageBody, flags: frozenset[str], when: datetime | None
) -> None:
    """One mboxrd message plus its separator line (see the module doc)."""
    stamp = (when or datetime.now(UTC)).astimezone(UTC)
    out.write(b"From MAILER-DAEMON " + time.asctime(stamp.timetuple()).encode("ascii") + b"\n")
    head: list[bytes] | None = []
    head_size = 0
    last = b"\n"
    for line in _lines(body.chunks()):
        if head is not None:
            if _is_blank(line):
                _write_head(out, head, flags)
                out.write(b"\n")
                head = None
                continue
            head.append(line)
            head_size += len(line)
            if head_size > HEADER_LIMIT:  # as the reader does: no header processing
                for h in head:
                    out.write(_quote(_lf(h)))
                last = head[-1]
                head = None
            continue
        last = line
        out.write(_quote(_lf(line)))
    if head is not None:
        _write_head(out, head, flags)
    elif not last.endswith(b"\n"):
        out.write(b"\n")
    out.write(b"\n")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened r+b under an exclusive flock; re-opened if a rewrite replaced it."""
    while True:
        f = open(path, "r+b")  # noqa: SIM115
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                same = os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            f.close()
            raise
        if same:
            break
        f.close()
    try:
        yield f
    finally:
        f.close()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(src: BinaryIO, dst: BinaryIO, start: int, end: int) -> None:
    src.seek(start)
    left = end - start
    while left > 0:
        chunk = src.read(min(left, 1 << 16))
        if not chunk:
            break
        dst.write(chunk)
        left -= len(chunk)


def _rewrite_flags(
    src: BinaryIO, dst: BinaryIO, start: int, end: int, flags: frozenset[str]
) -> None:
    """Copy one message's raw region with its status fields replaced."""
    src.seek(start)
    pos = start
    first = src.readline()
    pos += len(first)
    dst.write(first)
    head: list[bytes] | None = []
    while pos < end:
        line = src.readline()
        if not line:
            break
        pos += len(line)
        if head is None:
            dst.write(line)
        elif _is_blank(line):
            _write_head(dst, head, flags)
            dst.write(line)
            head = None
        else:
            head.append(line)
    if head is not None:
        _write_head(dst, head, flags)


def rewrite(path: Path, plan: Callable[[Index], dict[int, frozenset[str] | None]]) -> None:
    """Rewrite the file atomically under its lock.  ``plan`` gets the file's index
    (taken under the lock) and says, per message number (1-based), its new flags
    or None to drop it; messages it does not name are copied as they are."""
    with locked(path) as src:
        idx = index_file(path)
        changes = plan(idx)
        if not changes:
            return
        st = os.fstat(src.fileno())
        bounds = [e.offset for e in idx.entries] + [st.st_size]
        tmp = path.with_name(f".{path.name}.mailgw-{os.getpid()}-{time.monotonic_ns()}")
        try:
            with open(tmp, "wb") as dst:
                os.chmod(tmp, st.st_mode & 0o7777)
                _copy(src, dst, 0, bounds[0])
                for n in range(1, len(idx.entries) + 1):
                    start, end = bounds[n - 1], bounds[n]
                    if n not in changes:
                        _copy(src, dst, start, end)
                    elif (flags := changes[n]) is not None:
                        _rewrite_flags(src, dst, start, end, flags)
                dst.flush()
                os.fsync(dst.fileno())
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(path.parent)


__all__ = [
    "HEADER_LIMIT",
    "Entry",
    "Index",
    "file_sig",
    "flags_of_fields",
    "from_line_date",
    "fsync_dir",
    "index_file",
    "locked",
    "read_at",
    "rewrite",
    "split_header",
    "status_lines",
    "write_message",
]
