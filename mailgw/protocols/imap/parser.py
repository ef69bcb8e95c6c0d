"""IMAP command parser: one complete command (line + literals) -> a typed Command.

Theory of operation
-------------------
Pure functions over a :class:`~mailgw.protocols.imap.lexer.RawCommand`.
``parse_command()`` reads ``tag SP command`` (RFC 3501 section 9:
``command = tag SP (command-any / command-auth / command-nonauth /
command-select) CRLF``) and hands the rest to one function per command; each
follows the formal syntax rule of the same name (RFC 3501 section 9, or the
extension RFC cited beside it).  Any deviation raises
:class:`~mailgw.protocols.imap.lexer.ParseError` whose text goes into a BAD
reply.  Mailbox names are decoded from modified UTF-7 here (RFC 3501 5.1.3)
and ``INBOX`` is matched case-insensitively (RFC 3501 5.1).

The parser does not know about states or limits: ``connection.py`` checks the
state table before a command's literals are read and again when it is
complete.  ``parse_append_prefix()`` lets the connection validate an APPEND
before it accepts the first message literal, so a bad APPEND is refused
before any message octet is read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable
from typing import get_args

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.lexer import (
    ParseError,
    RawCommand,
    Scanner,
    StreamedLiteral,
    decode_text,
)
from mailgw.protocols.imap.state import UID_COMMANDS
from mailgw.protocols.imap.utf7 import decode_mutf7

__all__ = [
    "ParseError",
    "parse_append_prefix",
    "parse_command",
    "parse_head",
]

# --- shared argument rules -----------------------------------------------------


def mailbox(sc: Scanner) -> str:
    """mailbox = "INBOX" / astring (RFC 3501 section 9), modified UTF-7 decoded."""
    return decode_mailbox(sc.astring("mailbox name"))


def decode_mailbox(raw: bytes) -> str:
    try:
        name = decode_mutf7(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ParseError("Mailbox name is not valid modified UTF-7") from None
    return "INBOX" if name.upper() == "INBOX" else name


def _pattern(raw: bytes) -> str:
    try:
        return decode_mutf7(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ParseError("Mailbox pattern is not valid modified UTF-7") from None


_SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
}


def flag(sc: Scanner) -> str:
    """flag = "\\Answered" / ... / flag-keyword / flag-extension (RFC 3501 section 9).

    ``\\Recent`` is a fetch-only flag (flag-fetch) and refused here.
    """
    if sc.accept(b"\\"):
        name = "\\" + sc.atom("flag")
        upper = name.upper()
        if upper == "\\RECENT":
            raise ParseError("\\Recent cannot be set by the client")
        return _SYSTEM_FLAGS.get(upper, name)
    return sc.atom("flag")


def flag_list(sc: Scanner) -> tuple[str, ...]:
    """flag-list = "(" [flag *(SP flag)] ")" """
    sc.expect(b"(")
    flags: list[str] = []
    if not sc.accept(b")"):
        flags.append(flag(sc))
        while not sc.accept(b")"):
            sc.sp()
            flags.append(flag(sc))
    return tuple(dict.fromkeys(flags))


def sequence_set(sc: Scanner) -> c.SequenceSet:
    """sequence-set = (seq-number / seq-range) ["," sequence-set]; RFC 5182 adds "$"."""
    if sc.accept(b"$"):
        return c.SequenceSet(saved=True)
    ranges: list[c.SeqRange] = []
    while True:
        first = _seq_number(sc)
        last = _seq_number(sc) if sc.accept(b":") else first
        ranges.append(c.SeqRange(first, last))
        if not sc.accept(b","):
            return c.SequenceSet(tuple(ranges))


def _seq_number(sc: Scanner) -> int:
    """seq-number = nz-number / "*" """
    if sc.accept(b"*"):
        return c.STAR
    return sc.number("sequence number", nonzero=True)


def paren_atoms(sc: Scanner, what: str) -> tuple[str, ...]:
    """ "(" [atom *(SP atom)] ")", upper-cased."""
    sc.expect(b"(")
    items: list[str] = []
    if not sc.accept(b")"):
        items.append(sc.atom(what).upper())
        while not sc.accept(b")"):
            sc.sp()
            items.append(sc.atom(what).upper())
    return tuple(items)


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) '  # date-day-fixed "-" date-month "-" date-year
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'  # time SP zone
)


def date_time(sc: Scanner) -> dt.datetime:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE"""
    m = _DATE_TIME.match(sc.data, sc.pos)
    if m is None:
        raise ParseError("Invalid date-time")
    sc.pos = m.end()
    day, mon, year, hh, mm, ss, sign, zh, zm = (g.decode("ascii") for g in m.groups())
    month = _MONTHS.get(mon.upper())
    try:
        if month is None or int(zm) > 59:
            raise ValueError
        offset = dt.timedelta(hours=int(zh), minutes=int(zm))
        tz = dt.timezone(-offset if sign == "-" else offset)
        return dt.datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=tz)
    except ValueError:
        raise ParseError("Invalid date-time") from None


