"""The queue runner: delivers what waits in the spool, retries, bounces.

Theory of operation
-------------------
A *pass* (``QueueRunner.run_once``; ``run_forever`` repeats it inside
``mailgw serve``, ``mailgw queue run`` calls it once from cron):

1. Read every entry's metadata; the *due* ones are not held, have pending
   recipients and ``next_attempt <= now``.  They are handled in waves (at
   most ``WAVE_ENTRIES`` entries or ``WAVE_BYTES`` of messages), oldest first.
2. For each entry of the wave, ``Spool.attempt_lock`` (non-blocking flock):
   an entry locked by another runner (``serve`` and a cron ``queue run``) is
   skipped; its metadata is re-read under the lock.
3. Recipients in local domains are delivered into the store here
   (``mailgw.delivery``): DSNs to local senders and ``mailgw send`` mail for
   local users end in their mailboxes this way.  Other recipients are grouped
   by destination: one per smarthost route, one per recipient domain for mx
   routes (RFC 5321 section 5.1).  Each destination's messages go out in
   batches of ``route.max_per_connection`` messages per SMTP connection, at
   most ``route.concurrency`` connections at once per destination and
   ``MAX_CONNECTIONS`` in all.
4. Replies are classified per recipient (RFC 5321 section 4.2.1): ``2yz``
   delivered; ``5yz`` failed, a DSN goes to the sender (``mailgw.relay.dsn``,
   RFC 3464); ``4yz``, connection, TLS and temporary DNS failures leave the
   recipient pending: the entry's ``attempts`` grows by one and
   ``next_attempt = now + retry_delay(attempts)`` (``mailgw.relay.backoff``:
   exponential from ``retry_min``, capped at ``retry_max``, +-20% jitter;
   RFC 5321 section 4.5.4.1).  A recipient still pending after ``lifetime``
   fails with "delivery time expired" (status 5.4.7, RFC 3463).  Once per
   message, after ``delay_warning``, a "delayed" DSN goes out (RFC 3464
   section 2.3.3 ``Action: delayed``).
5. A smarthost authentication failure (``RouteAuthError``) bounces nothing:
   every entry with recipients on that route is held with ``held_reason``
   "smarthost authentication failed: <reply>", logged as an error, shown by
   ``mailgw queue list`` and reported to the postmaster; ``mailgw queue
   release`` lets the mail go again once the password is fixed.
6. When a route delivers again after failures (a delivered message had
   earlier attempts, or the route failed earlier in this process), every
   entry waiting for that route is made due now: mail leaves as soon as the
   link is back, not at each message's own backoff time.
7. Results are written under the lock: DSNs are enqueued (durable) *before*
   the entry's metadata records ``dsn_sent``, and an entry whose recipients
   are all delivered or failed is removed.

Never a bounce for a bounce: a failed message with the null sender ``<>``
(RFC 5321 section 4.5.5; our own DSNs are such) is dropped with a log line
and a (rate-limited) postmaster notice.  Postmaster notices are limited to
one per reason per ``relay.notice_interval``; the times are kept in
``<spool>/notices.json`` so that cron passes respect the limit too.

At-least-once delivery
----------------------
An entry's metadata is updated only after the remote server accepted the
message.  If the process dies in between (SIGKILL, power loss), the next pass
sends that message again: a message in flight during a crash may be
delivered twice, never lost.  The same holds for DSNs (enqueued before the
original's metadata says so).  Nothing else is duplicated: every other
message's state was saved before the crash.

Blocking spool work runs in worker threads (``asyncio.to_thread``), one call
per wave step, so ``serve``'s listeners keep answering during a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mailgw.config.schema import Config, RelayConfig
from mailgw.relay.backoff import retry_delay
from mailgw.relay.dsn import EXPIRED, build_dsn, build_notice

log = logging.getLogger("mailgw.relay")

WAVE_ENTRIES = 1000  # entries locked and handled together, at most
WAVE_BYTES = 64 * 1024 * 1024  # message bytes held in memory per wave, about
READ_AHEAD = 1024 * 1024  # messages up to this size are read in the wave's thread
MAX_CONNECTIONS = 32  # outbound SMTP connections at once, all routes together
SCAN_INTERVAL = 60.0  # serve re-reads the spool at least this often
WATCH_INTERVAL = 1.0  # ... and checks meta/'s mtime this often (new mail from `mailgw send`)
ERROR_PAUSE = 30.0  # after an unexpected error in a pass
EXTRA_PASSES = 4  # run_once repeats at once when a pass made more mail due (DSNs, recovery)

Kind = Literal["ok", "temp", "perm", "held"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient of one entry in this pass."""

    kind: Kind
    reply: str
    remote_mta: str | None = None


