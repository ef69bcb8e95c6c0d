"""One IMAP session: state, capabilities, command dispatch.

Theory of operation
-------------------
The adapter (``adapter.py``) hands every command the sans-IO core produced
to :meth:`ImapSession.dispatch`.  Dispatch looks the command's class up in
``HANDLERS`` (one module per command family) and awaits the handler, which
writes its untagged data with :meth:`send` and ends with :meth:`finish`.

* :meth:`finish` first sends the queued mailbox updates of the selected
  view (``selected.py``), EXPUNGE included unless the command is FETCH,
  STORE or SEARCH by sequence number (RFC 3501 7.4.1), then the tagged
  reply (RFC 3501 7.1).
* Before each command in the SELECTED state the view is re-synchronised with
  the store (one cached directory stat when nothing changed), so a session
  sees other sessions' and other processes' changes at its next command
  (RFC 3501 5.2: the server may send updates with any response).
* Handlers raise :class:`Refusal` for a tagged NO/BAD; store errors become
  NO with an RFC 5530 response code (``InvalidFolderName`` -> ``[CANNOT]``,
  ``FolderNotFound`` -> ``[NONEXISTENT]``, ``FolderExists`` ->
  ``[ALREADYEXISTS]``, anything else -> ``[SERVERBUG]``), logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mailgw.config.schema import ListenerConfig
from mailgw.errors import FolderExists, FolderNotFound, InvalidFolderName, StoreError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.protocols.imap.connection import ImapConnection
from mailgw.protocols.imap.state import State
from mailgw.servers.context import ServerContext
from mailgw.servers.imap import changes
from mailgw.servers.imap.selected import BadSequence, SelectedMailbox, snapshot_for
from mailgw.servers.streams import StreamSession
from mailgw.store import Account, Folder, MessageInfo

log = logging.getLogger("mailgw.imap")


def listing(folder: Folder, readonly: bool) -> tuple[list[MessageInfo], set[int]]:
    """The folder's messages, claiming those in new/ as \\Recent unless read-only (blocking)."""
    infos = folder.messages()
    if readonly or not any(i.path.parent.name == "new" for i in infos):
        return infos, set()
    claimed = folder.claim_recent()
    return folder.messages(), claimed


class Refusal(Exception):
    """A tagged NO or BAD for the current command."""

    def __init__(self, text: str, code: str | None = None, status: str = "NO") -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.status = status


# commands whose untagged replies must not include EXPUNGE (RFC 3501 7.4.1)
NO_EXPUNGE = (c.Fetch, c.Store, c.Search)


