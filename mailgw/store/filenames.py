"""Maildir file names as Dovecot 2.3 writes and reads them.

Theory of operation (Maildir: https://cr.yp.to/proto/maildir.html, Dovecot's
maildir-filename.c):

* A new file is named ``<secs>.M<usecs>P<pid>Q<counter>.<host>`` in ``tmp/``;
  the host escapes ``/`` as ``\\057`` and ``:`` as ``\\072``.
* When it is moved to ``new/`` or ``cur/`` the base name gains
  ``,S=<size>,W=<vsize>`` (file size, and size with every bare LF counted as
  CRLF).  This base name is the message's *key*: it is what dovecot-uidlist
  stores, and it never changes.
* Files in ``cur/`` carry ``:2,<letters>``: upper-case letters are flags
  (D draft, F flagged, P passed, R replied/answered, S seen, T trashed/deleted),
  lower-case ``a``..``z`` are keywords indexed by dovecot-keywords.  Letters
  are kept in ASCII order; letters we do not understand are kept on renames.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping

FLAG_TO_LETTER: dict[str, str] = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
LETTER_TO_FLAG = {v: k for k, v in FLAG_TO_LETTER.items()}
SYSTEM_FLAGS = frozenset(FLAG_TO_LETTER)
INFO_SEP = ":"
INFO_PREFIX = ":2,"
KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def escape_host(host: str) -> str:
    return host.replace("/", "\\057").replace(":", "\\072")


_HOST = escape_host(socket.gethostname() or "localhost")


def new_base(now: float | None = None, *, host: str | None = None) -> str:
    """A unique ``<secs>.M<usecs>P<pid>Q<counter>.<host>`` for a file in tmp/."""
    t = time.time() if now is None else now
    secs = int(t)
    usecs = int((t - secs) * 1_000_000)
    with _counter_lock:
        n = next(_counter)
    return f"{secs}.M{usecs}P{os.getpid()}Q{n}.{_HOST if host is None else escape_host(host)}"


def virtual_size(data: bytes) -> int:
    """Size with every bare LF counted as CRLF (Dovecot's W=)."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def with_sizes(base: str, size: int, vsize: int) -> str:
    return f"{base},S={size},W={vsize}"


def split_filename(filename: str) -> tuple[str, str | None]:
    """``base:2,FS`` -> (``base``, ``"2,FS"``); no info -> (filename, None)."""
    base, sep, info = filename.partition(INFO_SEP)
    return base, (info if sep else None)


def info_letters(info: str | None) -> str:
    """The flag letters of an info part ("" for none or an unknown info version)."""
    if info is None or not info.startswith("2,"):
        return ""
    return info[2:]


def format_filename(base: str, letters: Iterable[str]) -> str:
    """``base:2,<letters in ASCII order>``."""
    return base + INFO_PREFIX + "".join(sorted(set(letters)))


def base_sizes(base: str) -> tuple[int | None, int | None]:
    """(S, W) from the ``,S=<n>,W=<n>`` fields of a base name, None when absent."""
    size: int | None = None
    vsize: int | None = None
    for field in base.split(",")[1:]:
        key, _, value = field.partition("=")
        if value.isdigit():
            if key == "S":
                size = int(value)
            elif key == "W":
                vsize = int(value)
    return size, vsize


def base_time(base: str) -> int:
    """The delivery second at the start of a base name (0 if there is none)."""
    head = base.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


_ORDER_RE = re.compile(r"(\d+)\.(?:M(\d+))?(?:P(\d+))?(?:Q(\d+))?")


def base_order(base: str) -> tuple[int, int, int, str]:
    """Sort key for UID assignment: delivery second, microsecond, counter, name."""
    m = _ORDER_RE.match(base)
    if m is None:
        return (0, 0, 0, base)
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(4) or 0), base)


def decode_letters(
    letters: str, keyword_names: Mapping[str, str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(system flags, keywords) of flag letters; ``keyword_names`` maps letter -> name."""
    flags = frozenset(LETTER_TO_FLAG[c] for c in letters if c in LETTER_TO_FLAG)
    keywords = frozenset(keyword_names[c] for c in letters if c in keyword_names)
    return flags, keywords


def encode_letters(
    old_letters: str,
    flags: Iterable[str],
    keyword_letters: Iterable[str],
    known_keyword_letters: Iterable[str],
) -> str:
    """New letters: system flags and known keywords replaced, everything else kept."""
    replaced = set(LETTER_TO_FLAG) | set(known_keyword_letters)
    kept = {c for c in old_letters if c not in replaced}
    new = {FLAG_TO_LETTER[f] for f in flags} | set(keyword_letters)
    return "".join(sorted(kept | new))
