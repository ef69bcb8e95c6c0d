"""Multi-line response bodies: byte-stuffing and TOP excerpts.

RFC 1939 section 3: in a multi-line response every line that begins with
"." gets one more "." in front, and the response ends with ".\\r\\n".  Lines
are CRLF-terminated on the wire, so a bare LF in a stored message is sent as
CRLF: a client splitting on LF and one splitting on CRLF then see the same
lines and the same stuffing.

``DotStuffer`` works on a stream of chunks of any size: a "." at the start of
a chunk is stuffed when the previous chunk ended a line, and a CR at the end
of one chunk followed by LF at the start of the next is one CRLF.  It works
on whole chunks with bytes methods (``count``, ``find``, ``replace``), never a
Python loop per line: a RETR of a 100 KiB CRLF message costs tens of
microseconds.

``top_excerpt`` cuts a message for TOP (RFC 1939 section 7): the headers,
the blank line, and the first ``lines`` lines of the body.
"""

from __future__ import annotations

_FEW_DOTS = 32  # more dots than this in a chunk: one replace() is cheaper than find()s


def _stuff_line_dots(text: bytes) -> bytes:
    """Double every "." that follows an LF (the caller handles the chunk's first byte).

    A one-byte ``find`` runs at memchr speed, a two-byte ``replace`` does
    not: a chunk with few dots (base64, the bulk of big messages, has none)
    is cut at each line-initial dot; a chunk with many gets ``replace``.
    """
    find = text.find
    pieces: list[bytes] = []
    start = 0
    pos = find(b".")
    for _ in range(_FEW_DOTS):
        if pos < 0:
            break
        if pos and text[pos - 1] == 0x0A:
            pieces.append(text[start : pos + 1])
            start = pos  # the next piece starts with this dot again: doubled
        pos = find(b".", pos + 1)
    else:
        if pos >= 0:
            return text.replace(b"\n.", b"\n..")
    if not pieces:
        return text
    pieces.append(text[start:])
    return b"".join(pieces)


class DotStuffer:
    """Stuffs a stream of chunks.  ``crlf=True``: the caller vouches that the
    message has no bare LF (a Maildir ``W=`` equal to ``S=``), so the scan
    for one is skipped; with a bare LF anyway the output would keep it."""

    def __init__(self, crlf: bool = False) -> None:
        self._crlf = crlf
        self._at_line_start = True
        self._after_cr = False
        self._ended = False

    def feed(self, chunk: bytes) -> bytes:
        if self._ended:
            raise ValueError("feed() after end()")
        if not chunk:
            return b""
        prefix = b""
        if self._after_cr and chunk[:1] == b"\n":
            prefix = b"\n"  # completes the CRLF the previous chunk began
            chunk = chunk[1:]
            self._at_line_start = True
            self._after_cr = False
            if not chunk:
                return prefix
        # Bytes-level only, no per-line loop.  After the bare-LF conversion
        # every LF follows a CR, so a "." after an LF starts a line.
        if not self._crlf and chunk.count(b"\n") != chunk.count(b"\r\n"):
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # bare LF -> CRLF
        text = _stuff_line_dots(chunk)
        if self._at_line_start and text[:1] == b".":
            text = b"." + text
        self._at_line_start = text[-1:] == b"\n"
        self._after_cr = text[-1:] == b"\r"
        return prefix + text if prefix else text

    def end(self) -> bytes:
        """Close the body: finish an unterminated last line, then ".\\r\\n"."""
        self._ended = True
        if self._at_line_start:
            return b".\r\n"
        if self._after_cr:
            return b"\n.\r\n"
        return b"\r\n.\r\n"


def stuff(message: bytes) -> bytes:
    """The whole multi-line body for ``message``, terminator included."""
    stuffer = DotStuffer()
    return stuffer.feed(message) + stuffer.end()


def top_excerpt(message: bytes, lines: int) -> bytes:
    """Headers, the separating blank line and the first ``lines`` body lines."""
    if lines < 0:
        raise ValueError("lines must be >= 0")
    if message.startswith((b"\r\n", b"\n")):
        body_start = message.index(b"\n") + 1
    else:
        candidates = [i for i in (message.find(b"\n\r\n"), message.find(b"\n\n")) if i >= 0]
        if not candidates:
            return message  # no body: everything is header
        sep = min(candidates)
        body_start = message.index(b"\n", sep + 1) + 1
    pos = body_start
    for _ in range(lines):
        nl = message.find(b"\n", pos)
        if nl < 0:
            return message
        pos = nl + 1
    return message[:pos]
