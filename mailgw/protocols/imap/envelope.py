"""FETCH ENVELOPE (RFC 3501 section 7.4.2) and Dovecot-compatible string forms.

Theory of operation
-------------------
:func:`envelope` turns a part's header fields into the ten-item ENVELOPE list
in the serializer's value model: date, subject, from, sender, reply-to, to,
cc, bcc, in-reply-to, message-id (RFC 3501 7.4.2).  The rules are Dovecot
2.3's, so that both servers answer alike on one Maildir:

- A field that occurs more than once: the *last* one counts.  A missing
  field is NIL; an empty Subject is ``""``; an address field without any
  address is NIL.
- sender and reply-to default to from (RFC 3501 7.4.2 "If the Sender or
  Reply-To lines are absent ... the server sets ... to the same value as
  from").
- Strings are the raw header octets, never decoded: encoded words (RFC 2047)
  stay as written, 8-bit stays 8-bit.  Folding CR/LF is removed; subject and
  display names are also "for humans": runs of SP/HTAB collapse to one SP,
  trailing white space is dropped, NUL becomes 0x80.
- Addresses (RFC 5322 3.4; RFC 3501 7.4.2 address structure): ``(name adl
  mailbox host)``.  A group is ``(NIL NIL "name" NIL)`` ... ``(NIL NIL NIL
  NIL)``; a source route ``<@a,@b:user@host>`` gives adl ``"@a,@b"``; a
  comment after an addr-spec is used as the name when there is no display
  name; a missing local part or domain is ``MISSING_MAILBOX`` /
  ``MISSING_DOMAIN`` (what Dovecot sends).

String forms (RFC 3501 4.3): Dovecot sends a quoted string unless the value
has CR, LF, 8-bit octets or more than four quoted-specials, and a "for
humans" string as a literal whenever it had to change it.  The serializer
picks quoted or literal by itself, so :func:`nstring`, :func:`nstring_nolf`
and :func:`string_for_humans` return ``Raw`` (a pre-quoted string) or
``Literal`` to make our bytes identical to Dovecot's.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.mime import _ATEXT, Lexer, Part
from mailgw.protocols.imap.serializer import Literal, Raw, Value

QUOTED_MAX_ESCAPES = 4  # Dovecot switches to a literal after four quoted-specials


# --- string forms --------------------------------------------------------------------------


def nstring(data: bytes | None) -> Value:
    """NIL, a quoted string or a literal, chosen as Dovecot's imap_append_nstring."""
    if data is None:
        return None
    escapes = 0
    for c in data:
        if c in (0x22, 0x5C):
            escapes += 1
            if escapes > QUOTED_MAX_ESCAPES:
                return Literal(data)
        elif c in (0x0D, 0x0A, 0x00) or c >= 0x80:
            return Literal(data)
    return Raw(b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')


def nstring_nolf(data: bytes | None) -> Value:
    """:func:`nstring` after removing every CR and LF (unfolding)."""
    if data is None:
        return None
    return nstring(data.replace(b"\r", b"").replace(b"\n", b""))


def string_for_humans(data: bytes) -> Value:
    """Unfolded, SP/HTAB runs collapsed, trailing white space removed; a
    literal whenever anything had to change (Dovecot's rule)."""
    modify = False
    out = bytearray()
    last_lwsp = True
    for c in data:
        if c == 0x00:
            out.append(0x80)
            last_lwsp = False
            modify = True
        elif c in (0x20, 0x09):
            if c == 0x09 or last_lwsp:
                modify = True
            if not last_lwsp:
                out.append(0x20)
            last_lwsp = True
        elif c in (0x0D, 0x0A):
            modify = True
        else:
            if c in (0x22, 0x5C) or c >= 0x80:
                modify = True
            out.append(c)
            last_lwsp = False
    if out and out[-1] == 0x20:
        out.pop()
        modify = True
    if not modify:
        return Raw(b'"' + bytes(data) + b'"')
    if not out:
        return Raw(b'""')
    return Literal(bytes(out))


# --- addresses (RFC 5322 3.4) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """One address structure; a group start has only ``mailbox`` (the group
    name), a group end is all None."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None

    def value(self) -> Value:
        name = None if self.name is None else string_for_humans(self.name)
        return [name, nstring(self.route), nstring(self.mailbox), nstring(self.domain)]


_DOT_ATEXT = _ATEXT | frozenset(b".")


def _phrase(lx: Lexer) -> bytes | None:
    """RFC 5322 phrase (obs-phrase allowed); None when there is none."""
    if lx.at_end() or lx.peek() == 0x2E:
        return None
    words: list[bytes] = []
    while True:
        c = lx.peek()
        if c == 0x22:
            word, ret = lx.quoted_string()
        elif c in _DOT_ATEXT:
            word, ret = lx.token(_DOT_ATEXT)
        else:
            break
        words.append(word)
        if ret <= 0:
            break
    return b" ".join(words) if words else None


def _dot_atom(lx: Lexer, *, quoted: bool = True) -> bytes:
    """Words joined by '.'; ``quoted``: a word may be a quoted-string (local-part)."""
    out = bytearray()
    while not lx.at_end():
        c = lx.peek()
        if c == 0x22 and quoted:
            word, ret = lx.quoted_string()
        elif c in _ATEXT:
            word, ret = lx.atom()
        else:
            break
        out += word
        if ret <= 0 or lx.peek() != 0x2E:
            break
        lx.pos += 1
        out.append(0x2E)
        if lx.skip_lwsp() <= 0:
            break
    return bytes(out)


