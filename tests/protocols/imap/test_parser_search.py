"""Byte transcripts: SEARCH / UID SEARCH (every RFC 3501 6.4.4 key, ESEARCH, MODSEQ)."""

from __future__ import annotations

import datetime as dt

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import ContinuationNeeded

from .helpers import check, one

F = c.SearchFlag
D = dt.date(1994, 2, 1)

KEYS: list[tuple[bytes, c.SearchKey]] = [
    (b"ALL", c.SearchAll()),
    (b"ANSWERED", F("\\Answered")),
    (b"DELETED", F("\\Deleted")),
    (b"DRAFT", F("\\Draft")),
    (b"FLAGGED", F("\\Flagged")),
    (b"SEEN", F("\\Seen")),
    (b"RECENT", F("\\Recent")),
    (b"OLD", F("\\Recent", False)),
    (b"NEW", c.SearchAnd((F("\\Recent"), F("\\Seen", False)))),
    (b"UNANSWERED", F("\\Answered", False)),
    (b"UNDELETED", F("\\Deleted", False)),
    (b"UNDRAFT", F("\\Draft", False)),
    (b"UNFLAGGED", F("\\Flagged", False)),
    (b"UNSEEN", F("\\Seen", False)),
    (b"KEYWORD $Junk", F("$Junk")),
    (b"UNKEYWORD $Junk", F("$Junk", False)),
    (b'BCC "a b"', c.SearchHeader("BCC", "a b")),
    (b"CC x", c.SearchHeader("CC", "x")),
    (b"FROM smith", c.SearchHeader("FROM", "smith")),
    (b"SUBJECT {4+}\r\nhi 1", c.SearchHeader("SUBJECT", "hi 1")),
    (b"TO x", c.SearchHeader("TO", "x")),
    (b'HEADER x-spam ""', c.SearchHeader("X-SPAM", "")),
    (b"BODY b", c.SearchText("BODY", "b")),
    (b"TEXT t", c.SearchText("TEXT", "t")),
    (b"BEFORE 1-Feb-1994", c.SearchDate(False, "BEFORE", D)),
    (b'ON "01-feb-1994"', c.SearchDate(False, "ON", D)),
    (b"SINCE 1-FEB-1994", c.SearchDate(False, "SINCE", D)),
    (b"SENTBEFORE 1-Feb-1994", c.SearchDate(True, "BEFORE", D)),
    (b"SENTON 1-Feb-1994", c.SearchDate(True, "ON", D)),
    (b"SENTSINCE 1-Feb-1994", c.SearchDate(True, "SINCE", D)),
    (b"LARGER 1024", c.SearchSize("LARGER", 1024)),
    (b"SMALLER 10", c.SearchSize("SMALLER", 10)),
    (b"UID 1:*", c.SearchUid(one(1, c.STAR))),
    (b"2,4", c.SearchSeq(c.SequenceSet((c.SeqRange(2, 2), c.SeqRange(4, 4))))),
    (b"$", c.SearchSeq(c.SequenceSet(saved=True))),
    (b"NOT SEEN", c.SearchNot(F("\\Seen"))),
    (b"OR SEEN 3", c.SearchOr(F("\\Seen"), c.SearchSeq(one(3)))),
    (b"(SEEN)", F("\\Seen")),
    (b"(SEEN DRAFT)", c.SearchAnd((F("\\Seen"), F("\\Draft")))),
    (b"MODSEQ 620162338", c.SearchModSeq(620162338)),
    (
        b'MODSEQ "/flags/\\\\draft" all 620162338',
        c.SearchModSeq(620162338, ("/flags/\\draft", "all")),
    ),
]


@pytest.mark.parametrize(("text", "key"), KEYS, ids=[k[0].decode() for k in KEYS])
def test_every_key(text: bytes, key: c.SearchKey) -> None:
    check(b"a SEARCH " + text + b"\r\n", [c.Search("a", key)])


def test_rfc3501_example_and_nesting() -> None:
    check(
        b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n'
        b"b UID SEARCH OR (UNSEEN LARGER 5) NOT (OR DELETED 1:3)\r\n",
        [
            c.Search(
                "A282",
                c.SearchAnd(
                    (
                        F("\\Flagged"),
                        c.SearchDate(False, "SINCE", D),
                        c.SearchNot(c.SearchHeader("FROM", "Smith")),
                    )
                ),
            ),
            c.Search(
                "b",
                c.SearchOr(
                    c.SearchAnd((F("\\Seen", False), c.SearchSize("LARGER", 5))),
                    c.SearchNot(c.SearchOr(F("\\Deleted"), c.SearchSeq(one(1, 3)))),
                ),
                uid=True,
            ),
        ],
    )


def test_charset_utf8_literal_decoded() -> None:
    word = "Grüße".encode()
    check(
        b"a SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n%s\r\n" % (len(word), word),
        [
            ContinuationNeeded("a", len(word)),
            c.Search("a", c.SearchHeader("SUBJECT", "Grüße"), charset="UTF-8"),
        ],
    )


def test_charset_unsupported_is_no_badcharset() -> None:
    check(
        b"a SEARCH CHARSET KOI8-R ALL\r\nb SEARCH CHARSET us-ascii ALL\r\n",
        [
            b"a NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset\r\n",
            c.Search("b", c.SearchAll(), charset="US-ASCII"),
        ],
    )


def test_esearch_return_options() -> None:
    check(
        b"a SEARCH RETURN (MIN MAX COUNT) UNSEEN\r\nb UID SEARCH RETURN () ALL\r\n"
        b"c SEARCH RETURN (SAVE) CHARSET UTF-8 ALL\r\nd SEARCH RETURN (FOO) ALL\r\n",
        [
            c.Search("a", F("\\Seen", False), returns=("MIN", "MAX", "COUNT")),
            c.Search("b", c.SearchAll(), uid=True, returns=("ALL",)),
            c.Search("c", c.SearchAll(), charset="UTF-8", returns=("SAVE",)),
            b"d BAD Unknown search return option FOO\r\n",
        ],
    )


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (b"", b"Expected search key"),
        (b"FOO", b"Unknown search key FOO"),
        (b"SINCE 31-Feb-1994", b"Invalid date"),
        (b"SINCE 1-Foo-1994", b"Invalid date"),
        (b"SINCE 1994-02-01", b"Invalid date"),
        (b"OR SEEN", b"Missing argument"),
        (b"(SEEN", b"Missing argument"),
        (b"()", b"Expected search key"),
        (b"LARGER x", b"Expected size"),
        (b'MODSEQ "/flags/x" bogus 1', b"Invalid MODSEQ entry type"),
        (b"(" * 100 + b"ALL" + b")" * 100, b"Search nested too deeply"),
        (b"NOT " * 100 + b"ALL", b"Search nested too deeply"),
    ],
)
def test_search_errors(text: bytes, reply: bytes) -> None:
    check(b"a SEARCH " + text + b"\r\n", [b"a BAD " + reply + b"\r\n"])
