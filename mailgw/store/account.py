"""A user's Maildir++: folders and subscriptions, laid out as Dovecot 2.3 does.

Theory of operation:

* ``home = <mail_root>/<user>``, ``maildir = home/Maildir``; INBOX is the
  Maildir root, every other folder a ``.Name`` directory below it
  (see :mod:`mailgw.store.names` for the name mapping and validation).
* A folder is created complete or not at all: ``cur/ new/ tmp/``, an empty
  ``maildirfolder`` file and a fresh ``dovecot-uidlist`` (UIDVALIDITY = now)
  are built in a private directory under ``Maildir/tmp/`` and renamed into
  place.  Deletion renames the folder away into ``Maildir/tmp/`` first, so it
  vanishes at once, then removes it.
* UIDVALIDITY of a new folder comes from Dovecot's ``dovecot-uidvalidity``
  counter (:mod:`mailgw.store.uidvalidity`): a folder deleted and recreated
  within one second still gets a new value (RFC 3501 2.3.1.1).
* DELETE (RFC 3501 6.3.4) removes only that folder's directory: with
  Maildir++ its children are separate directories and stay.  The name then
  lists as ``\\Noselect \\HasChildren`` (``\\NonExistent`` with LIST-EXTENDED,
  RFC 5258), which is what Dovecot 2.3 shows for the same directories.
  Subscriptions are kept, as Dovecot 2.3 does and RFC 3501 6.3.6 requires
  ("MUST NOT unilaterally remove").
* RENAME moves the folder and every folder below it (RFC 3501 6.3.5) and
  renames their subscriptions (Dovecot 2.3 leaves subscriptions as they
  were; we follow the issue's requirement, see docs/contracts.md).  Renaming
  INBOX moves its messages to the new folder and leaves INBOX empty; its
  children stay.
* New accounts (:meth:`Account.ensure` making the Maildir) get the RFC 6154
  special-use folders of :data:`SPECIAL_USE`, subscribed.
* ``subscriptions`` uses Dovecot's version 2 format: ``V<TAB>2``, an empty
  line, then one name per line, each level in modified UTF-7, levels joined
  by TAB.  It is rewritten atomically under ``subscriptions.lock``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from mailgw.errors import FolderExists, FolderNotFound, InvalidFolderName, StoreError
from mailgw.store import events as ev
from mailgw.store.folder import UIDLIST, Folder
from mailgw.store.fsutil import DIR_MODE, FILE_MODE, atomic_write, dotlock, fsync_dir, make_dirs
from mailgw.store.names import (
    SEPARATOR,
    disk_name,
    folder_dir,
    is_inbox,
    name_from_disk,
    name_from_subscription,
    normalize_folder,
    subscription_line,
)
from mailgw.store.uidlist import UidList, format_uidlist
from mailgw.store.uidvalidity import next_uidvalidity

SUBSCRIPTIONS = "subscriptions"
SUBSCRIPTIONS_HEADER = "V\t2\n\n"

# RFC 6154 special-use folders made for new accounts, with their LIST attribute
SPECIAL_USE: dict[str, str] = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}


@dataclass(frozen=True)
class ListEntry:
    """One name for IMAP LIST: an existing folder or a parent that only has children."""

    name: str
    exists: bool  # False: a \\Noselect parent (deleted, or never created, in Maildir++)
    has_children: bool
    subscribed: bool
    special_use: str | None  # "\\Sent" ... (RFC 6154), only for existing folders

    def attributes(self, *, extended: bool = False) -> frozenset[str]:
        """LIST attributes; ``extended`` (RFC 5258) says \\NonExistent instead of \\Noselect."""
        out = {"\\HasChildren" if self.has_children else "\\HasNoChildren"}
        if not self.exists:
            out.add("\\NonExistent" if extended else "\\Noselect")
        if self.subscribed:
            out.add("\\Subscribed")
        if self.special_use and self.exists:
            out.add(self.special_use)
        return frozenset(out)


class Account:
    """One user's mail.  Get it from :meth:`mailgw.store.Store.account`."""

    def __init__(self, mail_root: Path, user: str, *, hub: ev.ChangeHub | None = None) -> None:
        self.user = user
        self.home = mail_root / user
        self.maildir = self.home / "Maildir"
        self.hub = hub if hub is not None else ev.ChangeHub()
        self._lock = threading.RLock()
        self._folders: dict[str, Folder] = {}

    def __repr__(self) -> str:
        return f"Account({self.user!r})"

    def ensure(self, *, special_use: bool = True) -> None:
        """Create ``Maildir/{cur,new,tmp}`` (mode 0700); idempotent and cheap.

        When this call creates the Maildir (a new account) and ``special_use``
        is true, the :data:`SPECIAL_USE` folders are created and subscribed
        too.  An existing Maildir is left as it is: a user who deleted Trash
        does not get it back.
        """
        if all((self.maildir / sub).is_dir() for sub in ("cur", "new", "tmp")):
            return
        try:
            created = make_dirs(self.maildir / "cur")
            for sub in ("new", "tmp"):
                make_dirs(self.maildir / sub)
        except OSError as exc:
            raise StoreError(f"cannot create {self.maildir}: {exc.strerror}") from exc
        if created and special_use:
            self.ensure_special_use()

    def ensure_special_use(self) -> None:
        """Create and subscribe the :data:`SPECIAL_USE` folders that are missing."""
        for name in SPECIAL_USE:
            with contextlib.suppress(FolderExists):
                self.create_folder(name)
            self.subscribe(name)

    # --- folders ----------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return folder_dir(self.maildir, name)

    def folder(self, name: str = "INBOX") -> Folder:
        """The folder called ``name``; INBOX always exists (it is created on demand)."""
        canonical = normalize_folder(name)
        with self._lock:
            if is_inbox(canonical):
                self.ensure()
            path = self._path(canonical)
            if not (path / "cur").is_dir():
                self._folders.pop(canonical, None)
                raise FolderNotFound(f"no folder {canonical!r} for {self.user}")
            folder = self._folders.get(canonical)
            if folder is None:
                folder = self._folders[canonical] = Folder(
                    canonical, path, user=self.user, hub=self.hub, maildir=self.maildir
                )
            return folder

    def list_folders(self) -> list[str]:
        """ "INBOX" first, then every folder directory, sorted by name."""
        names: set[str] = set()
        try:
            with os.scandir(self.maildir) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        name = name_from_disk(entry.name)
                        if name is not None and not is_inbox(name):
                            names.add(name)
        except FileNotFoundError:
            pass
        return ["INBOX", *sorted(names)]

    def list_entries(self) -> list[ListEntry]:
        """Every folder plus the parents that exist only through children, sorted.

        ``\\Noselect`` parents are what RFC 3501 6.3.4 asks for after DELETE of a
        folder with children, and what Dovecot lists for Maildir++ parents.
        """
        existing = set(self.list_folders())
        names = set(existing)
        for name in existing:
            parts = name.split(SEPARATOR)
            for i in range(1, len(parts)):
                names.add(SEPARATOR.join(parts[:i]))
        subscribed = set(self.subscriptions())
        parents = {n.rsplit(SEPARATOR, 1)[0] for n in names if SEPARATOR in n}
        ordered = ["INBOX", *sorted(n for n in names if n != "INBOX")]
        return [
            ListEntry(
                name=n,
                exists=n in existing,
                has_children=n in parents,
                subscribed=n in subscribed,
                special_use=SPECIAL_USE.get(n) if n in existing else None,
            )
            for n in ordered
        ]

    def folder_attributes(self, name: str, *, extended: bool = False) -> frozenset[str]:
        """LIST attributes of ``name``, which need not exist (then \\Noselect/\\NonExistent)."""
        canonical = normalize_folder(name)
        for entry in self.list_entries():
            if entry.name == canonical:
                return entry.attributes(extended=extended)
        out = {"\\HasNoChildren", "\\NonExistent" if extended else "\\Noselect"}
        if canonical in self.subscriptions():
            out.add("\\Subscribed")
        return frozenset(out)

    def _publish(self, kind: str, name: str, new_name: str | None = None) -> None:
        self.hub.publish(ev.ChangeEvent(kind=kind, user=self.user, folder=name, new_name=new_name))

    def _staging(self, what: str) -> Path:
        self.ensure()
        return self.maildir / "tmp" / f".mailgw-{what}-{uuid.uuid4().hex}"

    def create_folder(self, name: str) -> Folder:
        canonical = normalize_folder(name)
        if is_inbox(canonical):
            raise FolderExists("INBOX already exists")
        with self._lock:
            path = self._path(canonical)
            if path.exists():
                raise FolderExists(f"folder {canonical!r} already exists")
            stage = self._staging("create")
            try:
                os.mkdir(stage, DIR_MODE)
                for sub in ("cur", "new", "tmp"):
                    os.mkdir(stage / sub, DIR_MODE)
                os.close(os.open(stage / "maildirfolder", os.O_WRONLY | os.O_CREAT, FILE_MODE))
                ul = UidList(uidvalidity=next_uidvalidity(self.maildir), next_uid=1)
                atomic_write(stage / UIDLIST, format_uidlist(ul))
                os.rename(stage, path)
                fsync_dir(self.maildir)
            except OSError as exc:
                shutil.rmtree(stage, ignore_errors=True)
                raise StoreError(f"cannot create folder {canonical!r}: {exc.strerror}") from exc
            folder = self.folder(canonical)
        self._publish(ev.CREATE, canonical)
        return folder

    def delete_folder(self, name: str) -> None:
        canonical = normalize_folder(name)
        if is_inbox(canonical):
            raise StoreError("INBOX cannot be deleted")
        with self._lock:
            path = self._path(canonical)
            if not path.is_dir():
                raise FolderNotFound(f"no folder {canonical!r} for {self.user}")
            stage = self._staging("delete")
            try:
                os.rename(path, stage)
                fsync_dir(self.maildir)
            except OSError as exc:
                raise StoreError(f"cannot delete folder {canonical!r}: {exc.strerror}") from exc
            self._folders.pop(canonical, None)
            shutil.rmtree(stage, ignore_errors=True)
        self._publish(ev.DELETE, canonical)

    def rename_folder(self, old: str, new: str, *, move_subscriptions: bool = True) -> None:
        src = normalize_folder(old)
        dst = normalize_folder(new)
        if is_inbox(dst):
            raise FolderExists("INBOX already exists")
        if (dst + SEPARATOR).startswith(src + SEPARATOR):
            raise InvalidFolderName(f"cannot rename {src!r} to {dst!r} under itself")
        with self._lock:
            if is_inbox(src):
                self._move_inbox(dst)
                self._publish(ev.RENAME, src, dst)
                return
            src_path = self._path(src)
            dst_path = self._path(dst)
            if not src_path.is_dir():
                raise FolderNotFound(f"no folder {src!r} for {self.user}")
            src_disk, dst_disk = disk_name(src), disk_name(dst)
            moves = [(src_path, dst_path)]
            with os.scandir(self.maildir) as it:
                for entry in it:
                    if entry.name.startswith(src_disk + "."):
                        rest = entry.name[len(src_disk) :]
                        moves.append((Path(entry.path), self.maildir / (dst_disk + rest)))
            for _, target in moves:
                if target.exists():
                    raise FolderExists(f"folder {name_from_disk(target.name)!r} already exists")
            try:
                for source, target in moves:
                    os.rename(source, target)
                fsync_dir(self.maildir)
            except OSError as exc:
                raise StoreError(f"cannot rename {src!r} to {dst!r}: {exc.strerror}") from exc
            self._folders.clear()
            renamed: list[tuple[str, str]] = []
            for source, target in moves:
                a, b = name_from_disk(source.name), name_from_disk(target.name)
                if a is not None and b is not None:
                    renamed.append((a, b))
            if move_subscriptions:
                self._rename_subscriptions(src, dst)
        for a, b in renamed:
            self._publish(ev.RENAME, a, b)

    def _move_inbox(self, dst: str) -> None:
        """RFC 3501 6.3.5: renaming INBOX moves its messages, INBOX stays."""
        inbox = self.folder("INBOX")
        target = self.create_folder(dst)
        try:
            with inbox._lock:
                for sub in ("new", "cur"):
                    for entry in os.scandir(inbox.path / sub):
                        if not entry.name.startswith("."):
                            with contextlib.suppress(FileNotFoundError):
                                os.rename(entry.path, target.path / sub / entry.name)
                for sub in ("new", "cur"):
                    fsync_dir(inbox.path / sub)
                    fsync_dir(target.path / sub)
        except OSError as exc:
            raise StoreError(f"cannot move INBOX to {dst!r}: {exc.strerror}") from exc
        inbox.messages()

    # --- subscriptions ----------------------------------------------------------

    def _read_subscriptions(self) -> list[str]:
        try:
            text = (self.maildir / SUBSCRIPTIONS).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        lines = text.split("\n")
        if lines and lines[0] == "V\t2":
            lines = lines[1:]
        out: list[str] = []
        for line in lines:
            name = name_from_subscription(line) if line else None
            if name is not None and name not in out:
                out.append(name)
        return out

    def subscriptions(self) -> list[str]:
        with self._lock:
            return self._read_subscriptions()

    def _change_subscription(self, name: str, add: bool) -> None:
        canonical = normalize_folder(name)
        with self._lock:
            self.ensure()
            path = self.maildir / SUBSCRIPTIONS
            with dotlock(path):
                names = self._read_subscriptions()
                if add == (canonical in names):
                    return
                if add:
                    names.append(canonical)
                else:
                    names.remove(canonical)
                self._write_subscriptions(path, names)
        self._publish(ev.SUBSCRIPTIONS, canonical)

    def _write_subscriptions(self, path: Path, names: list[str]) -> None:
        body = "".join(subscription_line(n) + "\n" for n in names)
        try:
            atomic_write(path, (SUBSCRIPTIONS_HEADER + body).encode("utf-8"))
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from exc

    def _rename_subscriptions(self, src: str, dst: str) -> None:
        """``src`` and names below it become ``dst``... in the subscriptions file."""
        path = self.maildir / SUBSCRIPTIONS
        with self._lock, dotlock(path):
            names = self._read_subscriptions()
            out: list[str] = []
            for n in names:
                if n == src or n.startswith(src + SEPARATOR):
                    n = dst + n[len(src) :]
                if n not in out:
                    out.append(n)
            if out != names:
                self._write_subscriptions(path, out)
                changed = True
            else:
                changed = False
        if changed:
            self._publish(ev.SUBSCRIPTIONS, dst)

    def subscribe(self, name: str) -> None:
        self._change_subscription(name, True)

    def unsubscribe(self, name: str) -> None:
        self._change_subscription(name, False)
