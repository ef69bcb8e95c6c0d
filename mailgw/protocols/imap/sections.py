"""FETCH BODY[section]<partial>, RFC822.* and the structure items (RFC 3501 6.4.5).

Theory of operation
-------------------
:func:`section_bytes` resolves a :class:`~mailgw.protocols.imap.commands.BodySection`
against a parsed :class:`~mailgw.protocols.imap.mime.Message` and returns the
octets to send, always with CRLF line ends (RFC 3501 2.3.4: data is sent as
on the wire; a Maildir may store bare LF):

- part numbers (RFC 3501 6.4.5): in a multipart, ``n`` is the n-th body
  part; in a non-multipart, only ``1`` exists and is the part itself (the
  body of a single-part message).  When a number is followed by more and the
  part is message/rfc822, the next number indexes the embedded message.
- ``""``: the whole message (no part) or the part's body (with part);
  ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT`` and ``TEXT``: the
  message's header / body, or those of the message embedded in a
  message/rfc822 part; ``MIME``: the part's own MIME header (with part only).
  HEADER.FIELDS[.NOT] keeps the matching fields (with continuation lines) in
  their original order; HEADER.FIELDS always ends with an empty line,
  HEADER.FIELDS.NOT with the header's own (if it had one).
- ``<origin.count>``: octets ``origin`` to ``origin+count`` of the result;
  an origin past the end gives the empty string (RFC 3501 6.4.5).
- A part that does not exist (or HEADER/TEXT of a part that is not
  message/rfc822) gives ``None``, sent as an empty literal as Dovecot does.

When the stored message has CRLF line ends (the normal case) every result
is one slice of the stored buffer, without per-line Python work.

:func:`fetch_item` answers the items that depend only on the message bytes
(ENVELOPE, BODY, BODYSTRUCTURE, RFC822, RFC822.HEADER, RFC822.TEXT,
RFC822.SIZE, BODY[...]) with ``(name, value)`` for ``serializer.fetch``;
:func:`section_name` builds the response name ``BODY[1.MIME]<0>``.
"""

from __future__ import annotations

from mailgw.protocols.imap.bodystructure import body, bodystructure
from mailgw.protocols.imap.commands import BodySection, FetchAtt, FetchItem
from mailgw.protocols.imap.envelope import envelope
from mailgw.protocols.imap.mime import MESSAGE, MULTIPART, Message, Part
from mailgw.protocols.imap.serializer import Literal, Raw, Value

STRUCTURE_ITEMS = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "RFC822.SIZE"}
)


def find_part(msg: Message, numbers: tuple[int, ...]) -> Part | None:
    """The part that ``numbers`` (``(1, 2)`` for "1.2") designates, or None.

    Dovecot's rules, where RFC 3501 is silent: a non-multipart body part of a
    multipart answers to ``1`` (itself) at any depth ("2.1" = "2"); the
    non-multipart top of a message answers to one ``1`` only."""
    cur = msg.root
    mode = "top"  # "top": top of a message; "used": its 1 taken; "child": in a multipart
    for i, n in enumerate(numbers):
        if cur.kind == MULTIPART:
            if not 1 <= n <= len(cur.children):
                return None
            cur = cur.children[n - 1]
            mode = "child"
        elif n != 1 or mode == "used":
            return None
        elif mode == "top":
            mode = "used"
        if i + 1 < len(numbers) and cur.kind == MESSAGE and cur.children:
            cur = cur.children[0]
            mode = "top"
    return cur


def _message_of(part: Part, numbered: bool) -> Part | None:
    """The message whose HEADER/TEXT a section means: the part itself for the
    top level, the embedded message of a message/rfc822 part."""
    if not numbered:
        return part
    if part.kind == MESSAGE and part.children:
        return part.children[0]
    return None


def _header_fields(msg: Message, part: Part, names: tuple[str, ...], negate: bool) -> bytes:
    wanted = {n.lower().encode("utf-8", "surrogateescape") for n in names}
    fields_end = part.headers[-1].end if part.headers else part.header_start
    chunks = [
        msg.wire(h.start, h.end) for h in part.headers if (h.name.lower() in wanted) != negate
    ]
    # HEADER.FIELDS always ends with an empty line; .NOT keeps the header's own
    # (none when the header ran to the end of the data), as Dovecot does
    chunks.append(msg.wire(fields_end, part.body_start) if negate else b"\r\n")
    return b"".join(chunks)


def section_bytes(msg: Message, section: BodySection) -> bytes | None:
    """The octets of ``BODY[section]<partial>`` (CRLF), or None for a missing part."""
    data = _section(msg, section)
    if data is None or section.partial is None:
        return data
    origin, count = section.partial
    return data[origin : origin + count] if origin < len(data) else b""


def _section(msg: Message, section: BodySection) -> bytes | None:
    numbered = bool(section.part)
    part = find_part(msg, section.part) if numbered else msg.root
    if part is None:
        return None
    text = section.text
    if text is None:
        if not numbered:
            return msg.wire(0, len(msg.data))
        return msg.wire(part.body_start, part.body_end)
    if text == "MIME":
        return msg.wire(part.header_start, part.body_start) if numbered else None
    inner = _message_of(part, numbered)
    if inner is None:
        return None
    if text == "HEADER":
        return msg.wire(inner.header_start, inner.body_start)
    if text == "TEXT":
        return msg.wire(inner.body_start, inner.body_end)
    return _header_fields(msg, inner, section.fields, text == "HEADER.FIELDS.NOT")


def section_name(section: BodySection) -> Raw:
    """``BODY[1.HEADER.FIELDS (FROM TO)]<0>``: the name of the response item
    (RFC 3501 7.4.2: PEEK is never echoed; a partial echoes only the origin)."""
    spec = ".".join(str(n) for n in section.part)
    if section.text is not None:
        spec = f"{spec}.{section.text}" if spec else section.text
        if section.text.startswith("HEADER.FIELDS"):
            spec += " (" + " ".join(section.fields) + ")"
    name = f"BODY[{spec}]"
    if section.partial is not None:
        name += f"<{section.partial[0]}>"
    return Raw(name.encode("utf-8", "surrogateescape"))


def section_value(data: bytes | None) -> Value:
    """A section's value: always a literal, empty for a missing part (as Dovecot)."""
    return Literal(b"" if data is None else data)


def fetch_item(msg: Message, item: FetchItem) -> tuple[str | Raw, Value] | None:
    """``(name, value)`` for a message-structure FETCH item; None for items the
    session answers itself (FLAGS, UID, INTERNALDATE, MODSEQ)."""
    if isinstance(item, BodySection):
        return section_name(item), section_value(section_bytes(msg, item))
    assert isinstance(item, FetchAtt)
    name = item.name
    if name == "ENVELOPE":
        return name, envelope(msg.root)
    if name == "BODY":
        return name, body(msg)
    if name == "BODYSTRUCTURE":
        return name, bodystructure(msg)
    if name == "RFC822.SIZE":
        return name, msg.total_size
    if name == "RFC822":
        return name, Literal(msg.wire(0, len(msg.data)))
    if name == "RFC822.HEADER":
        return name, Literal(msg.wire(msg.root.header_start, msg.root.body_start))
    if name == "RFC822.TEXT":
        return name, Literal(msg.wire(msg.root.body_start, msg.root.body_end))
    return None
