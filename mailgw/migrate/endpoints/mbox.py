"""mbox files (one file, or a tree of them) as a migration source and destination.

Theory of operation (the file format itself: :mod:`mailgw.migrate.endpoints.mboxfile`):

* Layout.  A path that is a regular file is one folder, INBOX.  A directory is
  a tree: every mbox file in it is a folder whose name parts are its relative
  path parts; Thunderbird's ``Name.sbd/`` directories hold the children of
  ``Name``, plain subdirectories are accepted too when reading; a top-level
  file called INBOX (any case) is INBOX.  A file counts as an mbox when it is
  empty or starts with ``From `` (this skips Thunderbird's ``.msf`` indexes,
  ``*.dat`` and the like); hidden (dot) files are skipped.  Written trees use
  ``<dir>/A`` and ``<dir>/A.sbd/B``; the directory is created when missing.
* Source.  ``snapshot`` streams the file once: key ``<sha256>:<n>`` (the n-th
  message with that hash in the file, 1-based), canonical size, flags and
  date (``message_date`` of the header, else the ``From `` line's date);
  UIDVALIDITY 0.  The offsets are kept (per file, checked against the file's
  inode/size/mtime) so ``fetch`` seeks straight to a message; keys are content
  based, so they survive rewrites of the file.  ``delete`` rewrites the file
  without those messages.
* Destination.  Ids are 1-based positions; ``open_folder`` gives UIDVALIDITY 1
  and UIDNEXT count + 1.  ``append`` writes under the file lock and fsyncs;
  ``set_flags`` rewrites the file atomically.  ``index``/``fetch_bodies`` go by
  position.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from mailgw.errors import ConnectFailed, EndpointError, UsageError
from mailgw.migrate.body import MessageBody
from mailgw.migrate.endpoints.mboxfile import (
    Index,
    file_sig,
    fsync_dir,
    index_file,
    locked,
    read_at,
    rewrite,
    write_message,
)
from mailgw.migrate.model import (
    INBOX,
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

T = TypeVar("T")
SBD = ".sbd"


def _looks_like_mbox(path: str) -> bool:
    if path.endswith((".msf", ".lock")):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(5)
    except OSError:
        return False
    return head in (b"", b"From ")


class MboxEndpoint:
    """An mbox file or tree as :class:`~mailgw.migrate.endpoints.base.Source` and
    :class:`~mailgw.migrate.endpoints.base.Destination`."""

    separator = "/"

    def __init__(self, path: Path, *, must_exist: bool = False) -> None:
        self.path = Path(path)
        #: a source must exist: a mistyped path must not look like an empty mailbox
        self.must_exist = must_exist
        self.display = f"mbox:{self.path}"
        self._paths: dict[FolderName, Path] = {}
        self._indexes: dict[Path, Index] = {}
        self._counts: dict[Path, tuple[tuple[int, int, int], int]] = {}

    async def _run(self, what: str, func: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(func, *args)
        except EndpointError as exc:
            if exc.message.startswith(self.display):
                raise
            raise EndpointError(f"{self.display}: {what}: {exc.message}") from exc
        except OSError as exc:
            raise EndpointError(f"{self.display}: {what}: {exc}") from exc

    # --- Endpoint -------------------------------------------------------------

    async def connect(self) -> None:
        if self.must_exist and not self.path.exists():
            raise UsageError(f"{self.display}: no such file or directory")
        if self.path.exists() and not (self.path.is_file() or self.path.is_dir()):
            raise ConnectFailed(f"{self.display}: neither a file nor a directory")

    async def close(self) -> None:
        self._indexes.clear()
        self._counts.clear()

    def clone(self) -> MboxEndpoint:
        return MboxEndpoint(self.path, must_exist=self.must_exist)

    async def list_folders(self) -> list[FolderInfo]:
        return await self._run("list", self._list_folders)

    def _list_folders(self) -> list[FolderInfo]:
        """INBOX first, then the rest sorted; a path that does not exist has none."""
        if self.path.is_file():
            self._paths = {INBOX: self.path}
            return [FolderInfo(INBOX)]
        if not self.path.is_dir():
            return []
        found: dict[FolderName, Path] = {}
        self._walk(self.path, (), found)
        self._paths = found
        parents = {n[:i] for n in found for i in range(1, len(n))} - set(found)
        names = sorted(set(found) | parents, key=lambda n: (n != INBOX, n))
        return [FolderInfo(n, selectable=n in found) for n in names]

    def _walk(self, d: Path, prefix: FolderName, found: dict[FolderName, Path]) -> None:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = entry.name
            if entry.is_dir():
                if name.endswith(SBD) and len(name) > len(SBD):
                    name = name[: -len(SBD)]
                if not prefix and name.upper() == "INBOX":
                    name = "INBOX"
                self._walk(Path(entry.path), (*prefix, name), found)
            elif entry.is_file() and _looks_like_mbox(entry.path):
                if not prefix and name.upper() == "INBOX":
                    name = "INBOX"
                found.setdefault((*prefix, name), Path(entry.path))

    def _write_path(self, folder: FolderName) -> Path:
        """Where folder lives in a tree we write: ``<dir>/A.sbd/B``."""
        if self.path.is_file():
            if folder != INBOX:
                raise EndpointError(
                    f"{self.display}: a single mbox file holds only INBOX, not {'/'.join(folder)!r}"
                )
            return self.path
        for part in folder:
            if not part or part in (".", "..") or "/" in part or "\0" in part:
                raise EndpointError(f"{self.display}: invalid folder name {folder!r}")
            if part.startswith(".") or part.endswith(SBD):
                raise EndpointError(f"{self.display}: unsupported folder name part {part!r}")
        p = self.path
        for part in folder[:-1]:
            p = p / (part + SBD)
        return p / folder[-1]

    def _folder_path(self, folder: FolderName) -> Path:
        known = self._paths.get(folder)
        if known is not None and known.is_file():
            return known
        if not self._paths:
            self._list_folders()
            known = self._paths.get(folder)
            if known is not None:
                return known
        p = self._write_path(folder)
        if not p.is_file():
            raise EndpointError(f"{self.display}: no folder {'/'.join(folder)!r}")
        return p

    def _index(self, path: Path) -> Index:
        idx = self._indexes.get(path)
        if idx is None or idx.sig != file_sig(path):
            idx = self._indexes[path] = index_file(path)
            self._counts[path] = (idx.sig, len(idx.entries))
        return idx

    # --- Source ---------------------------------------------------------------

    async def snapshot(self, folder: FolderName) -> FolderSnapshot:
        return await self._run(f"read {'/'.join(folder)!r}", self._snapshot, folder)

    def _snapshot(self, folder: FolderName) -> FolderSnapshot:
        idx = self._index(self._folder_path(folder))
        metas = [MessageMeta(e.key, e.size, e.flags, e.date) for e in idx.entries]
        return FolderSnapshot(0, metas)

    async def fetch(
        self, folder: FolderName, metas: Sequence[MessageMeta]
    ) -> AsyncIterator[FetchedMessage]:
        for meta in metas:
            got = await self._run(f"read {'/'.join(folder)!r}", self._fetch_one, folder, meta.key)
            if got is not None:
                body, date = got
                if meta.internaldate is None:
                    meta = MessageMeta(meta.key, meta.size, meta.flags, date)
                yield FetchedMessage(meta, body)

    def _fetch_one(
        self, folder: FolderName, key: str
    ) -> tuple[MessageBody, datetime | None] | None:
        path = self._folder_path(folder)
        for _ in range(2):
            idx = self._index(path)
            entry = next((e for e in idx.entries if e.key == key), None)
            if entry is None:
                return None
            body, c = read_at(path, entry.offset)
            if body.sha256 == key.split(":", 1)[0]:
                return body, c.date()
            body.close()
            self._indexes.pop(path, None)  # changed under us: index again
        return None

    async def delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        await self._run(f"delete from {'/'.join(folder)!r}", self._delete, folder, keys)

    def _delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        path = self._folder_path(folder)
        wanted = set(keys)

        def plan(idx: Index) -> dict[int, frozenset[str] | None]:
            # keys are content based: found again in the index taken under the lock
            return {n: None for n, e in enumerate(idx.entries, 1) if e.key in wanted}

        rewrite(path, plan)
        self._indexes.pop(path, None)
        self._counts.pop(path, None)

    # --- Destination ------------------------------------------------------------

    async def ensure_folder(self, folder: FolderName, special_use: str | None = None) -> None:
        await self._run(f"create {'/'.join(folder)!r}", self._ensure_folder, folder)

    def _ensure_folder(self, folder: FolderName) -> None:
        p = self._write_path(folder)
        if p.is_file():
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fsync(fd)
        os.close(fd)
        fsync_dir(p.parent)
        self._paths[folder] = p

    async def open_folder(self, folder: FolderName) -> DestFolderState:
        return await self._run(f"open {'/'.join(folder)!r}", self._open_folder, folder)

    def _count(self, path: Path, sig: tuple[int, int, int]) -> int:
        cached = self._counts.get(path)
        if cached is not None and cached[0] == sig:
            return cached[1]
        return len(self._index(path).entries)

    def _open_folder(self, folder: FolderName) -> DestFolderState:
        path = self._folder_path(folder)
        count = self._count(path, file_sig(path))
        return DestFolderState(1, count + 1, count, permanent_flags=None)

    async def append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        return await self._run(f"append to {'/'.join(folder)!r}", self._append, folder, items)

    def _append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        path = self._folder_path(folder)
        results: list[AppendResult] = []
        with locked(path) as f:
            st = os.fstat(f.fileno())
            count = self._count(path, (st.st_ino, st.st_size, st.st_mtime_ns))
            end = f.seek(0, os.SEEK_END)
            if end:  # the next From_ line must follow an empty line
                f.seek(max(0, end - 3))
                tail = f.read()
                if not tail.endswith(b"\n"):
                    f.write(b"\n\n")
                elif not tail.endswith((b"\n\n", b"\n\r\n")):
                    f.write(b"\n")
            for i, item in enumerate(items):
                start = f.tell()
                try:
                    write_message(f, item.body, item.flags, item.internaldate)
                    f.flush()
                except OSError as exc:
                    f.truncate(start)
                    f.seek(start)
                    for _ in items[i:]:
                        results.append(AppendResult(ok=False, error=f"cannot write: {exc}"))
                    break
                count += 1
                results.append(AppendResult(ok=True, uid=count))
            f.flush()
            os.fsync(f.fileno())
            st = os.fstat(f.fileno())
            self._counts[path] = ((st.st_ino, st.st_size, st.st_mtime_ns), count)
        self._indexes.pop(path, None)
        return results

    async def index(self, folder: FolderName, uid_from: int = 1) -> list[DestMessage]:
        return await self._run(f"read {'/'.join(folder)!r}", self._dest_index, folder, uid_from)

    def _dest_index(self, folder: FolderName, uid_from: int) -> list[DestMessage]:
        idx = self._index(self._folder_path(folder))
        return [
            DestMessage(n, e.size, e.message_id, e.flags)
            for n, e in enumerate(idx.entries, 1)
            if n >= uid_from
        ]

    async def fetch_bodies(
        self, folder: FolderName, uids: Sequence[int]
    ) -> AsyncIterator[tuple[int, MessageBody]]:
        for uid in uids:
            body = await self._run(f"read {'/'.join(folder)!r}", self._body_at, folder, uid)
            if body is not None:
                yield uid, body

    def _body_at(self, folder: FolderName, uid: int) -> MessageBody | None:
        path = self._folder_path(folder)
        idx = self._index(path)
        if not 1 <= uid <= len(idx.entries):
            return None
        body, _ = read_at(path, idx.entries[uid - 1].offset)
        return body

    async def set_flags(
        self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        await self._run(f"set flags in {'/'.join(folder)!r}", self._set_flags, folder, changes)

    def _set_flags(self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]) -> None:
        if not changes:
            return
        path = self._folder_path(folder)
        new: dict[int, frozenset[str] | None] = {uid: frozenset(f) for uid, f in changes}
        rewrite(path, lambda idx: {n: f for n, f in new.items() if 1 <= n <= len(idx.entries)})
        self._indexes.pop(path, None)
        self._counts.pop(path, None)


__all__ = ["MboxEndpoint"]
