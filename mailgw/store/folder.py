"""One Maildir folder: delivery, UIDs, flags, MODSEQ, \\Recent, expunge, copy.

Theory of operation:

* Delivery (Maildir protocol; Dovecot LDA does the same): the message is
  written to ``tmp/<unique>``, fsynced, its mtime set to the internal date
  (Dovecot reads INTERNALDATE from the mtime), then renamed into ``new/<key>``
  (or ``cur/<key>:2,<flags>`` when flags are given) and the directory is
  fsynced.  Nothing partial is ever visible in new/ or cur/.  SMTP delivery
  (:meth:`Folder.deliver`) never touches dovecot-uidlist: that is its fast
  path.  APPEND and COPY (:meth:`TmpMessage.commit`, :meth:`Folder.copy_from`)
  place the file *while holding* the ``dovecot-uidlist.lock`` dot-lock and
  append its uidlist line, so they know the UID at once (RFC 4315 APPENDUID,
  COPYUID); only the header and the last line of the uidlist are read.
* :meth:`Folder.messages` scans ``new/`` then ``cur/`` (in that order, so a
  file moving from new/ to cur/ is not missed), gives UIDs to files not in
  dovecot-uidlist in order of (delivery second, name), appending lines under
  the dot-lock, and returns the messages in UID order.  The result is cached
  by the mtimes of new/ and cur/ and the stat of the uidlist and keywords
  files; a directory whose mtime is less than a second old is never trusted
  (two changes may share one timestamp), as in Dovecot.
* CONDSTORE (RFC 7162): every scan reconciles the files' flag letters with
  the ``mailgw-modseq`` log (:mod:`mailgw.store.modseq`), so new messages,
  flag changes and expunges get a new mod-sequence whoever made them.
* \\Recent (RFC 3501 2.3.2): a file in ``new/`` is recent.
  :meth:`Folder.claim_recent` renames them to ``cur/<key>:2,`` as Dovecot
  does on a read-write SELECT; rename is atomic, so only one session (or
  process) gets each message as recent.
* Flag changes rename the file to ``cur/<key>:2,<letters>``; keyword letters
  come from dovecot-keywords (allocated under ``dovecot-keywords.lock``).
  Expunge unlinks the files and rewrites dovecot-uidlist without them.
* Change events (:mod:`mailgw.store.events`) are published after the change
  is durable.  :meth:`Folder.state_token` / :meth:`Folder.changed_since` let a
  session poll cheaply for changes by other processes.
* Threads: every operation that reads or changes the folder's state holds an
  in-process lock shared by all Folder objects for the same directory.
  COPY never holds two folders' locks at once.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailgw.errors import FolderNotFound, MessageNotFound, StoreError
from mailgw.store import events as ev
from mailgw.store import filenames as fn
from mailgw.store.fsutil import atomic_write, dotlock, fsync_dir, write_all
from mailgw.store.modseq import MODSEQ_FILE, ModseqLog
from mailgw.store.tmpmessage import TmpMessage
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
from mailgw.store.uidvalidity import next_uidvalidity

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


class ModifiedSince(StoreError):
    """STORE UNCHANGEDSINCE failed: the message changed after the given modseq."""


@dataclass(frozen=True)
class MessageInfo:
    uid: int
    key: str
    path: Path
    size: int
    flags: frozenset[str]
    keywords: frozenset[str]
    internaldate: float
    modseq: int = 0  # RFC 7162 MODSEQ; 0 only for infos not made by a Folder


@dataclass(frozen=True)
class FlagUpdate:
    """Result of :meth:`Folder.store_flags`."""

    changed: list[MessageInfo]  # messages whose flags changed, with their new state
    failed: list[int]  # UIDs that failed the UNCHANGEDSINCE test (RFC 7162 MODIFIED)
    highestmodseq: int


@dataclass(frozen=True)
class StateToken:
    """What :meth:`Folder.state_token` saw; ``clean`` when it can be trusted."""

    sig: tuple[object, ...]
    clean: bool


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


def _letters_of(filename: str) -> str:
    return fn.info_letters(fn.split_filename(filename)[1])


class Folder:
    """A Maildir folder (the Maildir root for INBOX).  Built by Account.folder()."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        user: str = "",
        hub: ev.ChangeHub | None = None,
        maildir: Path | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.user = user
        self.hub = hub
        self._maildir = (
            maildir if maildir is not None else (path if name == "INBOX" else path.parent)
        )
        self._lock = folder_lock(path)
        self._uidlist_path = path / UIDLIST
        self._keywords_path = path / KEYWORDS
        self._modseq = ModseqLog(path / MODSEQ_FILE)
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

    def _publish(self, kind: str, uids: Iterable[int] | None, modseq: int | None = None) -> None:
        if self.hub is not None:
            self.hub.publish(
                ev.ChangeEvent(
                    kind=kind,
                    user=self.user,
                    folder=self.name,
                    uids=None if uids is None else tuple(uids),
                    modseq=modseq,
                )
            )

    # --- delivery ---------------------------------------------------------------

    def open_tmp(self) -> TmpMessage:
        """Stream a message into tmp/; ``.commit(...)`` returns its UID."""
        return TmpMessage(self)

    def deliver(
        self,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> str:
        """SMTP's fast path: durable, leaves dovecot-uidlist alone; returns the key."""
        with self.open_tmp() as tmp:
            tmp.write(data)
            return tmp.commit_key(flags=flags, keywords=keywords, internaldate=internaldate)

    def deliver_uid(
        self,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> int:
        """Like :meth:`deliver` but assigns the UID under the uidlist lock; returns it."""
        with self.open_tmp() as tmp:
            tmp.write(data)
            return tmp.commit(flags=flags, keywords=keywords, internaldate=internaldate)

    def _dest_name(self, key: str, flagset: frozenset[str], kwset: frozenset[str]) -> Path:
        if not flagset and not kwset:
            return self.path / "new" / key
        with self._lock:
            letters = self._allocate_keywords(kwset)
        info = fn.encode_letters("", flagset, letters.values(), ())
        return self.path / "cur" / fn.format_filename(key, info)

    def _place(
        self,
        tmp_path: Path,
        key: str,
        flags: Iterable[str],
        keywords: Iterable[str],
        internaldate: float | None,
        *,
        assign_uid: bool,
    ) -> int | None:
        flagset = check_flags(flags)
        kwset = check_keywords(keywords)
        try:
            if internaldate is not None:
                os.utime(tmp_path, (internaldate, internaldate))
            dest = self._dest_name(key, flagset, kwset)
            if not assign_uid:
                os.rename(tmp_path, dest)
                fsync_dir(dest.parent)
        except OSError as exc:
            raise StoreError(f"cannot deliver to {self.path}: {exc.strerror}") from exc
        if not assign_uid:
            self._publish(ev.NEW, None)
            return None

        def place(_: Path) -> bool:
            os.rename(tmp_path, dest)
            return True

        [uid] = self._add_with_uids([(key, dest, place)])
        return uid

    def _add_with_uids(
        self, items: list[tuple[str, Path, Callable[[Path], bool]]]
    ) -> list[int | None]:
        """Place files (key, destination, placer) and give them UIDs, under the dot-lock.

        ``placer(dest)`` makes the file appear at ``dest`` and returns False
        when the source has gone.  Returns the UID of each item (None: gone).
        """
        uids: list[int | None] = []
        with self._lock:
            try:
                with dotlock(self._uidlist_path):
                    peek = self._peek_uidlist()
                    placed: list[tuple[str, Path]] = []
                    for key, dest, placer in items:
                        if placer(dest):
                            placed.append((key, dest))
                    dirs = {dest.parent for _, dest in placed}
                    for d in dirs:
                        fsync_dir(d)
                    got: dict[str, int] = {}
                    if peek is None:  # no usable uidlist yet: a full scan creates it
                        ul = self._assign_locked(self._scan())
                        validity = ul.uidvalidity
                        by_key = {r.key: r.uid for r in ul.records}
                        got = {key: by_key[key] for key, _ in placed if key in by_key}
                    else:
                        validity, nxt = peek
                        records = []
                        for key, _ in placed:
                            records.append(UidRecord(nxt, key))
                            got[key] = nxt
                            nxt += 1
                        if records:
                            self._append_records(records)
                    letters = {got[key]: _letters_of(dest.name) for key, dest in placed}
                    modseq = self._modseq.record(validity, letters) if letters else None
            except OSError as exc:
                raise StoreError(f"cannot add messages to {self.name!r}: {exc.strerror}") from exc
            uids = [got.get(key) for key, _, _ in items]
            self._sig = None
            new = [u for u in uids if u is not None]
        if new:
            self._publish(ev.NEW, new, modseq)
        return uids

    def _append_records(self, records: list[UidRecord]) -> None:
        fd = os.open(self._uidlist_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            write_all(fd, format_records(records))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _peek_uidlist(self) -> tuple[int, int] | None:
        """(UIDVALIDITY, next UID) from the uidlist header and last line; None: no uidlist."""
        try:
            fd = os.open(self._uidlist_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, 4096, 0)
            nl = head.find(b"\n")
            if nl < 0:
                return None
            ul = parse_uidlist(head[: nl + 1])
            if ul is None:
                return None
            start = max(0, size - 4096)
            tail = os.pread(fd, size - start, start)
        finally:
            os.close(fd)
        end = tail.rfind(b"\n")  # text after the last newline is a write in progress
        last = 0
        body = tail[:end] if end >= 0 else b""
        if start == 0 or b"\n" in body:
            line = body.rsplit(b"\n", 1)[-1]
            uid_s = line.split(b" ", 1)[0]
            if start + end - len(line) > nl and uid_s.isdigit():
                last = int(uid_s)
        return ul.uidvalidity, max(ul.next_uid, last + 1)

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

    def exists(self) -> bool:
        """The folder's Maildir is still on disk (its ``tmp/``, where every write starts)."""
        return os.path.isdir(os.path.join(self.path, "tmp"))

    def state_token(self) -> StateToken:
        """A cheap snapshot (directory mtimes, control file stats) for polling."""
        sig, newest = self._stat_sig()
        try:
            st = os.stat(self._modseq.path)
            mod: object = (st.st_ino, st.st_size)
        except FileNotFoundError:
            mod = None
        return StateToken((*sig, mod), time.time() - newest > DIRTY_SECONDS)

    def changed_since(self, token: StateToken) -> bool:
        """True when the folder may have changed (or vanished) since ``token`` was taken.

        A token taken within a second of a change is never trusted (mtime
        granularity), so it reports a change once more; take a new token
        after each resync.
        """
        if not token.clean:
            return True
        try:
            return self.state_token().sig != token.sig
        except FolderNotFound:
            return True

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
            return self._assign_locked(files)

    def _assign_locked(self, files: dict[str, tuple[str, str]]) -> UidList:
        ul = self._read_uidlist()
        known = {r.key for r in ul.records} if ul else set()
        new_keys = sorted((k for k in files if k not in known), key=fn.base_order)
        if ul is None:
            ul = UidList(uidvalidity=next_uidvalidity(self._maildir), next_uid=1)
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
            self._append_records(added)
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
        found: list[tuple[UidRecord, tuple[str, str], tuple[int, float]]] = []
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
            found.append((rec, loc, st))
        modseqs = self._reconcile_modseq(ul.uidvalidity, [(r.uid, loc[1]) for r, loc, _ in found])
        infos = [
            self._info(r.uid, r.key, loc, st, kw_letters, modseqs[r.uid]) for r, loc, st in found
        ]
        self._stat_cache = stat_cache
        self._where = where
        self._list = infos
        self._by_uid = {i.uid: i for i in infos}
        self._uidvalidity = ul.uidvalidity
        self._next_uid = ul.effective_next_uid()
        after, _ = self._stat_sig()
        clean = time.time() - newest > DIRTY_SECONDS and after[:2] == sig[:2]
        self._sig = after if clean else None

    def _reconcile_modseq(self, uidvalidity: int, present: list[tuple[int, str]]) -> dict[int, int]:
        """Record new, re-flagged and vanished messages in the modseq log; uid -> modseq."""
        ml = self._modseq
        try:
            ml.refresh()
            if ml.uidvalidity and ml.uidvalidity != uidvalidity:
                ml.entries = {}
            changes: dict[int, str | None] = {}
            for uid, filename in present:
                letters = _letters_of(filename)
                entry = ml.entries.get(uid)
                if entry is None or entry[1] != letters:
                    changes[uid] = letters
            alive = {uid for uid, _ in present}
            for uid in ml.entries:
                if uid not in alive:
                    changes[uid] = None
            if changes or (present and ml.uidvalidity != uidvalidity):
                ml.record(uidvalidity, changes)
        except OSError as exc:
            raise StoreError(f"cannot update {ml.path}: {exc.strerror}") from exc
        return {uid: ml.entries[uid][0] if uid in ml.entries else 1 for uid, _ in present}

    def _info(
        self,
        uid: int,
        key: str,
        loc: tuple[str, str],
        st: tuple[int, float],
        kw_letters: dict[str, str],
        modseq: int,
    ) -> MessageInfo:
        flags, keywords = fn.decode_letters(_letters_of(loc[1]), kw_letters)
        return MessageInfo(
            uid=uid,
            key=key,
            path=self.path / loc[0] / loc[1],
            size=st[0],
            flags=flags,
            keywords=keywords,
            internaldate=st[1],
            modseq=modseq,
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

    @property
    def highestmodseq(self) -> int:
        """RFC 7162 HIGHESTMODSEQ (at least 1) as of the last scan."""
        with self._lock:
            if not self._uidvalidity:
                self._refresh()
            return max(self._modseq.highest, 1)

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

    # --- \Recent ----------------------------------------------------------------

    def claim_recent(self) -> set[int]:
        """Move new/ files to cur/ (RFC 3501 2.3.2 \\Recent); the UIDs this call moved."""
        with self._lock:
            self._refresh()
            claimed: set[int] = set()
            for info in self._list:
                sub, name = self._where[info.key]
                if sub != "new":
                    continue
                target = name if fn.split_filename(name)[1] is not None else name + fn.INFO_PREFIX
                try:
                    os.rename(self.path / "new" / name, self.path / "cur" / target)
                except FileNotFoundError:
                    continue  # someone else claimed (or expunged) it
                except OSError as exc:
                    raise StoreError(f"cannot move {name} to cur/: {exc.strerror}") from exc
                claimed.add(info.uid)
            if claimed:
                try:
                    fsync_dir(self.path / "cur")
                    fsync_dir(self.path / "new")
                except OSError as exc:
                    raise StoreError(f"cannot sync {self.path}: {exc.strerror}") from exc
                self._sig = None
                self._refresh()
            return claimed

    # --- flags ------------------------------------------------------------------

    def _rename_flags(
        self, info: MessageInfo, flagset: frozenset[str], letters: Iterable[str]
    ) -> MessageInfo | None:
        """Rename to the new flag letters; the new info, or None when nothing changed."""
        for attempt in range(3):
            if attempt:
                info = self._lookup(info.uid)
            sub, name = self._where[info.key]
            known = [keyword_letter(i) for i in self._kw_by_index]
            new_letters = fn.encode_letters(_letters_of(name), flagset, letters, known)
            new_name = fn.format_filename(info.key, new_letters)
            if sub == "cur" and new_name == name:
                return None
            try:
                os.rename(self.path / sub / name, self.path / "cur" / new_name)
                if sub != "cur":
                    fsync_dir(self.path / sub)
            except FileNotFoundError:
                self._sig = None  # renamed by someone else: rescan and retry
                continue
            except OSError as exc:
                raise StoreError(f"cannot change flags: {exc.strerror}") from exc
            st = self._stat_cache.pop((sub, name), (info.size, info.internaldate))
            loc = ("cur", new_name)
            self._stat_cache[loc] = st
            self._where[info.key] = loc
            kw_letters = {keyword_letter(i): n for i, n in self._kw_by_index.items()}
            return self._info(info.uid, info.key, loc, st, kw_letters, info.modseq)
        raise MessageNotFound(f"message UID {info.uid} vanished")

    def store_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        *,
        mode: str = "replace",
        unchanged_since: int | None = None,
    ) -> FlagUpdate:
        """IMAP STORE on many UIDs at once, atomically per message (RFC 3501 6.4.6).

        ``mode`` is ``"replace"`` (FLAGS), ``"add"`` (+FLAGS) or ``"remove"``
        (-FLAGS).  With ``unchanged_since`` (RFC 7162 3.1.3 UNCHANGEDSINCE) a
        message whose MODSEQ is greater is left alone and listed in
        ``failed``.  UIDs that do not exist are ignored.  All changed
        messages get one new MODSEQ.
        """
        if mode not in ("replace", "add", "remove"):
            raise ValueError(f"bad store mode {mode!r}")
        flagset = check_flags(flags)
        kwset = check_keywords(keywords)
        changed: list[MessageInfo] = []
        failed: list[int] = []
        with self._lock:
            self._refresh()
            letters = self._allocate_keywords(kwset) if mode != "remove" else {}
            for uid in sorted(set(uids)):
                info = self._by_uid.get(uid)
                if info is None:
                    continue
                if unchanged_since is not None and info.modseq > unchanged_since:
                    failed.append(uid)
                    continue
                if mode == "replace":
                    new_flags, new_kw = flagset, kwset
                elif mode == "add":
                    new_flags, new_kw = info.flags | flagset, info.keywords | kwset
                else:
                    new_flags, new_kw = info.flags - flagset, info.keywords - kwset
                if new_flags == info.flags and new_kw == info.keywords:
                    continue
                by_name = {n: keyword_letter(i) for i, n in self._kw_by_index.items()}
                kw_letters = [letters.get(k) or by_name[k] for k in new_kw]
                try:
                    new_info = self._rename_flags(info, new_flags, kw_letters)
                except MessageNotFound:
                    continue  # expunged meanwhile
                if new_info is not None:
                    changed.append(new_info)
            highest = max(self._modseq.highest, 1)
            if changed:
                try:
                    fsync_dir(self.path / "cur")
                    highest = self._modseq.record(
                        self._uidvalidity, {i.uid: _letters_of(i.path.name) for i in changed}
                    )
                except OSError as exc:
                    raise StoreError(f"cannot change flags: {exc.strerror}") from exc
                changed = [dataclasses.replace(i, modseq=highest) for i in changed]
                for i in changed:
                    self._by_uid[i.uid] = i
                self._list = [self._by_uid.get(i.uid, i) for i in self._list]
                self._sig = None
        if changed:
            self._publish(ev.FLAGS, [i.uid for i in changed], highest)
        return FlagUpdate(changed, failed, highest)

    def set_flags(
        self,
        uid: int,
        flags: frozenset[str],
        keywords: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> MessageInfo:
        """Replace the message's system flags and keywords; returns the new info.

        MessageNotFound for an unknown UID; :class:`ModifiedSince` when the
        UNCHANGEDSINCE test fails.
        """
        with self._lock:
            info = self._lookup(uid)
            result = self.store_flags([uid], flags, keywords, unchanged_since=unchanged_since)
            if result.failed:
                raise ModifiedSince(f"UID {uid} changed since modseq {unchanged_since}")
            if result.changed:
                return result.changed[0]
            return self._by_uid.get(uid, info)

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
                    self._modseq.record(self._uidvalidity, dict.fromkeys(removed), bump=True)
            except OSError as exc:
                raise StoreError(f"cannot expunge from {self.name!r}: {exc.strerror}") from exc
            self._sig = None
            self._sync()
            highest = max(self._modseq.highest, 1)
        if removed:
            self._publish(ev.EXPUNGE, removed, highest)
        return removed

    # --- copy and move ---------------------------------------------------------

    def copy_from(self, src: Folder, uids: Iterable[int]) -> list[tuple[int, int]]:
        """COPY (RFC 3501 6.4.7, RFC 4315 COPYUID); see :func:`mailgw.store.copy.copy_messages`."""
        from mailgw.store.copy import copy_messages

        return copy_messages(src, self, uids)

    def move_to(self, dst: Folder, uids: Iterable[int]) -> list[tuple[int, int]]:
        """MOVE (RFC 6851): copy to ``dst``, then expunge here; (old UID, new UID) pairs."""
        pairs = dst.copy_from(self, uids)
        if pairs:
            self.expunge([old for old, _ in pairs])
        return pairs
