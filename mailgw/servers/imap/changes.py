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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from mailgw.servers.context import ServerContext
from mailgw.store import Folder

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
