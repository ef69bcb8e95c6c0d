"""In-memory migration endpoints for engine tests (endpoints/base.py, faithfully).

A :class:`FakeAccount` is one mailbox account on a pretend server: folders with
UIDVALIDITY, UIDNEXT and messages.  A :class:`FakeEndpoint` is one connection
to it (``clone()`` gives another on the same account) and is both a Source and
a Destination.  ``kind="pop3"`` makes a POP3-like source: one folder (INBOX),
UIDVALIDITY 0, UIDL keys, no flags and no INTERNALDATE before the fetch.

Knobs on the account: ``permanent_flags`` (None: all kept), ``append_limit``,
``uidplus`` (False: append returns no ids), ``multiappend`` (False: a batch is
stored one message at a time, so a crash can split it), ``refuse`` (a predicate
on the bytes giving a refusal reason), ``crash_after_appends`` (raise
:class:`SimulatedCrash` instead of storing the next message once that many were
stored), ``crash_after_append_return`` (store the batch, then raise before
returning), ``lose_connection_after_appends`` (an ``EndpointError`` there
instead), ``fail_select`` (folders whose snapshot/open fails),
``max_connections``, ``login_fails``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from mailgw.errors import ConnectFailed, EndpointError, LoginFailed
from mailgw.migrate.body import MessageBody, canonical_crlf
from mailgw.migrate.headers import message_date, message_id
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


class SimulatedCrash(Exception):
    """The process "dies" here: the engine does not catch it."""


@dataclass
class FakeMessage:
    uid: int
    data: bytes  # canonical CRLF
    flags: set[str]
    internaldate: datetime | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class FakeFolder:
    uidvalidity: int
    special_use: str | None = None
    selectable: bool = True
    uidnext: int = 1
    messages: dict[int, FakeMessage] = field(default_factory=dict)

    def add(self, data: bytes, flags: Sequence[str] = (), date: datetime | None = None) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.messages[uid] = FakeMessage(uid, canonical_crlf(data), set(flags), date)
        return uid


class FakeAccount:
    def __init__(
        self,
        *,
        kind: str = "imap",
        separator: str = "/",
        permanent_flags: frozenset[str] | None = None,
        append_limit: int | None = None,
        uidplus: bool = True,
        multiappend: bool = True,
    ) -> None:
        self.kind = kind
        self.separator = separator
        self.permanent_flags = permanent_flags
        self.append_limit = append_limit
        self.uidplus = uidplus
        self.multiappend = multiappend
        self.refuse: Callable[[bytes], str | None] | None = None
        self.crash_after_appends: int | None = None
        self.crash_after_append_return = False
        self.lose_connection_after_appends: int | None = None
        self.fail_select: set[FolderName] = set()
        self.max_connections: int | None = None
        self.login_fails = False
        self.change_tokens = False  # offer change_token() (like IMAP CONDSTORE)
        self.folders: dict[FolderName, FakeFolder] = {}
        self.next_uidvalidity = 1000
        self.appended = 0  # messages stored by append, over all connections
        self.open = 0
        self.opened = 0
        self.max_open = 0
        self.calls: Counter[str] = Counter()
        self.add_folder(INBOX)

    # -- set-up and inspection ------------------------------------------------------

    def add_folder(
        self, name: FolderName, special_use: str | None = None, selectable: bool = True
    ) -> FakeFolder:
        if name not in self.folders:
            self.next_uidvalidity += 1
            self.folders[name] = FakeFolder(self.next_uidvalidity, special_use, selectable)
        return self.folders[name]

    def add(
        self,
        folder: FolderName,
        data: bytes,
        flags: Sequence[str] = (),
        date: datetime | None = None,
    ) -> int:
        return self.add_folder(folder).add(data, flags, date)

    def renumber(self, folder: FolderName) -> None:
        """A new UIDVALIDITY with new UIDs for the same messages (RFC 3501 2.3.1.1)."""
        f = self.folders[folder]
        self.next_uidvalidity += 1
        old = sorted(f.messages.values(), key=lambda m: m.uid)
        f.uidvalidity = self.next_uidvalidity
        f.messages = {}
        f.uidnext = 500
        for m in old:
            f.add(m.data, sorted(m.flags), m.internaldate)

    def contents(self, folder: FolderName) -> list[tuple[str, tuple[str, ...], datetime | None]]:
        """The folder as a sorted multiset of (sha256, flags, date)."""
        f = self.folders.get(folder)
        if f is None:
            return []
        return sorted(
            ((m.sha256, tuple(sorted(m.flags)), m.internaldate) for m in f.messages.values()),
            key=lambda t: (t[0], t[1], str(t[2])),
        )

    def dates(self, folder: FolderName) -> list[datetime]:
        ms = self.folders[folder].messages.values()
        return sorted(m.internaldate for m in ms if m.internaldate is not None)

    def hashes(self, folder: FolderName) -> list[str]:
        return sorted(m.sha256 for m in self.folders[folder].messages.values())

    def total(self) -> int:
        return sum(len(f.messages) for f in self.folders.values())

    def selectable(self, folder: FolderName) -> FakeFolder:
        f = self.folders.get(folder)
        if f is None or not f.selectable or folder in self.fail_select:
            raise EndpointError(f"cannot select {'/'.join(folder)}")
        return f

    def key(self, m: FakeMessage) -> str:
        return f"uidl-{m.uid}" if self.kind == "pop3" else str(m.uid)


class FakeEndpoint:
    """One connection to a :class:`FakeAccount`; Source and Destination."""

    def __init__(self, account: FakeAccount, display: str) -> None:
        self.account = account
        self.display = display
        self.separator = account.separator
        self.connected = False

    def _live(self) -> FakeAccount:
        if not self.connected:
            raise EndpointError("not connected")
        return self.account

    async def connect(self) -> None:
        a = self.account
        if a.login_fails:
            raise LoginFailed(f"{self.display}: authentication failed")
        if a.max_connections is not None and a.open >= a.max_connections:
            raise ConnectFailed(f"{self.display}: too many connections")
        a.open += 1
        a.opened += 1
        a.max_open = max(a.max_open, a.open)
        self.connected = True

    async def close(self) -> None:
        if self.connected:
            self.connected = False
            self.account.open -= 1

    def clone(self) -> FakeEndpoint:
        return FakeEndpoint(self.account, self.display)

    async def list_folders(self) -> list[FolderInfo]:
        a = self._live()
        return [FolderInfo(n, f.special_use, f.selectable) for n, f in a.folders.items()]

    # -- Source -------------------------------------------------------------------------

    async def change_token(self, folder: FolderName) -> str | None:
        a = self._live()
        f = a.folders.get(folder)
        if not a.change_tokens or f is None:
            return None
        state = sorted((uid, sorted(m.flags)) for uid, m in f.messages.items())
        return repr((f.uidvalidity, f.uidnext, state))

    async def snapshot(self, folder: FolderName) -> FolderSnapshot:
        a = self._live()
        a.calls["snapshot"] += 1
        f = a.selectable(folder)
        metas = [
            MessageMeta(
                key=a.key(m),
                size=len(m.data),
                flags=frozenset() if a.kind == "pop3" else frozenset(m.flags),
                internaldate=None if a.kind == "pop3" else m.internaldate,
            )
            for m in sorted(f.messages.values(), key=lambda m: m.uid)
        ]
        return FolderSnapshot(0 if a.kind == "pop3" else f.uidvalidity, metas)

    async def fetch(
        self, folder: FolderName, metas: Sequence[MessageMeta]
    ) -> AsyncIterator[FetchedMessage]:
        a = self._live()
        a.calls["fetch"] += 1
        f = a.selectable(folder)
        by_key = {a.key(m): m for m in f.messages.values()}
        for meta in metas:
            m = by_key.get(meta.key)
            if m is None:
                continue
            a.calls["fetched"] += 1
            body = MessageBody.from_bytes(m.data)
            date = m.internaldate
            if a.kind == "pop3":
                date = message_date(body.header_bytes())
            yield FetchedMessage(replace(meta, internaldate=date), body)

    async def delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        a = self._live()
        a.calls["delete"] += 1
        f = a.selectable(folder)
        wanted = set(keys)
        for uid in [u for u, m in f.messages.items() if a.key(m) in wanted]:
            del f.messages[uid]

    # -- Destination ----------------------------------------------------------------

    async def ensure_folder(self, folder: FolderName, special_use: str | None = None) -> None:
        a = self._live()
        a.calls["ensure_folder"] += 1
        for i in range(1, len(folder)):
            a.add_folder(folder[:i])
        if folder not in a.folders:
            a.add_folder(folder, special_use)

    async def open_folder(self, folder: FolderName) -> DestFolderState:
        a = self._live()
        f = a.selectable(folder)
        return DestFolderState(
            uidvalidity=f.uidvalidity,
            uidnext=f.uidnext,
            count=len(f.messages),
            permanent_flags=a.permanent_flags,
            append_limit=a.append_limit,
        )

    def _store_flags(self, flags: frozenset[str]) -> set[str]:
        perm = self.account.permanent_flags
        if perm is None:
            return set(flags)
        lower = {p.lower() for p in perm}
        return {
            f for f in flags if f.lower() in lower or ("\\*" in lower and not f.startswith("\\"))
        }

    async def append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        a = self._live()
        a.calls["append"] += 1
        f = a.selectable(folder)
        out: list[AppendResult] = []
        for item in items:
            if a.crash_after_appends is not None and a.appended >= a.crash_after_appends:
                raise SimulatedCrash(f"crash after {a.appended} appends")
            if (
                a.lose_connection_after_appends is not None
                and a.appended >= a.lose_connection_after_appends
            ):
                a.lose_connection_after_appends = None
                self.connected = False
                a.open -= 1
                raise EndpointError("connection lost")
            data = item.body.read()
            if a.append_limit is not None and len(data) > a.append_limit:
                out.append(AppendResult(False, error="[TOOBIG] message too big"))
                continue
            reason = a.refuse(data) if a.refuse is not None else None
            if reason is not None:
                out.append(AppendResult(False, error=reason))
                continue
            uid = f.add(data, sorted(self._store_flags(item.flags)), item.internaldate)
            a.appended += 1
            out.append(AppendResult(True, uid if a.uidplus else None))
        if a.crash_after_append_return:
            a.crash_after_append_return = False
            raise SimulatedCrash("crash after the append, before it returned")
        return out

    async def index(self, folder: FolderName, uid_from: int = 1) -> list[DestMessage]:
        a = self._live()
        a.calls["index"] += 1
        f = a.selectable(folder)
        return [
            DestMessage(m.uid, len(m.data), message_id(m.data), frozenset(m.flags))
            for m in sorted(f.messages.values(), key=lambda m: m.uid)
            if m.uid >= uid_from
        ]

    async def fetch_bodies(
        self, folder: FolderName, uids: Sequence[int]
    ) -> AsyncIterator[tuple[int, MessageBody]]:
        a = self._live()
        a.calls["fetch_bodies"] += 1
        f = a.selectable(folder)
        for uid in uids:
            m = f.messages.get(uid)
            if m is not None:
                a.calls["bodies_fetched"] += 1
                yield uid, MessageBody.from_bytes(m.data)

    async def set_flags(
        self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        a = self._live()
        a.calls["set_flags"] += 1
        f = a.selectable(folder)
        for uid, flags in changes:
            if uid in f.messages:
                f.messages[uid].flags = self._store_flags(flags)


def make_message(
    n: int,
    *,
    mid: str | None = "auto",
    date: datetime | None = None,
    body: str | None = None,
    size: int = 0,
) -> bytes:
    """A small RFC 5322 message (LF line ends, as a file would have them)."""
    when = date or datetime(2023, 1, 1 + n % 28, 12, 0, tzinfo=UTC)
    lines = [
        "From: a@example.com",
        "To: b@example.com",
        f"Subject: message {n}",
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
    ]
    if mid == "auto":
        lines.append(f"Message-ID: <m{n}@example.com>")
    elif mid is not None:
        lines.append(f"Message-ID: {mid}")
    text = body if body is not None else f"body of message {n}"
    if size:
        text += "\n" + "x" * size
    return ("\n".join(lines) + "\n\n" + text + "\n").encode()


__all__ = [
    "FakeAccount",
    "FakeEndpoint",
    "FakeFolder",
    "FakeMessage",
    "SimulatedCrash",
    "make_message",
]
