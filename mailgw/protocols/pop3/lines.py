"""Bounded command-line reader.

Incoming bytes are split into lines as they arrive.  A line, terminator
included, may be at most ``max_line`` octets.  When a line grows past that,
the reader queues a ``TOO_LONG`` marker at once and drops every byte up to the
next LF without keeping it, so a 1 MiB line never holds more than
``max_line`` bytes.  Lines end with CRLF (RFC 1939 section 3); a bare LF is
accepted too, as most servers do.
"""

from __future__ import annotations

from collections import deque
from typing import Final


class _TooLong:
    def __repr__(self) -> str:
        return "TOO_LONG"


TOO_LONG: Final = _TooLong()


class LineReader:
    def __init__(self, max_line: int) -> None:
        if max_line < 8:
            raise ValueError("max_line must be at least 8")
        self._max = max_line
        self._partial = bytearray()
        self._lines: deque[bytes | _TooLong] = deque()
        self._discarding = False

    def feed(self, data: bytes) -> None:
        start, end = 0, len(data)
        while start < end:
            nl = data.find(b"\n", start)
            if self._discarding:
                if nl < 0:
                    return
                self._discarding = False
                start = nl + 1
                continue
            if nl < 0:
                # An unterminated line needs at least one more byte (the LF).
                if len(self._partial) + (end - start) > self._max - 1:
                    self._partial.clear()
                    self._lines.append(TOO_LONG)
                    self._discarding = True
                else:
                    self._partial += data[start:end]
                return
            if len(self._partial) + (nl + 1 - start) > self._max:
                self._lines.append(TOO_LONG)
            else:
                line = bytes(self._partial) + data[start:nl]
                if line.endswith(b"\r"):
                    line = line[:-1]
                self._lines.append(line)
            self._partial.clear()
            start = nl + 1

    def pop(self) -> bytes | _TooLong | None:
        """The next complete line (without terminator), TOO_LONG, or None."""
        return self._lines.popleft() if self._lines else None

    def has_data(self) -> bool:
        return bool(self._lines) or bool(self._partial) or self._discarding

    def clear(self) -> None:
        self._partial.clear()
        self._lines.clear()
        self._discarding = False
