"""STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE (RFC 3501 6.4.3, 6.4.6, 6.4.7; RFC 4315; RFC 6851).

Theory of operation
-------------------
* STORE (6.4.6) hands the whole set to ``Folder.store_flags`` (replace,
  add, remove; one worker-thread call, one new MODSEQ) and answers
  ``FETCH (FLAGS)`` per message unless ``.SILENT``
  (with UID for UID STORE, 6.4.8).  ``\\Recent`` cannot be stored (the parser
  refuses it); other unknown ``\\``-flags are BAD.  Read-only mailbox: NO.
  Messages expunged by someone else are skipped; STORE by sequence number
  then ends ``NO [EXPUNGEISSUED]`` (RFC 2180 4.2.1).  UNCHANGEDSINCE
  (RFC 7162 3.1.3) leaves messages with a higher MODSEQ alone and lists them
  in ``[MODIFIED]``.
* COPY (6.4.7) keeps flags, keywords and internal date; a missing target is
  ``NO [TRYCREATE]``.  Files are hard-linked by ``Folder.copy_from``.  The OK
  carries ``[COPYUID uidvalidity source-uids dest-uids]`` (RFC 4315 3).
* MOVE (RFC 6851 3.3) = COPY + expunge of the sources: ``* OK [COPYUID ...]``
  then the EXPUNGE responses, then the tagged OK.
* EXPUNGE (6.4.3) removes every ``\\Deleted`` message and reports each with
  ``EXPUNGE``; UID EXPUNGE (RFC 4315 2.1) only those in its UID set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailgw.errors import FolderNotFound
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.selected import SelectedMailbox, ViewMessage
from mailgw.servers.imap.session import Refusal
from mailgw.store import Folder, MessageInfo

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession

SYSTEM_FLAGS = frozenset({"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"})
CHUNK = 1 << 20


def uid_set(uids: Sequence[int]) -> str:
    """``1:3,7`` preserving order (RFC 4315 uid-set; runs only when ascending)."""
    out: list[str] = []
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else f"{uids[i]}:{uids[j]}")
        i = j + 1
    return ",".join(out)


def split_flags(flags: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
    system = frozenset(f for f in flags if f.startswith("\\"))
    bad = system - SYSTEM_FLAGS
    if bad:
        raise Refusal(f"Invalid system flag {sorted(bad)[0]}", status="BAD")
    return system, frozenset(f for f in flags if not f.startswith("\\"))


_MODES = {"REPLACE": "replace", "ADD": "add", "REMOVE": "remove"}


async def store(sess: ImapSession, cmd: c.Store) -> None:
    view = sess.need_selected()
    if view.readonly:
        raise Refusal("Mailbox is read-only")
    system, keywords = split_flags(cmd.flags)
    targets = view.resolve(cmd.seqset, cmd.uid)
    if cmd.unchangedsince is not None:
        if not sess.condstore_supported:
            raise Refusal("CONDSTORE is not supported", status="BAD")
        view.condstore = True
    missing = any(m.expunged for _, m in targets)
    live = [(seq, m) for seq, m in targets if not m.expunged]
    result = await asyncio.to_thread(
        view.folder.store_flags,
        [m.uid for _, m in live],
        system,
        keywords,
        mode=_MODES[cmd.mode],
        unchanged_since=cmd.unchangedsince,
    )
    changed = {i.uid: i for i in result.changed}
    failed = set(result.failed)
    out: list[bytes] = []
    modified: list[int] = []
    for seq, m in live:
        if m.uid in failed:
            modified.append(m.uid if cmd.uid else seq)
            continue
        info = changed.get(m.uid)
        if info is not None:
            view.set_flags(m, info)
        # RFC 7162 3.1.3: with UNCHANGEDSINCE the changed ones are reported even if silent
        if not cmd.silent or (info is not None and cmd.unchangedsince is not None):
            out.append(_flags_response(view, seq, m, cmd.uid))
    await sess.send(b"".join(out))
    if missing and not cmd.uid:
        raise Refusal("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    code = f"MODIFIED {uid_set(modified)}" if modified else None
    await sess.finish(cmd.tag, "OK", "STORE completed", code, expunge_ok=cmd.uid, uid=cmd.uid)


def _flags_response(view: SelectedMailbox, seq: int, m: ViewMessage, uid: bool) -> bytes:
    items: list[tuple[str | s.Raw, s.Value]] = []
    if uid or view.condstore:
        items.append(("UID", m.uid))
    items.append(("FLAGS", [s.Atom(f) for f in view.flags_of(m)]))
    if view.condstore:
        items.append(("MODSEQ", [m.info.modseq]))
    return s.fetch(seq, items)


def _copy_messages(
    source: Folder, target: Folder, infos: list[MessageInfo]
) -> list[tuple[int, int]]:
    """Copy (hard links) and return (source UID, target UID) pairs; skips vanished ones."""
    return target.copy_from(source, [i.uid for i in infos])


async def _copy(sess: ImapSession, cmd: c.Copy | c.Move, move: bool) -> None:
    view = sess.need_selected()
    if move and view.readonly:
        raise Refusal("Mailbox is read-only")
    account = sess.need_account()
    try:
        target = await asyncio.to_thread(account.folder, cmd.mailbox)
    except FolderNotFound:
        raise Refusal("Mailbox does not exist", "TRYCREATE") from None
    targets = view.resolve(cmd.seqset, cmd.uid)
    if any(m.expunged for _, m in targets) and not cmd.uid:
        raise Refusal("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    infos = [m.info for _, m in targets if not m.expunged]
    if not infos:
        await sess.finish(cmd.tag, "OK", "No messages", expunge_ok=True, uid=cmd.uid)
        return
    pairs = await asyncio.to_thread(_copy_messages, view.folder, target, infos)
    code = None
    if pairs:
        validity = await asyncio.to_thread(lambda: target.uidvalidity)
        code = (
            f"COPYUID {validity} {uid_set([p[0] for p in pairs])} {uid_set([p[1] for p in pairs])}"
        )
    if not move:
        await sess.finish(cmd.tag, "OK", "COPY completed", code, uid=cmd.uid)
        return
    if code is not None:
        await sess.send(s.untagged("OK", "Moved", code))
    await asyncio.to_thread(view.folder.expunge, [p[0] for p in pairs])
    await sess.sync()
    await sess.finish(cmd.tag, "OK", "MOVE completed", uid=cmd.uid)


async def copy(sess: ImapSession, cmd: c.Copy) -> None:
    await _copy(sess, cmd, move=False)


async def move(sess: ImapSession, cmd: c.Move) -> None:
    await _copy(sess, cmd, move=True)


async def expunge(sess: ImapSession, cmd: c.Expunge) -> None:
    view = sess.need_selected()
    if view.readonly:
        raise Refusal("Mailbox is read-only")
    chosen: set[int] | None = None
    if cmd.uids is not None:
        chosen = {m.uid for _, m in view.resolve(cmd.uids, uid=True)}
    doomed = [
        m.uid
        for _, m in view.messages()
        if not m.expunged and "\\Deleted" in m.flags and (chosen is None or m.uid in chosen)
    ]
    if doomed:
        await asyncio.to_thread(view.folder.expunge, doomed)
        await sess.sync()
    await sess.finish(cmd.tag, "OK", "EXPUNGE completed", uid=cmd.uids is not None)
