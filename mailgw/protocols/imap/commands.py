"""Typed IMAP commands: what ``ImapConnection.next_event()`` hands the server.

Theory of operation
-------------------
Every command of RFC 3501 section 6 and of the extensions we speak is one
frozen dataclass carrying its ``tag`` and its already-parsed arguments, so
command handlers never look at wire syntax:

- mailbox names are Unicode, decoded from modified UTF-7 (RFC 3501 5.1.3),
  with ``INBOX`` in any case normalised to ``"INBOX"`` (RFC 3501 5.1);
- sequence sets are :class:`SequenceSet` (RFC 3501 9 ``sequence-set``;
  ``*`` is :data:`STAR`, RFC 5182 ``$`` is ``SequenceSet.saved``);
- FETCH items are :class:`FetchAtt` / :class:`BodySection`, with the macros
  ALL / FAST / FULL expanded (RFC 3501 6.4.5);
- SEARCH criteria are a tree of ``Search*`` nodes (RFC 3501 6.4.4);
- APPEND message bodies are never part of a command: they arrive before the
  :class:`Append` command as streamed ``AppendData`` events (see
  ``connection.py``), the command only carries each message's flags, date and
  size (RFC 3502 MULTIAPPEND allows several).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

# --- sequence sets (RFC 3501 section 9: sequence-set, seq-range) ------------

STAR = -1  #: ``*``: the largest number in use (RFC 3501 section 9 seq-number)


@dataclass(frozen=True, slots=True)
class SeqRange:
    """``first:last`` as sent (either may be :data:`STAR`; order not normalised)."""

    first: int
    last: int

    def resolve(self, largest: int) -> tuple[int, int]:
        """The inclusive (low, high) range with ``*`` meaning ``largest``."""
        a = largest if self.first == STAR else self.first
        b = largest if self.last == STAR else self.last
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence set; ``saved`` is RFC 5182 ``$`` (the saved search result)."""

    ranges: tuple[SeqRange, ...] = ()
    saved: bool = False

    def contains(self, number: int, largest: int) -> bool:
        for r in self.ranges:
            low, high = r.resolve(largest)
            if low <= number <= high:
                return True
        return False

    def iter(self, largest: int) -> list[int]:
        """Every number in the set, ascending, without duplicates (needs ``largest``)."""
        numbers: set[int] = set()
        for r in self.ranges:
            low, high = r.resolve(largest)
            numbers.update(range(max(low, 1), high + 1))
        return sorted(numbers)


# --- FETCH (RFC 3501 section 6.4.5, 9 fetch-att; RFC 7162 MODSEQ) -----------

FetchName = Literal[
    "ENVELOPE",
    "FLAGS",
    "INTERNALDATE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.SIZE",
    "RFC822.TEXT",
    "BODY",
    "BODYSTRUCTURE",
    "UID",
    "MODSEQ",
]


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """A simple fetch attribute (``BODY`` without a section is the structure)."""

    name: FetchName


SectionText = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]


@dataclass(frozen=True, slots=True)
class BodySection:
    """``BODY[part.text]<offset.length>`` or ``BODY.PEEK[...]`` (RFC 3501 9 section)."""

    peek: bool = False
    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()  # upper-cased header names for HEADER.FIELDS[.NOT]
    partial: tuple[int, int] | None = None  # (offset, length)


FetchItem = FetchAtt | BodySection

# --- SEARCH keys (RFC 3501 section 6.4.4; RFC 7162 3.1.5 MODSEQ) -----------


@dataclass(frozen=True, slots=True)
class SearchAll:
    """ALL (and the empty parenthesised list never parses)."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """ANSWERED/UNANSWERED ... KEYWORD/UNKEYWORD, RECENT, OLD (RECENT false)."""

    flag: str  # "\\Seen", "\\Recent", or a keyword
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """BCC/CC/FROM/SUBJECT/TO value and HEADER field value (field upper-cased)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BODY string (body only) or TEXT string (header and body)."""

    where: Literal["BODY", "TEXT"]
    value: str


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date), SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    sent: bool
    op: Literal["BEFORE", "ON", "SINCE"]
    date: dt.date


@dataclass(frozen=True, slots=True)
class SearchSize:
    op: Literal["LARGER", "SMALLER"]
    size: int


@dataclass(frozen=True, slots=True)
class SearchSeq:
    """A bare sequence set (message sequence numbers)."""

    seqset: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchUid:
    seqset: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """MODSEQ [entry-name entry-type] modseq (RFC 7162 section 3.1.5)."""

    modseq: int
    entry: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """A parenthesised list or the top-level list: every key must match."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchHeader
    | SearchText
    | SearchDate
    | SearchSize
    | SearchSeq
    | SearchUid
    | SearchModSeq
    | SearchNot
    | SearchOr
    | SearchAnd
)

