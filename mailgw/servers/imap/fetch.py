"""FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8, 7.4.2; RFC 7162 CONDSTORE).

Theory of operation
-------------------
* The sequence set resolves against the selected view (``selected.py``);
  numbers beyond the view are BAD.  A message another session expunged
  keeps its number until its EXPUNGE can be sent (never during FETCH,
  RFC 3501 7.4.1): it is left out, and a FETCH by sequence number then ends
  ``NO [EXPUNGEISSUED]`` (RFC 2180 4.1.2, RFC 5530); UID FETCH just omits it.
* Metadata items (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ) never open
  the file, except RFC822.SIZE of a file whose wire size the store does not
  know yet (``mailgw.store.wire``: no ``W=`` in its name, not counted before).
* Content is read in worker threads a *group* of messages per hop (up to
  ``GROUP_BYTES`` of files, at least one message), the next group read while
  the current one is written; each group's responses go out in one write.
* The whole message (``BODY[]``, ``BODY.PEEK[]``, ``RFC822``, their partials
  ``<o.n>``) and RFC822.SIZE come straight from the stored bytes: no MIME
  parse.  The data is sent as on the wire (RFC 3501 2.3.4): a CRLF-only file
  as is, bare LFs otherwise turned into CRLF.  Only ENVELOPE, BODY[STRUCTURE],
  RFC822.HEADER/TEXT and other sections parse the message, once
  (``protocols/imap/mime.py``, ``protocols/imap/sections.py``).
* BODY[...] without .PEEK, RFC822 and RFC822.TEXT set ``\\Seen`` in a
  read-write mailbox (one store call per command); FLAGS is then added to
  that message's response (RFC 3501 6.4.5).  A partial ``<o.n>`` answers
  ``BODY[]<o>``; an origin past the end gives an empty string.
* Macros ALL/FAST/FULL were expanded by the parser; UID FETCH always returns
  UID (6.4.8).  CHANGEDSINCE (RFC 7162 3.1.4) skips messages whose MODSEQ is
  not greater and implies MODSEQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailgw.errors import MessageNotFound
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import mime, sections
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.selected import ViewMessage
from mailgw.servers.imap.session import Refusal
from mailgw.store import Folder, MessageInfo
from mailgw.store.wire import known_wire_size, wire_size_of

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CONTENT_ATTS = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
)
GROUP_BYTES = 8 << 20  # file bytes read per worker-thread hop
_BARE_LF = re.compile(rb"(?<!\r)\n")
_CRLF = b"\r\n"


def internaldate(ts: float) -> str:
    """date-time (RFC 3501 section 9): ``"17-Jul-1996 02:44:25 -0700"``, local zone."""
    d = dt.datetime.fromtimestamp(ts).astimezone()
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year:04d} {d:%H:%M:%S} {d:%z}"


def wire_of(info: MessageInfo, raw: bytes) -> bytes:
    """The file's bytes as sent: CRLF line ends (a copy only when it holds bare LFs)."""
    return raw if wire_size_of(info, raw) == len(raw) else _BARE_LF.sub(_CRLF, raw)


def is_whole(item: c.FetchItem) -> bool:
    """Answered from the stored bytes alone: the whole message or its size."""
    if isinstance(item, c.BodySection):
        return not item.part and item.text is None
    return item.name in ("RFC822", "RFC822.SIZE")


def needs_content(items: Sequence[c.FetchItem]) -> bool:
    return any(isinstance(i, c.BodySection) or i.name in CONTENT_ATTS for i in items)


def needs_parse(items: Sequence[c.FetchItem]) -> bool:
    return any(
        not is_whole(i) and (isinstance(i, c.BodySection) or i.name in CONTENT_ATTS) for i in items
    )


def sets_seen(items: Sequence[c.FetchItem]) -> bool:
    for i in items:
        if isinstance(i, c.BodySection) and not i.peek:
            return True
        if isinstance(i, c.FetchAtt) and i.name in ("RFC822", "RFC822.TEXT"):
            return True
    return False


def read_many(folder: Folder, infos: Sequence[MessageInfo]) -> list[bytes | None]:
    """The files of ``infos`` (None for a vanished one); blocking, one worker hop."""
    out: list[bytes | None] = []
    for info in infos:
        try:
            out.append(folder.read(info))
        except MessageNotFound:
            out.append(None)
    return out


def _flags_value(flags: list[str]) -> s.Value:
    return [s.Atom(f) for f in flags]


