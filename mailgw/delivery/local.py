"""Final delivery into local mailboxes.

Theory of operation
-------------------
``deliver_local`` is blocking (file I/O and fsync): the SMTP server calls it
with ``await asyncio.to_thread(...)``.  For each user, in order:

1. the trace headers are prepended to the message exactly as received after
   DATA (CRLF line endings kept, nothing else changed): ``Return-Path`` and
   ``Delivered-To`` (RFC 5321 section 4.4, per mailbox copy), then the
   ``Received`` header shared by all copies of this transaction;
2. the copy goes to the user's INBOX with ``Folder.deliver``, which writes
   tmp -> fsync -> rename -> fsync(dir) (DESIGN.md "Store") and returns the
   Maildir key.  A user whose Maildir does not exist yet gets
   ``Account.ensure()`` first.

Every copy is durable when the function returns, so the caller may answer
``250``.  If one copy fails, the exception propagates (the caller answers
4xx and the client retries); copies already written stay (a retry can then
duplicate them for those users; SMTP has no per-recipient DATA reply outside
LMTP).

``LocalDelivery`` is the same for a long-lived caller (the SMTP server): it
keeps each user's INBOX ``Folder`` after the first delivery, so a message
costs what the store's ``deliver`` costs (no ``Account.folder`` lookup with
its directory stats each time).  A cached folder whose delivery fails with
``StoreError`` is dropped; if its ``tmp/`` is gone (the Maildir was removed
meanwhile) it is looked up again once, which recreates the Maildir as the
first delivery did.  Any other failure propagates as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from mailgw.errors import FolderNotFound, StoreError
from mailgw.protocols.smtp.trace import trace_headers

log = logging.getLogger("mailgw.delivery")


class _Folder(Protocol):
    def exists(self) -> bool: ...
    def deliver(self, data: bytes) -> str: ...


class _Account(Protocol):
    def ensure(self) -> None: ...
    def folder(self, name: str = ...) -> _Folder: ...


class _Store(Protocol):
    def account(self, user: str) -> _Account: ...


def inbox(store: _Store, user: str) -> _Folder:
    """The user's INBOX, creating the Maildir on first delivery."""
    account = store.account(user)
    try:
        return account.folder("INBOX")
    except FolderNotFound:
        account.ensure()
        return account.folder("INBOX")


class LocalDelivery:
    """``deliver_local`` for one store, with each user's INBOX kept between calls.

    Thread-safe: the cache is a dict read and written whole under the GIL
    (two threads may look the same user up at once; both get a valid folder).
    """

    def __init__(self, store: _Store) -> None:
        self.store = store
        self._inboxes: dict[str, _Folder] = {}

    def _deliver_one(self, user: str, data: bytes) -> str:
        folder = self._inboxes.get(user)
        if folder is not None:
            try:
                return folder.deliver(data)
            except StoreError:
                self._inboxes.pop(user, None)
                if folder.exists():
                    raise  # a real failure, not a stale cache entry: no second try
                # Maildir gone or replaced since it was cached: look it up afresh.
        folder = inbox(self.store, user)
        key = folder.deliver(data)
        self._inboxes[user] = folder
        return key

    def forget(self, user: str) -> None:
        """Drop ``user``'s cached INBOX (after ``mailgw user del``, say)."""
        self._inboxes.pop(user, None)

    def deliver(
        self,
        users: Iterable[str],
        data: bytes,
        *,
        envelope_from: str,
        original_rcpt: Mapping[str, str],
        received: str,
    ) -> list[str]:
        """Store one copy of ``data`` per user; returns the Maildir keys in order.

        ``original_rcpt[user]`` is the RCPT TO address that led to ``user`` (it
        becomes that copy's ``Delivered-To``); ``received`` is the ``Received:``
        line from ``mailgw.protocols.smtp.trace.received_header``.
        """
        keys: list[str] = []
        done: set[str] = set()
        for user in users:
            if user in done:
                continue
            done.add(user)
            headers = trace_headers(envelope_from, original_rcpt.get(user, user), received)
            key = self._deliver_one(user, headers + data)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("stored %d bytes for %s as %s", len(headers) + len(data), user, key)
            keys.append(key)
        return keys


def deliver_local(
    store: _Store,
    users: Iterable[str],
    data: bytes,
    *,
    envelope_from: str,
    original_rcpt: Mapping[str, str],
    received: str,
) -> list[str]:
    """One-shot ``LocalDelivery(store).deliver(...)`` (nothing cached between calls)."""
    return LocalDelivery(store).deliver(
        users, data, envelope_from=envelope_from, original_rcpt=original_rcpt, received=received
    )
