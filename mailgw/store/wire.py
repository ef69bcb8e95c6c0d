"""The size of a stored message on the wire, where every line ends in CRLF.

POP3 octet counts (RFC 1939 section 11, STAT/LIST/RETR) and IMAP's
RFC822.SIZE and BODY[] literals (RFC 3501 section 6.4.5) count the message
with CRLF line ends, while a Maildir file may hold bare LFs (Dovecot writes
LF; mailgw writes CRLF).  Maildir names written by mailgw and Dovecot carry
that size as ``W=``, trusted only when ``S=`` matches the file.  Otherwise it
is counted once from the bytes and remembered for this process under
``(key, file size)``: a Maildir file never changes under its key.  This is
what Dovecot keeps in its index cache.

``wire_size(info) == info.size`` means the file has no bare LF, so readers
can send it as it is.
"""

from __future__ import annotations

from mailgw.store.filenames import base_sizes, split_filename, virtual_size
from mailgw.store.folder import MessageInfo

CHUNK = 1 << 20  # bytes read at a time when counting a file without W=
CACHE_MAX = 200_000

_SIZES: dict[tuple[str, int], int] = {}  # (key, file size) -> wire size


def wire_size_from_name(info: MessageInfo) -> int | None:
    """The ``W=`` size in the file name, when ``S=`` matches the file; else None."""
    size, vsize = base_sizes(split_filename(info.path.name)[0])
    if vsize is not None and size == info.size:
        return vsize
    return None


def known_wire_size(info: MessageInfo) -> int | None:
    """From the name or this process's cache, without reading the file."""
    vsize = wire_size_from_name(info)
    return vsize if vsize is not None else _SIZES.get((info.key, info.size))


def _remember(info: MessageInfo, size: int) -> int:
    if len(_SIZES) >= CACHE_MAX:
        _SIZES.clear()
    _SIZES[(info.key, info.size)] = size
    return size


def wire_size_of(info: MessageInfo, raw: bytes) -> int:
    """The wire size of ``info`` whose file content is ``raw`` (already read)."""
    known = known_wire_size(info)
    if known is not None and len(raw) == info.size:
        return known
    return _remember(info, virtual_size(raw))


def wire_size(info: MessageInfo) -> int:
    """The wire size of ``info``, reading the file in chunks if needed (blocking).

    A file that cannot be read gets its stored size: the reader that opens it
    next will report it gone.
    """
    known = known_wire_size(info)
    if known is not None:
        return known
    total, pending_cr = 0, False
    try:
        with open(info.path, "rb") as f:
            while chunk := f.read(CHUNK):
                # a CRLF split across two chunks is not a bare LF
                total += virtual_size(chunk) - (1 if pending_cr and chunk[:1] == b"\n" else 0)
                pending_cr = chunk.endswith(b"\r")
    except OSError:
        return info.size
    return _remember(info, total)
