"""APPEND with MULTIAPPEND, streamed to Maildir ``tmp/`` (RFC 3501 6.3.11; RFC 3502; RFC 4315).

Theory of operation
-------------------
The core delivers each APPEND message literal as ``AppendData`` chunks
*before* the ``Append`` command itself (``connection.py``).  The spool
writes the chunks straight into a ``Folder.open_tmp()`` file in a worker
thread, so a message is never held whole in memory:

* At a synchronizing literal the core says which mailbox it is for
  (``ContinuationNeeded.mailbox``): a missing one is refused before the
  ``+`` with ``NO [TRYCREATE]`` (6.3.11), an invalid name with ``NO
  [CANNOT]``; otherwise the tmp file is opened in that folder.
* A non-synchronizing literal (LITERAL+, RFC 7888) names no mailbox in
  advance: it is spooled in INBOX's ``tmp/`` and streamed into the target
  folder at the end if that is another folder.
* When ``Append`` arrives, each tmp file is committed with its flags and
  internal date (tmp -> fsync -> rename into ``new/``/``cur/``), then the
  OK carries ``[APPENDUID uidvalidity uid-set]`` (RFC 4315 3).  With
  MULTIAPPEND all messages are checked before the first is committed.
* A protocol error, a refused literal, or a dropped connection aborts every
  tmp file of the command (``abort()``).  Maximum size: APPENDLIMIT
  (RFC 7889), enforced by the core with ``NO [TOOBIG]``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailgw.errors import FolderNotFound, InvalidFolderName, StoreError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import CONTINUE, AppendData, ContinuationNeeded
from mailgw.servers.imap.session import Refusal, log
from mailgw.servers.imap.store_copy import CHUNK, split_flags, uid_set
from mailgw.store import Folder, TmpMessage

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession


class AppendSpool:
    def __init__(self, sess: ImapSession) -> None:
        self.sess = sess
        self.folder: Folder | None = None  # where the next literal is spooled
        self.current: tuple[Folder, TmpMessage] | None = None
        self.done: list[tuple[Folder, TmpMessage]] = []

    @property
    def active(self) -> bool:
        return self.current is not None or bool(self.done)

    async def continuation(self, event: ContinuationNeeded) -> bytes:
        """The reply to a synchronizing literal: ``+`` or a refusal."""
        conn = self.sess.conn
        if event.mailbox is None:
            return CONTINUE
        account = self.sess.need_account()
        try:
            self.folder = await asyncio.to_thread(account.folder, event.mailbox)
        except FolderNotFound:
            self.abort()
            return conn.reject_literal("Mailbox does not exist", "TRYCREATE")
        except InvalidFolderName:
            self.abort()
            return conn.reject_literal("Invalid mailbox name", "CANNOT")
        return CONTINUE

    async def data(self, event: AppendData) -> None:
        if self.current is None:
            folder = self.folder
            if folder is None:
                folder = await asyncio.to_thread(self.sess.need_account().folder, "INBOX")
            tmp = await asyncio.to_thread(folder.open_tmp)
            self.current = (folder, tmp)
        folder, tmp = self.current
        if event.chunk:
            await asyncio.to_thread(tmp.write, event.chunk)
        if event.final:
            self.done.append(self.current)
            self.current = None
            self.folder = None

    def abort(self) -> None:
        for _, tmp in [*self.done, *([self.current] if self.current else [])]:
            tmp.abort()
        self.done.clear()
        self.current = None
        self.folder = None

    async def append(self, cmd: c.Append) -> None:
        sess = self.sess
        spooled, self.done = self.done, []
        self.current = None
        self.folder = None
        try:
            if len(spooled) != len(cmd.messages):
                raise Refusal("Message data missing", status="BAD")
            flags = [split_flags(m.flags) for m in cmd.messages]
            account = sess.need_account()
            try:
                target = await asyncio.to_thread(account.folder, cmd.mailbox)
            except FolderNotFound:
                raise Refusal("Mailbox does not exist", "TRYCREATE") from None
            uids = await asyncio.to_thread(_commit, target, spooled, cmd.messages, flags)
        except BaseException:
            for _, tmp in spooled:
                tmp.abort()
            raise
        log.info("%s appended %d message(s) to %s", sess.user, len(uids), target.name)
        validity = await asyncio.to_thread(lambda: target.uidvalidity)
        code = f"APPENDUID {validity} {uid_set(uids)}" if uids else None
        if sess.selected is not None and sess.selected.folder.path == target.path:
            await sess.sync()  # RFC 3501 6.3.11: the client hears EXISTS
        await sess.finish(cmd.tag, "OK", "APPEND completed", code)


def _commit(
    target: Folder,
    spooled: list[tuple[Folder, TmpMessage]],
    messages: tuple[c.AppendMessage, ...],
    flags: list[tuple[frozenset[str], frozenset[str]]],
) -> list[int]:
    keys: list[str] = []
    uids: list[int] = []
    for (folder, tmp), msg, (system, keywords) in zip(spooled, messages, flags, strict=True):
        date = msg.internal_date.timestamp() if msg.internal_date is not None else None
        if folder.path != target.path:
            tmp = _restream(tmp, target)
        result: object = tmp.commit(flags=system, keywords=keywords, internaldate=date)
        if isinstance(result, int):
            uids.append(result)
        else:
            keys.append(str(result))
    if keys:
        by_key = {m.key: m.uid for m in target.messages()}
        uids += [by_key[k] for k in keys if k in by_key]
    return sorted(uids)


def _restream(tmp: TmpMessage, target: Folder) -> TmpMessage:
    """Move a spooled message into ``target``'s tmp/ (a streamed copy)."""
    out = target.open_tmp()
    try:
        with open(tmp.tmp_path, "rb") as f:
            while chunk := f.read(CHUNK):
                out.write(chunk)
    except (OSError, StoreError):
        out.abort()
        raise
    tmp.abort()
    return out