# --- head and dispatch -----------------------------------------------------------


def parse_head(data: bytes) -> tuple[str, str]:
    """``(tag, NAME)`` of a command (``"UID FETCH"`` style); ParseError if malformed.

    Callers reply untagged when not even the tag can be read (``read_tag()``).
    """
    sc = Scanner(data)
    tag = sc.tag()
    if sc.at_end():
        raise ParseError("Missing command")
    sc.sp()
    name = sc.atom("command name").upper()
    if name == "UID":
        sc.sp()
        sub = sc.atom("UID command").upper()
        if sub not in UID_COMMANDS:
            raise ParseError("Unknown UID command")
        name = "UID " + sub
    return tag, name


def read_tag(data: bytes) -> str | None:
    """The tag of a (possibly broken) command, or None if it has none."""
    sc = Scanner(data)
    try:
        tag = sc.tag()
    except ParseError:
        return None
    return tag if sc.peek() in (0x20, -1) else None


def parse_command(raw: RawCommand | bytes) -> c.Command:
    """Parse one complete command (without its final CRLF)."""
    sc = Scanner(raw)
    tag = sc.tag()
    sc.sp()
    name = sc.atom("command name").upper()
    uid = False
    if name == "UID":
        sc.sp()
        name = sc.atom("UID command").upper()
        if name not in UID_COMMANDS:
            raise ParseError("Unknown UID command")
        uid = True
    handler = _HANDLERS.get(name)
    if handler is None:
        raise ParseError("Unknown command")
    command = handler(sc, tag, uid)
    sc.end()
    return command


# --- RFC 3501 6.1 / 6.2 and friends --------------------------------------------------


def _no_args(cls: type[c.Command]) -> Callable[[Scanner, str, bool], c.Command]:
    def parse(sc: Scanner, tag: str, uid: bool) -> c.Command:
        return cls(tag)

    return parse


