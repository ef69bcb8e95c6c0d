"""IMAP SEARCH evaluation: a typed key tree over a mailbox -> matching messages.

Theory of operation
-------------------
Pure code: the session hands :func:`evaluate` the parsed key (``commands.Search*``
nodes) and the selected mailbox as :class:`SearchMessage` objects.  Cheap
attributes (flags, size, dates, UID, MODSEQ) are plain fields; header and body
text are *lazy* accessors, so a flag-only search never opens a message file.

The key is compiled once into predicates, each with a cost (0 = metadata,
1 = one header field, 2 = every header, 3 = body).  The terms of an AND
(a parenthesised list or the top-level list, RFC 3501 6.4.4 "multiple keys
are ANDed") run cheapest first and stop at the first miss; OR tries its
cheaper side first.  ``UNSEEN TEXT foo`` therefore loads only unseen bodies.
Per message, the folded header text and body text are computed at most once.

Key semantics (RFC 3501 section 6.4.4 unless noted):

- sequence sets: ``*`` is the largest sequence number (``max_seq``), for UID
  the largest UID (``max_uid``); ranges are unordered (``5:*`` covers the last
  message even past it, RFC 3501 section 9 seq-range).  RFC 5182 ``$`` in
  either position means the saved result, kept as UIDs (``saved_uids``; none
  saved = the empty set, RFC 5182 section 2.1);
- flags: system flags against ``flags``, ``\\Recent`` against ``recent``;
  KEYWORD/UNKEYWORD compare case-insensitively (Dovecot does);
  NEW = RECENT UNSEEN, OLD = NOT RECENT (expanded by the parser);
- LARGER n: RFC822.SIZE > n; SMALLER n: < n;
- BEFORE/ON/SINCE: the internal date's calendar date in the server's time zone
  (``tz``, default the local zone), "disregarding time and timezone" of the
  search date; SINCE is "on or after".  Dovecot does the same on Maildir
  (INTERNALDATE is the file mtime, shown in the local zone);
- SENTBEFORE/SENTON/SENTSINCE: the calendar date *as written* in the first
  Date: field, ignoring its time and zone (RFC 3501; Dovecot and imaptest's
  search-date tests agree).  A missing or unparsable Date: never matches, so
  ``NOT SENTBEFORE d`` does;
- BCC/CC/FROM/SUBJECT/TO/HEADER: substring of any decoded field of that name;
  an empty string matches when the field is present (RFC 3501 HEADER; Dovecot
  applies the same to the address keys).  BODY: the decoded body text; TEXT:
  the decoded header lines and the body.  Matching is case-insensitive after
  NFC + casefold (``textsearch.fold``).  CHARSET is checked by the parser
  (NO [BADCHARSET (US-ASCII UTF-8)], RFC 3501 6.4.4), strings arrive as str;
- MODSEQ [entry type] n (RFC 7162 section 3.1.5): message mod-sequence >= n.
  Per-flag mod-sequences are not kept, so the entry uses the message's
  (allowed: "the server MUST use the mod-sequence of the whole message").

Results: :func:`search` returns a :class:`SearchOutcome`; ``search_modseq`` is
the ``(MODSEQ n)`` of the untagged SEARCH response (RFC 7162 3.1.5, only when
the key has MODSEQ and something matched), :func:`esearch_items` the RFC 4731
ESEARCH data (MIN/MAX/ALL/COUNT, plus MODSEQ per RFC 4731 section 3.2) and
:func:`save_uids` what RFC 5182 SAVE stores.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable, Collection, Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Protocol

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.textsearch import LazyContent, fold, headers_text, parse_headers

__all__ = [
    "ContentMessage",
    "SearchMessage",
    "SearchOutcome",
    "esearch_items",
    "evaluate",
    "evaluate_uids",
    "save_uids",
    "search",
    "sequence_set_string",
    "uses_modseq",
    "wants_esearch",
]


class SearchMessage(Protocol):
    """What SEARCH needs of one message; the string accessors should be lazy."""

    @property
    def seq(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def flags(self) -> Set[str]: ...  # system flags: "\\Seen", "\\Answered", ...
    @property
    def keywords(self) -> Set[str]: ...
    @property
    def size(self) -> int: ...  # RFC822.SIZE
    @property
    def internaldate(self) -> float | dt.datetime: ...  # epoch seconds or datetime
    @property
    def modseq(self) -> int: ...
    @property
    def recent(self) -> bool: ...

    def header(self, name: str) -> list[str]: ...  # decoded values, every occurrence
    def headers_raw(self) -> bytes: ...
    def body_text(self) -> str: ...


@dataclass(eq=False)
class ContentMessage:
    """A ready :class:`SearchMessage`: metadata fields plus a :class:`LazyContent`.

    ``ContentMessage(seq, info.uid, info.flags, info.keywords, info.size,
    info.internaldate, modseq, recent, LazyContent(lambda: path.read_bytes()))``
    """

    seq: int
    uid: int
    flags: Set[str]
    keywords: Set[str]
    size: int
    internaldate: float | dt.datetime
    modseq: int = 0
    recent: bool = False
    content: LazyContent = field(default_factory=lambda: LazyContent(lambda: b""))

    def header(self, name: str) -> list[str]:
        return self.content.header(name)

    def headers_raw(self) -> bytes:
        return self.content.headers_raw()

    def body_text(self) -> str:
        return self.content.body_text()


# --- per-message view (memoises the folded text of one message) -----------------


class _View:
    __slots__ = ("_body", "_headers", "_sent", "m")

    def __init__(self, m: SearchMessage) -> None:
        self.m = m
        self._headers: str | None = None
        self._body: str | None = None
        self._sent: dt.date | bool | None = False  # False = not computed yet

    def headers(self) -> str:
        if self._headers is None:
            text = getattr(self.m, "content", None)
            if isinstance(text, LazyContent):
                self._headers = fold(text.headers_text())
            else:
                self._headers = fold(headers_text(parse_headers(self.m.headers_raw())))
        return self._headers

    def body(self) -> str:
        if self._body is None:
            self._body = fold(self.m.body_text())
        return self._body

    def sent_date(self) -> dt.date | None:
        if self._sent is False:
            self._sent = _parse_sent_date(self.m.header("Date"))
        return self._sent  # type: ignore[return-value]


def _parse_sent_date(values: list[str]) -> dt.date | None:
    if not values:
        return None
    try:
        parsed = email.utils.parsedate_tz(values[0])
        if parsed is None:
            return None
        return dt.date(parsed[0], parsed[1], parsed[2])  # as written: zone ignored
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def _internal_date(value: float | dt.datetime, tz: dt.tzinfo | None) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.date()  # naive: already server-local
        return value.astimezone(tz).date()
    try:
        return dt.datetime.fromtimestamp(value, tz).date()
    except (OverflowError, OSError, ValueError):
        return dt.date.min if value < 0 else dt.date.max


# --- compilation --------------------------------------------------------------------

_Pred = Callable[[_View], bool]

_COST_META, _COST_FIELD, _COST_HEADERS, _COST_BODY = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class _Limits:
    max_seq: int
    max_uid: int
    saved: frozenset[int]
    tz: dt.tzinfo | None


def _date_op(op: str, have: dt.date, want: dt.date) -> bool:
    if op == "BEFORE":
        return have < want
    if op == "ON":
        return have == want
    return have >= want  # SINCE: "within or later than the specified date"


def _compile(key: c.SearchKey, lim: _Limits) -> tuple[int, _Pred]:
    if isinstance(key, c.SearchAll):
        return _COST_META, lambda v: True
    if isinstance(key, c.SearchFlag):
        return _COST_META, _flag_pred(key)
    if isinstance(key, c.SearchSize):
        n = key.size
        if key.op == "LARGER":
            return _COST_META, lambda v: v.m.size > n
        return _COST_META, lambda v: v.m.size < n
    if isinstance(key, c.SearchSeq):
        s = key.seqset
        if s.saved:
            return _COST_META, lambda v: v.m.uid in lim.saved
        return _COST_META, lambda v: s.contains(v.m.seq, lim.max_seq)
    if isinstance(key, c.SearchUid):
        u = key.seqset
        if u.saved:
            return _COST_META, lambda v: v.m.uid in lim.saved
        return _COST_META, lambda v: u.contains(v.m.uid, lim.max_uid)
    if isinstance(key, c.SearchModSeq):
        floor = key.modseq
        return _COST_META, lambda v: v.m.modseq >= floor
    if isinstance(key, c.SearchDate):
        op, want = key.op, key.date
        if key.sent:

            def sent(v: _View) -> bool:
                have = v.sent_date()
                return have is not None and _date_op(op, have, want)

            return _COST_FIELD, sent
        return _COST_META, lambda v: _date_op(op, _internal_date(v.m.internaldate, lim.tz), want)
    if isinstance(key, c.SearchHeader):
        return _COST_FIELD, _header_pred(key.field, fold(key.value))
    if isinstance(key, c.SearchText):
        needle = fold(key.value)
        if not needle:
            return _COST_META, lambda v: True
        if key.where == "BODY":
            return _COST_BODY, lambda v: needle in v.body()
        return _COST_BODY, lambda v: needle in v.headers() or needle in v.body()
    if isinstance(key, c.SearchNot):
        cost, inner = _compile(key.key, lim)
        return cost, lambda v: not inner(v)
    if isinstance(key, c.SearchOr):
        (ca, a), (cb, b) = sorted(
            (_compile(key.left, lim), _compile(key.right, lim)), key=lambda t: t[0]
        )
        return max(ca, cb), lambda v: a(v) or b(v)
    if isinstance(key, c.SearchAnd):
        parts = sorted((_compile(k, lim) for k in key.keys), key=lambda t: t[0])
        preds = tuple(p for _, p in parts)
        return max((cost for cost, _ in parts), default=0), lambda v: all(p(v) for p in preds)
    raise TypeError(f"not a search key: {key!r}")


_SYSTEM = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}


def _flag_pred(key: c.SearchFlag) -> _Pred:
    want = key.present
    name = key.flag.lower()
    if name == "\\recent":
        return lambda v: v.m.recent is want
    if name.startswith("\\"):
        canonical = _SYSTEM.get(name)
        return lambda v: (canonical in v.m.flags) is want

    def keyword(v: _View) -> bool:
        kws = v.m.keywords
        found = key.flag in kws or any(k.lower() == name for k in kws)
        return found is want

    return keyword


def _header_pred(name: str, needle: str) -> _Pred:
    if not needle:
        return lambda v: bool(v.m.header(name))
    return lambda v: any(needle in fold(value) for value in v.m.header(name))


# --- evaluation -----------------------------------------------------------------------


def _select(
    key: c.SearchKey,
    messages: Sequence[SearchMessage],
    max_seq: int | None,
    max_uid: int | None,
    saved_uids: Collection[int] | None,
    tz: dt.tzinfo | None,
) -> list[SearchMessage]:
    lim = _Limits(
        max_seq=max_seq if max_seq is not None else max((m.seq for m in messages), default=0),
        max_uid=max_uid if max_uid is not None else max((m.uid for m in messages), default=0),
        saved=frozenset(saved_uids or ()),
        tz=tz,
    )
    _, pred = _compile(key, lim)
    return [m for m in messages if pred(_View(m))]


def evaluate(
    key: c.SearchKey,
    messages: Sequence[SearchMessage],
    *,
    max_seq: int | None = None,
    max_uid: int | None = None,
    saved_uids: Collection[int] | None = None,
    tz: dt.tzinfo | None = None,
) -> list[int]:
    """Sequence numbers of the messages matching ``key``, in mailbox order.

    ``max_seq`` / ``max_uid`` are what ``*`` means (default: the largest in
    ``messages``); ``saved_uids`` is the RFC 5182 ``$`` result; ``tz`` the zone
    of internal dates (default local)."""
    return [m.seq for m in _select(key, messages, max_seq, max_uid, saved_uids, tz)]


def evaluate_uids(
    key: c.SearchKey,
    messages: Sequence[SearchMessage],
    *,
    max_seq: int | None = None,
    max_uid: int | None = None,
    saved_uids: Collection[int] | None = None,
    tz: dt.tzinfo | None = None,
) -> list[int]:
    """Like :func:`evaluate` but the UIDs (UID SEARCH, RFC 3501 6.4.8)."""
    return [m.uid for m in _select(key, messages, max_seq, max_uid, saved_uids, tz)]


def uses_modseq(key: c.SearchKey) -> bool:
    """Whether the key contains MODSEQ (RFC 7162 3.1.5: then report ``(MODSEQ n)``)."""
    if isinstance(key, c.SearchModSeq):
        return True
    if isinstance(key, c.SearchNot):
        return uses_modseq(key.key)
    if isinstance(key, c.SearchOr):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, c.SearchAnd):
        return any(uses_modseq(k) for k in key.keys)
    return False


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """The result of one SEARCH / UID SEARCH, ascending."""

    numbers: tuple[int, ...]  # sequence numbers, or UIDs for UID SEARCH
    uids: tuple[int, ...]  # parallel to numbers
    modseqs: tuple[int, ...]  # parallel to numbers
    modseq_key: bool  # the key contained MODSEQ

    @property
    def search_modseq(self) -> int | None:
        """The ``(MODSEQ n)`` of ``* SEARCH`` (RFC 7162 3.1.5), None if not sent."""
        return max(self.modseqs) if self.modseq_key and self.modseqs else None


def search(
    key: c.SearchKey,
    messages: Sequence[SearchMessage],
    *,
    uid: bool = False,
    max_seq: int | None = None,
    max_uid: int | None = None,
    saved_uids: Collection[int] | None = None,
    tz: dt.tzinfo | None = None,
) -> SearchOutcome:
    """Evaluate ``key``; numbers are UIDs when ``uid`` (UID SEARCH)."""
    found = _select(key, messages, max_seq, max_uid, saved_uids, tz)
    return SearchOutcome(
        numbers=tuple(m.uid if uid else m.seq for m in found),
        uids=tuple(m.uid for m in found),
        modseqs=tuple(m.modseq for m in found),
        modseq_key=uses_modseq(key),
    )


# --- ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) -----------------------------------


def sequence_set_string(numbers: Iterable[int]) -> str:
    """``1:3,5,7:8``: ascending, duplicates dropped, runs compressed (RFC 4731 ALL)."""
    out: list[str] = []
    ordered = sorted(set(numbers))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _minmax_only(returns: Collection[str]) -> bool:
    opts = set(returns)
    return bool(opts & {"MIN", "MAX"}) and not opts & {"ALL", "COUNT"}


def wants_esearch(returns: Collection[str] | None) -> bool:
    """Whether an ``* ESEARCH`` response is due: RETURN given and not SAVE alone
    (RFC 5182 section 2.1)."""
    return returns is not None and bool(set(returns) - {"SAVE"})


def esearch_items(outcome: SearchOutcome, returns: Collection[str]) -> list[tuple[str, int | str]]:
    """The data of ``* ESEARCH (TAG "t") [UID] ...`` for ``serializer.esearch``.

    RFC 4731 section 3.1: MIN, MAX and ALL are left out when nothing matched,
    COUNT is always sent; ALL is a compressed sequence set.  With a MODSEQ key
    and a match, MODSEQ is the highest mod-sequence of the returned MIN/MAX
    messages when only those were asked, else of every match (RFC 4731 3.2)."""
    opts = set(returns)
    items: list[tuple[str, int | str]] = []
    nums = outcome.numbers
    if nums:
        if "MIN" in opts:
            items.append(("MIN", nums[0]))
        if "MAX" in opts:
            items.append(("MAX", nums[-1]))
        if "ALL" in opts:
            items.append(("ALL", sequence_set_string(nums)))
    if "COUNT" in opts:
        items.append(("COUNT", len(nums)))
    if outcome.modseq_key and nums:
        if _minmax_only(opts):
            picked = [outcome.modseqs[0]] if "MIN" in opts else []
            picked += [outcome.modseqs[-1]] if "MAX" in opts else []
            items.append(("MODSEQ", max(picked)))
        else:
            items.append(("MODSEQ", max(outcome.modseqs)))
    return items


def save_uids(outcome: SearchOutcome, returns: Collection[str] | None) -> list[int] | None:
    """The UIDs RFC 5182 SAVE stores as ``$``, or None when SAVE was not asked.

    With MIN and/or MAX but neither ALL nor COUNT only those messages are saved
    (RFC 5182 section 2.1); otherwise every match."""
    if returns is None or "SAVE" not in returns:
        return None
    if not outcome.uids or not _minmax_only(returns):
        return list(outcome.uids)
    picked = {outcome.uids[0]} if "MIN" in returns else set()
    if "MAX" in returns:
        picked.add(outcome.uids[-1])
    return sorted(picked)
