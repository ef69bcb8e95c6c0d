"""A Maildir++ tree as a migration source and destination.

Theory of operation:

* The path is a Maildir root (``cur/ new/ tmp/``): INBOX.  Every other folder
  is a Maildir++ directory ``.A.B`` directly below it, each part in IMAP
  modified UTF-7 (RFC 3501 5.1.3), ``.`` joining the parts -- Dovecot 2.3's
  default layout.  A part cannot contain ``.`` on disk, so :attr:`separator`
  is ``"."``: the engine replaces it in destination names.  Parents that exist
  only through children (``.A.B`` without ``.A``) list as not selectable.
* As a SOURCE the tree is only read, never written (no dovecot-uidlist
  updates, no new/ -> cur/ moves): a message's key is its file's base name
  (before ``:2,``, Maildir spec), flags come from the info letters (S Seen,
  R Answered, F Flagged, T Deleted, D Draft) and ``a``..``z`` keyword letters
  named by the folder's ``dovecot-keywords``; INTERNALDATE is the file's mtime
  (what Dovecot uses); the size is ``,W=`` (the CRLF size) or ``,S=`` from the
  name, else the file size; UIDVALIDITY comes from ``dovecot-uidlist`` (0
  without one), which also orders the messages.  Bodies are canonicalised to
  CRLF by :class:`~mailgw.migrate.body.BodyWriter` (Dovecot stores LF).
  ``delete`` unlinks the files (Dovecot forgets vanished files on its own).
  Special-use is not guessed from names here (``special_use=None``).
* As a DESTINATION everything goes through :mod:`mailgw.store`: an
  :class:`~mailgw.store.Account` whose ``maildir`` attribute is pointed at the
  root, so files, dovecot-uidlist/-keywords, UIDVALIDITY and subscriptions are
  written exactly as mailgw's own server writes them.  No special-use folders
  are created implicitly.  Store calls block: they run in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from mailgw.errors import (
    ConnectFailed,
    EndpointError,
    FolderExists,
    MailgwError,
    MessageNotFound,
    UsageError,
)
from mailgw.migrate.body import CHUNK, BodyWriter, MessageBody
from mailgw.migrate.headers import message_id
from mailgw.migrate.model import (
    INBOX,
    SYSTEM_FLAGS,
    AppendItem,
    AppendResult,
    DestFolderState,
    DestMessage,
    FetchedMessage,
    FolderInfo,
    FolderName,
    FolderSnapshot,
    MessageMeta,
)
from mailgw.protocols.imap.utf7 import decode_mutf7, encode_mutf7
from mailgw.store import Account, Folder, MessageInfo
from mailgw.store import filenames as fn
from mailgw.store.uidlist import keyword_letter, parse_keywords, parse_uidlist
from mailgw.store.wire import wire_size

HEADER_LIMIT = 256 * 1024
T = TypeVar("T")
_ATOM_BAD = re.compile(r"[\x00-\x20\x7f(){%*\"\\\]]")


def split_flags(flags: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(system flags, keywords) of IMAP-spelled flags; ``\\Recent`` and keywords
    that are not IMAP atoms (RFC 3501 9, flag-keyword) are dropped."""
    system = flags & SYSTEM_FLAGS
    keywords = frozenset(f for f in flags if not f.startswith("\\") and not _ATOM_BAD.search(f))
    return system, keywords


def _read_body(path: Path) -> MessageBody:
    writer = BodyWriter()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def _read_head(f_path: Path) -> bytes:
    with open(f_path, "rb") as f:
        head = f.read(HEADER_LIMIT)
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = head.find(sep)
        if end >= 0:
            return head[: end + len(sep)]
    return head


@dataclass
class _SourceFile:
    path: Path
    meta: MessageMeta


