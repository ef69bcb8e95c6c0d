"""Message bodies as the migration moves them: canonical CRLF, hashed, spooled.

Every endpoint hands over and accepts message bytes as a :class:`MessageBody`.
The bytes are the message in its canonical wire form: every line ends in CRLF
(RFC 5322 2.1; IMAP literals and POP3 RETR are CRLF on the wire, RFC 3501 4.3
and RFC 1939 3), so a message read from a Maildir or mbox file stored with LF
line ends has the same bytes, size and hash as the same message read over IMAP.

:class:`BodyWriter` converts while it receives chunks (a bare LF becomes CRLF,
also across chunk boundaries; CR LF is kept; a bare CR is kept as is), hashes
with SHA-256 and spools: up to ``MEMORY_LIMIT`` bytes stay in memory, larger
bodies go to an anonymous temporary file, so a 50 MiB message is never held
in memory whole, let alone twice.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

MEMORY_LIMIT = 1 << 20  # bodies above this many bytes are spooled to a temp file
CHUNK = 1 << 16


def canonical_crlf(data: bytes) -> bytes:
    """``data`` with every bare LF turned into CRLF (CRLF and bare CR kept)."""
    w = BodyWriter()
    w.write(data)
    body = w.finish()
    return body.read()


def content_hash(data: bytes) -> str:
    """The hex SHA-256 of ``data`` in canonical CRLF form: the migration's message identity."""
    return hashlib.sha256(canonical_crlf(data)).hexdigest()


class _PReader(io.RawIOBase):
    """Reads ``size`` bytes of ``fd`` from offset 0 with pread: readers never share
    a file offset, so several can read one spooled body at once."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self._size, self._pos = fd, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n


class MessageBody:
    """A finished, immutable message body (canonical CRLF bytes).

    ``size`` and ``sha256`` (hex) are known; ``open()`` gives a fresh binary
    reader each time, ``read()`` the whole bytes (avoid for big bodies),
    ``chunks()`` iterates in ``CHUNK`` pieces.  ``close()`` frees the temp
    file; a closed body must not be read again.
    """

    __slots__ = ("_data", "_file", "sha256", "size")

    def __init__(self, data: bytes | None, file: BinaryIO | None, size: int, sha256: str) -> None:
        self._data = data
        self._file = file
        self.size = size
        self.sha256 = sha256

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageBody:
        """A body from bytes that may have LF line ends (converted)."""
        w = BodyWriter()
        w.write(data)
        return w.finish()

    @property
    def in_memory(self) -> bool:
        return self._data is not None

    def open(self) -> BinaryIO:
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._file is not None, "body already closed"
        # an independent reader (its own offset: pread) on the same anonymous file
        return io.BufferedReader(_PReader(self._file.fileno(), self.size), CHUNK)

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        with self.open() as f:
            return f.read()

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        if self._data is not None:
            mv = memoryview(self._data)
            for i in range(0, len(self._data), size):
                yield bytes(mv[i : i + size])
            return
        with self.open() as f:
            while chunk := f.read(size):
                yield chunk

    def header_bytes(self, limit: int = 256 * 1024) -> bytes:
        """The header block (up to and including the empty line), at most ``limit`` bytes."""
        with self.open() as f:
            head = f.read(limit)
        end = head.find(b"\r\n\r\n")
        return head if end < 0 else head[: end + 4]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._data = None

    def __repr__(self) -> str:
        where = "memory" if self._data is not None else "file"
        return f"MessageBody(size={self.size}, sha256={self.sha256[:12]}..., {where})"


class BodyWriter:
    """Receive a message in chunks; ``finish()`` -> :class:`MessageBody`.

    ``canonicalize=False`` trusts the input to be CRLF already (an IMAP
    literal) and only hashes and spools; the default converts bare LF.
    """

    def __init__(self, *, canonicalize: bool = True, memory_limit: int = MEMORY_LIMIT) -> None:
        self._canon = canonicalize
        self._limit = memory_limit
        self._buf = bytearray()
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._last_cr = False  # the previous chunk ended in CR
        self._done = False

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise ValueError("BodyWriter already finished")
        data = bytes(chunk)
        if not data:
            return
        if self._canon:
            # fast path (IMAP and POP3 are CRLF already): every LF has its CR
            lfs = data.count(b"\n")
            if lfs and (data.count(b"\r\n") != lfs or (data[0] == 0x0A and not self._last_cr)):
                data = self._convert(data)
            else:
                self._last_cr = data.endswith(b"\r")
        self._hash.update(data)
        self._size += len(data)
        if self._file is None and len(self._buf) + len(data) <= self._limit:
            self._buf += data
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="mailgw-migrate-")  # noqa: SIM115
            self._file.write(self._buf)
            self._buf = bytearray()
        self._file.write(data)

    def _convert(self, data: bytes) -> bytes:
        parts = data.split(b"\n")
        out = bytearray()
        prev_cr = self._last_cr
        for i, part in enumerate(parts):
            if i > 0:
                out += b"\n" if prev_cr else b"\r\n"
            out += part
            prev_cr = part.endswith(b"\r") if part else (prev_cr and i == 0)
        self._last_cr = data.endswith(b"\r")
        # a chunk starting with LF after a chunk that ended in CR: handled by prev_cr above
        return bytes(out)

    @property
    def size(self) -> int:
        return self._size

    def abort(self) -> None:
        self._done = True
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buf = bytearray()

    def finish(self) -> MessageBody:
        if self._done:
            raise ValueError("BodyWriter already finished")
        self._done = True
        digest = self._hash.hexdigest()
        if self._file is None:
            return MessageBody(bytes(self._buf), None, self._size, digest)
        self._file.flush()
        return MessageBody(None, self._file, self._size, digest)


__all__ = ["CHUNK", "MEMORY_LIMIT", "BodyWriter", "MessageBody", "canonical_crlf", "content_hash"]