def render(
    seq: int,
    m: ViewMessage,
    items: Sequence[c.FetchItem],
    flags: list[str],
    raw: bytes | None,
    add_flags: bool,
) -> list[bytes]:
    """``* seq FETCH (...)`` as chunks, message data never copied into a bigger one."""
    pairs: list[tuple[str | s.Raw, s.Value]] = []
    data: bytes | None = None  # the wire form, made once
    msg: mime.Message | None = None
    for item in items:
        if isinstance(item, c.BodySection) and not item.part and item.text is None:
            if data is None:
                assert raw is not None
                data = wire_of(m.info, raw)
            value = data
            if item.partial is not None:
                origin, count = item.partial
                value = data[origin : origin + count] if origin < len(data) else b""
            pairs.append((sections.section_name(item), s.Literal(value)))
            continue
        name = item.name if isinstance(item, c.FetchAtt) else None
        if name == "FLAGS":
            pairs.append(("FLAGS", _flags_value(flags)))
        elif name == "UID":
            pairs.append(("UID", m.uid))
        elif name == "INTERNALDATE":
            pairs.append(("INTERNALDATE", internaldate(m.info.internaldate)))
        elif name == "MODSEQ":
            pairs.append(("MODSEQ", [m.info.modseq]))
        elif name in ("RFC822", "RFC822.SIZE") and raw is not None:
            if data is None:
                data = wire_of(m.info, raw)
            pairs.append((name, s.Literal(data) if name == "RFC822" else len(data)))
        elif name == "RFC822.SIZE":
            size = known_wire_size(m.info)
            pairs.append(("RFC822.SIZE", size if size is not None else m.info.size))
        else:
            assert raw is not None
            if msg is None:
                msg = mime.parse(raw)
            pair = sections.fetch_item(msg, item)
            if pair is not None:
                pairs.append(pair)
    if add_flags and not any(isinstance(i, c.FetchAtt) and i.name == "FLAGS" for i in items):
        pairs.append(("FLAGS", _flags_value(flags)))
    return fetch_chunks(seq, pairs)


def fetch_chunks(seq: int, pairs: Sequence[tuple[str | s.Raw, s.Value]]) -> list[bytes]:
    """What ``serializer.fetch`` makes, as a list; literal data stays its own chunk."""
    out: list[bytes] = []
    sep = b"* %d FETCH (" % seq
    for name, value in pairs:
        label = name.value if isinstance(name, s.Raw) else name.encode("ascii")
        if isinstance(value, s.Literal):
            out.append(sep + label + b" {%d}\r\n" % len(value.value))
            out.append(value.value)
        else:
            out.append(sep + label + b" " + s.value(value))
        sep = b" "
    if not pairs:
        out.append(sep)
    out.append(b")\r\n")
    return out


async def _mark_seen(sess: ImapSession, live: list[tuple[int, ViewMessage]]) -> set[int]:
    """Add \\Seen to the unseen ones in one store call; the UIDs that changed."""
    view = sess.need_selected()
    unseen = [m for _, m in live if "\\Seen" not in m.flags]
    if not unseen:
        return set()
    result = await asyncio.to_thread(
        view.folder.store_flags, [m.uid for m in unseen], ["\\Seen"], mode="add"
    )
    changed = {i.uid: i for i in result.changed}
    for m in unseen:
        info = changed.get(m.uid)
        if info is not None:
            view.set_flags(m, info)
    return set(changed)


def _groups(live: list[tuple[int, ViewMessage]]) -> list[list[tuple[int, ViewMessage]]]:
    groups: list[list[tuple[int, ViewMessage]]] = []
    current: list[tuple[int, ViewMessage]] = []
    size = 0
    for pair in live:
        if current and size + pair[1].info.size > GROUP_BYTES:
            groups.append(current)
            current, size = [], 0
        current.append(pair)
        size += pair[1].info.size
    if current:
        groups.append(current)
    return groups


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
    size_from_file = c.FetchAtt("RFC822.SIZE") in items
    missing = False
    live: list[tuple[int, ViewMessage]] = []
    for seq, m in targets:
        if m.expunged:
            missing = True
        elif cmd.changedsince is None or m.info.modseq > cmd.changedsince:
            live.append((seq, m))
    added: set[int] = set()
    if live and sets_seen(items) and not view.readonly:
        added = await _mark_seen(sess, live)

    def needs_file(m: ViewMessage) -> bool:
        return content or (size_from_file and known_wire_size(m.info) is None)

    folder = view.folder
    groups = _groups(live)
    pending: asyncio.Future[list[bytes | None]] | None = None

    def start(group: list[tuple[int, ViewMessage]]) -> asyncio.Future[list[bytes | None]]:
        infos = [m.info for _, m in group if needs_file(m)]
        return asyncio.ensure_future(asyncio.to_thread(read_many, folder, infos))

    try:
        if groups:
            pending = start(groups[0])
        for n, group in enumerate(groups):
            assert pending is not None
            raws = iter(await pending)
            pending = start(groups[n + 1]) if n + 1 < len(groups) else None
            chunks: list[bytes] = []
            for seq, m in group:
                need = needs_file(m)
                raw = next(raws) if need else None
                if need and raw is None:
                    missing = True
                    continue
                flags = view.flags_of(m)
                chunks += render(seq, m, items, flags, raw, m.uid in added)
            await sess.send(b"".join(chunks))
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, MessageNotFound, OSError):
                await pending
    if missing and not cmd.uid:
        raise Refusal("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    await sess.finish(cmd.tag, "OK", "FETCH completed", expunge_ok=cmd.uid, uid=cmd.uid)