@dataclass
class PassStats:
    """Counts of one pass (recipients, except ``entries``/``busy``)."""

    entries: int = 0  # due entries handled
    busy: int = 0  # skipped: locked by another runner
    delivered: int = 0
    local: int = 0  # of delivered: into local mailboxes
    failed: int = 0
    deferred: int = 0
    held: int = 0
    dsns: int = 0
    dropped: int = 0  # failures of null-sender mail: no DSN
    held_routes: list[str] = field(default_factory=list)
    more_due: bool = False  # this pass queued or flushed mail that is due now

    def add(self, other: PassStats) -> None:
        for name in ("entries", "busy", "delivered", "local", "failed", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("held", "dsns", "dropped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.held_routes += [r for r in other.held_routes if r not in self.held_routes]


@dataclass
class _Locked:
    entry: Any  # QueueEntry, re-read under the lock
    lock: contextlib.ExitStack
    path: Path  # the message file
    data: bytes | None = None  # read in the wave's thread when small, else None

    def read(self) -> bytes:
        if self.data is None:
            return _canonical(self.path.read_bytes())
        return self.data


@dataclass
class _Job:
    """Some pending recipients of one entry, on one destination."""

    item: _Locked
    recipients: list[str]

    @property
    def entry(self) -> Any:
        return self.item.entry


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _canonical(data: bytes) -> bytes:
    """CRLF line ends everywhere (a bare LF or CR is never relayed as is, RFC 5321 2.3.8)."""
    if data.count(b"\n") == data.count(b"\r\n") and data.count(b"\r") == data.count(b"\r\n"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


class QueueRunner:
    """Delivery passes over one spool.  See the module docstring.

    ``router``: ``mailgw.relay.routing.Router`` (default: built from
    ``config.relay``); ``store``: the mail store for local recipients
    (default: ``Store(config.mail_root)``).  ``deliver``/``resolve`` replace
    ``mailgw.relay.client.deliver`` / ``routing.resolve_targets`` (tests);
    ``clock`` and ``rand`` replace ``time.time`` / ``random.uniform``.
    """

    def __init__(
        self,
        config: Config,
        spool: Any,
        router: Any = None,
        store: Any = None,
        *,
        userdb: Any = None,
        deliver: Callable[..., Awaitable[Sequence[Any]]] | None = None,
        resolve: Callable[..., Awaitable[Sequence[Any]]] | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.config = config
        self.relay: RelayConfig = config.relay if config.relay is not None else RelayConfig()
        self.spool = spool
        if router is None:
            from mailgw.relay.routing import Router

            router = Router(self.relay.routes)
        self.router = router
        if store is None:
            from mailgw.store import Store

            store = Store(config.mail_root)
        self.store = store
        if userdb is None:
            from mailgw.auth.passwd import UserDB

            userdb = UserDB(config.passwd_path)
        from mailgw.delivery import LocalDelivery, RecipientResolver

        self.resolver = RecipientResolver(config, userdb)
        self.local = LocalDelivery(store)
        self._deliver = deliver
        self._resolve = resolve
        self._dns: Any = None
        self.clock = clock
        self.rand = rand
        self._wake: asyncio.Event | None = None
        self._failing: set[str] = set()  # routes whose last attempt failed temporarily
        self._reasons: dict[str, str] = {}  # held route -> held_reason
        self._global = asyncio.Semaphore(MAX_CONNECTIONS)  # replaced per pass (its loop)
        self._stop: asyncio.Event | None = None

    # --- public --------------------------------------------------------------

    def wake(self) -> None:
        """Start a pass soon (new mail in the spool).  Call from the event loop."""
        if self._wake is not None:
            self._wake.set()

    async def run_once(self, progress: Progress | None = None) -> PassStats:
        """One delivery pass (repeated while it made more mail due now)."""
        total = PassStats()
        for _ in range(1 + EXTRA_PASSES):
            stats = await self._pass(progress)
            total.add(stats)
            if not stats.more_due or self._stopping():
                break
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Passes until ``stop`` is set; a delivery in flight is finished first."""
        self._stop = stop
        self._wake = asyncio.Event()
        while not stop.is_set():
            self._wake.clear()
            delay = SCAN_INTERVAL
            try:
                stats = await self._pass(None)
                if stats.more_due:
                    delay = 0.0
                else:
                    delay = min(delay, await asyncio.to_thread(self._next_due_in))
            except Exception:
                log.exception("queue pass failed; next pass in %.0f s", ERROR_PAUSE)
                delay = ERROR_PAUSE
            if delay > 0 and not stop.is_set():
                await self._idle(stop, delay)
        log.info("queue runner stopped")

    def _spool_stamp(self) -> int:
        try:
            return os.stat(self.spool.meta_dir).st_mtime_ns
        except OSError:
            return 0

    async def _idle(self, stop: asyncio.Event, delay: float) -> None:
        """Wait ``delay`` seconds, less if woken, stopped, or another process
        (``mailgw send``, ``queue flush``) changed the spool's ``meta/``."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        stamp = await asyncio.to_thread(self._spool_stamp)
        while not stop.is_set() and not self._wake.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
            try:
                await asyncio.wait(
                    waiters, timeout=min(left, WATCH_INTERVAL), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in waiters:
                    task.cancel()
            if await asyncio.to_thread(self._spool_stamp) != stamp:
                return

    # --- one pass ------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _next_due_in(self) -> float:
        now = self.clock()
        due = [
            e.next_attempt
            for e in self.spool.entries()
            if not e.held and any(r.state == "pending" for r in e.recipients)
        ]
        return max(0.0, min(due) - now) if due else SCAN_INTERVAL

    def _due(self) -> list[Any]:
        now = self.clock()
        due = [
            e
            for e in self.spool.entries()
            if not e.held
            and e.next_attempt <= now
            and any(r.state == "pending" for r in e.recipients)
        ]
        due.sort(key=lambda e: (e.next_attempt, e.created, e.id))
        return due

    async def _pass(self, progress: Progress | None) -> PassStats:
        stats = PassStats()
        self._global = asyncio.Semaphore(MAX_CONNECTIONS)
        due = await asyncio.to_thread(self._due)
        done = 0
        if progress is not None:
            progress(0, len(due))
        held_routes: set[str] = set()
        recovered: set[str] = set()
        for wave in self._waves(due):
            if self._stopping():
                break
            await self._wave(wave, stats, held_routes, recovered)
            done += len(wave)
            if progress is not None:
                progress(done, len(due))
        if held_routes:
            await asyncio.to_thread(self._hold_routes, held_routes, stats)
        if recovered - held_routes:
            flushed = await asyncio.to_thread(self._flush_routes, recovered - held_routes)
            stats.more_due = stats.more_due or flushed > 0
        return stats

    @staticmethod
    def _waves(due: list[Any]) -> list[list[Any]]:
        waves: list[list[Any]] = [[]]
        size = 0
        for entry in due:
            if waves[-1] and (len(waves[-1]) >= WAVE_ENTRIES or size + entry.size > WAVE_BYTES):
                waves.append([])
                size = 0
            waves[-1].append(entry)
            size += entry.size
        return [w for w in waves if w]

    async def _wave(
        self, wave: list[Any], stats: PassStats, held_routes: set[str], recovered: set[str]
    ) -> None:
        """Deliver one wave.  Each entry's results are saved (and its lock released)
        as soon as its last job ends, not at the end of the wave: after a crash only
        the batches in flight are sent again."""
        locked = await asyncio.to_thread(self._lock_wave, wave, stats)
        outcomes: dict[tuple[str, str], Outcome] = {}
        remaining: dict[str, int] = {}
        open_items = {item.entry.id: item for item in locked}

        async def finished(items: list[_Locked]) -> None:
            ready = []
            for item in items:
                remaining[item.entry.id] -= 1
                if remaining[item.entry.id] == 0 and item.entry.id in open_items:
                    ready.append(open_items.pop(item.entry.id))
            if ready:
                await asyncio.to_thread(self._finish, ready, outcomes, stats)

        try:
            local_jobs: list[_Locked] = []
            remote: dict[tuple[str, str], tuple[Any, list[_Job]]] = {}
            for item in locked:
                remaining[item.entry.id] = 1 + self._split(
                    item, outcomes, local_jobs, remote, held_routes
                )
            await finished(locked)  # the 1 above: entries with nothing to send are done
            tasks = [
                self._destination(route, dest, jobs, outcomes, held_routes, recovered, finished)
                for (_, dest), (route, jobs) in remote.items()
            ]
            if local_jobs:
                tasks.append(self._local_jobs(local_jobs, outcomes, stats, finished))
            await asyncio.gather(*tasks)
        finally:
            leftover = list(open_items.values())
            if leftover:  # an error or cancellation: save what is known, unlock
                await asyncio.to_thread(self._finish, leftover, outcomes, stats)

    async def _local_jobs(
        self,
        items: list[_Locked],
        outcomes: dict[tuple[str, str], Outcome],
        stats: PassStats,
        finished: Callable[[list[_Locked]], Awaitable[None]],
    ) -> None:
        try:
            await asyncio.to_thread(self._deliver_local_all, items, outcomes, stats)
        finally:
            await finished(items)

    def _finish(
        self, items: list[_Locked], outcomes: dict[tuple[str, str], Outcome], stats: PassStats
    ) -> None:
        try:
            self._record_all(items, outcomes, stats)
        finally:
            self._unlock(items)

    # --- locking -------------------------------------------------------------

    def _lock_wave(self, wave: list[Any], stats: PassStats) -> list[_Locked]:
        from mailgw.relay.spool import Busy, QueueEntryNotFound

        now = self.clock()
        locked: list[_Locked] = []
        for candidate in wave:
            stack = contextlib.ExitStack()
            try:
                stack.enter_context(self.spool.attempt_lock(candidate.id))
            except Busy:
                stats.busy += 1
                continue
            try:
                entry = self.spool.load(candidate.id)
                if (
                    entry.held
                    or entry.next_attempt > now
                    or not any(r.state == "pending" for r in entry.recipients)
                ):
                    stack.close()
                    continue
                path = self.spool.message_path(entry.id)
                data = _canonical(path.read_bytes()) if entry.size <= READ_AHEAD else None
                if data is None and not path.exists():
                    raise FileNotFoundError(path)
            except (QueueEntryNotFound, FileNotFoundError):
                stack.close()  # delivered and removed by another runner meanwhile
                continue
            except Exception:
                stack.close()
                log.exception("queue entry %s is unreadable; skipped", candidate.id)
                continue
            locked.append(_Locked(entry, stack, path, data))
        stats.entries += len(locked)
        return locked

    @staticmethod
    def _unlock(locked: list[_Locked]) -> None:
        for item in locked:
            item.lock.close()

    # --- grouping ------------------------------------------------------------

    def _split(
        self,
        item: _Locked,
        outcomes: dict[tuple[str, str], Outcome],
        local_jobs: list[_Locked],
        remote: dict[tuple[str, str], tuple[Any, list[_Job]]],
        held_routes: set[str],
    ) -> int:
        """Sort ``item``'s pending recipients into jobs; the number of remote jobs."""
        entry = item.entry
        per_dest: dict[tuple[str, str], tuple[Any, list[str]]] = {}
        has_local = False
        for rcpt in entry.recipients:
            if rcpt.state != "pending":
                continue
            domain = _domain(rcpt.address)
            if self.resolver.is_local_domain(domain) or "@" not in rcpt.address:
                has_local = True
                continue
            try:
                route = self.router.route_for(domain)
            except Exception as exc:  # NoRoute: permanent
                reply = getattr(exc, "reply", f"550 5.4.4 {domain}: no route")
                permanent = getattr(exc, "permanent", True)
                outcomes[(entry.id, rcpt.address)] = Outcome("perm" if permanent else "temp", reply)
                continue
            if route.name in held_routes:
                reason = self._held_reason(route.name)
                outcomes[(entry.id, rcpt.address)] = Outcome("held", reason)
                continue
            dest = route.name if route.kind == "smarthost" else domain
            per_dest.setdefault((route.name, dest), (route, []))[1].append(rcpt.address)
        if has_local:
            local_jobs.append(item)
            count_local = 1
        else:
            count_local = 0
        for key, (route, rcpts) in per_dest.items():
            remote.setdefault(key, (route, []))[1].append(_Job(item, rcpts))
        return len(per_dest) + count_local

    # --- local ---------------------------------------------------------------

    def _deliver_local_all(
        self, items: list[_Locked], outcomes: dict[tuple[str, str], Outcome], stats: PassStats
    ) -> None:
        from mailgw.protocols.smtp.trace import rfc5322_date

        for item in items:
            entry = item.entry
            data = item.read()
            forward: list[str] = []
            for rcpt in entry.recipients:
                if rcpt.state != "pending":
                    continue
                domain = _domain(rcpt.address)
                if "@" in rcpt.address and not self.resolver.is_local_domain(domain):
                    continue
                key = (entry.id, rcpt.address)
                resolution = self.resolver.resolve(rcpt.address)
                if not resolution.users and not resolution.remote:
                    outcomes[key] = Outcome("perm", f"550 5.1.1 <{rcpt.address}>: no such user")
                    continue
                received = (
                    f"Received: by {self.config.hostname} (mailgw queue) id {entry.id}"
                    f"\r\n\tfor <{rcpt.address}>; {rfc5322_date()}"
                )
                try:
                    self.local.deliver(
                        resolution.users,
                        data,
                        envelope_from=entry.sender,
                        original_rcpt={u: rcpt.address for u in resolution.users},
                        received=received,
                    )
                except Exception as exc:
                    log.error("local delivery of %s to %s failed: %s", entry.id, rcpt.address, exc)
                    outcomes[key] = Outcome("temp", f"451 4.3.0 local delivery failed: {exc}")
                    continue
                forward += [a for a in resolution.remote if a not in forward]
                outcomes[key] = Outcome("ok", "250 2.0.0 delivered to a local mailbox")
                stats.local += 1
            if forward:
                # an alias of a local address that points outside: a new queue entry
                new_id = self.spool.enqueue(
                    entry.sender, forward, data, source=entry.source, now=self.clock()
                )
                log.info("%s: forwarded to %s as %s", entry.id, ", ".join(forward), new_id)
                stats.more_due = True

    # --- remote --------------------------------------------------------------

    async def _targets(self, route: Any, dest: str) -> Sequence[Any]:
        if self._resolve is not None:
            return await self._resolve(route, dest)
        from mailgw.relay.routing import resolve_targets

        if route.kind == "mx" and self._dns is None:
            from mailgw.relay.dns import make_resolver

            self._dns = make_resolver(self.relay.nameservers, self.relay.resolver_port)
        return await resolve_targets(route, dest, self._dns)

    async def _destination(
        self,
        route: Any,
        dest: str,
        jobs: list[_Job],
        outcomes: dict[tuple[str, str], Outcome],
        held_routes: set[str],
        recovered: set[str],
        finished: Callable[[list[_Locked]], Awaitable[None]],
    ) -> None:
        def all_jobs(kind: Kind, reply: str, which: list[_Job]) -> None:
            for job in which:
                for rcpt in job.recipients:
                    outcomes[(job.entry.id, rcpt)] = Outcome(kind, reply)

        async def skip_if_held(which: list[_Job]) -> bool:
            if route.name in held_routes:  # another destination's AUTH failed meanwhile
                all_jobs("held", self._held_reason(route.name), which)
            elif not self._stopping():
                return False
            # stopping: not attempted, stays pending, no attempt counted
            await finished([job.item for job in which])
            return True

        if await skip_if_held(jobs):
            return
        try:
            targets = await self._targets(route, dest)
        except Exception as exc:
            reply = getattr(exc, "reply", None) or f"451 4.4.3 {dest}: {exc}"
            permanent = bool(getattr(exc, "permanent", False))
            log.warning("%s: no way to %s: %s", route.name, dest, reply)
            all_jobs("perm" if permanent else "temp", reply, jobs)
            if not permanent:
                self._failing.add(route.name)
            await finished([job.item for job in jobs])
            return
        size = max(1, route.max_per_connection)
        batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        limit = asyncio.Semaphore(max(1, route.concurrency))

        async def one(batch: list[_Job]) -> None:
            async with limit, self._global:
                if await skip_if_held(batch):
                    return
                try:
                    await self._batch(route, targets, batch, outcomes, held_routes, recovered)
                finally:
                    await finished([job.item for job in batch])

        await asyncio.gather(*(one(b) for b in batches))

    async def _batch(
        self,
        route: Any,
        targets: Sequence[Any],
        batch: list[_Job],
        outcomes: dict[tuple[str, str], Outcome],
        held_routes: set[str],
        recovered: set[str],
    ) -> None:
        from mailgw.relay import client

        deliver = self._deliver if self._deliver is not None else client.deliver
        messages = [
            client.OutMessage(
                id=job.entry.id,
                sender=job.entry.sender,
                recipients=job.recipients,
                data=job.item.data,
                data_path=None if job.item.data is not None else job.item.path,
            )
            for job in batch
        ]
        try:
            results = await deliver(targets, route, messages, helo_name=self.config.hostname)
        except client.RouteAuthError as exc:
            reply = getattr(exc, "reply", None) or str(exc)
            reason = f"smarthost authentication failed: {reply}"
            if route.name not in held_routes:
                held_routes.add(route.name)
                self._reasons[route.name] = reason
                log.error(
                    "ROUTE %s HELD: %s -- no mail leaves this route until `mailgw queue "
                    "release` (fix the password first); nothing is bounced",
                    route.name,
                    reason,
                )
            for job in batch:
                for rcpt in job.recipients:
                    outcomes[(job.entry.id, rcpt)] = Outcome("held", reason)
            return
        except Exception as exc:  # TargetsUnavailable, or a bug: temporary for all
            reply = getattr(exc, "reply", None) or str(exc) or type(exc).__name__
            if not isinstance(exc, client.TargetsUnavailable):
                log.exception("delivery over %s failed unexpectedly", route.name)
            else:
                log.warning("%s: %s", route.name, reply)
            self._failing.add(route.name)
            for job in batch:
                for rcpt in job.recipients:
                    outcomes[(job.entry.id, rcpt)] = Outcome("temp", reply)
            return
        any_ok = False
        had_failed = route.name in self._failing
        by_id = {result.message_id: result for result in results}
        for job in batch:
            result = by_id.get(job.entry.id)
            replies = {r.address: r for r in result.recipients} if result is not None else {}
            for rcpt in job.recipients:
                got = replies.get(rcpt)
                if got is None:
                    outcome = Outcome("temp", "451 4.3.0 no result for this recipient")
                else:
                    kind: Kind = got.status if got.status in ("ok", "perm") else "temp"
                    outcome = Outcome(kind, got.reply, got.remote)
                outcomes[(job.entry.id, rcpt)] = outcome
                if outcome.kind == "ok":
                    any_ok = True
                    if job.entry.attempts > 0:
                        had_failed = True
        if any_ok:
            self._failing.discard(route.name)
            if had_failed:
                recovered.add(route.name)

    # --- recording -----------------------------------------------------------

    def _held_reason(self, route: str) -> str:
        return self._reasons.get(route, f"route {route} held")

    def _record_all(
        self, locked: list[_Locked], outcomes: dict[tuple[str, str], Outcome], stats: PassStats
    ) -> None:
        for item in locked:
            try:
                self._record(item, outcomes, stats)
            except Exception:
                log.exception("cannot record the results of %s (it will be retried)", item.entry.id)

    def _record(
        self, item: _Locked, outcomes: dict[tuple[str, str], Outcome], stats: PassStats
    ) -> None:
        entry = item.entry
        now = self.clock()
        failed: list[Any] = []
        remote_mta: dict[str, str] = {}
        held_reason: str | None = None
        attempted = False
        for rcpt in entry.recipients:
            if rcpt.state != "pending":
                continue
            outcome = outcomes.get((entry.id, rcpt.address))
            if outcome is None:
                continue  # not attempted (stopping): nothing changes
            if outcome.kind == "held":
                held_reason = outcome.reply
                stats.held += 1
                continue
            attempted = True
            rcpt.attempts += 1
            rcpt.last_attempt = now
            rcpt.last_reply = outcome.reply
            if outcome.remote_mta:
                remote_mta[rcpt.address] = outcome.remote_mta
            if outcome.kind == "ok":
                rcpt.state = "delivered"
                stats.delivered += 1
                log.info("%s: <%s> delivered: %s", entry.id, rcpt.address, outcome.reply)
            elif outcome.kind == "perm":
                rcpt.state = "failed"
                failed.append(rcpt)
                stats.failed += 1
                log.warning("%s: <%s> failed: %s", entry.id, rcpt.address, outcome.reply)
            else:
                stats.deferred += 1
        pending = [r for r in entry.recipients if r.state == "pending"]
        if failed:
            self._bounce(item, failed, "failed", None, remote_mta, stats)
        if held_reason is not None:
            entry.held = True
            entry.held_reason = held_reason
        elif pending and attempted:
            entry.attempts += 1
            if now - entry.created >= self.relay.lifetime:
                for rcpt in pending:
                    rcpt.state = "failed"
                    rcpt.last_reply = rcpt.last_reply or EXPIRED
                stats.failed += len(pending)
                stats.deferred -= sum(1 for r in pending if (entry.id, r.address) in outcomes)
                log.warning("%s: lifetime over; %d recipients failed", entry.id, len(pending))
                self._bounce(item, pending, "failed", EXPIRED, remote_mta, stats)
                pending = []
            else:
                entry.next_attempt = now + retry_delay(
                    entry.attempts, self.relay.retry_min, self.relay.retry_max, self.rand
                )
                warn_after = self.relay.delay_warning
                if (
                    warn_after is not None
                    and not entry.warned
                    and now - entry.created >= warn_after
                ):
                    entry.warned = True
                    self._bounce(item, pending, "delayed", None, remote_mta, stats)
        if not pending and held_reason is None:
            self.spool.remove(entry.id)
        else:
            self.spool.save(entry)

    @staticmethod
    def _original(item: _Locked) -> bytes:
        try:
            return item.read()
        except OSError:
            return b""

    def _bounce(
        self,
        item: _Locked,
        recipients: list[Any],
        action: Literal["failed", "delayed"],
        reason: str | None,
        remote_mta: dict[str, str],
        stats: PassStats,
    ) -> None:
        """Queue a DSN about ``recipients`` (durable before it returns)."""
        entry = item.entry
        todo = [r for r in recipients if action == "delayed" or not r.dsn_sent]
        if not todo:
            return
        if not entry.sender:
            stats.dropped += len(todo)
            addresses = ", ".join(r.address for r in todo)
            log.warning(
                "%s: null sender, no DSN (never a bounce for a bounce); dropped for %s",
                entry.id,
                addresses,
            )
            if action == "failed":
                for rcpt in todo:
                    rcpt.dsn_sent = True
                stats.more_due |= self.notify(
                    "double-bounce",
                    f"undeliverable bounce dropped ({entry.id})",
                    f"A message with the null sender (a bounce) could not be delivered and "
                    f"was dropped.\nQueue ID: {entry.id}\nRecipients: {addresses}\n"
                    + "\n".join(f"<{r.address}>: {r.last_reply}" for r in todo),
                )
            return
        until = entry.created + self.relay.lifetime
        dsn = build_dsn(
            entry,
            todo,
            self._original(item),
            reporting_mta=self.config.hostname,
            action=action,
            reason=reason,
            remote_mta=remote_mta,
            retry_until=until,
            now=self.clock(),
        )
        new_id = self.spool.enqueue("", [entry.sender], dsn, source="dsn", now=self.clock())
        stats.dsns += 1
        stats.more_due = True
        log.info("%s: %s DSN to <%s> queued as %s", entry.id, action, entry.sender, new_id)
        if action == "failed":
            for rcpt in todo:
                rcpt.dsn_sent = True

    # --- routes --------------------------------------------------------------

    def _route_of(self, address: str) -> str | None:
        domain = _domain(address)
        if "@" not in address or self.resolver.is_local_domain(domain):
            return None
        try:
            return str(self.router.route_for(domain).name)
        except Exception:
            return None

    def _hold_routes(self, routes: set[str], stats: PassStats) -> None:
        """Hold every waiting entry with a pending recipient on ``routes``."""
        from mailgw.relay.spool import Busy, QueueEntryNotFound

        for entry in self.spool.entries():
            if entry.held:
                continue
            names = {self._route_of(r.address) for r in entry.recipients if r.state == "pending"}
            hit = sorted(routes & {n for n in names if n is not None})
            if not hit:
                continue
            try:
                with self.spool.attempt_lock(entry.id):
                    self.spool.hold(entry.id, self._held_reason(hit[0]))
            except (Busy, QueueEntryNotFound):
                continue
        for name in sorted(routes):
            stats.held_routes.append(name)
            reason = self._held_reason(name)
            stats.more_due |= self.notify(
                f"route-held:{name}",
                f"mail queue: route {name} held",
                f"Route {name} is held: {reason}\n\nNo mail leaves through this route and "
                "nothing is bounced.  Fix the credentials, then run `mailgw queue release`.",
            )

    def _flush_routes(self, routes: set[str]) -> int:
        """Make every waiting entry of ``routes`` due now; how many were changed."""
        from mailgw.relay.spool import Busy, QueueEntryNotFound

        now = self.clock()
        count = 0
        for entry in self.spool.entries():
            if entry.held or entry.next_attempt <= now:
                continue
            names = {self._route_of(r.address) for r in entry.recipients if r.state == "pending"}
            if not routes & names:
                continue
            try:
                with self.spool.attempt_lock(entry.id):
                    fresh = self.spool.load(entry.id)
                    fresh.next_attempt = now
                    self.spool.save(fresh)
                    count += 1
            except (Busy, QueueEntryNotFound):
                continue
        if count:
            log.info("route %s works again: %d waiting messages due now", ", ".join(routes), count)
        return count

    # --- postmaster notices --------------------------------------------------

    def notify(self, reason: str, subject: str, text: str) -> bool:
        """A notice to ``relay.postmaster``, at most one per ``reason`` per
        ``notice_interval``; False when there is no postmaster or it was too soon."""
        postmaster = self.relay.postmaster
        if postmaster is None:
            return False
        path = Path(getattr(self.spool, "root", self.config.queue_dir)) / "notices.json"
        now = self.clock()
        try:
            sent: dict[str, float] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            sent = {}
        if now - float(sent.get(reason, 0.0)) < self.relay.notice_interval:
            return False
        sent = {k: v for k, v in sent.items() if now - v < self.relay.notice_interval}
        sent[reason] = now
        tmp = path.with_name(f".notices.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(sent), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot record postmaster notice time in %s: %s", path, exc)
        data = build_notice(
            hostname=self.config.hostname, postmaster=postmaster, subject=subject, text=text
        )
        new_id = self.spool.enqueue("", [postmaster], data, source="dsn", now=now)
        log.info("postmaster notice %r queued as %s", reason, new_id)
        return True
