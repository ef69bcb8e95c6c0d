"""FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8, 7.4.2; RFC 7162 CONDSTORE).

Theory of operation
-------------------
* The sequence set resolves against the selected view (``selected.py``);
  numbers beyond the view are BAD.  A message another session expunged
  keeps its number until its EXPUNGE can be sent (never during FETCH,
  RFC 3501 7.4.1): it is left out, and a FETCH by sequence number then ends
  ``NO [EXPUNGEISSUED]`` (RFC 2180 4.1.2, RFC 5530); UID FETCH just omits it.
* Metadata items (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) never open
  the file, except RFC822.SIZE of a file whose name lacks ``W=``.  Content
  items read the message in a worker thread, one message at a time, and
  parse it once (``protocols/imap/mime.py``); ``protocols/imap/sections.py``
  answers ENVELOPE, BODY[STRUCTURE], RFC822.* and BODY[section]<partial>.  Bare LFs go out as CRLF.
* BODY[...] without .PEEK, RFC822 and RFC822.TEXT set ``\\Seen`` in a
  read-write mailbox; FLAGS is then added to that message's response
  (RFC 3501 6.4.5).  A partial ``<o.n>`` answers ``BODY[...]<o>``.
* Macros ALL/FAST/FULL were expanded by the parser; UID FETCH always returns
  UID (6.4.8).  CHANGEDSINCE (RFC 7162 3.1.4) skips messages whose MODSEQ is
  not greater and implies MODSEQ.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailgw.errors import MessageNotFound
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import mime, sections
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.selected import ViewMessage
from mailgw.servers.imap.session import Refusal
from mailgw.store import Folder, MessageInfo
from mailgw.store.filenames import base_sizes, split_filename

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CONTENT_ATTS = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
)


def internaldate(ts: float) -> str:
    """date-time (RFC 3501 section 9): ``"17-Jul-1996 02:44:25 -0700"``, local zone."""
    d = dt.datetime.fromtimestamp(ts).astimezone()
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year:04d} {d:%H:%M:%S} {d:%z}"


def wire_size_from_name(info: MessageInfo) -> int | None:
    size, vsize = base_sizes(split_filename(info.path.name)[0])
    if vsize is not None and size == info.size:
        return vsize
    return None


def needs_content(items: Sequence[c.FetchItem]) -> bool:
    return any(isinstance(i, c.BodySection) or i.name in CONTENT_ATTS for i in items)


def sets_seen(items: Sequence[c.FetchItem]) -> bool:
    for i in items:
        if isinstance(i, c.BodySection) and not i.peek:
            return True
        if isinstance(i, c.FetchAtt) and i.name in ("RFC822", "RFC822.TEXT"):
            return True
    return False


def _read(folder: Folder, info: MessageInfo) -> bytes | None:
    try:
        return folder.read(info)
    except MessageNotFound:
        return None


def render(
    seq: int,
    m: ViewMessage,
    items: Sequence[c.FetchItem],
    flags: list[str],
    raw: bytes | None,
    add_flags: bool,
) -> bytes:
    out: list[tuple[str | s.Raw, s.Value]] = []
    msg = mime.parse(raw) if raw is not None else None
    for item in items:
        name = item.name if isinstance(item, c.FetchAtt) else None
        if name == "FLAGS":
            out.append(("FLAGS", [s.Atom(f) for f in flags]))
        elif name == "UID":
            out.append(("UID", m.uid))
        elif name == "INTERNALDATE":
            out.append(("INTERNALDATE", internaldate(m.info.internaldate)))
        elif name == "MODSEQ":
            out.append(("MODSEQ", [m.info.modseq]))
        elif name == "RFC822.SIZE" and msg is None:
            size = wire_size_from_name(m.info)
            out.append(("RFC822.SIZE", size if size is not None else m.info.size))
        else:
            assert msg is not None
            pair = sections.fetch_item(msg, item)
            if pair is not None:
                out.append(pair)
    if add_flags and not any(isinstance(i, c.FetchAtt) and i.name == "FLAGS" for i in items):
        out.append(("FLAGS", [s.Atom(f) for f in flags]))
    return s.fetch(seq, out)


async def fetch(sess: ImapSession, cmd: c.Fetch) -> None:
    view = sess.need_selected()
    targets = view.resolve(cmd.seqset, cmd.uid)
    items = list(cmd.items)
    if cmd.changedsince is not None:
        if not sess.condstore_supported:
            raise Refusal("CONDSTORE is not supported", status="BAD")
        view.condstore = True
        if c.FetchAtt("MODSEQ") not in items:
            items.append(c.FetchAtt("MODSEQ"))
    if any(isinstance(i, c.FetchAtt) and i.name == "MODSEQ" for i in items):
        if not sess.condstore_supported:
            raise Refusal("MODSEQ is not supported", status="BAD")
        view.condstore = True
    content = needs_content(items)
    seen = sets_seen(items) and not view.readonly
    missing = False
    for seq, m in targets:
        if m.expunged:
            missing = True
            continue
        if cmd.changedsince is not None and m.info.modseq <= cmd.changedsince:
            continue
        raw: bytes | None = None
        if content or ("RFC822.SIZE" in _names(items) and wire_size_from_name(m.info) is None):
            raw = await asyncio.to_thread(_read, view.folder, m.info)
            if raw is None:
                missing = True
                continue
        add_flags = False
        if seen and "\\Seen" not in m.flags:
            try:
                result = await asyncio.to_thread(
                    view.folder.store_flags, [m.uid], ["\\Seen"], mode="add"
                )
            except MessageNotFound:
                missing = True
                continue
            if result.changed:
                view.set_flags(m, result.changed[0])
                add_flags = True
        await sess.send(render(seq, m, items, view.flags_of(m), raw, add_flags))
    if missing and not cmd.uid:
        raise Refusal("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    await sess.finish(cmd.tag, "OK", "FETCH completed", expunge_ok=cmd.uid, uid=cmd.uid)


def _names(items: Sequence[c.FetchItem]) -> set[str]:
    return {i.name for i in items if isinstance(i, c.FetchAtt)}
