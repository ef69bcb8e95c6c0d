"""The TRANSACTION-state view of a maildrop: sizes, UIDLs, deletion marks.

RFC 1939 section 5: message numbers are 1-based and stay the same for the
whole session; a message marked deleted is not counted by STAT, not listed
by LIST/UIDL, and any command naming it fails.  RSET removes the marks
(section 5, RSET); the marks only take effect in UPDATE (section 6).
UIDLs are 1 to 70 characters in 0x21..0x7E (section 7, UIDL).

Errors about a well-formed command (no such message, message deleted,
``LIST 0``, a non-numeric number) raise ``MessageError``: a plain ``-ERR``
that does not count as a bad command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailgw.protocols.errors import LocalProtocolError

_UIDL = re.compile(rb"[\x21-\x7e]{1,70}")


class MessageError(Exception):
    """A well-formed command that fails; ``reply`` is the ``-ERR`` line."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.reply = f"-ERR {text}\r\n".encode("ascii")


def parse_number(arg: bytes, what: str = "message number") -> int:
    """A non-negative decimal number (ASCII digits only)."""
    if not arg.isdigit():  # bytes.isdigit() is ASCII-only: no "+1", "1_0", "１"
        raise MessageError(f"Invalid {what}.")
    return int(arg)


class Maildrop:
    def __init__(self, entries: Sequence[tuple[int, str]]) -> None:
        sizes: list[int] = []
        uidls: list[bytes] = []
        for entry in entries:
            try:
                size, uidl = entry
            except (TypeError, ValueError):
                raise LocalProtocolError(
                    f"maildrop entry must be (size, uidl): {entry!r}"
                ) from None
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise LocalProtocolError(f"invalid message size {size!r}")
            raw = uidl.encode("ascii") if isinstance(uidl, str) and uidl.isascii() else b""
            if not _UIDL.fullmatch(raw):
                raise LocalProtocolError(f"invalid UIDL {uidl!r} (RFC 1939: 1-70 chars 0x21-0x7E)")
            sizes.append(size)
            uidls.append(raw)
        self._sizes = sizes
        self._uidls = uidls
        self._deleted: set[int] = set()

    def __len__(self) -> int:
        return len(self._sizes)

    def size(self, index: int) -> int:
        return self._sizes[index]

    @property
    def deleted(self) -> tuple[int, ...]:
        return tuple(sorted(self._deleted))

    def index(self, arg: bytes) -> int:
        """Zero-based index of the live message numbered ``arg``; MessageError."""
        number = parse_number(arg)
        if not 1 <= number <= len(self._sizes):
            raise MessageError(f"No such message, only {len(self._sizes)} in maildrop.")
        index = number - 1
        if index in self._deleted:
            raise MessageError(f"Message {number} already deleted.")
        return index

    def _live(self) -> list[int]:
        return [i for i in range(len(self._sizes)) if i not in self._deleted]

    # --- replies (RFC 1939 section 5) ---

    def stat(self) -> bytes:
        live = self._live()
        total = sum(self._sizes[i] for i in live)
        return f"+OK {len(live)} {total}\r\n".encode("ascii")

    def list(self, arg: bytes | None) -> bytes:
        if arg is not None:
            index = self.index(arg)
            return f"+OK {index + 1} {self._sizes[index]}\r\n".encode("ascii")
        live = self._live()
        total = sum(self._sizes[i] for i in live)
        lines = [f"+OK {len(live)} messages ({total} octets)\r\n".encode("ascii")]
        lines += [f"{i + 1} {self._sizes[i]}\r\n".encode("ascii") for i in live]
        lines.append(b".\r\n")
        return b"".join(lines)

    def uidl(self, arg: bytes | None) -> bytes:
        if arg is not None:
            index = self.index(arg)
            return b"+OK %d %s\r\n" % (index + 1, self._uidls[index])
        lines = [b"+OK\r\n"]
        lines += [b"%d %s\r\n" % (i + 1, self._uidls[i]) for i in self._live()]
        lines.append(b".\r\n")
        return b"".join(lines)

    def dele(self, arg: bytes) -> bytes:
        index = self.index(arg)
        self._deleted.add(index)
        return f"+OK Message {index + 1} deleted.\r\n".encode("ascii")

    def rset(self) -> bytes:
        self._deleted.clear()
        total = sum(self._sizes)
        return f"+OK maildrop has {len(self._sizes)} messages ({total} octets)\r\n".encode("ascii")