# --- commands ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    tag: str


# Any state (RFC 3501 6.1; RFC 2971 ID)
@dataclass(frozen=True, slots=True)
class Capability(Command):
    pass


@dataclass(frozen=True, slots=True)
class Noop(Command):
    pass


@dataclass(frozen=True, slots=True)
class Logout(Command):
    pass


@dataclass(frozen=True, slots=True)
class Id(Command):
    """ID (RFC 2971); ``params`` is None for ``ID NIL``."""

    params: tuple[tuple[str, str | None], ...] | None = None


# Not authenticated (RFC 3501 6.2; RFC 4959 SASL-IR)
@dataclass(frozen=True, slots=True)
class StartTls(Command):
    pass


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """``initial_response`` is the decoded SASL-IR (b"" for ``=``), None if absent."""

    mechanism: str
    initial_response: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Login(Command):
    userid: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SaslResponse(Command):
    """A client line after ``sasl_continue()``: decoded base64, None for ``*`` (cancel)."""

    data: bytes | None = field(repr=False)


# Authenticated (RFC 3501 6.3 and extensions)
@dataclass(frozen=True, slots=True)
class Select(Command):
    mailbox: str
    condstore: bool = False  # RFC 7162 3.1.8


@dataclass(frozen=True, slots=True)
class Examine(Command):
    mailbox: str
    condstore: bool = False


@dataclass(frozen=True, slots=True)
class Create(Command):
    mailbox: str


@dataclass(frozen=True, slots=True)
class Delete(Command):
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename(Command):
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    mailbox: str


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST (RFC 3501 6.3.8) with RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS.

    ``select`` are upper-cased selection options (SUBSCRIBED, REMOTE,
    RECURSIVEMATCH, SPECIAL-USE); ``returns`` upper-cased return options
    (SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS); ``status`` the STATUS items.
    """

    reference: str
    patterns: tuple[str, ...]
    select: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    extended: bool = False  # the client used LIST-EXTENDED syntax


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Status(Command):
    mailbox: str
    items: tuple[str, ...]  # upper-cased: MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN ...


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND; its bytes came as ``AppendData`` events."""

    flags: tuple[str, ...]
    internal_date: dt.datetime | None
    size: int


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND (RFC 3501 6.3.11), several messages with RFC 3502 MULTIAPPEND."""

    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Namespace(Command):  # RFC 2342
    pass


@dataclass(frozen=True, slots=True)
class Enable(Command):  # RFC 5161
    capabilities: tuple[str, ...]  # upper-cased


@dataclass(frozen=True, slots=True)
class Idle(Command):  # RFC 2177; the connection then waits for DONE
    pass


@dataclass(frozen=True, slots=True)
class Done(Command):
    """DONE ending an IDLE; ``tag`` is the IDLE command's tag."""


# Selected (RFC 3501 6.4 and extensions)
@dataclass(frozen=True, slots=True)
class Check(Command):
    pass


@dataclass(frozen=True, slots=True)
class Close(Command):
    pass


@dataclass(frozen=True, slots=True)
class Unselect(Command):  # RFC 3691
    pass


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE seqset (RFC 4315 UIDPLUS) when ``uids`` is set."""

    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH; ``returns`` is None without RFC 4731 RETURN (...)."""

    key: SearchKey
    uid: bool = False
    charset: str | None = None
    returns: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    seqset: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changedsince: int | None = None  # RFC 7162 3.1.4
    vanished: bool = False  # RFC 7162 3.2.6 (QRESYNC; parsed, not advertised)


@dataclass(frozen=True, slots=True)
class Store(Command):
    seqset: SequenceSet
    mode: Literal["REPLACE", "ADD", "REMOVE"]  # FLAGS, +FLAGS, -FLAGS
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchangedsince: int | None = None  # RFC 7162 3.1.3


@dataclass(frozen=True, slots=True)
class Copy(Command):
    seqset: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move(Command):  # RFC 6851
    seqset: SequenceSet
    mailbox: str
    uid: bool = False
