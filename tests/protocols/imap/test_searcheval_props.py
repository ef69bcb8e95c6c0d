"""Hypothesis: random SEARCH key trees over random mailboxes never raise, and the
boolean structure behaves (NOT = complement, OR = union, AND = intersection)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.searcheval import (
    ContentMessage,
    esearch_items,
    evaluate,
    evaluate_uids,
    search,
    sequence_set_string,
)
from mailgw.protocols.imap.textsearch import LazyContent, body_text, parse_headers

UTC = dt.UTC
WORDS = ["alice", "Grüße", "日本", "x", "", "HELLO", "=?utf-8?q?", "é"]
words = st.sampled_from(WORDS) | st.text(max_size=4)


@st.composite
def raw_messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    w1, w2 = draw(words), draw(words)
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return f"Subject: {w1}\r\nFrom: {w2} <a@b>\r\nDate: {w1}\r\n\r\n{w2}\r\n".encode()
    if kind == 2:
        b64 = base64.b64encode(w1.encode()).decode()
        return (
            f'Content-Type: multipart/mixed; boundary="{w2}"\r\n\r\n--{w2}\r\n'
            f"Content-Type: text/plain; charset={w1 or 'utf-8'}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--{w2}--\r\n"
        ).encode("utf-8", "surrogatepass")
    b64 = base64.b64encode(w2.encode()).decode()
    return f"Subject: =?utf-8?b?{b64}?= {w1}\r\nDate: 1 Jan 2024 00:00 +1400\r\n\r\n".encode()


def _constant(raw: bytes) -> Callable[[], bytes]:
    return lambda: raw


@st.composite
def mailboxes(draw: st.DrawFn) -> list[ContentMessage]:
    n = draw(st.integers(0, 6))
    uid = 0
    out = []
    for seq in range(1, n + 1):
        uid += draw(st.integers(1, 3))
        raw = draw(raw_messages())
        out.append(
            ContentMessage(
                seq=seq,
                uid=uid,
                flags=frozenset(draw(st.sets(st.sampled_from(["\\Seen", "\\Deleted", "\\Draft"])))),
                keywords=frozenset(draw(st.sets(st.sampled_from(["Work", "$Junk"])))),
                size=draw(st.integers(0, 100)),
                internaldate=draw(st.floats(0, 2e9, allow_nan=False)),
                modseq=draw(st.integers(1, 9)),
                recent=draw(st.booleans()),
                content=LazyContent(_constant(raw)),
            )
        )
    return out


seq_numbers = st.integers(1, 12) | st.just(c.STAR)
seqsets = st.builds(
    c.SequenceSet,
    st.lists(st.builds(c.SeqRange, seq_numbers, seq_numbers), min_size=1, max_size=3).map(tuple),
    st.sampled_from([False, False, True]),
)
dates = st.dates(dt.date(1969, 1, 1), dt.date(2040, 1, 1))
flags = st.sampled_from(
    ["\\Seen", "\\Answered", "\\Deleted", "\\Draft", "\\Recent", "\\Flagged", "Work", "work", "x"]
)
leaves: st.SearchStrategy[c.SearchKey] = st.one_of(
    st.just(c.SearchAll()),
    st.builds(c.SearchFlag, flags, st.booleans()),
    st.builds(c.SearchHeader, st.sampled_from(["FROM", "SUBJECT", "DATE", "X-NONE"]), words),
    st.builds(c.SearchText, st.sampled_from(["BODY", "TEXT"]), words),
    st.builds(c.SearchDate, st.booleans(), st.sampled_from(["BEFORE", "ON", "SINCE"]), dates),
    st.builds(c.SearchSize, st.sampled_from(["LARGER", "SMALLER"]), st.integers(0, 120)),
    st.builds(c.SearchSeq, seqsets),
    st.builds(c.SearchUid, seqsets),
    st.builds(c.SearchModSeq, st.integers(0, 10)),
)
keys: st.SearchStrategy[c.SearchKey] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(c.SearchNot, inner),
        st.builds(c.SearchOr, inner, inner),
        st.builds(c.SearchAnd, st.lists(inner, min_size=1, max_size=4).map(tuple)),
    ),
    max_leaves=8,
)
saved = st.frozensets(st.integers(1, 20), max_size=4)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(keys, mailboxes(), saved)
def test_not_is_complement(key: c.SearchKey, box: list[ContentMessage], sv: frozenset[int]) -> None:
    hits = evaluate(key, box, saved_uids=sv, tz=UTC)
    misses = evaluate(c.SearchNot(key), box, saved_uids=sv, tz=UTC)
    assert hits == sorted(hits)
    assert set(hits).isdisjoint(misses)
    assert sorted(hits + misses) == [m.seq for m in box]
    uid_of = {m.seq: m.uid for m in box}
    assert evaluate_uids(key, box, saved_uids=sv, tz=UTC) == [uid_of[s] for s in hits]


@PROPS
@given(keys, keys, mailboxes(), saved)
def test_or_and(
    a: c.SearchKey, b: c.SearchKey, box: list[ContentMessage], sv: frozenset[int]
) -> None:
    ha = set(evaluate(a, box, saved_uids=sv, tz=UTC))
    hb = set(evaluate(b, box, saved_uids=sv, tz=UTC))
    assert set(evaluate(c.SearchOr(a, b), box, saved_uids=sv, tz=UTC)) == ha | hb
    assert set(evaluate(c.SearchAnd((a, b)), box, saved_uids=sv, tz=UTC)) == ha & hb
    assert set(evaluate(c.SearchAnd((b, a)), box, saved_uids=sv, tz=UTC)) == ha & hb


@PROPS
@given(keys, mailboxes(), st.sets(st.sampled_from(["MIN", "MAX", "ALL", "COUNT"])))
def test_esearch_consistent(key: c.SearchKey, box: list[ContentMessage], opts: set[str]) -> None:
    out = search(key, box, uid=True, tz=UTC)
    items = dict(esearch_items(out, opts))
    if "COUNT" in opts:
        assert items["COUNT"] == len(out.numbers)
    if "ALL" in opts and out.numbers:
        expanded: list[int] = []
        for part in str(items["ALL"]).split(","):
            lo, _, hi = part.partition(":")
            expanded.extend(range(int(lo), int(hi or lo) + 1))
        assert expanded == list(out.numbers)
    if out.numbers and "MIN" in opts:
        assert items["MIN"] == min(out.numbers)


@given(st.lists(st.integers(1, 50), max_size=20))
def test_sequence_set_string_roundtrip(numbers: list[int]) -> None:
    text = sequence_set_string(numbers)
    back: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition(":")
        assert not hi or int(hi) > int(lo)
        back.update(range(int(lo), int(hi or lo) + 1))
    assert back == set(numbers)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_text_extraction_never_raises(raw: bytes) -> None:
    assert isinstance(body_text(raw), str)
    assert all(isinstance(v, str) for _, v in parse_headers(raw))
