"""Message data as it crosses DATA: line endings and dot-stuffing.

Theory of operation
-------------------
* In SMTP, CRLF is the only line ending (RFC 5321 section 2.3.8: a bare CR or
  bare LF MUST NOT be sent and must not be treated as a line ending).  Mail
  servers that disagree on this are the root of SMTP smuggling (a ``\\n.\\r\\n``
  ends DATA for one server and not for the next).  The server rejects any
  message containing a bare CR or LF (``find_bare_cr_lf``); aiosmtpd >= 1.4.6
  itself only ends DATA on ``\\r\\n.\\r\\n``.
* ``to_crlf`` turns every bare CR, bare LF (and CRLF) into CRLF, for content
  we generate or normalise on purpose.
* Dot-stuffing (RFC 5321 section 4.5.2): a line starting with ``.`` gets one
  more ``.`` on the wire; the terminator is ``.\\r\\n`` on a line of its own.
  ``dot_stuff`` produces wire data for a relay client (always CRLF-terminated);
  ``dot_unstuff`` is the receiver side, for tests and tools.
* ``DataCollector`` is the server's receiver: it takes the bytes after
  ``354`` in blocks of any size and finds the end of data exactly where
  aiosmtpd >= 1.4.6 does, at the first ``CRLF . CRLF`` (the CRLF that ended
  the DATA command counts, so ``.\\r\\n`` at once is an empty message); only
  CRLF ends a line (RFC 5321 section 2.3.8), so ``LF . CRLF`` or ``CR . CRLF``
  end nothing (SMTP smuggling).  It enforces the same limits as aiosmtpd: a
  line longer than ``max_line`` octets with its CRLF (RFC 5321 section
  4.5.3.1.6) gives ``TOO_LONG``, more than ``max_size`` octets of content
  (RFC 1870) ``TOO_MUCH``; either way the data is discarded as it comes and
  only the terminator is still looked for.  ``content()`` is the data without
  the terminator line, one leading dot removed from each line (section 4.5.2).
  It works with ``bytes.find``/``split``/``replace`` on whole blocks instead
  of a Python step per line.
"""

from __future__ import annotations

import re

_BARE_CR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"


def find_bare_cr_lf(data: bytes) -> int | None:
    """Offset of the first CR not followed by LF, or LF not preceded by CR.

    Fast path for clean data (every message we accept): each CRLF holds one CR
    and one LF, so equal counts of CR, LF and CRLF mean neither occurs alone.
    ``bytes.count`` runs in C; the regular expression only locates an offender.
    """
    crlf = data.count(b"\r\n")
    if data.count(b"\n") == crlf and data.count(b"\r") == crlf:
        return None
    m = _BARE_CR_LF.search(data)
    return None if m is None else m.start()


def to_crlf(data: bytes) -> bytes:
    """Every line ending (CRLF, bare CR, bare LF) becomes CRLF."""
    return _ANY_EOL.sub(CRLF, data)


def dot_stuff(data: bytes) -> bytes:
    """Wire form of a message body for DATA, terminator included.

    Line endings are made canonical first, a missing final CRLF is added,
    every line starting with ``.`` gets another ``.``.
    """
    data = to_crlf(data)
    if data and not data.endswith(CRLF):
        data += CRLF
    return _LEADING_DOT.sub(b"..", data) + END_OF_DATA


def dot_unstuff(wire: bytes) -> bytes:
    """Inverse of ``dot_stuff`` for CRLF data (the terminator line is optional)."""
    lines = wire.split(CRLF)
    out: list[bytes] = []
    for line in lines[:-1]:  # the last element is what follows the final CRLF
        if line == b".":
            break
        out.append(line[1:] if line.startswith(b".") else line)
    return b"".join(line + CRLF for line in out)


TERMINATOR = b"\r\n.\r\n"  # with the CRLF that ends the last content line


class DataCollector:
    """Receiver side of DATA (sans-IO): ``feed`` blocks until it returns an offset."""

    OK = "ok"
    TOO_LONG = "too-long"  # a line over max_line octets (CRLF included): 500
    TOO_MUCH = "too-much"  # over max_size octets of content: 552

    def __init__(self, *, max_line: int, max_size: int | None = None) -> None:
        self.max_line = max_line
        self.max_size = max_size or None
        self.state = self.OK
        self.done = False
        self.size = 0  # octets of content so far, as on the wire (stuffed)
        self._parts: list[bytes] = []
        # Octets taken as content are preceded, for the search, by the last two
        # of them (at first the CRLF that ended "DATA"); the last two octets
        # received are held back until we know they are not the "." or ".CR"
        # of the terminator.
        self._before = CRLF
        self._held = b""
        self._line = b""  # the unfinished last line (only while OK)

    def feed(self, block: bytes) -> int | None:
        """Take the next received bytes.

        Returns None while the terminator has not been seen; once it has,
        the offset in ``block`` just past it (bytes after it are not data and
        are left to the caller).  Feeding after that is a bug (ValueError).
        """
        if self.done:
            raise ValueError("DATA already complete")
        held = self._held
        buf = held + block
        before = self._before
        i = (before + buf).find(TERMINATOR)
        if i < 0:
            cut = max(0, len(buf) - 2)
            self._take(buf[:cut])
            self._held = buf[cut:]
            self._before = (before + buf[:cut])[-2:]
            return None
        self.done = True
        # Content runs to the CRLF before "."; that CRLF is never in front of
        # ``before``, and the terminator ends in ``block`` (else seen earlier).
        self._take(buf[: i + 2 - len(before)])
        self._held = b""
        return i + len(TERMINATOR) - len(before) - len(held)

    def next_read(self) -> int | None:
        """How much the adapter may read next without taking bytes after the terminator.

        ``None``: everything up to the next CRLF.CRLF (``readuntil``), fine when
        no part of a terminator is pending at the end of the stream.  A number:
        exactly that many octets (``readexactly``), the shortest way the
        pending part ("CR", "CRLF", "CRLF." or "CRLF.CR"; at the start, the
        CRLF of the DATA command) could be completed; a client still has to
        send at least that much before it can end DATA.
        """
        last = (self._before + self._held)[-4:]
        for k in (4, 3, 2, 1):
            if last.endswith(TERMINATOR[:k]):
                return len(TERMINATOR) - k
        return None

    def _take(self, body: bytes) -> None:
        if not body:
            return
        self.size += len(body)
        if self.state != self.OK:
            return
        if self.max_size is not None and self.size > self.max_size:
            self._fail(self.TOO_MUCH)
            return
        lines = (self._line + body).split(CRLF)
        self._line = lines.pop()
        unfinished = len(self._line) - (1 if self._line.endswith(b"\r") else 0)
        longest = max(max(map(len, lines), default=0), unfinished)
        if longest + len(CRLF) > self.max_line:
            self._fail(self.TOO_LONG)
            return
        self._parts.append(body)

    def _fail(self, state: str) -> None:
        self.state = state
        self._parts.clear()
        self._line = b""

    def content(self) -> bytes:
        """The message: terminator line removed, dot-stuffing undone (state OK only)."""
        if not self.done or self.state != self.OK:
            raise ValueError("no content: DATA incomplete or over a limit")
        data = b"".join(self._parts)
        out = data.replace(b"\r\n.", CRLF)  # a line after a CRLF that starts with "."
        return out[1:] if data[:1] == b"." else out  # the first line
