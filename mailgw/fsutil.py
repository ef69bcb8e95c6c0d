"""Durable small-file writes shared by the store, the user database and the certificates.

* :func:`atomic_write` replaces a file so that readers see the old or the new
  content, never a mix, and the new one survives a crash once it returns: a
  temporary file next to the target (created with ``O_EXCL``, so a symlink
  planted at its name is never followed; a stale one from a crashed writer
  with the same name is removed first), ``fchmod`` to the exact mode (the
  umask does not apply), write, ``fsync``, ``rename`` over the target,
  ``fsync`` of the directory.  On any error the temporary file is removed and
  the error (usually ``OSError``) propagates; callers map it to their own error.
* :func:`fsync_dir` makes a directory's entries (a create, rename or unlink)
  durable; :func:`write_all` loops over short ``os.write`` calls.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def fsync_dir(path: Path | str) -> None:
    """``fsync`` the directory ``path`` (its entries become durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (file mode ``mode``): temp, fsync, rename, fsync(dir)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}.{threading.get_ident()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a crashed writer that had our pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


__all__ = ["atomic_write", "fsync_dir", "write_all"]