class MaildirEndpoint:
    """A Maildir++ root as :class:`~mailgw.migrate.endpoints.base.Source` and
    :class:`~mailgw.migrate.endpoints.base.Destination`."""

    separator = "."

    def __init__(self, path: Path, *, must_exist: bool = False) -> None:
        self.path = Path(path)
        #: a source must exist: a mistyped path must not look like an empty mailbox
        self.must_exist = must_exist
        self.display = f"maildir:{self.path}"
        self._files: dict[FolderName, dict[str, Path]] = {}
        self._account: Account | None = None

    # --- Endpoint -------------------------------------------------------------

    async def connect(self) -> None:
        if self.must_exist and not self.path.exists():
            raise UsageError(f"{self.display}: no such file or directory")
        if self.path.exists() and not self.path.is_dir():
            raise ConnectFailed(f"{self.display}: not a directory")

    async def close(self) -> None:
        self._files.clear()

    def clone(self) -> MaildirEndpoint:
        return MaildirEndpoint(self.path, must_exist=self.must_exist)

    async def list_folders(self) -> list[FolderInfo]:
        return await asyncio.to_thread(self._list_folders)

    def _list_folders(self) -> list[FolderInfo]:
        """INBOX (when the root is a Maildir) first, then the folders sorted; a root
        that does not exist has no folders."""
        found: set[FolderName] = set()
        try:
            with os.scandir(self.path) as it:
                for entry in it:
                    name = _name_from_disk(entry.name)
                    if name is not None and entry.is_dir() and _is_maildir(Path(entry.path)):
                        found.add(name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise EndpointError(f"{self.display}: cannot list: {exc.strerror}") from exc
        parents = {n[:i] for n in found for i in range(1, len(n))} - found - {INBOX}
        out: list[FolderInfo] = []
        if _is_maildir(self.path):
            out.append(FolderInfo(INBOX))
        found.discard(INBOX)
        for name in sorted(found | parents):
            out.append(FolderInfo(name, selectable=name in found))
        return out

    def _dir(self, folder: FolderName) -> Path:
        if folder == INBOX:
            return self.path
        if not folder or any(not p or "." in p or "/" in p for p in folder):
            raise EndpointError(f"{self.display}: invalid folder name {folder!r}")
        parts = list(folder)
        if parts[0].upper() == "INBOX":
            parts[0] = "INBOX"
        return self.path / ("." + ".".join(encode_mutf7(p) for p in parts))

    # --- Source ---------------------------------------------------------------

    async def snapshot(self, folder: FolderName) -> FolderSnapshot:
        return await asyncio.to_thread(self._snapshot, folder)

    def _snapshot(self, folder: FolderName) -> FolderSnapshot:
        d = self._dir(folder)
        if not _is_maildir(d):
            raise EndpointError(f"{self.display}: no folder {'/'.join(folder)!r}")
        try:
            keywords = parse_keywords((d / "dovecot-keywords").read_bytes())
        except FileNotFoundError:
            keywords = {}
        except OSError as exc:
            raise EndpointError(f"{self.display}: {exc}") from exc
        letters = {keyword_letter(i): name for i, name in keywords.items()}
        uidvalidity, order = 0, {}
        try:
            ul = parse_uidlist((d / "dovecot-uidlist").read_bytes())
        except FileNotFoundError:
            ul = None
        except OSError as exc:
            raise EndpointError(f"{self.display}: {exc}") from exc
        if ul is not None:
            uidvalidity = ul.uidvalidity
            order = {r.key: r.uid for r in ul.records}
        files: dict[str, _SourceFile] = {}
        for sub in ("new", "cur"):
            try:
                with os.scandir(d / sub) as it:
                    for entry in it:
                        if entry.name.startswith("."):
                            continue
                        item = _source_file(Path(entry.path), sub, letters)
                        if item is not None:
                            files[item.meta.key] = item
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise EndpointError(f"{self.display}: cannot read {d / sub}: {exc}") from exc
        big = 1 << 62
        keys = sorted(files, key=lambda k: (order.get(k, big), fn.base_order(k)))
        self._files[folder] = {k: files[k].path for k in keys}
        return FolderSnapshot(uidvalidity, [files[k].meta for k in keys])

    async def fetch(
        self, folder: FolderName, metas: Sequence[MessageMeta]
    ) -> AsyncIterator[FetchedMessage]:
        for meta in metas:
            body = await asyncio.to_thread(self._fetch_one, folder, meta.key)
            if body is not None:
                yield FetchedMessage(meta, body)

    def _locate(self, folder: FolderName, key: str, *, rescan: bool) -> Path | None:
        known = self._files.get(folder)
        if rescan or known is None or key not in known:
            self._snapshot(folder)
            known = self._files.get(folder, {})
        return known.get(key)

    def _fetch_one(self, folder: FolderName, key: str) -> MessageBody | None:
        for attempt in range(2):
            path = self._locate(folder, key, rescan=attempt > 0)
            if path is None:
                return None  # gone
            try:
                return _read_body(path)
            except FileNotFoundError:
                continue  # renamed (flags changed) or expunged: look again
            except OSError as exc:
                raise EndpointError(f"{self.display}: cannot read {path}: {exc}") from exc
        return None

    async def delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        await asyncio.to_thread(self._delete, folder, keys)

    def _delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        self._snapshot(folder)
        known = self._files.get(folder, {})
        dirs: set[Path] = set()
        for key in keys:
            path = known.get(key)
            if path is None:
                continue
            try:
                os.unlink(path)
                dirs.add(path.parent)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise EndpointError(f"{self.display}: cannot delete {path}: {exc}") from exc
        for d in dirs:
            with contextlib.suppress(OSError):
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._files.pop(folder, None)

    # --- Destination ------------------------------------------------------------

    def _acct(self) -> Account:
        """The store's view of this root (created on first use, without the
        special-use folders a new mailgw account gets)."""
        if self._account is None:
            acct = Account(self.path.parent, "migrate")
            acct.maildir = self.path
            acct.home = self.path.parent
            acct.ensure(special_use=False)
            self._account = acct
        return self._account

    @staticmethod
    def _api_name(folder: FolderName) -> str:
        return "/".join(folder)

    def _store_folder(self, folder: FolderName) -> Folder:
        if any("/" in p for p in folder):
            raise EndpointError(f"maildir: a folder name part may not contain '/': {folder!r}")
        return self._acct().folder(self._api_name(folder))

    async def _store(self, what: str, func: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(func, *args)
        except EndpointError:
            raise
        except MailgwError as exc:
            raise EndpointError(f"{self.display}: {what}: {exc}") from exc
        except OSError as exc:
            raise EndpointError(f"{self.display}: {what}: {exc}") from exc

    async def ensure_folder(self, folder: FolderName, special_use: str | None = None) -> None:
        await self._store(f"create {'/'.join(folder)!r}", self._ensure_folder, folder)

    def _ensure_folder(self, folder: FolderName) -> None:
        acct = self._acct()
        if folder == INBOX:
            return
        if any("/" in p for p in folder):
            raise EndpointError(f"maildir: a folder name part may not contain '/': {folder!r}")
        name = self._api_name(folder)
        with contextlib.suppress(FolderExists):
            acct.create_folder(name)
        acct.subscribe(name)

    async def open_folder(self, folder: FolderName) -> DestFolderState:
        return await self._store(f"open {'/'.join(folder)!r}", self._open_folder, folder)

    def _open_folder(self, folder: FolderName) -> DestFolderState:
        f = self._store_folder(folder)
        count = len(f.messages())
        return DestFolderState(f.uidvalidity, f.uidnext, count, permanent_flags=None)

    async def append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        return await self._store(f"append to {'/'.join(folder)!r}", self._append, folder, items)

    def _append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        f = self._store_folder(folder)
        results: list[AppendResult] = []
        for item in items:
            system, keywords = split_flags(item.flags)
            when = item.internaldate.timestamp() if item.internaldate is not None else None
            try:
                with f.open_tmp() as tmp:
                    for chunk in item.body.chunks():
                        tmp.write(chunk)
                    uid = tmp.commit(flags=system, keywords=keywords, internaldate=when)
            except (MailgwError, OSError, ValueError) as exc:
                results.append(AppendResult(ok=False, error=str(exc)))
                continue
            results.append(AppendResult(ok=True, uid=uid))
        return results

    async def index(self, folder: FolderName, uid_from: int = 1) -> list[DestMessage]:
        return await self._store(f"index {'/'.join(folder)!r}", self._index, folder, uid_from)

    def _index(self, folder: FolderName, uid_from: int) -> list[DestMessage]:
        f = self._store_folder(folder)
        out: list[DestMessage] = []
        for info in f.messages():
            if info.uid < uid_from:
                continue
            try:
                mid = message_id(_read_head(info.path))
            except OSError:
                continue  # gone meanwhile
            out.append(DestMessage(info.uid, wire_size(info), mid, info.flags | info.keywords))
        return out

    async def fetch_bodies(
        self, folder: FolderName, uids: Sequence[int]
    ) -> AsyncIterator[tuple[int, MessageBody]]:
        f, infos = await self._store(f"read {'/'.join(folder)!r}", self._infos, folder)
        for uid in uids:
            info = infos.get(uid)
            if info is None:
                continue
            body = await asyncio.to_thread(self._read_info, f, info)
            if body is not None:
                yield uid, body

    def _infos(self, folder: FolderName) -> tuple[Folder, dict[int, MessageInfo]]:
        f = self._store_folder(folder)
        return f, {i.uid: i for i in f.messages()}

    def _read_info(self, f: Folder, info: MessageInfo) -> MessageBody | None:
        writer = BodyWriter()
        try:
            with f.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    writer.write(chunk)
        except MessageNotFound:
            writer.abort()
            return None
        except OSError as exc:
            writer.abort()
            raise EndpointError(f"{self.display}: cannot read {info.path}: {exc}") from exc
        return writer.finish()

    async def set_flags(
        self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        await self._store(f"set flags in {'/'.join(folder)!r}", self._set_flags, folder, changes)

    def _set_flags(self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]) -> None:
        f = self._store_folder(folder)
        for uid, flags in changes:
            system, keywords = split_flags(flags)
            with contextlib.suppress(MessageNotFound):
                f.set_flags(uid, system, keywords)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _name_from_disk(dirname: str) -> FolderName | None:
    """The name parts of a Maildir++ directory ``.A.B`` (None: not a folder)."""
    if not dirname.startswith(".") or dirname.startswith("..") or len(dirname) < 2:
        return None
    parts: list[str] = []
    for raw in dirname[1:].split("."):
        if not raw:
            return None
        try:
            parts.append(decode_mutf7(raw))
        except ValueError:
            parts.append(raw)  # not valid mUTF-7: keep the name as it is on disk
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return tuple(parts)


def _source_file(path: Path, sub: str, keyword_letters: dict[str, str]) -> _SourceFile | None:
    base, info = fn.split_filename(path.name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    flags, keywords = fn.decode_letters(fn.info_letters(info), keyword_letters)
    size, vsize = fn.base_sizes(base)
    meta = MessageMeta(
        key=base,
        # W= is the CRLF size, trusted when S= matches the file (as mailgw.store.wire does)
        size=vsize if vsize is not None and size == st.st_size else st.st_size,
        flags=flags | keywords,
        internaldate=datetime.fromtimestamp(st.st_mtime, UTC),
    )
    return _SourceFile(path, meta)


__all__ = ["MaildirEndpoint", "split_flags"]
