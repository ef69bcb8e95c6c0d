"""One Maildir folder: durable delivery, UID assignment, flags, expunge.

Theory of operation:

* Delivery (Maildir protocol; Dovecot LDA does the same): the message is
  written to ``tmp/<unique>``, flushed and fsynced, its mtime set to the
  internal date (Dovecot reads INTERNALDATE from the mtime), then renamed into
  ``new/<key>`` (or ``cur/<key>:2,<flags>`` when flags are given) and the
  directory is fsynced.  Nothing partial is ever visible in new/ or cur/.
  Delivery never touches dovecot-uidlist.
* :meth:`Folder.messages` scans ``new/`` then ``cur/`` (in that order, so a
  file moving from new/ to cur/ is not missed), gives UIDs to files not in
  dovecot-uidlist in order of (delivery second, name), appending lines under
  the ``dovecot-uidlist.lock`` dot-lock, and returns the messages in UID order.
  The result is cached by the mtimes of new/ and cur/ and the stat of the
  uidlist and keywords files; a directory whose mtime is less than a second
  old is never trusted (two changes may share one timestamp), as in Dovecot.
* Flag changes rename the file to ``cur/<key>:2,<letters>``; keyword letters
  come from dovecot-keywords (allocated under ``dovecot-keywords.lock``).
* Expunge unlinks the files and rewrites dovecot-uidlist without them.
* Threads: every operation that reads or changes the folder's state holds an
  in-process lock shared by all Folder objects for the same directory.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from mailgw.errors import FolderNotFound, MessageNotFound, StoreError
from mailgw.store import filenames as fn
from mailgw.store.fsutil import FILE_MODE, atomic_write, dotlock, fsync_dir, write_all
from mailgw.store.uidlist import (
    MAX_KEYWORDS,
    UidList,
    UidRecord,
    format_keywords,
    format_records,
    format_uidlist,
    keyword_letter,
    parse_keywords,
    parse_uidlist,
)

UIDLIST = "dovecot-uidlist"
KEYWORDS = "dovecot-keywords"
DIRTY_SECONDS = 1.0

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def folder_lock(path: Path) -> threading.RLock:
    """The in-process lock of a folder directory (one per path, shared)."""
    key = os.path.realpath(path)
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.RLock()
        return lock


@dataclass(frozen=True)
class MessageInfo:
    uid: int
    key: str
    path: Path
    size: int
    flags: frozenset[str]
    keywords: frozenset[str]
    internaldate: float


def check_flags(flags: Iterable[str]) -> frozenset[str]:
    out = frozenset(flags)
    bad = out - fn.SYSTEM_FLAGS
    if bad:
        raise ValueError(f"not a storable system flag: {sorted(bad)}")
    return out


def check_keywords(keywords: Iterable[str]) -> frozenset[str]:
    out = frozenset(keywords)
    for kw in out:
        if not kw or kw.startswith("\\") or any(c.isspace() or ord(c) < 0x20 for c in kw):
            raise ValueError(f"invalid keyword: {kw!r}")
    return out


class TmpMessage:
    """A message being written to ``tmp/``; :meth:`commit` makes it visible."""

    def __init__(self, folder: Folder) -> None:
        self._folder = folder
        self._base = fn.new_base()
        self.tmp_path = folder.path / "tmp" / self._base
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
    ) -> str:
        """fsync, rename into new/ (or cur/ with flags), fsync the directory; -> key."""
        if self._fd is None:
            raise StoreError("message already committed or aborted")
        fd, self._fd = self._fd, None
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            key = fn.with_sizes(self._base, self._size, self._size + self._lf - self._crlf)
            return self._folder._place(self.tmp_path, key, flags, keywords, internaldate)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp_path)
            raise

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


class Folder:
    """A Maildir folder (the Maildir root for INBOX).  Built by Account.folder()."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._lock = folder_lock(path)
        self._uidlist_path = path / UIDLIST
        self._keywords_path = path / KEYWORDS
        self._sig: tuple[object, ...] | None = None
        self._uidvalidity = 0
        self._next_uid = 0
        self._list: list[MessageInfo] = []
        self._by_uid: dict[int, MessageInfo] = {}
        self._where: dict[str, tuple[str, str]] = {}  # key -> (subdir, filename)
        self._stat_cache: dict[tuple[str, str], tuple[int, float]] = {}
        self._kw_by_index: dict[int, str] = {}
        self.scans = 0  # directory scans done, for tests and statistics

    def __repr__(self) -> str:
        return f"Folder({self.name!r}, {str(self.path)!r})"

    # --- delivery ---------------------------------------------------------------

    def open_tmp(self) -> TmpMessage:
        return TmpMessage(self)

    def deliver(
        self,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> str:
        with self.open_tmp() as tmp:
            tmp.write(data)
            return tmp.commit(flags=flags, keywords=keywords, internaldate=internaldate)

    def _place(
        self,
        tmp_path: Path,
        key: str,
        flags: Iterable[str],
        keywords: Iterable[str],
        internaldate: float | None,
    ) -> str:
        flagset = check_flags(flags)
        kwset = check_keywords(keywords)
        try:
            if internaldate is not None:
                os.utime(tmp_path, (internaldate, internaldate))
            if flagset or kwset:
                with self._lock:
                    letters = self._allocate_keywords(kwset)
                dest = (
                    self.path
                    / "cur"
                    / fn.format_filename(key, fn.encode_letters("", flagset, letters.values(), ()))
                )
            else:
                dest = self.path / "new" / key
            os.rename(tmp_path, dest)
            fsync_dir(dest.parent)
        except OSError as exc:
            raise StoreError(f"cannot deliver to {self.path}: {exc.strerror}") from exc
        return key

    # --- keywords ---------------------------------------------------------------

    def _read_keywords(self) -> dict[int, str]:
        try:
            return parse_keywords(self._keywords_path.read_bytes())
        except FileNotFoundError:
            return {}

    def _allocate_keywords(self, keywords: frozenset[str]) -> dict[str, str]:
        """{name: letter} for ``keywords``, adding missing ones to dovecot-keywords."""
        kw = self._read_keywords()
        by_name = {name: i for i, name in kw.items()}
        if any(k not in by_name for k in keywords):
            with dotlock(self._keywords_path):
                kw = self._read_keywords()
                by_name = {name: i for i, name in kw.items()}
                missing = sorted(k for k in keywords if k not in by_name)
                free = [i for i in range(MAX_KEYWORDS) if i not in kw]
                if len(missing) > len(free):
                    raise StoreError(
                        f"too many keywords in {self.name} (Maildir allows {MAX_KEYWORDS})"
                    )
                for name, i in zip(missing, free, strict=False):
                    kw[i] = name
                    by_name[name] = i
                atomic_write(self._keywords_path, format_keywords(kw))
        self._kw_by_index = kw
        return {k: keyword_letter(by_name[k]) for k in keywords}

    # --- scanning and UIDs ------------------------------------------------------

    def _stat_sig(self) -> tuple[tuple[object, ...], float]:
        parts: list[object] = []
        newest = 0.0
        for sub in ("new", "cur"):
            try:
                st = os.stat(self.path / sub)
            except FileNotFoundError:
                raise FolderNotFound(f"folder {self.name!r} does not exist") from None
            parts.append(st.st_mtime_ns)
            newest = max(newest, st.st_mtime)
        for p in (self._uidlist_path, self._keywords_path):
            try:
                st = os.stat(p)
                parts.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:
                parts.append(None)
        return tuple(parts), newest

    def _scan(self) -> dict[str, tuple[str, str]]:
        self.scans += 1
        found: dict[str, tuple[str, str]] = {}
        for sub in ("new", "cur"):
            try:
                with os.scandir(self.path / sub) as it:
                    for entry in it:
                        if entry.name.startswith("."):
                            continue
                        base, _ = fn.split_filename(entry.name)
                        found[base] = (sub, entry.name)
            except FileNotFoundError:
                raise FolderNotFound(f"folder {self.name!r} does not exist") from None
        return found

    def _read_uidlist(self) -> UidList | None:
        try:
            return parse_uidlist(self._uidlist_path.read_bytes())
        except FileNotFoundError:
            return None

    def _assign(self, files: dict[str, tuple[str, str]]) -> UidList:
        """Under the uidlist dot-lock: give UIDs to files the uidlist lacks."""
        with dotlock(self._uidlist_path):
            ul = self._read_uidlist()
            known = {r.key for r in ul.records} if ul else set()
            new_keys = sorted((k for k in files if k not in known), key=fn.base_order)
            if ul is None:
                ul = UidList(uidvalidity=int(time.time()), next_uid=1)
                rewrite = True
            else:
                gone = {r.key for r in ul.records} - set(files)
                if gone and new_keys:
                    gone -= set(self._scan())  # a second look: renames can hide a file
                rewrite = bool(gone) and bool(new_keys)
                if rewrite:
                    ul.records = [r for r in ul.records if r.key not in gone]
            uid = ul.effective_next_uid()
            added = []
            for k in new_keys:
                added.append(UidRecord(uid, k))
                uid += 1
            ul.records.extend(added)
            ul.next_uid = uid
            if rewrite:
                atomic_write(self._uidlist_path, format_uidlist(ul))
            elif added:
                fd = os.open(self._uidlist_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                try:
                    write_all(fd, format_records(added))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return ul

    def _sync(self) -> None:
        sig, newest = self._stat_sig()
        files = self._scan()
        ul = self._read_uidlist()
        known = {r.key for r in ul.records} if ul else set()
        if ul is None or any(k not in known for k in files):
            try:
                ul = self._assign(files)
            except OSError as exc:
                raise StoreError(f"cannot update {self._uidlist_path}: {exc.strerror}") from exc
        self._kw_by_index = self._read_keywords()
        kw_letters = {keyword_letter(i): name for i, name in self._kw_by_index.items()}
        infos: list[MessageInfo] = []
        stat_cache: dict[tuple[str, str], tuple[int, float]] = {}
        where: dict[str, tuple[str, str]] = {}
        for rec in ul.records:
            loc = files.get(rec.key)
            if loc is None:
                continue
            st = self._stat_cache.get(loc)
            if st is None:
                try:
                    s = os.stat(self.path / loc[0] / loc[1])
                except FileNotFoundError:
                    continue  # renamed or expunged meanwhile: seen next time
                st = (s.st_size, s.st_mtime)
            stat_cache[loc] = st
            where[rec.key] = loc
            infos.append(self._info(rec.uid, rec.key, loc, st, kw_letters))
        self._stat_cache = stat_cache
        self._where = where
        self._list = infos
        self._by_uid = {i.uid: i for i in infos}
        self._uidvalidity = ul.uidvalidity
        self._next_uid = ul.effective_next_uid()
        after, _ = self._stat_sig()
        clean = time.time() - newest > DIRTY_SECONDS and after[:2] == sig[:2]
        self._sig = after if clean else None

    def _info(
        self,
        uid: int,
        key: str,
        loc: tuple[str, str],
        st: tuple[int, float],
        kw_letters: dict[str, str],
    ) -> MessageInfo:
        _, info = fn.split_filename(loc[1])
        flags, keywords = fn.decode_letters(fn.info_letters(info), kw_letters)
        return MessageInfo(
            uid=uid,
            key=key,
            path=self.path / loc[0] / loc[1],
            size=st[0],
            flags=flags,
            keywords=keywords,
            internaldate=st[1],
        )

    def _refresh(self) -> None:
        if self._sig is None or self._stat_sig()[0] != self._sig:
            self._sync()

    def messages(self) -> list[MessageInfo]:
        """All messages in UID order, assigning UIDs to new files first."""
        with self._lock:
            self._refresh()
            return list(self._list)

    @property
    def uidvalidity(self) -> int:
        with self._lock:
            if not self._uidvalidity:
                self._refresh()
            return self._uidvalidity

    @property
    def uidnext(self) -> int:
        with self._lock:
            if not self._next_uid:
                self._refresh()
            return self._next_uid

    def _lookup(self, uid: int) -> MessageInfo:
        self._refresh()
        info = self._by_uid.get(uid)
        if info is None:
            raise MessageNotFound(f"no message with UID {uid} in {self.name!r}")
        return info

    # --- reading ----------------------------------------------------------------

    def open(self, info: MessageInfo) -> BinaryIO:
        for attempt in range(2):
            with self._lock:
                loc = self._where.get(info.key)
                path = self.path / loc[0] / loc[1] if loc else info.path
            try:
                return open(path, "rb")  # the caller closes it
            except FileNotFoundError:
                if attempt == 0:
                    with self._lock:
                        self._sig = None
                        self._refresh()
        raise MessageNotFound(f"message {info.key} is gone from {self.name!r}")

    def read(self, info: MessageInfo) -> bytes:
        with self.open(info) as fh:
            return fh.read()

    # --- flags ------------------------------------------------------------------

    def set_flags(self, uid: int, flags: frozenset[str], keywords: frozenset[str]) -> MessageInfo:
        """Replace the message's system flags and keywords; returns the new info."""
        flagset = check_flags(flags)
        kwset = check_keywords(keywords)
        with self._lock:
            for attempt in range(3):
                info = self._lookup(uid)
                sub, name = self._where[info.key]
                letters = self._allocate_keywords(kwset)
                known = [keyword_letter(i) for i in self._kw_by_index]
                _, infopart = fn.split_filename(name)
                new_letters = fn.encode_letters(
                    fn.info_letters(infopart), flagset, letters.values(), known
                )
                new_name = fn.format_filename(info.key, new_letters)
                if sub == "cur" and new_name == name:
                    return info
                try:
                    os.rename(self.path / sub / name, self.path / "cur" / new_name)
                    fsync_dir(self.path / "cur")
                    if sub != "cur":
                        fsync_dir(self.path / sub)
                except FileNotFoundError:
                    if attempt == 2:
                        raise MessageNotFound(f"message UID {uid} vanished") from None
                    self._sig = None  # renamed by someone else: rescan and retry
                    continue
                except OSError as exc:
                    raise StoreError(f"cannot change flags: {exc.strerror}") from exc
                st = self._stat_cache.pop((sub, name), (info.size, info.internaldate))
                loc = ("cur", new_name)
                self._stat_cache[loc] = st
                self._where[info.key] = loc
                kw_letters = {keyword_letter(i): n for i, n in self._kw_by_index.items()}
                new_info = self._info(uid, info.key, loc, st, kw_letters)
                self._by_uid[uid] = new_info
                self._list = [new_info if i.uid == uid else i for i in self._list]
                self._sig = None
                return new_info
        raise MessageNotFound(f"message UID {uid} vanished")  # pragma: no cover

    # --- expunge ----------------------------------------------------------------

    def expunge(self, uids: Iterable[int]) -> list[int]:
        """Delete the messages; returns the UIDs actually removed, ascending."""
        wanted = set(uids)
        with self._lock:
            self._refresh()
            removed: list[int] = []
            touched: set[str] = set()
            for uid in sorted(wanted):
                info = self._by_uid.get(uid)
                if info is None:
                    continue
                for attempt in range(2):
                    loc = self._where.get(info.key)
                    if loc is None:
                        break
                    try:
                        os.unlink(self.path / loc[0] / loc[1])
                        touched.add(loc[0])
                        break
                    except FileNotFoundError:
                        if attempt == 0:  # renamed meanwhile? look again
                            self._where = self._scan()
                removed.append(uid)
            try:
                for sub in touched:
                    fsync_dir(self.path / sub)
                if removed:
                    gone = set(removed)
                    with dotlock(self._uidlist_path):
                        ul = self._read_uidlist()
                        if ul is not None:
                            ul.next_uid = max(ul.effective_next_uid(), self._next_uid)
                            ul.records = [r for r in ul.records if r.uid not in gone]
                            atomic_write(self._uidlist_path, format_uidlist(ul))
            except OSError as exc:
                raise StoreError(f"cannot expunge from {self.name!r}: {exc.strerror}") from exc
            self._sig = None
            self._sync()
            return removed
