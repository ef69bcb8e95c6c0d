"""Change events: an in-process publish/subscribe hub keyed by (user, folder).

Theory of operation:

* Every store operation that changes a folder publishes one small frozen
  :class:`ChangeEvent` *after* the change is durable (fsynced): delivery
  (``new``), flag changes (``flags``), expunge (``expunge``), folder
  ``create``/``delete``/``rename`` and subscription changes
  (``subscriptions``).  IMAP sessions use them for IDLE and for untagged
  EXISTS/EXPUNGE/FETCH FLAGS updates (RFC 3501 7.3.1, 7.4.1, 7.4.2;
  RFC 2177 IDLE).
* ``uids`` is the tuple of affected UIDs when the store knows them, or None
  when it does not (SMTP delivery does not assign UIDs; a session that gets
  ``uids=None`` resyncs with ``Folder.messages()``).
* Callbacks run synchronously in the thread that made the change, usually a
  worker thread of ``asyncio.to_thread``.  They must be quick and must not
  call back into the store; an asyncio adapter bridges with
  ``loop.call_soon_threadsafe(queue.put_nowait, event)``.  A callback that
  raises is logged and otherwise ignored: a broken session never breaks a
  delivery.
* Changes made by other processes (Dovecot, ``mailgw send``, a second
  mailgw) are not published here; sessions notice them by polling
  ``Folder.changed_since(token)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("mailgw.store.events")

NEW = "new"
FLAGS = "flags"
EXPUNGE = "expunge"
CREATE = "create"
DELETE = "delete"
RENAME = "rename"
SUBSCRIPTIONS = "subscriptions"
KINDS = frozenset({NEW, FLAGS, EXPUNGE, CREATE, DELETE, RENAME, SUBSCRIPTIONS})


@dataclass(frozen=True)
class ChangeEvent:
    kind: str  # one of KINDS
    user: str
    folder: str  # canonical API name ("INBOX", "Projects/2024"); the old name for rename
    uids: tuple[int, ...] | None = None  # None: unknown, resync
    modseq: int | None = None  # the folder's HIGHESTMODSEQ after the change, when known
    new_name: str | None = None  # rename only


Callback = Callable[[ChangeEvent], object]  # the return value is ignored


class ChangeHub:
    """Subscribers by (user, folder); folder None subscribes to every folder of the user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[tuple[str, str | None], dict[int, Callback]] = {}
        self._next = 0

    def subscribe(self, user: str, folder: str | None, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` for changes of ``folder`` (None: all); returns unsubscribe."""
        key = (user, folder)
        with self._lock:
            self._next += 1
            token = self._next
            self._subs.setdefault(key, {})[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                subs = self._subs.get(key)
                if subs is not None:
                    subs.pop(token, None)
                    if not subs:
                        del self._subs[key]

        return unsubscribe

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def publish(self, event: ChangeEvent) -> None:
        with self._lock:
            if not self._subs:
                return
            targets = [
                *self._subs.get((event.user, event.folder), {}).values(),
                *self._subs.get((event.user, None), {}).values(),
            ]
            if event.new_name is not None:
                targets.extend(self._subs.get((event.user, event.new_name), {}).values())
        for cb in targets:
            try:
                cb(event)
            except Exception:
                log.exception("change event subscriber failed on %r", event)
