"""SELECT, EXAMINE, CLOSE, UNSELECT (RFC 3501 6.3.1, 6.3.2, 6.4.2; RFC 3691).

Theory of operation
-------------------
* SELECT/EXAMINE first leave any selected mailbox (a failed SELECT leaves
  the session AUTHENTICATED, 6.3.1), then list the folder in a worker thread
  and answer, in RFC 3501's order: ``FLAGS``, ``OK [PERMANENTFLAGS]`` (with
  ``\\*``: keywords may be created; none for EXAMINE), ``EXISTS``,
  ``RECENT``, ``OK [UNSEEN n]`` (first unseen sequence number), ``OK
  [UIDVALIDITY]``, ``OK [UIDNEXT]``, ``OK [HIGHESTMODSEQ]`` with CONDSTORE
  (RFC 7162 3.1.2.1), then ``OK [READ-WRITE]`` or ``[READ-ONLY]``.
* SELECT claims the folder's new messages as ``\\Recent`` for this session
  (2.3.2); EXAMINE claims nothing.
* CLOSE expunges ``\\Deleted`` messages silently (no EXPUNGE responses) unless
  the mailbox is read-only; UNSELECT never expunges.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.selected import SelectedMailbox
from mailgw.servers.imap.session import listing
from mailgw.store import Folder, MessageInfo

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def _open(
    sess: ImapSession, name: str, readonly: bool
) -> tuple[Folder, list[MessageInfo], set[int], int]:
    folder = sess.need_account().folder(name)
    infos, recent = listing(folder, readonly)
    return folder, infos, recent, folder.highestmodseq


async def _select(sess: ImapSession, cmd: c.Select | c.Examine, readonly: bool) -> None:
    if sess.selected is not None:
        sess.deselect()
        await sess.send(s.untagged("OK", "Previous mailbox closed", "CLOSED"))  # RFC 7162 3.2.11
    folder, infos, recent, highest = await asyncio.to_thread(_open, sess, cmd.mailbox, readonly)
    view = SelectedMailbox.open(folder, readonly, infos, recent)
    condstore = cmd.condstore or "CONDSTORE" in sess.enabled
    if cmd.condstore and sess.condstore_supported:
        sess.enabled.add("CONDSTORE")  # RFC 7162 3.1.8: SELECT (CONDSTORE) enables it
    view.condstore = condstore and sess.condstore_supported
    keywords = sorted({k for i in infos for k in i.keywords})
    flags = [*SYSTEM_FLAGS, *keywords]
    out = [s.flags(flags)]
    permanent = (
        "PERMANENTFLAGS ()"
        if readonly
        else ("PERMANENTFLAGS (" + " ".join([*SYSTEM_FLAGS, *keywords, "\\*"]) + ")")
    )
    out.append(s.untagged("OK", "Flags permitted", permanent))
    out.append(s.exists(len(infos)))
    out.append(s.recent(len(recent)))
    first_unseen = next((n for n, i in enumerate(infos, 1) if "\\Seen" not in i.flags), None)
    if first_unseen is not None:
        out.append(s.untagged("OK", "First unseen", f"UNSEEN {first_unseen}"))
    out.append(s.untagged("OK", "UIDs valid", f"UIDVALIDITY {folder.uidvalidity}"))
    out.append(s.untagged("OK", "Predicted next UID", f"UIDNEXT {folder.uidnext}"))
    if view.condstore:
        out.append(s.untagged("OK", "Highest", f"HIGHESTMODSEQ {highest}"))
    sess.select(view)
    mode = "READ-ONLY" if readonly else "READ-WRITE"
    verb = "EXAMINE" if readonly else "SELECT"
    out.append(s.tagged(cmd.tag, "OK", f"{verb} completed", mode))
    await sess.send(b"".join(out))


async def select(sess: ImapSession, cmd: c.Select) -> None:
    await _select(sess, cmd, readonly=False)


async def examine(sess: ImapSession, cmd: c.Examine) -> None:
    await _select(sess, cmd, readonly=True)


async def close(sess: ImapSession, cmd: c.Close) -> None:
    view = sess.need_selected()
    if not view.readonly:
        doomed = [m.uid for _, m in view.messages() if not m.expunged and "\\Deleted" in m.flags]
        if doomed:
            await asyncio.to_thread(view.folder.expunge, doomed)
    sess.deselect()
    await sess.send(s.tagged(cmd.tag, "OK", "CLOSE completed"))


async def unselect(sess: ImapSession, cmd: c.Unselect) -> None:
    sess.deselect()
    await sess.send(s.tagged(cmd.tag, "OK", "UNSELECT completed"))
