"""What the migration engine asks of a source and a destination.

Every method is a coroutine (blocking file work runs in ``asyncio.to_thread``).
One endpoint object is one connection (or one open file tree); the engine uses
``clone()`` to get more for ``-j``.  Errors: ``ConnectFailed``/``LoginFailed``
(exit 3) from ``connect()``; ``EndpointError`` for a failure later (a folder
that cannot be selected, a lost connection); per-message refusals on append are
``AppendResult(ok=False)``, never exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from mailgw.migrate.body import MessageBody
from mailgw.migrate.model import (
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


@runtime_checkable
class Endpoint(Protocol):
    #: shown in reports and progress, never with a password: "imap://alice@host:143"
    display: str
    #: the hierarchy separator of this endpoint's names (valid after connect); a
    #: destination cannot store a name part containing it
    separator: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    def clone(self) -> Endpoint: ...

    async def list_folders(self) -> list[FolderInfo]: ...


@runtime_checkable
class Source(Endpoint, Protocol):
    async def snapshot(self, folder: FolderName) -> FolderSnapshot: ...

    def fetch(
        self, folder: FolderName, metas: Sequence[MessageMeta]
    ) -> AsyncIterator[FetchedMessage]:
        """Bodies in the order given; a message gone meanwhile is left out."""
        ...

    async def delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        """Remove these messages for good (``--delete-source``)."""
        ...


@runtime_checkable
class Destination(Endpoint, Protocol):
    async def ensure_folder(self, folder: FolderName, special_use: str | None = None) -> None:
        """Create (with parents) and subscribe when missing; else nothing."""
        ...

    async def open_folder(self, folder: FolderName) -> DestFolderState: ...

    async def append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        """One result per item, same order (MULTIAPPEND where offered)."""
        ...

    async def index(self, folder: FolderName, uid_from: int = 1) -> list[DestMessage]:
        """Messages with id >= uid_from: id, size, Message-ID, flags (no bodies)."""
        ...

    def fetch_bodies(
        self, folder: FolderName, uids: Sequence[int]
    ) -> AsyncIterator[tuple[int, MessageBody]]:
        """Bodies of these ids (missing ones left out), for matching and --verify."""
        ...

    async def set_flags(
        self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        """Replace the flags of each (id, flags)."""
        ...


__all__ = ["Destination", "Endpoint", "Source"]