def _domain(lx: Lexer) -> bytes:
    """After '@': dot-atom or domain-literal."""
    lx.pos += 1
    if lx.skip_lwsp() <= 0:
        return b""
    if lx.peek() == 0x5B:
        start = lx.pos
        while not lx.at_end():
            c = lx.peek()
            if c == 0x5C:
                lx.pos += 1
            elif c == 0x5D:
                lx.pos += 1
                value = lx.data[start : lx.pos]
                lx.skip_lwsp()
                return value
            lx.pos += 1
        return lx.data[start:]
    return _dot_atom(lx, quoted=False)


def _addr_spec(lx: Lexer) -> tuple[bytes, bytes]:
    local = _dot_atom(lx)
    domain = b""
    if lx.peek() == 0x40:
        domain = _domain(lx)
    return local, domain


def _route(lx: Lexer) -> bytes | None:
    routes: list[bytes] = []
    while lx.peek() == 0x40:
        routes.append(b"@" + _domain(lx))
        if lx.peek() != 0x2C:
            break
        lx.pos += 1
        lx.skip_lwsp()
    if lx.peek() == 0x3A:
        lx.pos += 1
        lx.skip_lwsp()
    return b",".join(routes) if routes else None


def _mailbox(lx: Lexer) -> Address | None:
    start = lx.pos
    name = _phrase(lx)
    if lx.peek() == 0x3C:  # name-addr: [display-name] angle-addr
        lx.pos += 1
        lx.skip_lwsp()
        route = _route(lx) if lx.peek() == 0x40 else None
        local, domain = _addr_spec(lx)
        while not lx.at_end() and lx.peek() != 0x3E and lx.peek() != 0x2C:
            lx.pos += 1
        if lx.peek() == 0x3E:
            lx.pos += 1
            lx.skip_lwsp()
    else:  # addr-spec, a trailing comment becomes the name
        lx.pos = start
        route, name = None, None
        lx.last_comment = None
        local, domain = _addr_spec(lx)
        if lx.last_comment:
            name = lx.last_comment
    if not local and not domain and name is None and route is None:
        return None
    return Address(name, route, local or b"MISSING_MAILBOX", domain or b"MISSING_DOMAIN")


def parse_addresses(value: bytes) -> list[Address]:
    """An address-list (RFC 5322 3.4), with group markers, as Dovecot parses it."""
    lx = Lexer(value)
    out: list[Address] = []
    lx.skip_lwsp()
    while not lx.at_end():
        start = lx.pos
        group = _phrase(lx)
        if group is not None and lx.peek() == 0x3A:
            lx.pos += 1
            lx.skip_lwsp()
            out.append(Address(None, None, group, None))
            while not lx.at_end() and lx.peek() != 0x3B:
                before = lx.pos
                addr = _mailbox(lx)
                if addr is not None:
                    out.append(addr)
                if lx.peek() == 0x2C:
                    lx.pos += 1
                    lx.skip_lwsp()
                elif lx.pos == before or (not lx.at_end() and lx.peek() != 0x3B):
                    lx.pos += 1  # junk: skip one octet
            out.append(Address(None, None, None, None))
            if lx.peek() == 0x3B:
                lx.pos += 1
                lx.skip_lwsp()
        else:
            lx.pos = start
            addr = _mailbox(lx)
            if addr is not None:
                out.append(addr)
        # to the next address
        if lx.peek() == 0x2C:
            lx.pos += 1
        elif not lx.at_end():
            if lx.pos == start:
                lx.pos += 1
            while not lx.at_end() and lx.peek() != 0x2C:
                lx.pos += 1
            if lx.peek() == 0x2C:
                lx.pos += 1
        lx.skip_lwsp()
    return out


# --- the envelope ------------------------------------------------------------------------------

_STRING_FIELDS = {b"date": 0, b"subject": 1, b"in-reply-to": 8, b"message-id": 9}
_ADDRESS_FIELDS = {b"from": 2, b"sender": 3, b"reply-to": 4, b"to": 5, b"cc": 6, b"bcc": 7}


def _address_list(value: bytes | None) -> Value:
    if value is None:
        return None
    addrs = parse_addresses(value)
    if not addrs:
        return None
    # RFC 3501 9: env-from = "(" 1*address ")" -- no SP between the addresses
    return [Raw(b"".join(serializer.value(a.value()) for a in addrs))]


def envelope(part: Part) -> list[Value]:
    """The ENVELOPE of the message whose header ``part`` holds (RFC 3501 7.4.2)."""
    raw: list[bytes | None] = [None] * 10
    for h in part.headers:
        key = h.name.lower()
        idx = _STRING_FIELDS.get(key)
        if idx is None:
            idx = _ADDRESS_FIELDS.get(key)
        if idx is not None:
            raw[idx] = h.value  # the last occurrence wins
    subject = raw[1]
    frm = _address_list(raw[2])
    return [
        nstring_nolf(raw[0]),
        None if subject is None else string_for_humans(subject),
        frm,
        _address_list(raw[3]) or frm,  # an empty Sender also falls back (as Dovecot)
        _address_list(raw[4]) or frm,
        _address_list(raw[5]),
        _address_list(raw[6]),
        _address_list(raw[7]),
        nstring_nolf(raw[8]),
        nstring_nolf(raw[9]),
    ]
