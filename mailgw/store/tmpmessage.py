"""A message being streamed into a folder's ``tmp/`` (IMAP APPEND literals).

Theory of operation:

* :meth:`Folder.open_tmp` creates ``tmp/<unique>`` (O_EXCL, mode 0600);
  :meth:`TmpMessage.write` appends chunks as they arrive, so an APPEND
  literal is never held whole in memory (DESIGN.md "Protocol cores").  The
  byte count and the bare-LF count are kept on the way for ``,S=`` and
  ``,W=``.
* :meth:`TmpMessage.commit` fsyncs the file, sets its mtime to the internal
  date and renames it into ``new/`` (or ``cur/`` with flags) while holding
  the ``dovecot-uidlist`` dot-lock, appends the message's uidlist line and
  returns its UID at once (RFC 4315 UIDPLUS: APPENDUID needs it).
* Leaving the ``with`` block without commit, or :meth:`abort`, removes the
  file; nothing partial is ever visible in ``new/`` or ``cur/``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from mailgw.errors import StoreError
from mailgw.store import filenames as fn
from mailgw.store.fsutil import FILE_MODE, write_all

if TYPE_CHECKING:
    from mailgw.store.folder import Folder


class TmpMessage:
    """A message being written to ``tmp/``; :meth:`commit` makes it visible."""

    def __init__(self, folder: Folder) -> None:
        self._folder = folder
        self._base = fn.new_base()
        self.tmp_path: Path = folder.path / "tmp" / self._base
        self.key: str | None = None  # set by commit
        self.uid: int | None = None  # set by commit
        try:
            self._fd: int | None = os.open(
                self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE
            )
        except OSError as exc:
            raise StoreError(f"cannot create {self.tmp_path}: {exc.strerror}") from exc
        self._size = 0
        self._lf = 0
        self._crlf = 0
        self._last_cr = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise StoreError("message already committed or aborted")
        if not data:
            return
        self._lf += data.count(b"\n")
        self._crlf += data.count(b"\r\n") + (1 if self._last_cr and data[:1] == b"\n" else 0)
        self._last_cr = data[-1:] == b"\r"
        try:
            write_all(self._fd, data)
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot write {self.tmp_path}: {exc.strerror}") from exc
        self._size += len(data)

    def commit(
        self,
        *,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> int:
        """Make the message durable and visible; returns its UID (``.key`` is set too)."""
        _, uid = self._commit(flags, keywords, internaldate, assign_uid=True)
        assert uid is not None
        return uid

    def commit_key(
        self,
        *,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> str:
        """Like :meth:`commit` without touching dovecot-uidlist (SMTP's fast path); -> key."""
        key, _ = self._commit(flags, keywords, internaldate, assign_uid=False)
        return key

    def _commit(
        self,
        flags: Iterable[str],
        keywords: Iterable[str],
        internaldate: float | None,
        *,
        assign_uid: bool,
    ) -> tuple[str, int | None]:
        if self._fd is None:
            raise StoreError("message already committed or aborted")
        fd, self._fd = self._fd, None
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            key = fn.with_sizes(self._base, self._size, self._size + self._lf - self._crlf)
            uid = self._folder._place(
                self.tmp_path, key, flags, keywords, internaldate, assign_uid=assign_uid
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp_path)
            raise
        self.key, self.uid = key, uid
        return key, uid

    def abort(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(OSError):
            os.unlink(self.tmp_path)

    def __enter__(self) -> TmpMessage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            self.abort()