def _login(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """login = "LOGIN" SP userid SP password; userid = astring; password = astring"""
    sc.sp()
    user = decode_text(sc.astring("user name"), "user name")
    sc.sp()
    password = decode_text(sc.astring("password"), "password")
    return c.Login(tag, user, password)


def decode_base64(data: bytes) -> bytes:
    """base64 (RFC 3501 section 9): strict, padded."""
    if len(data) % 4:
        raise ParseError("Invalid base64")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("Invalid base64") from None


def _authenticate(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")] (RFC 4959 SASL-IR)"""
    sc.sp()
    mechanism = sc.atom("mechanism").upper()
    initial: bytes | None = None
    if not sc.at_end():
        sc.sp()
        token = sc.data[sc.pos :]
        sc.pos = len(sc.data)
        initial = b"" if token == b"=" else decode_base64(token)
    return c.Authenticate(tag, mechanism, initial)


def _id(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """id = "ID" SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil
    (RFC 2971 section 4: at most 30 pairs)."""
    sc.sp()
    if sc.accept(b"NIL"):
        return c.Id(tag, None)
    sc.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while not sc.accept(b")"):
        if params:
            sc.sp()
        key = decode_text(sc.string("ID field"), "ID field")
        sc.sp()
        value = sc.nstring("ID value")
        params.append((key, None if value is None else decode_text(value, "ID value")))
        if len(params) > 30:
            raise ParseError("Too many ID parameters")
    return c.Id(tag, tuple(params))


# --- RFC 3501 6.3 ---------------------------------------------------------------


_Parse = Callable[[Scanner, str, bool], c.Command]


def _select_like(cls: type[c.Select] | type[c.Examine]) -> _Parse:
    def parse(sc: Scanner, tag: str, uid: bool) -> c.Command:
        """select = "SELECT" SP mailbox [select-params] (RFC 7162 section 7: CONDSTORE)"""
        sc.sp()
        name = mailbox(sc)
        condstore = False
        if not sc.at_end():
            sc.sp()
            for param in paren_atoms(sc, "SELECT parameter"):
                if param != "CONDSTORE":
                    raise ParseError(f"Unknown SELECT parameter {param}")
                condstore = True
        return cls(tag, name, condstore)

    return parse


def _one_mailbox(
    cls: type[c.Create] | type[c.Delete] | type[c.Subscribe] | type[c.Unsubscribe],
) -> Callable[[Scanner, str, bool], c.Command]:
    def parse(sc: Scanner, tag: str, uid: bool) -> c.Command:
        sc.sp()
        return cls(tag, mailbox(sc))

    return parse


def _rename(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """rename = "RENAME" SP mailbox SP mailbox"""
    sc.sp()
    old = mailbox(sc)
    sc.sp()
    return c.Rename(tag, old, mailbox(sc))


_LIST_SELECT = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
_LIST_RETURN = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"}
_STATUS_ITEMS = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE"}


def _status_items(sc: Scanner) -> tuple[str, ...]:
    """ "(" status-att *(SP status-att) ")" (RFC 3501; RFC 7162 HIGHESTMODSEQ; RFC 8438 SIZE)"""
    items = paren_atoms(sc, "status item")
    if not items:
        raise ParseError("Empty status item list")
    for item in items:
        if item not in _STATUS_ITEMS:
            raise ParseError(f"Unknown status item {item}")
    return tuple(dict.fromkeys(items))


def _list(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    (RFC 5258 section 6; RFC 5819 STATUS return option; RFC 6154 SPECIAL-USE)."""
    sc.sp()
    extended = False
    select: tuple[str, ...] = ()
    if sc.peek() == 0x28:
        extended = True
        select = paren_atoms(sc, "selection option")
        for opt in select:
            if opt not in _LIST_SELECT:
                raise ParseError(f"Unknown LIST selection option {opt}")
        # RFC 5258 section 3.1: RECURSIVEMATCH needs another selection option
        if "RECURSIVEMATCH" in select and not set(select) - {"RECURSIVEMATCH"}:
            raise ParseError("RECURSIVEMATCH needs another selection option")
        sc.sp()
    reference = _pattern(sc.astring("reference"))
    sc.sp()
    if sc.peek() == 0x28:
        extended = True
        sc.expect(b"(")
        patterns = [_pattern(sc.list_mailbox())]
        while not sc.accept(b")"):
            sc.sp()
            patterns.append(_pattern(sc.list_mailbox()))
    else:
        patterns = [_pattern(sc.list_mailbox())]
    returns: list[str] = []
    status: tuple[str, ...] = ()
    if not sc.at_end():
        sc.sp()
        sc.expect(b"RETURN", "RETURN")
        sc.sp()
        extended = True
        sc.expect(b"(")
        while not sc.accept(b")"):
            if returns:
                sc.sp()
            opt = sc.atom("return option").upper()
            if opt == "STATUS":  # RFC 5819 section 2
                sc.sp()
                status = _status_items(sc)
            elif opt not in _LIST_RETURN:
                raise ParseError(f"Unknown LIST return option {opt}")
            returns.append(opt)
    return c.List(
        tag,
        reference,
        tuple(patterns),
        select=select,
        returns=tuple(dict.fromkeys(returns)),
        status=status,
        extended=extended,
    )


def _lsub(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """lsub = "LSUB" SP mailbox SP list-mailbox"""
    sc.sp()
    reference = _pattern(sc.astring("reference"))
    sc.sp()
    return c.Lsub(tag, reference, _pattern(sc.list_mailbox()))


def _status(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")" """
    sc.sp()
    name = mailbox(sc)
    sc.sp()
    return c.Status(tag, name, _status_items(sc))


def _append_opts(sc: Scanner) -> tuple[tuple[str, ...], dt.datetime | None]:
    """append-opts = [SP flag-list] [SP date-time] (RFC 3502 section 6), then SP."""
    flags: tuple[str, ...] = ()
    date: dt.datetime | None = None
    sc.sp()
    if sc.peek() == 0x28:
        flags = flag_list(sc)
        sc.sp()
    if sc.peek() == 0x22:
        date = date_time(sc)
        sc.sp()
    return flags, date


def _append(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """append = "APPEND" SP mailbox 1*append-message (RFC 3502 MULTIAPPEND);
    append-message = append-opts SP literal.  Message literals are streamed."""
    sc.sp()
    name = mailbox(sc)
    messages: list[c.AppendMessage] = []
    while not sc.at_end() or not messages:
        flags, date = _append_opts(sc)
        if sc.peek() != 0x7B:
            raise ParseError("Expected message literal")
        data = sc.literal()
        if not isinstance(data, StreamedLiteral):
            raise ParseError("Message literal was not streamed")
        messages.append(c.AppendMessage(flags, date, data.size))
    return c.Append(tag, name, tuple(messages))


def parse_append_prefix(raw: RawCommand, offset: int) -> str | None:
    """Validate an APPEND up to the literal whose header starts at ``offset``.

    Returns the mailbox when that literal is a message literal, None when it
    is the mailbox name itself; raises ParseError when the prefix is invalid.
    """
    sc = Scanner(raw)
    sc.tag()
    sc.sp()
    sc.expect(b"APPEND")
    sc.sp()
    if sc.pos == offset:
        return None
    name = mailbox(sc)
    while True:
        _append_opts(sc)
        if sc.pos == offset:
            return name
        if sc.peek() != 0x7B or not isinstance(sc.literal(), StreamedLiteral):
            raise ParseError("Expected message literal")


def _enable(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """enable = "ENABLE" 1*(SP capability) (RFC 5161 section 4)"""
    caps: list[str] = []
    while not sc.at_end() or not caps:
        sc.sp()
        caps.append(sc.atom("capability").upper())
    return c.Enable(tag, tuple(dict.fromkeys(caps)))


# --- RFC 3501 6.4 ---------------------------------------------------------------


def _expunge(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """expunge = "EXPUNGE"; uid-expunge = "UID" SP "EXPUNGE" SP sequence-set (RFC 4315)"""
    if not uid:
        return c.Expunge(tag)
    sc.sp()
    return c.Expunge(tag, sequence_set(sc))


_CHARSETS = ("US-ASCII", "UTF-8")
_ESEARCH_RETURN = {"MIN", "MAX", "ALL", "COUNT", "SAVE"}  # RFC 4731, RFC 5182 SAVE


def _search(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """search = "SEARCH" [search-return-opts] [SP "CHARSET" SP astring] 1*(SP search-key)
    (RFC 3501 section 9; RFC 4731 section 3 search-return-opts)."""
    returns: tuple[str, ...] | None = None
    charset: str | None = None
    sc.sp()
    if sc.accept(b"RETURN "):
        returns = paren_atoms(sc, "search return option")
        for opt in returns:
            if opt not in _ESEARCH_RETURN:
                raise ParseError(f"Unknown search return option {opt}")
        returns = tuple(dict.fromkeys(returns or ("ALL",)))  # RETURN () means ALL
        sc.sp()
    if sc.accept(b"CHARSET "):
        charset = decode_text(sc.astring("charset"), "charset").upper()
        if charset not in _CHARSETS:  # RFC 3501 6.4.4: NO [BADCHARSET]
            raise ParseError(
                "Unsupported charset", status="NO", code="BADCHARSET (" + " ".join(_CHARSETS) + ")"
            )
        sc.sp()
    keys = [search_key(sc, 0)]
    while not sc.at_end():
        sc.sp()
        keys.append(search_key(sc, 0))
    key = keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))
    return c.Search(tag, key, uid=uid, charset=charset, returns=returns)


_MAX_SEARCH_DEPTH = 64
_FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "OLD": ("\\Recent", False),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = {"BCC", "CC", "FROM", "SUBJECT", "TO"}
_DATE_KEYS: dict[str, tuple[bool, str]] = {
    "BEFORE": (False, "BEFORE"),
    "ON": (False, "ON"),
    "SINCE": (False, "SINCE"),
    "SENTBEFORE": (True, "BEFORE"),
    "SENTON": (True, "ON"),
    "SENTSINCE": (True, "SINCE"),
}
_KEYS_WITH_ARGS = frozenset(
    {"KEYWORD", "UNKEYWORD", "HEADER", "BODY", "TEXT", "LARGER", "SMALLER", "UID", "NOT", "OR"}
    | {"MODSEQ"}
    | _HEADER_KEYS
    | set(_DATE_KEYS)
)
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")


def search_date(sc: Scanner) -> dt.date:
    """date = date-text / DQUOTE date-text DQUOTE;
    date-text = date-day "-" date-month "-" date-year"""
    quoted = sc.accept(b'"')
    m = _DATE.match(sc.data, sc.pos)
    if m is None:
        raise ParseError("Invalid date")
    sc.pos = m.end()
    if quoted:
        sc.expect(b'"')
    month = _MONTHS.get(m.group(2).decode("ascii").upper())
    try:
        if month is None:
            raise ValueError
        return dt.date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise ParseError("Invalid date") from None


def _search_string(sc: Scanner) -> str:
    return decode_text(sc.astring("search string"), "search string")


def search_key(sc: Scanner, depth: int) -> c.SearchKey:
    """search-key (RFC 3501 section 9, every key of 6.4.4; RFC 7162 MODSEQ)."""
    if depth > _MAX_SEARCH_DEPTH:
        raise ParseError("Search nested too deeply")
    first = sc.peek()
    if first == 0x28:  # "(" search-key *(SP search-key) ")"
        sc.pos += 1
        keys = [search_key(sc, depth + 1)]
        while not sc.accept(b")"):
            sc.sp()
            keys.append(search_key(sc, depth + 1))
        return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))
    if 0x30 <= first <= 0x39 or first in (0x2A, 0x24):  # sequence-set
        return c.SearchSeq(sequence_set(sc))
    word = sc.atom("search key").upper()
    if word == "ALL":
        return c.SearchAll()
    if word in _FLAG_KEYS:
        name, present = _FLAG_KEYS[word]
        return c.SearchFlag(name, present)
    if word == "NEW":  # RFC 3501 6.4.4: equivalent to (RECENT UNSEEN)
        return c.SearchAnd((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False)))
    if word not in _KEYS_WITH_ARGS:
        raise ParseError(f"Unknown search key {word}")
    sc.sp()
    if word in ("KEYWORD", "UNKEYWORD"):
        return c.SearchFlag(sc.atom("keyword"), word == "KEYWORD")
    if word in _HEADER_KEYS:
        return c.SearchHeader(word, _search_string(sc))
    if word == "HEADER":
        name = _search_string(sc).upper()
        sc.sp()
        return c.SearchHeader(name, _search_string(sc))
    if word in ("BODY", "TEXT"):
        return c.SearchText(word, _search_string(sc))  # type: ignore[arg-type]
    if word in _DATE_KEYS:
        sent, op = _DATE_KEYS[word]
        return c.SearchDate(sent, op, search_date(sc))  # type: ignore[arg-type]
    if word in ("LARGER", "SMALLER"):
        return c.SearchSize(word, sc.number("size"))  # type: ignore[arg-type]
    if word == "UID":
        return c.SearchUid(sequence_set(sc))
    if word == "NOT":
        return c.SearchNot(search_key(sc, depth + 1))
    if word == "OR":
        left = search_key(sc, depth + 1)
        sc.sp()
        return c.SearchOr(left, search_key(sc, depth + 1))
    if word == "MODSEQ":  # RFC 7162 section 3.1.5
        entry: tuple[str, str] | None = None
        if sc.peek() == 0x22:
            entry_name = decode_text(sc.quoted(), "entry name")
            sc.sp()
            entry_type = sc.atom("entry type").lower()
            if entry_type not in ("priv", "shared", "all"):
                raise ParseError("Invalid MODSEQ entry type")
            entry = (entry_name, entry_type)
            sc.sp()
        return c.SearchModSeq(sc.number("mod-sequence", bits64=True), entry)
    raise ParseError(f"Unknown search key {word}")


_FETCH_SIMPLE: dict[str, c.FetchName] = {name: name for name in get_args(c.FetchName)}
_FAST = (c.FetchAtt("FLAGS"), c.FetchAtt("INTERNALDATE"), c.FetchAtt("RFC822.SIZE"))
_MACROS: dict[str, tuple[c.FetchItem, ...]] = {  # RFC 3501 section 6.4.5
    "FAST": _FAST,
    "ALL": (*_FAST, c.FetchAtt("ENVELOPE")),
    "FULL": (*_FAST, c.FetchAtt("ENVELOPE"), c.FetchAtt("BODY")),
}
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")


def _section(sc: Scanner, peek: bool) -> c.BodySection:
    """section = "[" [section-spec] "]"; section-spec = section-msgtext /
    (section-part ["." section-text]); section-part = nz-number *("." nz-number)"""
    part: list[int] = []
    text: c.SectionText | None = None
    fields: tuple[str, ...] = ()
    if sc.peek() != 0x5D:
        if 0x30 <= sc.peek() <= 0x39:
            part.append(sc.number("section part", nonzero=True))
            while sc.peek_bytes(2)[:1] == b"." and sc.peek_bytes(2)[1:].isdigit():
                sc.pos += 1
                part.append(sc.number("section part", nonzero=True))
            if sc.peek() != 0x5D:
                sc.expect(b".")
        if sc.peek() != 0x5D:
            m = _FETCH_NAME.match(sc.data, sc.pos)
            word = m.group().decode("ascii").upper() if m else ""
            if word not in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"):
                raise ParseError("Invalid body section")
            if word == "MIME" and not part:  # section-text: MIME only after a part
                raise ParseError("MIME needs a section part")
            sc.pos += len(word)
            text = word  # type: ignore[assignment]
            if word.startswith("HEADER.FIELDS"):
                sc.sp()
                sc.expect(b"(")
                names = [decode_text(sc.astring("header name"), "header name").upper()]
                while not sc.accept(b")"):
                    sc.sp()
                    names.append(decode_text(sc.astring("header name"), "header name").upper())
                fields = tuple(names)
    sc.expect(b"]")
    partial: tuple[int, int] | None = None
    if sc.accept(b"<"):  # "<" number "." nz-number ">"
        offset = sc.number("partial offset")
        sc.expect(b".")
        length = sc.number("partial length", nonzero=True)
        sc.expect(b">")
        partial = (offset, length)
    return c.BodySection(peek, tuple(part), text, fields, partial)


def fetch_att(sc: Scanner) -> c.FetchItem:
    """fetch-att (RFC 3501 section 9; RFC 7162 adds MODSEQ)"""
    m = _FETCH_NAME.match(sc.data, sc.pos)
    if m is None:
        raise ParseError("Expected fetch attribute")
    name = m.group().decode("ascii").upper()
    sc.pos = m.end()
    if name in ("BODY", "BODY.PEEK") and sc.accept(b"["):
        return _section(sc, name == "BODY.PEEK")
    simple = _FETCH_SIMPLE.get(name)
    if simple is None:
        raise ParseError(f"Unknown fetch attribute {name}")
    return c.FetchAtt(simple)


def _fetch(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers] (RFC 7162 section 7)"""
    sc.sp()
    seqset = sequence_set(sc)
    sc.sp()
    items: list[c.FetchItem] = []
    if sc.accept(b"("):
        items.append(fetch_att(sc))
        while not sc.accept(b")"):
            sc.sp()
            items.append(fetch_att(sc))
    else:
        m = _FETCH_NAME.match(sc.data, sc.pos)
        macro = _MACROS.get(m.group().decode("ascii").upper()) if m else None
        if macro is not None and m is not None:
            sc.pos = m.end()
            items.extend(macro)
        else:
            items.append(fetch_att(sc))
    changedsince: int | None = None
    vanished = False
    if not sc.at_end():
        sc.sp()
        sc.expect(b"(")
        while True:
            word = sc.atom("fetch modifier").upper()
            if word == "CHANGEDSINCE":
                sc.sp()
                changedsince = sc.number("mod-sequence", bits64=True)
            elif word == "VANISHED":
                vanished = True
            else:
                raise ParseError(f"Unknown fetch modifier {word}")
            if sc.accept(b")"):
                break
            sc.sp()
        if vanished and (not uid or changedsince is None):  # RFC 7162 section 3.2.6
            raise ParseError("VANISHED needs UID FETCH with CHANGEDSINCE")
    if uid and c.FetchAtt("UID") not in items:  # RFC 3501 6.4.8: UID is implied
        items.append(c.FetchAtt("UID"))
    return c.Fetch(tag, seqset, tuple(dict.fromkeys(items)), uid, changedsince, vanished)


def _store(sc: Scanner, tag: str, uid: bool) -> c.Command:
    """store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags;
    store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))"""
    sc.sp()
    seqset = sequence_set(sc)
    sc.sp()
    unchangedsince: int | None = None
    if sc.accept(b"("):  # RFC 7162 section 3.1.3
        sc.expect(b"UNCHANGEDSINCE", "UNCHANGEDSINCE")
        sc.sp()
        unchangedsince = sc.number("mod-sequence", bits64=True)
        sc.expect(b")")
        sc.sp()
    mode: str = "REPLACE"
    if sc.accept(b"+"):
        mode = "ADD"
    elif sc.accept(b"-"):
        mode = "REMOVE"
    sc.expect(b"FLAGS", "FLAGS")
    silent = sc.accept(b".SILENT")
    sc.sp()
    if sc.peek() == 0x28:
        flags = flag_list(sc)
    else:
        found = [flag(sc)]
        while not sc.at_end():
            sc.sp()
            found.append(flag(sc))
        flags = tuple(dict.fromkeys(found))
    return c.Store(tag, seqset, mode, flags, silent, uid, unchangedsince)  # type: ignore[arg-type]


def _copy_like(cls: type[c.Copy] | type[c.Move]) -> Callable[[Scanner, str, bool], c.Command]:
    def parse(sc: Scanner, tag: str, uid: bool) -> c.Command:
        """copy = "COPY" SP sequence-set SP mailbox (RFC 6851: move, same shape)"""
        sc.sp()
        seqset = sequence_set(sc)
        sc.sp()
        return cls(tag, seqset, mailbox(sc), uid)

    return parse


_HANDLERS: dict[str, Callable[[Scanner, str, bool], c.Command]] = {
    "CAPABILITY": _no_args(c.Capability),
    "NOOP": _no_args(c.Noop),
    "LOGOUT": _no_args(c.Logout),
    "ID": _id,
    "STARTTLS": _no_args(c.StartTls),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "SELECT": _select_like(c.Select),
    "EXAMINE": _select_like(c.Examine),
    "CREATE": _one_mailbox(c.Create),
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "NAMESPACE": _no_args(c.Namespace),
    "ENABLE": _enable,
    "IDLE": _no_args(c.Idle),
    "CHECK": _no_args(c.Check),
    "CLOSE": _no_args(c.Close),
    "UNSELECT": _no_args(c.Unselect),
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_like(c.Copy),
    "MOVE": _copy_like(c.Move),
}
