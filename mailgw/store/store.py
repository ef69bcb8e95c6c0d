"""The mail store: accounts by user name and multi-recipient delivery.

Theory of operation:

* ``Store(mail_root)`` maps a user to ``<mail_root>/<user>/Maildir`` after
  checking the name against docs/contracts.md's regex.  Account objects (and
  through them Folder objects with their scan caches) are reused.
* :meth:`Store.deliver_many` writes a message once: into the first target's
  ``tmp/``, fsynced, mtime set to the internal date; then hard-links it into
  every other target's ``tmp/`` (copy + fsync across filesystems), renames
  each into ``new/`` and fsyncs each ``new/``.  All of it happens before it
  returns; on any failure every file it made is removed and StoreError is
  raised.  A (user, folder) pair given twice is delivered once.
* ``Store.changes`` is the :class:`~mailgw.store.events.ChangeHub` shared by
  every Account and Folder of this Store: IMAP sessions subscribe to it;
  ``deliver_many`` publishes one ``new`` event per folder once all copies
  are durable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path

from mailgw.errors import StoreError
from mailgw.store import events as ev
from mailgw.store import filenames as fn
from mailgw.store.account import Account
from mailgw.store.folder import Folder
from mailgw.store.fsutil import FILE_MODE, fsync_dir, write_all
from mailgw.store.names import validate_user

_LINK_FALLBACK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


class Store:
    def __init__(self, mail_root: Path) -> None:
        self.mail_root = Path(mail_root)
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()
        self.changes = ev.ChangeHub()

    def __repr__(self) -> str:
        return f"Store({str(self.mail_root)!r})"

    def account(self, user: str) -> Account:
        """The account of ``user`` (InvalidUserName for a bad name); no I/O."""
        validate_user(user)
        with self._lock:
            acct = self._accounts.get(user)
            if acct is None:
                acct = self._accounts[user] = Account(self.mail_root, user, hub=self.changes)
            return acct

    def deliver_many(
        self,
        targets: list[tuple[str, str]],
        data: bytes,
        *,
        internaldate: float | None = None,
    ) -> list[str]:
        """Deliver ``data`` to every (user, folder); returns the key for each target."""
        if not targets:
            return []
        folders: list[Folder] = []
        for user, name in targets:
            folder = self.account(user).folder(name)
            if all(f.path != folder.path for f in folders):
                folders.append(folder)
        base = fn.new_base()
        key = fn.with_sizes(base, len(data), fn.virtual_size(data))
        made: list[Path] = []
        try:
            first = folders[0].path / "tmp" / base
            _write_new(first, data, made)
            if internaldate is not None:
                os.utime(first, (internaldate, internaldate))
            tmps = [first]
            for folder in folders[1:]:
                tmp = folder.path / "tmp" / base
                try:
                    os.link(first, tmp)
                    made.append(tmp)
                except OSError as exc:
                    if exc.errno not in _LINK_FALLBACK:
                        raise
                    _write_new(tmp, data, made)
                    if internaldate is not None:
                        os.utime(tmp, (internaldate, internaldate))
                tmps.append(tmp)
            for folder, tmp in zip(folders, tmps, strict=True):
                dest = folder.path / "new" / key
                made.append(dest)
                os.rename(tmp, dest)
            for folder in folders:
                fsync_dir(folder.path / "new")
        except OSError as exc:
            for path in made:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise StoreError(f"delivery failed: {exc.strerror or exc}") from exc
        for folder in folders:
            folder._publish(ev.NEW, None)
        return [key] * len(targets)


def _write_new(path: Path, data: bytes, made: list[Path]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    made.append(path)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
