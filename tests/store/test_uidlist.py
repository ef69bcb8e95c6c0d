"""dovecot-uidlist and dovecot-keywords parsing and formatting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailgw.store.uidlist import (
    UidList,
    UidRecord,
    format_keywords,
    format_records,
    format_uidlist,
    parse_keywords,
    parse_uidlist,
)

DOVECOT_WRITTEN = (
    b"3 V1795436117 N3 G97b79834532e046be716000083ecc375\n"
    b"1 :1795436123.M119526P5928.vm,S=19,W=22\n"
    b"2 :1795436123.M121371P5928.vm,S=19,W=22\n"
)


def test_parse_dovecot_file() -> None:
    ul = parse_uidlist(DOVECOT_WRITTEN)
    assert ul is not None
    assert (ul.uidvalidity, ul.next_uid, ul.guid) == (
        1795436117,
        3,
        "97b79834532e046be716000083ecc375",
    )
    assert [(r.uid, r.key) for r in ul.records] == [
        (1, "1795436123.M119526P5928.vm,S=19,W=22"),
        (2, "1795436123.M121371P5928.vm,S=19,W=22"),
    ]
    assert format_uidlist(ul) == DOVECOT_WRITTEN


def test_appended_lines_beyond_header_next_uid() -> None:
    # Dovecot appends records without touching N: next UID is max(N, last + 1)
    ul = parse_uidlist(b"3 V5 N1 Gabc\n1 :a\n2 :b\n")
    assert ul is not None
    assert ul.effective_next_uid() == 3
    assert format_uidlist(ul).startswith(b"3 V5 N3 Gabc\n")


def test_extensions_and_unknown_header_fields_are_kept() -> None:
    data = b"3 V7 N9 Gabc M12\n4 W100 S90 :key4\n"
    ul = parse_uidlist(data)
    assert ul is not None
    assert ul.header_ext == ["M12"]
    assert ul.records == [UidRecord(4, "key4", "W100 S90")]
    assert format_uidlist(ul) == data


def test_partial_and_broken_lines() -> None:
    ul = parse_uidlist(b"3 V7 N9 Gabc\n1 :a\nx :junk\n3 :c\n2 :out-of-order\n4 :d/e\n5 :partial")
    assert ul is not None
    assert [(r.uid, r.key) for r in ul.records] == [(1, "a"), (3, "c")]


def test_version_1() -> None:
    ul = parse_uidlist(b"1 1234 5\n1 a:2,S\n3 b\n")
    assert ul is not None
    assert (ul.uidvalidity, ul.effective_next_uid()) == (1234, 5)
    assert [r.key for r in ul.records] == ["a:2,S", "b"]


def test_unusable_headers() -> None:
    for data in (b"", b"3 V1 N1", b"2 V1 N1\n", b"3 N5 Gx\n", b"junk\n", b"1 1\n"):
        assert parse_uidlist(data) is None, data


keys = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/:"),
    min_size=1,
    max_size=30,
)


@given(
    st.integers(1, 2**32 - 1),
    st.lists(st.tuples(st.integers(1, 1000), keys), max_size=20, unique_by=lambda t: t[0]),
)
def test_round_trip(uidvalidity: int, recs: list[tuple[int, str]]) -> None:
    records = [UidRecord(uid, key) for uid, key in sorted(recs)]
    ul = UidList(uidvalidity=uidvalidity, next_uid=1, records=records)
    data = format_uidlist(ul)
    back = parse_uidlist(data)
    assert back is not None
    assert back.records == records
    assert back.uidvalidity == uidvalidity
    assert back.effective_next_uid() == ul.effective_next_uid()
    assert parse_uidlist(data + format_records([UidRecord(2000, "new")])).records[-1].uid == 2000  # type: ignore[union-attr]


def test_keywords() -> None:
    data = b"0 $Label1\n1 foo\n"
    assert parse_keywords(data) == {0: "$Label1", 1: "foo"}
    assert format_keywords({1: "foo", 0: "$Label1"}) == data
    assert parse_keywords(b"26 toomany\nx y\n3\n2 ok\n") == {2: "ok"}
