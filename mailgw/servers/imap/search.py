"""SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8; RFC 4731 ESEARCH; RFC 7162 MODSEQ).

Theory of operation
-------------------
The key tree from the parser is evaluated by
``mailgw.protocols.imap.searcheval`` over the selected view, in a worker
thread: metadata comes from the view, header and body text are loaded
lazily per message (``LazyContent``), so a flag-only search opens no file.
Messages expunged by someone else but not yet reported are not searched
(no EXPUNGE is sent during SEARCH, RFC 3501 7.4.1).  A message that vanished
while being read does not match.

Answers: ``* SEARCH n...`` (7.2.5) with ``(MODSEQ n)`` when the key used
MODSEQ (RFC 7162 3.1.5); with ``RETURN (...)`` one ``* ESEARCH (TAG "t")``
(RFC 4731 3.1: MIN, MAX, ALL as a compressed set, COUNT).  SAVE (RFC 5182)
is not offered and is ignored.  CHARSET was checked by the parser
(US-ASCII and UTF-8, else ``NO [BADCHARSET]``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailgw.errors import MessageNotFound
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import searcheval as se
from mailgw.protocols.imap import serializer as s
from mailgw.protocols.imap.textsearch import LazyContent
from mailgw.servers.imap.session import Refusal
from mailgw.store import Folder, MessageInfo

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession


def _loader(folder: Folder, info: MessageInfo) -> LazyContent:
    def load() -> bytes:
        try:
            return folder.read(info)
        except MessageNotFound:
            return b""

    return LazyContent(load)


async def search(sess: ImapSession, cmd: c.Search) -> None:
    view = sess.need_selected()
    if se.uses_modseq(cmd.key):
        if not sess.condstore_supported:
            raise Refusal("MODSEQ is not supported", status="BAD")
        view.condstore = True
    messages = [
        se.ContentMessage(
            seq,
            m.uid,
            m.info.flags,
            m.info.keywords,
            m.info.size,
            m.info.internaldate,
            m.info.modseq,
            m.uid in view.recent,
            _loader(view.folder, m.info),
        )
        for seq, m in view.messages()
        if not m.expunged
    ]
    max_seq = len(view)
    max_uid = view.last_uid
    try:
        outcome = await asyncio.to_thread(
            se.search, cmd.key, messages, uid=cmd.uid, max_seq=max_seq, max_uid=max_uid
        )
    except ValueError as exc:  # e.g. an unusable key the parser let through
        raise Refusal(str(exc)[:200] or "Invalid search", status="BAD") from None
    if se.wants_esearch(cmd.returns):
        assert cmd.returns is not None
        data = s.esearch(cmd.tag, cmd.uid, se.esearch_items(outcome, cmd.returns))
    elif cmd.returns is not None:
        data = b""  # RETURN (SAVE) alone: no untagged answer (RFC 5182 2.1)
    else:
        data = s.search(outcome.numbers, outcome.search_modseq)
    await sess.send(data)
    await sess.finish(cmd.tag, "OK", "SEARCH completed", expunge_ok=cmd.uid, uid=cmd.uid)
