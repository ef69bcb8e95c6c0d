"""Maildir file names and the :2, info part."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mailgw.store import filenames as fn

LETTERS = st.text(alphabet="DFPRSTabcdefghijklmnopqrstuvwxyzXY", max_size=20)
KEYWORD_NAMES = {fn.KEYWORD_LETTERS[i]: f"kw{i}" for i in range(26)}


def test_new_base_shape_and_uniqueness() -> None:
    a = fn.new_base(1700000000.25, host="mail.example/x:1")
    b = fn.new_base(1700000000.25, host="mail.example/x:1")
    assert a != b
    m = re.fullmatch(r"1700000000\.M250000P\d+Q(\d+)\.mail\.example\\057x\\0721", a)
    assert m, a


def test_escape_host() -> None:
    assert fn.escape_host("a/b:c") == "a\\057b\\072c"


def test_sizes() -> None:
    data = b"a\r\nb\nc\n"
    assert fn.virtual_size(data) == len(data) + 2
    base = fn.with_sizes("1.M2P3Q4.host", 10, 12)
    assert base == "1.M2P3Q4.host,S=10,W=12"
    assert fn.base_sizes(base) == (10, 12)
    assert fn.base_sizes("1.M2P3.host") == (None, None)
    assert fn.base_time(base) == 1
    assert fn.base_time("junk") == 0


def test_uid_assignment_order_is_numeric() -> None:
    names = ["10.M5P1Q1.h", "9.M999999P1Q3.h", "10.M10P1Q2.h", "10.M10P1Q10.h", "junk"]
    assert sorted(names, key=fn.base_order) == [
        "junk",
        "9.M999999P1Q3.h",
        "10.M5P1Q1.h",
        "10.M10P1Q2.h",
        "10.M10P1Q10.h",
    ]


def test_split_and_format() -> None:
    assert fn.split_filename("b,S=1:2,FS") == ("b,S=1", "2,FS")
    assert fn.split_filename("b,S=1") == ("b,S=1", None)
    assert fn.info_letters("2,FS") == "FS"
    assert fn.info_letters("1,xyz") == ""
    assert fn.format_filename("b", "SFa") == "b:2,FSa"


@given(LETTERS)
def test_info_round_trip(letters: str) -> None:
    name = fn.format_filename("1.M1P1Q1.host,S=1,W=1", letters)
    base, info = fn.split_filename(name)
    assert base == "1.M1P1Q1.host,S=1,W=1"
    parsed = fn.info_letters(info)
    assert parsed == "".join(sorted(set(letters)))
    assert list(parsed) == sorted(parsed)  # ASCII order, as Dovecot writes


@given(
    st.frozensets(st.sampled_from(sorted(fn.SYSTEM_FLAGS))),
    st.frozensets(st.sampled_from(fn.KEYWORD_LETTERS)),
    LETTERS,
)
def test_flags_round_trip(flags: frozenset[str], kw_letters: frozenset[str], old: str) -> None:
    letters = fn.encode_letters(old, flags, kw_letters, fn.KEYWORD_LETTERS)
    got_flags, got_keywords = fn.decode_letters(letters, KEYWORD_NAMES)
    assert got_flags == flags
    assert got_keywords == {KEYWORD_NAMES[c] for c in kw_letters}
    # letters we do not manage (P passed, X, Y) survive untouched
    assert {c for c in letters if c in "PXY"} == {c for c in old if c in "PXY"}


def test_flag_letter_map() -> None:
    assert fn.FLAG_TO_LETTER == {
        "\\Draft": "D",
        "\\Flagged": "F",
        "\\Answered": "R",
        "\\Seen": "S",
        "\\Deleted": "T",
    }
    assert fn.decode_letters("P", {}) == (frozenset(), frozenset())
