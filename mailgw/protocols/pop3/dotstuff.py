"""Multi-line response bodies: byte-stuffing and TOP excerpts.

RFC 1939 section 3: in a multi-line response every line that begins with
"." gets one more "." in front, and the response ends with ".\\r\\n".  Lines
are CRLF-terminated on the wire, so a bare LF in a stored message is sent as
CRLF: a client splitting on LF and one splitting on CRLF then see the same
lines and the same stuffing.

``DotStuffer`` works on a stream of chunks of any size: a "." at the start of
a chunk is stuffed when the previous chunk ended a line, and a CR at the end
of one chunk followed by LF at the start of the next is one CRLF.

``top_excerpt`` cuts a message for TOP (RFC 1939 section 7): the headers,
the blank line, and the first ``lines`` lines of the body.
"""

from __future__ import annotations

import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


class DotStuffer:
    def __init__(self) -> None:
        self._at_line_start = True
        self._after_cr = False
        self._ended = False

    def feed(self, chunk: bytes) -> bytes:
        if self._ended:
            raise ValueError("feed() after end()")
        if not chunk:
            return b""
        prefix = b""
        if self._after_cr and chunk.startswith(b"\n"):
            prefix = b"\n"
            chunk = chunk[1:]
            self._at_line_start = True
            self._after_cr = False
            if not chunk:
                return prefix
        text = _BARE_LF.sub(b"\r\n", chunk).replace(b"\n.", b"\n..")
        if self._at_line_start and text.startswith(b"."):
            text = b"." + text
        self._at_line_start = text.endswith(b"\n")
        self._after_cr = text.endswith(b"\r")
        return prefix + text

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
