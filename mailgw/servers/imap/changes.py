"""Change notification for the selected mailbox and IDLE.

Theory of operation
-------------------
The store publishes change events (delivery, flag change, expunge) from
whichever thread made the change; :func:`watch` subscribes one session's
``asyncio.Event`` and bridges with ``loop.call_soon_threadsafe`` so the
event is set on the session's loop.  When the store of this checkout has no
event hub, :func:`watch` is a no-op and IDLE falls back to polling the
folder (``POLL_SECONDS``); changes made by other processes (Dovecot, a second
``mailgw``) are always found by polling, at ``HUB_POLL_SECONDS`` when the hub
reports in-process changes (RFC 2177 leaves the timing to the server).

:func:`shared_listing` is how sessions re-list their folder: the sessions
that ask while no listing of that folder has *started* yet share the next
one (one ``Folder.messages()`` worker hop for all of them), so hundreds of
idle sessions on one INBOX cost one scan per poll round or change event, and
every caller still gets a listing begun after it asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from mailgw.servers.context import ServerContext
from mailgw.store import Folder, MessageInfo

log = logging.getLogger("mailgw.imap")

POLL_SECONDS = 0.5  # no hub: how often an IDLE session looks at its folder
HUB_POLL_SECONDS = 1.0  # with a hub: how often to look for other processes' changes


def _subscriber(ctx: ServerContext) -> Callable[..., Any] | None:
    store = ctx.store
    for name in ("events", "changes", "hub"):
        hub = getattr(store, name, None)
        sub = getattr(hub, "subscribe", None)
        if callable(sub):
            return sub
    sub = getattr(store, "subscribe", None)
    return sub if callable(sub) else None


def has_hub(ctx: ServerContext) -> bool:
    return _subscriber(ctx) is not None


def poll_interval(ctx: ServerContext) -> float:
    return HUB_POLL_SECONDS if has_hub(ctx) else POLL_SECONDS


def store_has_modseq() -> bool:
    """CONDSTORE needs per-message MODSEQs from the store (RFC 7162 3.1)."""
    return hasattr(Folder, "highestmodseq")


def watch(
    ctx: ServerContext,
    user: str,
    folder: Folder,
    event: asyncio.Event,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[], None]:
    """Set ``event`` on ``loop`` whenever ``user``'s ``folder`` changes; returns unsubscribe."""
    subscribe = _subscriber(ctx)
    if subscribe is None:
        return lambda: None

    def changed(*_args: Any, **_kwargs: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the session is gone
            loop.call_soon_threadsafe(event.set)

    try:
        unsubscribe = subscribe(user, folder.name, changed)
    except Exception as exc:  # never let a hub problem break SELECT
        log.warning("cannot watch %s/%s for changes: %s", user, folder.name, exc)
        return lambda: None
    return unsubscribe if callable(unsubscribe) else (lambda: None)


Listing = list[MessageInfo]
_Key = tuple[asyncio.AbstractEventLoop, Path, str]


class _Flight:
    """Per loop, folder and job: the call running now and the one queued after it."""

    __slots__ = ("queued", "running")

    def __init__(self) -> None:
        self.running: asyncio.Future[Any] | None = None
        self.queued: asyncio.Future[Any] | None = None


_FLIGHTS: dict[_Key, _Flight] = {}
_TASKS: set[asyncio.Task[None]] = set()


async def _shared(folder: Folder, job: str, fn: Callable[[], Any]) -> tuple[Any, bool]:
    """``fn()`` in a worker thread, begun after this call, shared with concurrent
    callers of the same job; (result, True for the caller that queued it)."""
    loop = asyncio.get_running_loop()
    key = (loop, folder.path, job)
    flight = _FLIGHTS.get(key)
    if flight is None:
        flight = _FLIGHTS[key] = _Flight()
    fut = flight.queued
    owner = fut is None
    if fut is None:
        fut = flight.queued = loop.create_future()
        fut.add_done_callback(_retrieve)
        task = asyncio.ensure_future(_run(key, flight, fn, fut))
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)
    return await asyncio.shield(fut), owner


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # every waiter may be gone: no "never retrieved" noise


async def _run(key: _Key, flight: _Flight, fn: Callable[[], Any], fut: asyncio.Future[Any]) -> None:
    if flight.running is not None:
        await asyncio.wait({flight.running})
    flight.queued = None  # callers from now on need a later call
    flight.running = fut
    try:
        fut.set_result(await asyncio.to_thread(fn))
    except BaseException as exc:  # handed to every waiter
        if not fut.done():
            fut.set_exception(exc)
    finally:
        flight.running = None
        if flight.queued is None and _FLIGHTS.get(key) is flight:
            del _FLIGHTS[key]


async def shared_listing(folder: Folder) -> Listing:
    """``folder.messages()`` begun after this call, shared with concurrent callers."""
    infos, _ = await _shared(folder, "list", folder.messages)
    return cast(Listing, infos)


def _claim(folder: Folder) -> tuple[Listing, set[int]]:
    claimed = folder.claim_recent()
    return folder.messages(), claimed


async def shared_claim(folder: Folder) -> tuple[Listing, set[int]]:
    """Claim new/ as \\Recent (RFC 3501 2.3.2) and list, shared like
    :func:`shared_listing`; only the caller that queued the claim gets its UIDs."""
    (infos, claimed), owner = await _shared(folder, "claim", lambda: _claim(folder))
    return cast(Listing, infos), (set(claimed) if owner else set())
