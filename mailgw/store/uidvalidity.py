"""UIDVALIDITY for new folders, from Dovecot's ``dovecot-uidvalidity`` counter.

Theory of operation (Dovecot 2.3 ``mailbox-uidvalidity.c``; the files were
checked against what a private Dovecot writes):

* ``Maildir/dovecot-uidvalidity`` holds the last value handed out as 8
  lower-case hex digits without a newline (mode 0600), and an empty marker
  file ``Maildir/dovecot-uidvalidity.<hex>`` (mode 0444) has the same value
  in its name.
* Taking the next value: read the main file, ``rename()`` the marker from
  ``.<v>`` to ``.<v+1>`` (atomic: of two racing processes only one rename
  succeeds; on ENOENT try the next value, ten times), then rewrite the main
  file.  When the main file is missing or broken, the largest marker found
  by scanning the directory is used; when there is none either, the value is
  the current time and a marker is created for it.
* So a folder deleted and recreated within the same second gets a different
  UIDVALIDITY (RFC 3501 2.3.1.1), and Dovecot and mailgw never hand out the
  same value twice for one user.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from mailgw.store.fsutil import FILE_MODE, write_all

UIDVALIDITY_FILE = "dovecot-uidvalidity"
RETRY_COUNT = 10
_fallback = 0


def _fallback_value() -> int:
    global _fallback
    now = int(time.time())
    _fallback = now if _fallback < now else _fallback + 1
    return _fallback


def _write_main(path: Path, value: int) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        text = f"{value:08x}".encode()
        if os.pread(fd, 9, 0) != text:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            write_all(fd, text)
    finally:
        os.close(fd)


def _rename_next(path: Path, value: int) -> int | None:
    for _ in range(RETRY_COUNT):
        src = f"{path}.{value:08x}"
        value = (value + 1) & 0xFFFFFFFF or 1
        try:
            os.rename(src, f"{path}.{value:08x}")
            return value
        except FileNotFoundError:
            continue  # someone else took it: try the next one
        except OSError:
            return None
    return None


def _rescan(path: Path) -> int:
    prefix = path.name + "."
    values: list[int] = []
    try:
        with os.scandir(path.parent) as it:
            for entry in it:
                if entry.name.startswith(prefix):
                    hexpart = entry.name[len(prefix) :]
                    with contextlib.suppress(ValueError):
                        if hexpart and all(c in "0123456789abcdefABCDEF" for c in hexpart):
                            values.append(int(hexpart, 16))
    except OSError:
        return _fallback_value()
    if not values:
        for _ in range(RETRY_COUNT):
            value = int(time.time())
            try:
                old = os.umask(0)
                try:
                    fd = os.open(f"{path}.{value:08x}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444)
                finally:
                    os.umask(old)
                os.close(fd)
                break
            except FileExistsError:
                continue
            except OSError:
                return _fallback_value()
        else:
            return _fallback_value()
        _write_main(path, value)
        return value
    lo, hi = min(values), max(values)
    if lo != hi:
        with contextlib.suppress(OSError):
            os.unlink(f"{path}.{lo:08x}")
    got = _rename_next(path, hi)
    if got is None:
        return _fallback_value()
    _write_main(path, got)
    return got


def next_uidvalidity(maildir: Path) -> int:
    """The next UIDVALIDITY for a new folder (or a new dovecot-uidlist) of this Maildir."""
    path = maildir / UIDVALIDITY_FILE
    try:
        text = path.read_bytes()[:8].decode("ascii", "replace")
    except FileNotFoundError:
        return _rescan(path)
    except OSError:
        return _fallback_value()
    try:
        current = int(text, 16)
    except ValueError:
        current = 0
    if current == 0:
        return _rescan(path)
    value = _rename_next(path, current)
    if value is None:
        return _rescan(path)
    with contextlib.suppress(OSError):  # the marker file is the authority
        _write_main(path, value)
    return value
