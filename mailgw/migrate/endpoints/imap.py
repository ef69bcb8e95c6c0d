"""The IMAP endpoint of the migration: source and destination over one connection.

Theory of operation
-------------------
**Names.**  NAMESPACE (RFC 2342) gives the personal prefix and hierarchy
separator (without NAMESPACE: ``LIST "" ""``).  Listed names lose the prefix,
are split on the separator and decoded from modified UTF-7 (RFC 3501 5.1.3);
names in other users' and shared namespaces are skipped; ``INBOX`` is always
``("INBOX",)`` (5.1).  The wire name of every listed folder is remembered, so a
name that does not decode still round-trips.  ``\\Noselect`` and
``\\NonExistent`` (RFC 5258) folders are not selectable.  SPECIAL-USE attributes
(RFC 6154) come from ``LIST ... RETURN (SPECIAL-USE)`` when LIST-EXTENDED and
SPECIAL-USE are offered, else from the plain LIST attributes.

**Source.**  ``snapshot``: EXAMINE, then ``UID FETCH 1:* (UID FLAGS
INTERNALDATE RFC822.SIZE)`` unless the folder is empty.  ``fetch``: ``UID FETCH
<set> (BODY.PEEK[] INTERNALDATE)`` in batches (messages and bytes), the next
batch's command sent before the current one is consumed (pipelining); bodies
stream to spooled :class:`MessageBody` objects and come out in the requested
order.  ``delete``: ``UID STORE +FLAGS.SILENT (\\Deleted)`` and ``UID EXPUNGE``
(RFC 4315); without UIDPLUS it refuses, since a plain EXPUNGE would also remove
other messages marked deleted.

**Destination.**  ``ensure_folder``: CREATE (with ``USE`` when
CREATE-SPECIAL-USE is offered, RFC 6154 3) and SUBSCRIBE; ``[ALREADYEXISTS]``
(RFC 5530) is fine.  ``open_folder``: SELECT -> UIDVALIDITY, UIDNEXT, EXISTS,
PERMANENTFLAGS; APPENDLIMIT from CAPABILITY or STATUS (RFC 7889).
``append``: MULTIAPPEND (RFC 3502) where offered, else one APPEND per message
(pipelined when literals need no ``+``); bigger than APPENDLIMIT: refused
without sending; a MULTIAPPEND refused as a whole is retried message by
message; ``\\Recent`` is never sent (RFC 3501 2.3.2); new UIDs from APPENDUID
(RFC 4315).  ``index``: ``UID FETCH n:* (UID RFC822.SIZE FLAGS
BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])``; ``set_flags``: ``UID STORE
FLAGS.SILENT``, one command per distinct flag set.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

from mailgw.errors import EndpointError
from mailgw.migrate.body import MessageBody
from mailgw.migrate.headers import message_id
from mailgw.migrate.imapwire import (
    CommandFailed,
    ImapClient,
    Literal,
    Part,
    astring,
    close_bodies,
    format_internaldate,
    quoted,
    uid_set,
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
    TlsOptions,
)
from mailgw.protocols.imap.response import (
    Fetch,
    ListResponse,
    Namespace,
    Response,
    Status,
    StatusData,
    Tagged,
)
from mailgw.protocols.imap.utf7 import decode_mutf7, encode_mutf7

SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
_SPECIAL = {s.lower(): s for s in SPECIAL_USES}
_FLAG_OK = re.compile(r"\\?[!#$&'+-Z^-z|~]+\Z")  # a flag we can send as an atom


class ImapEndpoint:
    """An IMAP account as migration source and destination (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        implicit_tls: bool,
        tls: TlsOptions,
        batch_messages: int = 50,
        batch_bytes: int = 16 << 20,
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.implicit_tls = implicit_tls
        self.tls = tls
        self.batch_messages = max(1, batch_messages)
        self.batch_bytes = max(1, batch_bytes)
        self.timeout = timeout
        hostpart = f"[{host}]" if ":" in host else host
        self.display = f"{'imaps' if implicit_tls else 'imap'}://{user}@{hostpart}:{port}"
        self.separator = "/"
        self._delim: str | None = "/"
        self._prefix = ""
        self._foreign: list[str] = []  # other users' and shared namespace prefixes
        self._wire: dict[FolderName, str] = {}
        self._existing: set[FolderName] = set()  # selectable folders seen by list_folders
        self._client: ImapClient | None = None
        self._selected: tuple[str, bool] | None = None  # (wire name, read-only)
        self._select_codes: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"ImapEndpoint({self.display})"

    def clone(self) -> ImapEndpoint:
        return ImapEndpoint(
            self.host,
            self.port,
            self.user,
            self._password,
            implicit_tls=self.implicit_tls,
            tls=self.tls,
            batch_messages=self.batch_messages,
            batch_bytes=self.batch_bytes,
            timeout=self.timeout,
        )

    # --- connection ---------------------------------------------------------------

    async def connect(self) -> None:
        client = ImapClient(
            self.host, self.port, implicit_tls=self.implicit_tls, tls=self.tls, timeout=self.timeout
        )
        await client.connect()
        try:
            await client.login(self.user, self._password)
            await self._learn_namespace(client)
        except BaseException:
            await client.abort()
            raise
        self._client = client
        self._selected = None

    async def _learn_namespace(self, client: ImapClient) -> None:
        ns: list[Namespace] = []
        lists: list[ListResponse] = []
        if client.has("NAMESPACE"):
            got = await client.check(b"NAMESPACE")
            ns = [r for r in got if isinstance(r, Namespace)]
        if ns and ns[-1].personal:
            prefix, delim = ns[-1].personal[0]
            self._prefix = prefix.decode("utf-8", "replace")
            self._delim = delim
            self._foreign = [
                p.decode("utf-8", "replace") for p, _ in ns[-1].other + ns[-1].shared if p
            ]
        else:
            got = await client.check(b'LIST "" ""')
            lists = [r for r in got if isinstance(r, ListResponse)]
            self._delim = lists[0].delimiter if lists else None
        self.separator = self._delim or "/"

    async def close(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        if client is not None:
            await client.logout()

    async def _conn(self) -> ImapClient:
        if self._client is None or not self._client.connected:
            raise EndpointError(f"{self.display}: not connected")
        if self._client.pending:
            await self._client.drain()
        return self._client

    # --- names ----------------------------------------------------------------------

    def _decode_name(self, raw: bytes) -> FolderName | None:
        text = raw.decode("utf-8", "replace")
        if text.upper() == "INBOX":
            return INBOX
        if any(text.startswith(p) for p in self._foreign) and not (
            self._prefix and text.startswith(self._prefix)
        ):
            return None
        if self._prefix:
            if not text.startswith(self._prefix):
                return None
            text = text[len(self._prefix) :]
            if not text:
                return None
        # not modified UTF-7: keep the text as is; the wire name is remembered
        with contextlib.suppress(ValueError):
            text = decode_mutf7(text)
        parts = tuple(text.split(self._delim)) if self._delim else (text,)
        if parts[0].upper() == "INBOX":
            parts = ("INBOX", *parts[1:])
        return parts

    def _encode_name(self, folder: FolderName) -> str:
        if folder in self._wire:
            return self._wire[folder]
        if folder == INBOX:
            return "INBOX"
        if not folder or any(not p for p in folder):
            raise EndpointError(f"{self.display}: empty folder name part in {folder!r}")
        if self._delim is None and len(folder) > 1:
            raise EndpointError(f"{self.display}: the server has no folder hierarchy")
        if self._delim is not None and any(self._delim in p for p in folder):
            raise EndpointError(
                f"{self.display}: folder name part contains the separator {self._delim!r}: "
                f"{folder!r}"
            )
        delim = self._delim or ""
        if folder[0] == "INBOX" and not self._prefix:
            return delim.join(("INBOX", *(encode_mutf7(p) for p in folder[1:])))
        return self._prefix + delim.join(encode_mutf7(p) for p in folder)

    # --- folders --------------------------------------------------------------------

    async def list_folders(self) -> list[FolderInfo]:
        client = await self._conn()
        cmd = b'LIST "" "*"'
        if client.has("LIST-EXTENDED") and client.has("SPECIAL-USE"):
            cmd = b'LIST "" "*" RETURN (SPECIAL-USE)'
        got = await client.check(cmd)
        found: dict[FolderName, FolderInfo] = {}
        for r in got:
            if not isinstance(r, ListResponse):
                continue
            name = self._decode_name(r.name)
            if name is None or name in found:
                continue
            attrs = {a.lower() for a in r.attrs}
            self._wire.setdefault(name, r.name.decode("utf-8", "replace"))
            special = next((_SPECIAL[a] for a in sorted(attrs) if a in _SPECIAL), None)
            selectable = not ({"\\noselect", "\\nonexistent"} & attrs)
            found[name] = FolderInfo(name, special, selectable)
            if selectable:
                self._existing.add(name)
        found.setdefault(INBOX, FolderInfo(INBOX))
        return sorted(found.values(), key=lambda f: (f.name != INBOX, f.name))

    async def _select(self, folder: FolderName, *, readonly: bool) -> ImapClient:
        client = await self._conn()
        wire = self._encode_name(folder)
        sel = self._selected
        if sel is not None and sel[0] == wire and (readonly or not sel[1]):
            return client
        codes: dict[str, object] = {}

        def note(r: Response) -> None:
            if isinstance(r, Status) and r.code is not None:
                codes[r.code.name] = r.code.value

        self._selected = None
        verb = b"EXAMINE " if readonly else b"SELECT "
        try:
            reply, _ = await client.run(verb, astring(wire), on=note)
        except CommandFailed as exc:
            raise EndpointError(str(exc)) from None
        if reply.status != "OK":
            what = "examine" if readonly else "select"
            raise EndpointError(f"{self.display}: cannot {what} {wire!r}: {reply.text}")
        if reply.code is not None:
            codes.setdefault(reply.code.name, reply.code.value)
        self._select_codes = codes
        self._selected = (wire, readonly)
        return client

    # --- source -----------------------------------------------------------------------

    async def snapshot(self, folder: FolderName) -> FolderSnapshot:
        client = await self._select(folder, readonly=True)
        uidvalidity = _int(self._select_codes.get("UIDVALIDITY"))
        metas: list[MessageMeta] = []
        if client.exists == 0:
            return FolderSnapshot(uidvalidity, metas)

        def on(r: Response) -> None:
            if not isinstance(r, Fetch) or not isinstance(r.items.get("UID"), int):
                return
            uid = _int(r.items["UID"])
            flags = _flags(r.items.get("FLAGS"))
            date = r.items.get("INTERNALDATE")
            size = _int(r.items.get("RFC822.SIZE"))
            dt = date if isinstance(date, datetime) else None
            metas.append(MessageMeta(str(uid), size, flags, dt))

        await client.check(b"UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)", on=on)
        metas.sort(key=lambda m: int(m.key))
        unique = {m.key: m for m in metas}
        return FolderSnapshot(uidvalidity, list(unique.values()))

    def _batches(self, items: Sequence[tuple[int, int]]) -> list[list[int]]:
        """Split (uid, size) pairs into batches by message count and bytes."""
        batches: list[list[int]] = []
        cur: list[int] = []
        nbytes = 0
        for uid, size in items:
            if cur and (len(cur) >= self.batch_messages or nbytes + size > self.batch_bytes):
                batches.append(cur)
                cur, nbytes = [], 0
            cur.append(uid)
            nbytes += size
        if cur:
            batches.append(cur)
        return batches

    async def _bodies(
        self, client: ImapClient, batches: list[list[int]], extra: bytes = b""
    ) -> AsyncIterator[tuple[int, MessageBody, Fetch]]:
        """Fetch bodies batch by batch (next batch pipelined), in the given order."""
        got: dict[int, tuple[MessageBody, Fetch]] = {}

        def on(r: Response) -> None:
            if not isinstance(r, Fetch):
                return
            body = r.items.get("BODY[]")
            uid = r.items.get("UID")
            if isinstance(body, bytes):
                body = MessageBody.from_bytes(body)
                r.items["BODY[]"] = body
            if not isinstance(uid, int) or not isinstance(body, MessageBody) or uid in got:
                close_bodies(r)
                return
            got[uid] = (body, r)

        async def send(batch: list[int]) -> str:
            return await client.send(
                b"UID FETCH " + uid_set(batch) + b" (BODY.PEEK[]" + extra + b")"
            )

        try:
            tags = [await send(batches[0])] if batches else []
            for i, batch in enumerate(batches):
                if i + 1 < len(batches):
                    tags.append(await send(batches[i + 1]))
                tag = tags[i]
                done: Tagged | None = None
                for uid in batch:
                    while uid not in got and done is None:
                        done = await client.step(tag, on)
                    if uid in got:
                        body, resp = got.pop(uid)
                        yield uid, body, resp
                if done is None:
                    done = await client.wait(tag, on)
                if done.status != "OK" and done.status != "NO":
                    raise EndpointError(f"{self.display}: UID FETCH failed: {done.text}")
        finally:
            for body, _ in got.values():
                body.close()

    async def fetch(
        self, folder: FolderName, metas: Sequence[MessageMeta]
    ) -> AsyncIterator[FetchedMessage]:
        client = await self._select(folder, readonly=True)
        by_uid = {int(m.key): m for m in metas}
        batches = self._batches([(int(m.key), m.size) for m in metas])
        async for uid, body, resp in self._bodies(client, batches, b" INTERNALDATE"):
            meta = by_uid[uid]
            date = resp.items.get("INTERNALDATE")
            if meta.internaldate is None and isinstance(date, datetime):
                meta = MessageMeta(meta.key, meta.size, meta.flags, date)
            yield FetchedMessage(meta, body)

    async def delete(self, folder: FolderName, keys: Sequence[str]) -> None:
        if not keys:
            return
        client = await self._select(folder, readonly=False)
        if not client.has("UIDPLUS"):
            raise EndpointError(
                f"{self.display}: cannot delete single messages: the server lacks UIDPLUS "
                "(UID EXPUNGE); a plain EXPUNGE could remove other deleted mail"
            )
        uids = uid_set(int(k) for k in keys)
        await self._checked(client, b"UID STORE " + uids + b" +FLAGS.SILENT (\\Deleted)")
        await self._checked(client, b"UID EXPUNGE " + uids)

    async def _checked(
        self, client: ImapClient, *parts: Part, on: Callable[[Response], None] | None = None
    ) -> list[Response]:
        try:
            return await client.check(*parts, on=on)
        except CommandFailed as exc:
            raise EndpointError(str(exc)) from None

    # --- destination --------------------------------------------------------------

    async def ensure_folder(self, folder: FolderName, special_use: str | None = None) -> None:
        if folder == INBOX or folder in self._existing:
            return  # listed as selectable on this connection: it exists (no round trip)
        client = await self._conn()
        wire = self._encode_name(folder)
        use = _SPECIAL.get(special_use.lower()) if special_use else None
        reply: Tagged | None = None
        if use and client.has("CREATE-SPECIAL-USE"):
            reply, _ = await client.run(
                b"CREATE ", astring(wire), b" (USE (" + use.encode() + b"))"
            )
            if reply.status != "OK" and not _exists(reply):
                reply = None  # e.g. [USEATTR]: create without the attribute
        if reply is None:
            reply, _ = await client.run(b"CREATE ", astring(wire))
        if reply.status != "OK" and not _exists(reply):
            got = await self._checked(client, b'LIST "" ', astring(wire))
            if not any(isinstance(r, ListResponse) for r in got):
                raise EndpointError(f"{self.display}: cannot create {wire!r}: {reply.text}")
        self._wire[folder] = wire
        self._existing.add(folder)
        await client.run(b"SUBSCRIBE ", astring(wire))  # a refusal is harmless

    async def change_token(self, folder: FolderName) -> str | None:
        """A token that differs whenever the folder changed: UIDVALIDITY, UIDNEXT, MESSAGES
        and HIGHESTMODSEQ (RFC 7162 3.1.2.1: it grows with every flag change, expunge and
        new message) from one STATUS; None without CONDSTORE."""
        client = await self._conn()
        if not client.has("CONDSTORE"):
            return None
        items = ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")
        try:
            reply, got = await client.run(
                b"STATUS ",
                astring(self._encode_name(folder)),
                b" (",
                " ".join(items).encode(),
                b")",
            )
        except CommandFailed:
            return None
        if reply.status != "OK":
            return None
        for r in got:
            if isinstance(r, StatusData) and all(k in r.items for k in items):
                return "imap:" + ":".join(str(r.items[k]) for k in items)
        return None

    async def open_folder(self, folder: FolderName) -> DestFolderState:
        self._selected = None  # always re-SELECT: fresh UIDNEXT and count
        client = await self._select(folder, readonly=False)
        codes = self._select_codes
        perm = codes.get("PERMANENTFLAGS")
        limit = self._append_limit(client)
        if limit is None and client.has("APPENDLIMIT"):
            got = await client.run(
                b"STATUS ", astring(self._encode_name(folder)), b" (APPENDLIMIT)"
            )
            for r in got[1]:
                if isinstance(r, StatusData) and "APPENDLIMIT" in r.items:
                    limit = r.items["APPENDLIMIT"]
        return DestFolderState(
            uidvalidity=_int(codes.get("UIDVALIDITY")),
            uidnext=_int(codes.get("UIDNEXT")),
            count=client.exists,
            permanent_flags=perm if isinstance(perm, frozenset) else None,
            append_limit=limit,
        )

    def _append_limit(self, client: ImapClient) -> int | None:
        for cap in client.capabilities:
            if cap.startswith("APPENDLIMIT=") and cap[12:].isdigit():
                return int(cap[12:])
        return None

    async def append(self, folder: FolderName, items: Sequence[AppendItem]) -> list[AppendResult]:
        client = await self._conn()
        wire = self._encode_name(folder)
        results: list[AppendResult | None] = [None] * len(items)
        limit = self._append_limit(client)
        todo: list[int] = []
        for i, item in enumerate(items):
            if limit is not None and item.body.size > limit:
                results[i] = AppendResult(
                    False,
                    error=f"message of {item.body.size} bytes exceeds the server's "
                    f"APPENDLIMIT of {limit}",
                )
            else:
                todo.append(i)
        mailbox = astring(wire)
        if client.has("MULTIAPPEND") and len(todo) > 1:
            for batch in self._batches([(i, items[i].body.size) for i in todo]):
                reply, _ = await client.run(b"APPEND ", mailbox, *_append_args(items, batch))
                if reply.status == "OK":
                    uids = _appenduids(reply, len(batch))
                    for i, uid in zip(batch, uids, strict=True):
                        results[i] = AppendResult(True, uid)
                else:
                    for i in batch:
                        results[i] = await self._append_one(client, mailbox, items, i)
        elif client.has("LITERAL+"):
            tags: list[tuple[int, str]] = []
            for i in todo:  # pipelined: non-synchronizing literals need no round trip
                tags.append((i, await client.send(b"APPEND ", mailbox, *_append_args(items, [i]))))
            for i, tag in tags:
                results[i] = _result(await client.wait(tag))
        else:
            for i in todo:
                results[i] = await self._append_one(client, mailbox, items, i)
        return [r if r is not None else AppendResult(False, error="not appended") for r in results]

    async def _append_one(
        self, client: ImapClient, mailbox: Part, items: Sequence[AppendItem], i: int
    ) -> AppendResult:
        reply, _ = await client.run(b"APPEND ", mailbox, *_append_args(items, [i]))
        return _result(reply)

    async def index(self, folder: FolderName, uid_from: int = 1) -> list[DestMessage]:
        client = await self._select(folder, readonly=True)
        out: dict[int, DestMessage] = {}
        if client.exists == 0:
            return []
        key = "BODY[HEADER.FIELDS (MESSAGE-ID)]"

        def on(r: Response) -> None:
            if not isinstance(r, Fetch):
                return
            uid = r.items.get("UID")
            if not isinstance(uid, int) or uid < uid_from:
                close_bodies(r)
                return
            head = next((v for k, v in r.items.items() if k.startswith("BODY[HEADER")), None)
            if isinstance(head, MessageBody):
                data = head.header_bytes()
                head.close()
            else:
                data = head if isinstance(head, bytes) else b""
            mid = message_id(data)
            size = _int(r.items.get("RFC822.SIZE"))
            out[uid] = DestMessage(uid, size, mid, _flags(r.items.get("FLAGS")))

        cmd = f"UID FETCH {max(1, uid_from)}:* (UID RFC822.SIZE FLAGS BODY.PEEK[{key[5:]})"
        await self._checked(client, cmd.encode("ascii"), on=on)
        return [out[u] for u in sorted(out)]

    async def fetch_bodies(
        self, folder: FolderName, uids: Sequence[int]
    ) -> AsyncIterator[tuple[int, MessageBody]]:
        client = await self._select(folder, readonly=True)
        batches = self._batches([(u, 1 << 16) for u in uids])
        async for uid, body, _ in self._bodies(client, batches):
            yield uid, body

    async def set_flags(
        self, folder: FolderName, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        if not changes:
            return
        client = await self._select(folder, readonly=False)
        groups: dict[frozenset[str], list[int]] = {}
        for uid, flags in changes:
            groups.setdefault(_sendable(flags), []).append(uid)
        for flags, uids in groups.items():
            flag_list = " ".join(sorted(flags)).encode("ascii")
            cmd = b"UID STORE " + uid_set(uids) + b" FLAGS.SILENT (" + flag_list + b")"
            await self._checked(client, cmd)


# --- helpers ------------------------------------------------------------------------


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _flags(value: object) -> frozenset[str]:
    if not isinstance(value, tuple):
        return frozenset()
    return frozenset(str(f) for f in value if str(f).lower() != "\\recent")


def _sendable(flags: frozenset[str]) -> frozenset[str]:
    """Flags as an APPEND/STORE flag list: no \\Recent, only atoms we can send."""
    return frozenset(f for f in flags if f.lower() != "\\recent" and _FLAG_OK.match(f))


def _append_args(items: Sequence[AppendItem], which: Sequence[int]) -> list[Part]:
    """`` (flags) "date" {n}<data>`` for each item (RFC 3502 append-message)."""
    parts: list[Part] = []
    for i in which:
        item = items[i]
        flags = " ".join(sorted(_sendable(item.flags))).encode("ascii")
        parts.append(b" (" + flags + b")")
        if item.internaldate is not None:
            parts.append(b" " + quoted(format_internaldate(item.internaldate)))
        parts.append(b" ")
        parts.append(Literal(item.body))
    return parts


def _appenduids(reply: Tagged, n: int) -> list[int | None]:
    code = reply.code
    if code is not None and code.name == "APPENDUID" and isinstance(code.value, tuple):
        uids = code.value[1]
        if isinstance(uids, tuple) and len(uids) == n:
            return [int(u) for u in uids]
    return [None] * n


def _result(reply: Tagged) -> AppendResult:
    if reply.status == "OK":
        return AppendResult(True, _appenduids(reply, 1)[0])
    code = f"[{reply.code.name}] " if reply.code is not None else ""
    return AppendResult(False, error=f"{reply.status} {code}{reply.text}".strip())


def _exists(reply: Tagged) -> bool:
    return reply.code is not None and reply.code.name == "ALREADYEXISTS"


__all__ = ["SPECIAL_USES", "ImapEndpoint"]