class ImapSession(StreamSession):
    log = log

    def __init__(
        self,
        listener: ListenerConfig,
        ctx: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(listener, ctx, reader, writer)
        limits = ctx.config.limits
        self.idle_timeout = limits.imap_idle_timeout
        self.append_limit = limits.max_message_size
        self.conn = ImapConnection(
            max_line_after_auth=limits.imap_line_length,
            max_literal=limits.imap_literal_size,
            append_limit=limits.max_message_size,
            max_bad_commands=limits.bad_commands,
        )
        self.tls_active = listener.tls == "implicit"
        self.user: str | None = None
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.idle_tag: str | None = None
        self.wake = asyncio.Event()  # set when the store reports a change
        self._unwatch: Callable[[], None] | None = None
        self.closing = False
        from mailgw.servers.imap.append import AppendSpool

        self.appends = AppendSpool(self)

    # --- I/O ------------------------------------------------------------------------

    async def finish(
        self,
        tag: str,
        status: str,
        text: str,
        code: str | None = None,
        *,
        expunge_ok: bool = True,
        uid: bool = False,
    ) -> None:
        await self.send(self.updates(expunge_ok, uid) + s.tagged(tag, status, text, code))

    def updates(self, expunge_ok: bool = True, uid: bool = False) -> bytes:
        if self.selected is None:
            return b""
        return self.selected.updates(expunge_ok, uid)

    # --- capabilities and policy --------------------------------------------------------

    @property
    def starttls_available(self) -> bool:
        return self.listener.tls == "starttls" and self.ctx.tls is not None and not self.tls_active

    @property
    def auth_allowed(self) -> bool:
        """LOGIN/AUTHENTICATE allowed: TLS is up or the listener is trusted (RFC 3501 6.2.3)."""
        return self.tls_active or self.ctx.auth_allowed_plaintext(self.listener)

    @property
    def condstore_supported(self) -> bool:
        return changes.store_has_modseq()

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]
        if self.user is None:
            if self.starttls_available:
                caps.append("STARTTLS")
            if self.auth_allowed:
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")  # RFC 3501 7.2.1; AUTH= hidden too
            return caps
        caps += [
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "ESEARCH",
            "MULTIAPPEND",
            f"APPENDLIMIT={self.append_limit}",
        ]
        if self.condstore_supported:
            caps.append("CONDSTORE")
        return caps

    # --- state ----------------------------------------------------------------------------

    def login(self, user: str) -> None:
        self.user = user
        self.account = self.ctx.store.account(user)
        self.conn.set_state(State.AUTHENTICATED)

    def need_account(self) -> Account:
        assert self.account is not None, "command allowed before login"
        return self.account

    def need_selected(self) -> SelectedMailbox:
        assert self.selected is not None, "command allowed without a selected mailbox"
        return self.selected

    def deselect(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self.selected = None
        if self.conn.state is State.SELECTED:
            self.conn.set_state(State.AUTHENTICATED)

    def select(self, view: SelectedMailbox) -> None:
        self.deselect()
        self.selected = view
        self.wake.clear()
        loop = asyncio.get_running_loop()
        assert self.user is not None
        self._unwatch = changes.watch(self.ctx, self.user, view.folder, self.wake, loop)
        self.conn.set_state(State.SELECTED)

    async def sync(self) -> None:
        """Bring the selected view up to date with the store (see selected.py)."""
        view = self.selected
        if view is None:
            return
        self.wake.clear()
        recent: set[int] = set()
        try:
            infos = await changes.shared_listing(view.folder)
            if not view.readonly and snapshot_for(view.folder, infos).has_new:
                infos, recent = await changes.shared_claim(view.folder)
        except FolderNotFound:
            # deleted or renamed away under us (RFC 3501 offers no better signal)
            infos, recent = [], set()
        view.apply(infos, recent)

    def close(self) -> None:
        self.deselect()

    # --- dispatch ---------------------------------------------------------------------------

    async def dispatch(self, cmd: c.Command) -> None:
        from mailgw.servers.imap.handlers import HANDLERS

        handler = HANDLERS.get(type(cmd))
        if handler is None:  # pragma: no cover - a parsed command without a handler
            await self.send(s.tagged(cmd.tag, "BAD", "Command not implemented"))
            return
        expunge_ok = not isinstance(cmd, NO_EXPUNGE) or bool(getattr(cmd, "uid", False))
        try:
            if self.selected is not None and not isinstance(cmd, c.Done):
                await self.sync()
            await handler(self, cmd)
        except Refusal as exc:
            await self.finish(cmd.tag, exc.status, exc.text, exc.code, expunge_ok=expunge_ok)
        except BadSequence as exc:
            await self.finish(cmd.tag, "BAD", str(exc), expunge_ok=expunge_ok)
        except InvalidFolderName as exc:
            log.info("%s: %s", self.user, exc)
            await self.finish(
                cmd.tag, "NO", "Invalid mailbox name", "CANNOT", expunge_ok=expunge_ok
            )
        except FolderNotFound:
            await self.finish(
                cmd.tag, "NO", "Mailbox does not exist", "NONEXISTENT", expunge_ok=expunge_ok
            )
        except FolderExists:
            await self.finish(
                cmd.tag, "NO", "Mailbox already exists", "ALREADYEXISTS", expunge_ok=expunge_ok
            )
        except StoreError as exc:
            log.error("%s: %s failed: %s", self.user, type(cmd).__name__, exc)
            await self.finish(
                cmd.tag, "NO", "Internal error, try again later", "SERVERBUG", expunge_ok=expunge_ok
            )


Handler = Callable[[ImapSession, Any], Awaitable[None]]
