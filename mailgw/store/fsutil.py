"""Durable file operations and Dovecot-style dot-locks.

* Every replacement of a small control file (dovecot-uidlist, dovecot-keywords,
  subscriptions) goes through :func:`atomic_write` (``mailgw.fsutil``: temp
  file next to it, fsync, rename over the old one, fsync of the directory):
  readers see the old or the new file, never a mix, and the new one survives a
  crash once we return.  ``fsync_dir`` and ``write_all`` are re-exported from
  ``mailgw.fsutil`` for the store's modules.
* ``<file>.lock`` dot-locks are created with O_CREAT|O_EXCL, as Dovecot's
  file_dotlock does; a lock older than its stale timeout (120 s for
  dovecot-uidlist, MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT) or held by a dead
  process on this host is broken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from mailgw.errors import StoreError
from mailgw.fsutil import atomic_write, fsync_dir, write_all

FILE_MODE = 0o600  # atomic_write's default mode too
DIR_MODE = 0o700
STALE_TIMEOUT = 120.0


def make_dirs(path: Path) -> bool:
    """mkdir -p with mode 0700; True when something was created."""
    if path.is_dir():
        return False
    parent = path.parent
    if not parent.is_dir():
        make_dirs(parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise
        return False
    fsync_dir(parent)
    return True


_HOSTNAME = socket.gethostname()


def _lock_is_stale(lock: Path, stale_timeout: float) -> bool:
    try:
        st = lock.stat()
    except FileNotFoundError:
        return False
    if time.time() - st.st_mtime > stale_timeout:
        return True
    try:
        content = lock.read_text("ascii", "replace").strip()
    except OSError:
        return False
    pid_s, _, host = content.partition(":")
    if host == _HOSTNAME and pid_s.isdigit():
        try:
            os.kill(int(pid_s), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
    return False


@contextlib.contextmanager
def dotlock(
    path: Path, *, timeout: float = 15.0, stale_timeout: float = STALE_TIMEOUT
) -> Iterator[None]:
    """Hold ``<path>.lock`` (O_EXCL) for the duration of the block."""
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            if _lock_is_stale(lock, stale_timeout):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
                continue
            if time.monotonic() > deadline:
                raise StoreError(f"timed out waiting for lock {lock}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            continue
        except OSError as exc:
            raise StoreError(f"cannot create lock {lock}: {exc.strerror}") from exc
        break
    try:
        try:
            write_all(fd, f"{os.getpid()}:{_HOSTNAME}".encode())
        finally:
            os.close(fd)
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "STALE_TIMEOUT",
    "atomic_write",
    "dotlock",
    "fsync_dir",
    "make_dirs",
    "write_all",
]
