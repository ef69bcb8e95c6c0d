"""Copy one folder: compare with the state, sync flags, append what is new, verify.

Theory of operation (per folder pair, see docs/contracts.md "mailgw.migrate"):

* Snapshot the source; filter by size and INTERNALDATE (RFC 3501 2.3.3; sources
  without one -- POP3, mbox -- are date-filtered after the fetch, on the date
  the source derived from the headers).
* State rows of another source UIDVALIDITY (RFC 3501 2.3.1.1: the UIDs were
  reassigned) or another destination UIDVALIDITY are dropped: those messages
  are unknown again.  ``done`` keys are present: their flags are compared with
  the source's and changed with ``set_flags`` when the source changed them.
* Matching mode, when the destination may hold copies the state does not know
  of (pending rows left by a crash, or more messages than ``done`` rows claim):
  before appending, a destination message of the same size (and Message-ID,
  RFC 5322 3.6.4, when both have one) whose SHA-256 equals the body's and that
  no other source message claimed is recorded as present instead.
* The copy: a producer fetches batches (``batch_messages``/``batch_bytes``) into
  a queue of one batch while the consumer appends the previous one (MULTIAPPEND,
  RFC 3502, where the destination has it).  Per batch: ``pending`` rows
  committed, append, ``done`` rows (ids from APPENDUID, RFC 4315, or found by
  hash among ids >= the UIDNEXT before the batch) committed.
* Flags: never ``\\Recent``; only what PERMANENTFLAGS (RFC 3501 7.1) allows.
* ``--verify``/``--delete-source``: destination bodies re-read and hashed; the
  source copy is deleted only for a verified message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from mailgw.errors import EndpointError
from mailgw.migrate.body import MessageBody
from mailgw.migrate.endpoints.base import Destination, Source
from mailgw.migrate.folders import FolderPair
from mailgw.migrate.headers import message_id
from mailgw.migrate.matcher import (
    DestinationMatcher,
    close_iter,
    same_flags,
    source_flags,
    usable_flags,
)
from mailgw.migrate.model import (
    AppendItem,
    FetchedMessage,
    FolderName,
    FolderProgress,
    MessageMeta,
    MigrateOptions,
    Progress,
)
from mailgw.migrate.results import FolderReport
from mailgw.migrate.state import DONE, PENDING, StateDB, StateRow


def aware(dt: datetime) -> datetime:
    """A tz-aware datetime (a naive one is taken as local time)."""
    return dt if dt.tzinfo is not None else dt.astimezone()


def chunked(metas: Sequence[MessageMeta], count: int, nbytes: int) -> list[list[MessageMeta]]:
    out: list[list[MessageMeta]] = []
    cur: list[MessageMeta] = []
    size = 0
    for m in metas:
        if cur and (len(cur) >= count or size + m.size > nbytes):
            out.append(cur)
            cur, size = [], 0
        cur.append(m)
        size += m.size
    if cur:
        out.append(cur)
    return out


async def together(*aws: Awaitable[None]) -> None:
    """Run concurrently; the first failure cancels the rest and is re-raised as is."""
    try:
        async with asyncio.TaskGroup() as tg:
            for aw in aws:
                tg.create_task(aw)  # type: ignore[arg-type]
    except BaseExceptionGroup as eg:
        exc: BaseException = eg
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        raise exc from None


@dataclass
class _Work:
    fetched: FetchedMessage
    mid: str | None


class FolderCopier:
    """One folder pair over one source and one destination connection."""

    def __init__(
        self,
        src: Source,
        dst: Destination,
        pair: FolderPair,
        options: MigrateOptions,
        state: StateDB,
        progress: Progress,
        report: FolderReport,
        *,
        screened: tuple[str | None] | None = None,
    ) -> None:
        self.screened = screened  # (token,) when screen() already ran for this folder
        self.src, self.dst, self.pair, self.opt = src, dst, pair, options
        self.state, self.progress, self.report = state, progress, report
        self.sfolder: FolderName = pair.source
        self.dfolder: FolderName = pair.destination
        self.uidvalidity = 0
        self.dst_uidvalidity = 0
        self.permanent: frozenset[str] | None = None
        self.append_limit: int | None = None
        self.uid_floor = 1  # every id this run appends is >= this
        self.matcher = DestinationMatcher(dst, pair.destination, options.batch_messages)
        self.matching = False
        self.dropped: set[str] = set()
        self.seen: set[str] = set()
        self.fp: FolderProgress | None = None

    # -- filters ----------------------------------------------------------------

    def _size_ok(self, size: int) -> bool:
        o = self.opt
        return (o.min_size is None or size >= o.min_size) and (
            o.max_size is None or size <= o.max_size
        )

    def _date_ok(self, dt: datetime | None) -> bool:
        o = self.opt
        if o.since is None and o.before is None:
            return True
        if dt is None:
            return False
        dt = aware(dt)
        if o.since is not None and dt < aware(o.since):
            return False
        return not (o.before is not None and dt >= aware(o.before))

    def _row(self, meta: MessageMeta, body: MessageBody, status: str) -> StateRow:
        return StateRow(
            src_folder=self.sfolder,
            src_uidvalidity=self.uidvalidity,
            src_key=meta.key,
            dst_folder=self.dfolder,
            sha256=body.sha256,
            size=body.size,
            flags=source_flags(meta.flags),
            internaldate=meta.internaldate.timestamp() if meta.internaldate else None,
            dst_uidvalidity=self.dst_uidvalidity,
            dst_uid=None,
            dst_uidnext=self.uid_floor,
            status=status,
        )

    def _flags_for_dst(self, flags: frozenset[str]) -> frozenset[str]:
        kept, dropped = usable_flags(flags, self.permanent)
        self.dropped.update(dropped)
        return kept

    # -- the folder ---------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self.fp is not None:
                self.fp.close()
            self.report.flags_dropped = sorted(set(self.report.flags_dropped) | self.dropped)

    async def screen(self) -> str | None:
        """``""``: the folder is unchanged since the last clean run (and reported as
        present); else its change token (None: unknown) for ``screened=(token,)``."""
        return await self._unchanged()

    async def _unchanged(self) -> str | None:
        """The source's change token (None: unknown), after reporting the folder as
        present and returning "" when it equals the one saved by the last clean run:
        a re-run then costs one STATUS per folder instead of a snapshot."""
        o = self.opt
        get = getattr(self.src, "change_token", None)
        if o.dry_run or o.verify or o.delete_source or get is None:
            return None
        token = await get(self.sfolder)
        if token is None:
            return None
        token = f"{token}|{o.since}|{o.before}|{o.min_size}|{o.max_size}"
        saved = await asyncio.to_thread(self.state.folder_token, self.sfolder, self.dfolder)
        if saved != token:
            return token
        done, nbytes, pending = await asyncio.to_thread(
            self.state.done_totals, self.sfolder, self.dfolder
        )
        if pending:
            return token
        r = self.report
        r.source_count, r.source_bytes, r.skipped_present = done, nbytes, done
        return ""

    async def _run(self) -> None:
        r = self.report
        token = self.screened[0] if self.screened is not None else await self._unchanged()
        if token == "":
            return
        snap = await self.src.snapshot(self.sfolder)
        self.uidvalidity = snap.uidvalidity
        rows = await asyncio.to_thread(self.state.rows, self.sfolder, self.dfolder)
        dst_count = 0
        if self.opt.dry_run:
            rows = [x for x in rows if x.src_uidvalidity == snap.uidvalidity]
        else:
            dstate = await self.dst.open_folder(self.dfolder)
            dst_count = dstate.count
            self.dst_uidvalidity = dstate.uidvalidity
            self.permanent, self.append_limit = dstate.permanent_flags, dstate.append_limit
            self.uid_floor = max(1, dstate.uidnext)
            stale = [
                x
                for x in rows
                if x.src_uidvalidity != snap.uidvalidity or x.dst_uidvalidity != dstate.uidvalidity
            ]
            if stale:
                await asyncio.to_thread(self.state.remove, stale)
                stale_set = set(stale)
                rows = [x for x in rows if x not in stale_set]
        done = {x.src_key: x for x in rows if x.status == DONE}
        pending = [x for x in rows if x.status == PENDING]

        metas: list[MessageMeta] = []
        for m in snap.messages:
            if not self._size_ok(m.size):
                continue
            dt = m.internaldate
            known = done.get(m.key)
            if dt is None and known is not None and known.internaldate is not None:
                dt = datetime.fromtimestamp(known.internaldate).astimezone()
            if dt is not None and not self._date_ok(dt):
                continue
            metas.append(m)
        r.source_count = len(metas)
        r.source_bytes = sum(m.size for m in metas)

        present = [m for m in metas if m.key in done]
        to_copy = [m for m in metas if m.key not in done]
        r.skipped_present += len(present)
        if not self.opt.dry_run:
            await self._sync_flags(present, done)
            claimed = await asyncio.to_thread(
                self.state.claimed, self.dfolder, self.dst_uidvalidity
            )
            self.matcher.claimed = claimed
            self.matching = bool(pending) or dst_count > len(claimed)
        else:
            # a dry run fetches only what a date filter needs (sources without
            # INTERNALDATE); the rest is counted from the snapshot
            dated = self._dated_filter()
            counted = [m for m in to_copy if not dated or m.internaldate is not None]
            r.copied += len(counted)
            r.copied_bytes += sum(m.size for m in counted)
            to_copy = [m for m in to_copy if dated and m.internaldate is None]

        if to_copy:
            self.fp = self.progress.folder(
                self.src.display, self.pair.source_text, len(to_copy), sum(m.size for m in to_copy)
            )
            queue: asyncio.Queue[list[_Work] | None] = asyncio.Queue(maxsize=1)
            try:
                await together(self._produce(to_copy, queue), self._consume(queue))
            finally:
                while not queue.empty():  # a batch left behind by a failure
                    for w in queue.get_nowait() or []:
                        w.fetched.body.close()
            gone = [m for m in to_copy if m.key not in self.seen]
            r.source_count -= len(gone)
            r.source_bytes -= sum(m.size for m in gone)

        if not self.opt.dry_run and (self.opt.verify or self.opt.delete_source):
            await self._verify_and_delete(metas)
        if token and r.failed == 0 and not r.errors:
            await asyncio.to_thread(self.state.set_folder_token, self.sfolder, self.dfolder, token)

    def _dated_filter(self) -> bool:
        return self.opt.since is not None or self.opt.before is not None

    async def _sync_flags(self, present: list[MessageMeta], done: dict[str, StateRow]) -> None:
        changes: list[tuple[int, frozenset[str]]] = []
        updated: list[StateRow] = []
        for m in present:
            row = done[m.key]
            flags = source_flags(m.flags)
            if flags == row.flags:
                continue
            updated.append(replace(row, flags=flags))
            if row.dst_uid is not None:
                changes.append((row.dst_uid, self._flags_for_dst(flags)))
        if changes:
            await self.dst.set_flags(self.dfolder, changes)
            self.report.flags_synced += len(changes)
        if updated:
            await asyncio.to_thread(self.state.put, updated)

    # -- producer / consumer --------------------------------------------------------

    def _keep_fetched(self, fm: FetchedMessage) -> bool:
        meta = fm.meta
        self.seen.add(meta.key)
        if not self._date_ok(meta.internaldate) or not self._size_ok(fm.body.size):
            self.report.source_count -= 1
            self.report.source_bytes -= meta.size
            if self.fp is not None:
                self.fp.advance(1, meta.size)
            return False
        return True

    async def _produce(
        self, to_copy: list[MessageMeta], queue: asyncio.Queue[list[_Work] | None]
    ) -> None:
        batch: list[_Work] = []
        size = 0
        try:
            for chunk in chunked(to_copy, self.opt.batch_messages, self.opt.batch_bytes):
                it = self.src.fetch(self.sfolder, chunk)
                try:
                    async for fm in it:
                        if not self._keep_fetched(fm):
                            fm.body.close()
                            continue
                        mid = message_id(fm.body.header_bytes()) if self.matching else None
                        batch.append(_Work(fm, mid))
                        size += fm.body.size
                        if len(batch) >= self.opt.batch_messages or size >= self.opt.batch_bytes:
                            full, batch, size = batch, [], 0
                            await queue.put(full)
                finally:
                    await close_iter(it)
            if batch:
                full, batch = batch, []
                await queue.put(full)
            await queue.put(None)
        finally:
            for w in batch:
                w.fetched.body.close()

    async def _consume(self, queue: asyncio.Queue[list[_Work] | None]) -> None:
        while True:
            batch = await queue.get()
            if batch is None:
                return
            try:
                await self._handle(batch)
            finally:
                for w in batch:
                    w.fetched.body.close()

    def _advance(self, size: int) -> None:
        if self.fp is not None:
            self.fp.advance(1, size)

    async def _handle(self, batch: list[_Work]) -> None:
        r = self.report
        if self.opt.dry_run:
            for w in batch:
                r.copied += 1
                r.copied_bytes += w.fetched.body.size
                self._advance(w.fetched.body.size)
            return
        to_append: list[_Work] = []
        matched_rows: list[StateRow] = []
        flag_changes: list[tuple[int, frozenset[str]]] = []
        for w in batch:
            meta, body = w.fetched.meta, w.fetched.body
            hit = await self.matcher.match(body, w.mid) if self.matching else None
            if hit is not None:
                self.matcher.claimed.add(hit.uid)
                row = replace(self._row(meta, body, DONE), dst_uid=hit.uid)
                matched_rows.append(row)
                want = self._flags_for_dst(row.flags)
                if not same_flags(want, source_flags(hit.flags)):
                    flag_changes.append((hit.uid, want))
                r.skipped_present += 1
                self._advance(body.size)
            elif self.append_limit is not None and body.size > self.append_limit:
                r.failed += 1
                r.errors.append(
                    f"{meta.key}: too big for the destination"
                    f" ({body.size} bytes > APPENDLIMIT {self.append_limit})"
                )
                self._advance(body.size)
            else:
                to_append.append(w)
        if flag_changes:
            await self.dst.set_flags(self.dfolder, flag_changes)
            r.flags_synced += len(flag_changes)
        if matched_rows:
            await asyncio.to_thread(self.state.put, matched_rows)
        if to_append:
            await self._append(to_append)

    async def _append(self, works: list[_Work]) -> None:
        r = self.report
        pending = [self._row(w.fetched.meta, w.fetched.body, PENDING) for w in works]
        # durable BEFORE the append is sent: a crash from here on leaves pending rows
        await asyncio.to_thread(self.state.put, pending)
        items = [
            AppendItem(
                body=w.fetched.body,
                flags=self._flags_for_dst(source_flags(w.fetched.meta.flags)),
                internaldate=w.fetched.meta.internaldate,
            )
            for w in works
        ]
        results = await self.dst.append(self.dfolder, items)
        if len(results) != len(items):
            raise EndpointError(f"append returned {len(results)} results for {len(items)}")
        done: list[StateRow] = []
        refused: list[StateRow] = []
        unresolved: list[int] = []
        for w, res, row in zip(works, results, pending, strict=True):
            size = w.fetched.body.size
            self._advance(size)
            if not res.ok:
                r.failed += 1
                r.errors.append(
                    f"{w.fetched.meta.key}: {res.error or 'refused by the destination'}"
                )
                refused.append(row)
                continue
            r.copied += 1
            r.copied_bytes += size
            done.append(replace(row, status=DONE, dst_uid=res.uid, dst_uidnext=None))
            if res.uid is None:
                unresolved.append(len(done) - 1)
            else:
                self.matcher.claimed.add(res.uid)
                self.uid_floor = max(self.uid_floor, res.uid + 1)
        if unresolved:
            ids, self.uid_floor = await self.matcher.resolve(
                [(done[i].sha256, done[i].size) for i in unresolved], self.uid_floor
            )
            for i, uid in zip(unresolved, ids, strict=True):
                done[i] = replace(done[i], dst_uid=uid)
        await asyncio.to_thread(self.state.put, done)
        if refused:
            await asyncio.to_thread(self.state.remove, refused)

    # -- verify / delete ---------------------------------------------------------------

    async def _verify_and_delete(self, metas: list[MessageMeta]) -> None:
        r = self.report
        rows = await asyncio.to_thread(self.state.rows, self.sfolder, self.dfolder)
        keys = {m.key for m in metas}
        check = [
            x
            for x in rows
            if x.status == DONE
            and x.src_key in keys
            and x.src_uidvalidity == self.uidvalidity
            and x.dst_uidvalidity == self.dst_uidvalidity
        ]
        good: list[str] = []
        by_uid: dict[int, StateRow] = {}
        for x in check:
            if x.dst_uid is None:
                r.verify_failed += 1
                r.errors.append(f"{x.src_key}: destination id unknown, cannot verify")
            else:
                by_uid[x.dst_uid] = x
        # re-read, do not trust the matching cache
        hashes = await self.matcher.hashes(sorted(by_uid), fresh=True)
        for uid, x in by_uid.items():
            got = hashes.get(uid, "")
            if got == x.sha256:
                r.verified += 1
                good.append(x.src_key)
            else:
                r.verify_failed += 1
                why = "missing at the destination" if not got else "destination copy differs"
                r.errors.append(f"{x.src_key}: {why} (destination id {uid})")
        if self.opt.delete_source and good:
            # one call per folder: a POP3 source commits its DELEs with QUIT (RFC 1939 6)
            await self.src.delete(self.sfolder, good)
            r.deleted_source += len(good)


__all__ = ["FolderCopier", "aware", "chunked", "together"]
