"""FETCH BODY and BODYSTRUCTURE (RFC 3501 sections 6.4.5, 7.4.2, 9 ``body``).

Theory of operation
-------------------
:func:`body` and :func:`bodystructure` walk the :mod:`mime` tree of a parsed
message and return one value in the serializer's model, ready for
``serializer.fetch(seq, [("BODYSTRUCTURE", value)])``.  Output is Dovecot
2.3's byte for byte (see tests/protocols/imap/test_dovecot_fetch_compat.py):

- body-type-1part (RFC 3501 9): type, subtype, parameters, id, description,
  encoding, size; text/* adds the line count; message/rfc822 adds the
  embedded message's ENVELOPE, BODY and the line count.  BODYSTRUCTURE adds
  body-ext-1part: md5, disposition, language, location.
- body-type-mpart: the children, *with no space between them* (``1*body SP
  media-subtype``), then the subtype; BODYSTRUCTURE adds body-ext-mpart:
  parameters, disposition, language, location.  A multipart without
  children (no or unmatched boundary) gets one empty text/plain child.
- Content-* fields count only on MIME entities (see :mod:`mime`); the first
  occurrence of each wins (Content-Disposition is taken again while the
  previous one had no parameters, as Dovecot does).  No Content-Type:
  ``"text" "plain" ("charset" "us-ascii")``; text/* without a charset gets
  that charset appended (RFC 2045 5.2); other types without parameters NIL.
  No (or an unusable) Content-Transfer-Encoding: ``"7bit"``.
- Types, subtypes, parameter names and values keep the case they were
  written in; RFC 2231 continuations are joined, ``name*`` values are sent
  raw, as Dovecot does.
- size is the body's size on the wire (bare LF counted as CRLF); lines is
  the number of LFs in the body.

Because the serializer would put a space between the child bodies of a
multipart, children are pre-serialized and carried as one ``Raw`` value.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.envelope import envelope, nstring, nstring_nolf
from mailgw.protocols.imap.mime import MESSAGE, MULTIPART, TEXT, Lexer, Message, Part, parse_params
from mailgw.protocols.imap.serializer import Raw, Value

_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


@dataclass(slots=True)
class ContentFields:
    """The Content-* fields of one MIME entity that BODYSTRUCTURE reports."""

    encoding: bytes | None = None
    id: bytes | None = None
    description: bytes | None = None
    md5: bytes | None = None
    location: bytes | None = None
    language: list[bytes] | None = None
    disposition: bytes | None = None
    disposition_params: list[tuple[str, str]] | None = None


def content_fields(part: Part) -> ContentFields:
    f = ContentFields()
    if not part.is_mime:
        return f
    for h in part.headers:
        name = h.name.lower()
        if not name.startswith(b"content-"):
            continue
        key = name[8:]
        if key == b"transfer-encoding" and f.encoding is None:
            lx = Lexer(h.value)
            lx.skip_lwsp()
            token, ret = lx.token()
            if ret >= 0 and lx.skip_lwsp() == 0 and token:
                f.encoding = token
        elif key == b"id" and f.id is None:
            f.id = h.value
        elif key == b"description" and f.description is None:
            f.description = h.value
        elif key == b"md5" and f.md5 is None:
            f.md5 = h.value
        elif key == b"location" and f.location is None:
            f.location = h.value
        elif key == b"language" and f.language is None:
            f.language = _languages(h.value)
        elif key == b"disposition" and not f.disposition_params:
            lx = Lexer(h.value)
            lx.skip_lwsp()
            token, ret = lx.token()
            if ret >= 0:
                f.disposition = token
                f.disposition_params = parse_params(lx)
    return f


def _languages(value: bytes) -> list[bytes] | None:
    """Content-Language (RFC 3282): a comma-separated list of atoms."""
    lx = Lexer(value)
    lx.skip_lwsp()
    langs: list[bytes] = []
    while True:
        atom, ret = lx.atom()
        if ret < 0:
            break
        langs.append(atom)
        if lx.at_end() or lx.peek() != 0x2C:
            break
        lx.pos += 1
        lx.skip_lwsp()
    return langs or None


def _text(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _params(params: list[tuple[str, str]] | None, default_charset: bool) -> Value:
    items: list[Value] = []
    seen_charset = False
    for name, value in params or []:
        if name.lower() == "charset":
            seen_charset = True
        items += [nstring(_text(name)), nstring(_text(value))]
    if default_charset and not seen_charset:
        items += [Raw(b'"charset"'), Raw(b'"us-ascii"')]
    return items or None


def _ext_common(f: ContentFields) -> list[Value]:
    disposition: Value = None
    if f.disposition is not None:
        disposition = [nstring(f.disposition), _params(f.disposition_params, False)]
    language: Value = None
    if f.language:
        language = [nstring(lang) for lang in f.language]
    return [disposition, language, nstring_nolf(f.location)]


def _part(msg: Message, part: Part, extended: bool) -> list[Value]:
    f = content_fields(part)
    ct = part.content_type
    if part.kind == MULTIPART:
        if part.children:
            kids = b"".join(serializer.value(_part(msg, c, extended)) for c in part.children)
        else:
            kids = _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        subtype = ct.subtype if ct is not None and ct.subtype is not None else ""
        out: list[Value] = [Raw(kids), nstring(_text(subtype))]
        if extended:
            out.append(_params(ct.params if ct is not None else None, False))
            out += _ext_common(f)
        return out
    is_message = part.kind == MESSAGE and bool(part.children)
    text = False
    if is_message:
        head: list[Value] = [Raw(b'"message"'), Raw(b'"rfc822"')]
    elif ct is None:
        text = True
        head = [Raw(b'"text"'), Raw(b'"plain"')]
    else:
        text = ct.type.lower() == TEXT
        head = [nstring(_text(ct.type)), nstring(None if ct.subtype is None else _text(ct.subtype))]
    out = [
        *head,
        _params(ct.params if ct is not None else None, text),
        nstring_nolf(f.id),
        nstring_nolf(f.description),
        nstring(f.encoding) if f.encoding is not None else Raw(b'"7bit"'),
        msg.size(part.body_start, part.body_end),
    ]
    if text:
        out.append(msg.lines(part.body_start, part.body_end))
    elif is_message:
        child = part.children[0]
        out += [
            envelope(child),
            _part(msg, child, extended),
            msg.lines(part.body_start, part.body_end),
        ]
    if extended:
        out.append(nstring_nolf(f.md5))
        out += _ext_common(f)
    return out


def body(msg: Message) -> Value:
    """FETCH BODY (no section): the structure without extension data."""
    return _part(msg, msg.root, False)


def bodystructure(msg: Message) -> Value:
    """FETCH BODYSTRUCTURE: the structure with extension data."""
    return _part(msg, msg.root, True)
