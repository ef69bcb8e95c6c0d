"""SEARCH evaluation: every RFC 3501 6.4.4 key over a synthetic mailbox, ESEARCH, laziness."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.parser import parse_command
from mailgw.protocols.imap.searcheval import (
    ContentMessage,
    esearch_items,
    evaluate,
    evaluate_uids,
    save_uids,
    search,
    sequence_set_string,
    uses_modseq,
    wants_esearch,
)
from mailgw.protocols.imap.textsearch import (
    LazyContent,
    body_text,
    decode_encoded_words,
    parse_headers,
    split_message,
)

UTC = dt.UTC


def parsed(text: str) -> c.Search:
    cmd = parse_command(b"t " + text.encode("utf-8"))
    assert isinstance(cmd, c.Search)
    return cmd


def key(text: str) -> c.SearchKey:
    return parsed("SEARCH " + text).key


def ts(y: int, m: int, d: int, h: int = 12) -> float:
    return dt.datetime(y, m, d, h, tzinfo=UTC).timestamp()


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


MSG1 = crlf(
    "From: =?iso-8859-1?q?J=F6rg?= <jorg@example.com>\n"
    "To: alice@example.org\n"
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?Q?_aus_K=C3=B6ln?=\n"
    "Date: Wed, 10 Jan 2024 23:30:00 -0800\n"
    "\n"
    "Hello world, this is the first message.\n"
)
MSG2 = crlf(
    "From: bob@example.net\n"
    "To: alice@example.org\n"
    "Cc: Dave <dave@example.net>\n"
    "Subject: Menu\n"
    "Date: Thu, 11 Jan 2024 08:00:00 +0000\n"
    "X-Spam: yes\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="b1"\n'
    "\n"
    "preamble is not searched\n"
    "--b1\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Caf=C3=A9 cr=C3=A8me br=C3=BB=\n"
    "l=C3=A9e\n"
    "--b1\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n" + base64.encodebytes("<p>Straße</p>".encode()).decode() + "--b1--\n"
)
MSG3 = crlf(
    "From: carol@example.com\n"
    "Bcc: carol@example.com\n"
    "Subject: attachments\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="outer"\n'
    "\n"
    "--outer\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "naïve résumé\n"
    "--outer\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: base64\n"
    "\n" + base64.encodebytes(b"secretword").decode() + "--outer\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: Inner subject\n"
    "From: inner@example.com\n"
    "\n"
    "inner body text\n"
    "--outer--\n"
)
MSG4 = crlf("Subject: Plain\nDate: not a date\nX-Empty:\n\n")
MSG5 = crlf(
    "From: =?utf-8?q?=E6=97=A5=E6=9C=AC?= <nihon@example.jp>\n"
    "Subject: =?utf-8?q?=E6=97=A5=E6=9C=AC=E8=AA=9E?=\n"
    "Date: 2 Feb 2024 01:00:00 +0900\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: base64\n"
    "\n" + base64.encodebytes("Olá mundo".encode("iso-8859-1")).decode()
)

SPECS = [
    # seq, uid, flags, keywords, size, internaldate, modseq, recent, raw
    (1, 10, {"\\Seen", "\\Answered"}, {"$Forwarded"}, 100, ts(2024, 1, 10), 5, False, MSG1),
    (2, 11, {"\\Flagged", "\\Deleted"}, set(), 2000, ts(2024, 1, 11), 9, True, MSG2),
    (3, 12, {"\\Draft"}, set(), 500, ts(2024, 1, 12), 3, True, MSG3),
    (4, 20, set(), set(), 50, ts(2024, 2, 1), 12, False, MSG4),
    (5, 21, {"\\Seen"}, {"Work"}, 1000, ts(2024, 2, 2), 7, False, MSG5),
]


def _constant(raw: bytes) -> Callable[[], bytes]:
    return lambda: raw


def mailbox() -> list[ContentMessage]:
    out = []
    for seq, uid, flags, kws, size, idate, modseq, recent, raw in SPECS:
        out.append(
            ContentMessage(
                seq,
                uid,
                frozenset(flags),
                frozenset(kws),
                size,
                idate,
                modseq,
                recent,
                LazyContent(_constant(raw)),
            )
        )
    return out


TABLE: list[tuple[str, list[int]]] = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("ANSWERED", [1]),
    ("UNANSWERED", [2, 3, 4, 5]),
    ("DELETED", [2]),
    ("UNDELETED", [1, 3, 4, 5]),
    ("DRAFT", [3]),
    ("UNDRAFT", [1, 2, 4, 5]),
    ("FLAGGED", [2]),
    ("UNFLAGGED", [1, 3, 4, 5]),
    ("SEEN", [1, 5]),
    ("UNSEEN", [2, 3, 4]),
    ("RECENT", [2, 3]),
    ("OLD", [1, 4, 5]),
    ("NEW", [2, 3]),
    ("KEYWORD $Forwarded", [1]),
    ("KEYWORD work", [5]),  # keywords compare case-insensitively
    ("KEYWORD nosuch", []),
    ("UNKEYWORD Work", [1, 2, 3, 4]),
    ("LARGER 500", [2, 5]),
    ("SMALLER 500", [1, 4]),
    ("LARGER 0", [1, 2, 3, 4, 5]),
    ("BEFORE 11-Jan-2024", [1]),
    ("ON 11-Jan-2024", [2]),
    ("SINCE 11-Jan-2024", [2, 3, 4, 5]),
    ("SINCE 3-Feb-2024", []),
    # SENT*: date as written in Date:, zone ignored; msg 3 has none, msg 4 is garbage
    ("SENTON 10-Jan-2024", [1]),
    ("SENTBEFORE 11-Jan-2024", [1]),
    ("SENTSINCE 11-Jan-2024", [2, 5]),
    ("SENTON 2-Feb-2024", [5]),
    ("NOT SENTBEFORE 11-Jan-2024", [2, 3, 4, 5]),
    # address and header keys on decoded fields
    ('FROM "jörg"', [1]),
    ('FROM "JÖRG"', [1]),
    ('FROM "example.net"', [2]),
    ('FROM "日本"', [5]),
    ("TO alice", [1, 2]),
    ("CC dave", [2]),
    ("BCC carol", [3]),
    ('SUBJECT "grüße aus köln"', [1]),
    ('SUBJECT "GRÜSSE"', [1]),  # full case folding: ß == ss
    ('SUBJECT "日本語"', [5]),
    ("SUBJECT inner", []),  # the attached message's subject is body, not header
    ("HEADER X-Spam yes", [2]),
    ('HEADER X-Spam ""', [2]),
    ('HEADER X-Empty ""', [4]),
    ('HEADER Date ""', [1, 2, 4, 5]),
    ('FROM ""', [1, 2, 3, 5]),
    ("HEADER X-Spam no", []),
    # bodies: decoded text parts only
    ("BODY hello", [1]),
    ('BODY "café crème brûlée"', [2]),  # quoted-printable with a soft line break
    ('BODY "straße"', [2]),  # base64 text/html
    ("BODY STRASSE", [2]),
    ('BODY "naïve"', [3]),  # 8bit UTF-8
    ('BODY "inner subject"', [3]),  # headers of message/rfc822 belong to the body
    ('BODY "inner body"', [3]),
    ("BODY secretword", []),  # application/octet-stream is not text
    ("BODY preamble", []),
    ('BODY "olá"', [5]),  # base64 iso-8859-1
    ("BODY alice", []),  # BODY never looks at headers
    ('BODY ""', [1, 2, 3, 4, 5]),
    ("TEXT alice", [1, 2]),
    ("TEXT hello", [1]),
    ('TEXT "köln"', [1]),
    ("TEXT x-empty", [4]),
    # sequence sets, UID, saved result
    ("1", [1]),
    ("2:4", [2, 3, 4]),
    ("4:2", [2, 3, 4]),
    ("*", [5]),
    ("3:*", [3, 4, 5]),
    ("1,3,5", [1, 3, 5]),
    ("9", []),
    ("UID 11", [2]),
    ("UID 12:20", [3, 4]),
    ("UID *", [5]),
    ("UID 30:*", [5]),  # RFC 3501 9: n:* always includes the last message
    ("UID 13:19", []),
    # MODSEQ (RFC 7162 3.1.5)
    ("MODSEQ 7", [2, 4, 5]),
    ('MODSEQ "/flags/\\\\seen" all 9', [2, 4]),
    ("MODSEQ 13", []),
    # boolean structure
    ("NOT SEEN", [2, 3, 4]),
    ("NOT NOT SEEN", [1, 5]),
    ("OR SEEN FLAGGED", [1, 2, 5]),
    ("OR (SEEN ANSWERED) DRAFT", [1, 3]),
    ("NOT OR SEEN FLAGGED", [3, 4]),
    ("OR NOT SEEN NOT LARGER 100", [1, 2, 3, 4]),
    ("(UNSEEN LARGER 100) TEXT alice", [2]),
    ("SEEN UNSEEN", []),
    ("OR OR 1 2 OR 3 UID 21", [1, 2, 3, 5]),
]


@pytest.mark.parametrize(("query", "expected"), TABLE)
def test_key_table(query: str, expected: list[int]) -> None:
    assert evaluate(key(query), mailbox(), tz=UTC) == expected


@pytest.mark.parametrize(("query", "expected"), TABLE)
def test_key_table_uid_variant(query: str, expected: list[int]) -> None:
    uid_of = {spec[0]: spec[1] for spec in SPECS}
    assert evaluate_uids(key(query), mailbox(), tz=UTC) == [uid_of[s] for s in expected]


def test_internaldate_uses_server_timezone() -> None:
    # 2024-01-10 23:30 UTC is 11 Jan in UTC+2 and 10 Jan in UTC.
    box = mailbox()[:1]
    box[0].internaldate = dt.datetime(2024, 1, 10, 23, 30, tzinfo=UTC).timestamp()
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert evaluate(key("ON 10-Jan-2024"), box, tz=UTC) == [1]
    assert evaluate(key("ON 11-Jan-2024"), box, tz=plus2) == [1]
    # datetime values: aware ones are converted, naive ones taken as server-local
    box[0].internaldate = dt.datetime(2024, 1, 10, 23, 30, tzinfo=UTC)
    assert evaluate(key("ON 11-Jan-2024"), box, tz=plus2) == [1]
    box[0].internaldate = dt.datetime(2024, 1, 10, 23, 30)
    assert evaluate(key("ON 10-Jan-2024"), box, tz=plus2) == [1]


def test_saved_result_dollar() -> None:
    box = mailbox()
    assert evaluate(key("$"), box, saved_uids={11, 21, 99}) == [2, 5]
    assert evaluate(key("UID $"), box, saved_uids={12}) == [3]
    assert evaluate(key("$"), box) == []  # nothing saved: the empty set
    assert evaluate(key("NOT $"), box, saved_uids={10}) == [2, 3, 4, 5]


def test_star_and_limits() -> None:
    box = mailbox()
    assert evaluate(key("*"), [], tz=UTC) == []
    assert evaluate(key("UID *"), []) == []
    assert evaluate(key("1:*"), []) == []
    assert evaluate(key("NOT *"), []) == []
    assert evaluate(key("ALL"), []) == []
    # explicit limits: the session's view of the mailbox may be larger than the list
    assert evaluate(key("*"), box, max_seq=9) == []
    assert evaluate(key("UID 21:*"), box, max_uid=30) == [5]


def test_nesting_or_not() -> None:
    box = mailbox()
    everything = {1, 2, 3, 4, 5}
    for q in ("SEEN", "TEXT alice", "OR DRAFT LARGER 999", "UID 11:20", "SENTON 10-Jan-2024"):
        inner = set(evaluate(key(q), box, tz=UTC))
        assert set(evaluate(key(f"NOT ({q})"), box, tz=UTC)) == everything - inner
        assert set(evaluate(key(f"OR ({q}) NOT ({q})"), box, tz=UTC)) == everything
        assert evaluate(key(f"({q}) NOT ({q})"), box, tz=UTC) == []


# --- laziness -------------------------------------------------------------------------


def test_metadata_searches_never_load() -> None:
    box = mailbox()
    queries = [
        "ALL",
        "UNSEEN FLAGGED",
        "OR DELETED NOT DRAFT",
        "LARGER 10 SMALLER 5000",
        "UID 1:* 2:*",
        "BEFORE 1-Jan-2030 SINCE 1-Jan-2000 ON 1-Jan-2024",
        "KEYWORD Work UNKEYWORD $Junk NEW OLD RECENT",
        "MODSEQ 1",
        'BODY ""',
    ]
    for q in queries:
        evaluate(key(q), box, tz=UTC)
    assert [m.content.loads for m in box] == [0, 0, 0, 0, 0]


@pytest.mark.parametrize("query", ["UNSEEN TEXT nomatch", "TEXT nomatch UNSEEN", "(TEXT x) UNSEEN"])
def test_cheap_terms_first(query: str) -> None:
    box = mailbox()
    evaluate(key(query), box, tz=UTC)
    # only the unseen messages (2, 3, 4) were read, each once
    assert [m.content.loads for m in box] == [0, 1, 1, 1, 0]


def test_or_short_circuits_cheap_side_first() -> None:
    box = mailbox()
    assert evaluate(key("OR BODY nomatch SEEN"), box) == [1, 5]
    assert [m.content.loads for m in box] == [0, 1, 1, 1, 0]


def test_text_and_body_share_one_load() -> None:
    box = mailbox()
    assert evaluate(key('TEXT hello BODY "first message" SUBJECT "köln"'), box) == [1]
    assert all(m.content.loads <= 1 for m in box)


# --- ESEARCH / SEARCHRES / CONDSTORE results ------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "text"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2, 3], "1:3"),
        ([5, 1, 2, 3, 9, 10, 3], "1:3,5,9:10"),
        ([4, 6, 8], "4,6,8"),
    ],
)
def test_sequence_set_string(numbers: list[int], text: str) -> None:
    assert sequence_set_string(numbers) == text


def test_esearch_items() -> None:
    box = mailbox()
    out = search(key("UNSEEN"), box)
    assert out.numbers == (2, 3, 4)
    assert out.search_modseq is None
    assert esearch_items(out, ("MIN", "MAX", "COUNT", "ALL")) == [
        ("MIN", 2),
        ("MAX", 4),
        ("ALL", "2:4"),
        ("COUNT", 3),
    ]
    uid_out = search(key("UNSEEN"), box, uid=True)
    assert uid_out.numbers == (11, 12, 20)
    assert esearch_items(uid_out, ("ALL",)) == [("ALL", "11:12,20")]
    line = serializer.esearch("t", True, esearch_items(uid_out, ("MIN", "ALL")))
    assert line == b'* ESEARCH (TAG "t") UID MIN 11 ALL 11:12,20\r\n'
    none = search(key("KEYWORD nosuch"), box)
    assert esearch_items(none, ("MIN", "MAX", "ALL", "COUNT")) == [("COUNT", 0)]
    assert esearch_items(none, ("MIN",)) == []


def test_modseq_reporting() -> None:
    box = mailbox()
    out = search(key("MODSEQ 4"), box)  # seqs 1 2 4 5, modseqs 5 9 12 7
    assert out.numbers == (1, 2, 4, 5)
    assert out.search_modseq == 12
    assert serializer.search(out.numbers, out.search_modseq) == b"* SEARCH 1 2 4 5 (MODSEQ 12)\r\n"
    # RFC 4731 3.2: MIN/MAX only -> highest of the returned messages
    assert esearch_items(out, ("MIN",))[-1] == ("MODSEQ", 5)
    assert esearch_items(out, ("MAX",))[-1] == ("MODSEQ", 7)
    assert esearch_items(out, ("MIN", "MAX"))[-1] == ("MODSEQ", 7)
    assert esearch_items(out, ("MIN", "COUNT"))[-1] == ("MODSEQ", 12)
    empty = search(key("MODSEQ 99"), box)
    assert empty.search_modseq is None
    assert esearch_items(empty, ("COUNT",)) == [("COUNT", 0)]
    assert uses_modseq(key("OR SEEN NOT (MODSEQ 3 DRAFT)"))
    assert not uses_modseq(key("OR SEEN NOT (UID 3 DRAFT)"))


def test_searchres_save() -> None:
    box = mailbox()
    out = search(key("UNSEEN"), box)
    assert save_uids(out, None) is None
    assert save_uids(out, ("ALL",)) is None
    assert save_uids(out, ("SAVE",)) == [11, 12, 20]
    assert save_uids(out, ("SAVE", "MIN")) == [11]
    assert save_uids(out, ("SAVE", "MIN", "MAX")) == [11, 20]
    assert save_uids(out, ("SAVE", "MAX", "COUNT")) == [11, 12, 20]
    assert save_uids(search(key("KEYWORD nosuch"), box), ("SAVE", "MIN")) == []
    assert wants_esearch(parsed("SEARCH RETURN (SAVE) ALL").returns) is False
    assert wants_esearch(parsed("SEARCH RETURN (SAVE MIN) ALL").returns) is True
    assert wants_esearch(parsed("SEARCH RETURN () ALL").returns) is True
    assert wants_esearch(parsed("SEARCH ALL").returns) is False


def test_badcharset_is_the_parsers_job() -> None:
    from mailgw.protocols.imap.lexer import ParseError

    with pytest.raises(ParseError) as info:
        parse_command(b"t SEARCH CHARSET KOI8-R TEXT x")
    assert info.value.status == "NO"
    assert info.value.code == "BADCHARSET (US-ASCII UTF-8)"
    assert parsed("SEARCH CHARSET utf-8 TEXT x").charset == "UTF-8"


# --- text extraction ----------------------------------------------------------------


def test_decode_encoded_words() -> None:
    assert decode_encoded_words("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"  # RFC 2047 6.2
    assert decode_encoded_words("x =?utf-8?q?a?= y") == "x a y"
    assert decode_encoded_words("=?ISO-8859-1*de?Q?M=FCller?=") == "Müller"  # RFC 2231
    assert decode_encoded_words("=?x-unknown?q?abc?=") == "abc"
    assert decode_encoded_words("=?utf-8?b?w7w?=") == "ü"  # missing padding
    assert decode_encoded_words("no words =? here") == "no words =? here"


def test_headers_and_bodies_of_broken_input() -> None:
    assert split_message(b"A: 1\n\nbody") == (b"A: 1", b"body")
    assert split_message(b"\r\nbody") == (b"", b"body")
    assert split_message(b"A: 1") == (b"A: 1", b"")
    assert parse_headers(b" orphan\r\nno colon\r\nA: x\xff\r\n b\r\n") == [("A", "x\ufffd b")]
    for raw in (
        b"",
        b"\xff\xfe\x00",
        b'Content-Type: multipart/mixed; boundary="x"\n\n--x\nContent-Type: text/plain;'
        b" charset=bogus\nContent-Transfer-Encoding: base64\n\n!!!*\n",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n",
    ):
        assert isinstance(body_text(raw), str)
    lazy = LazyContent(lambda: b"Subject: a\n\tb\nSubject: c\n\nxyz")
    assert lazy.header("subject") == ["a\tb", "c"]
    assert lazy.body_text() == "xyz"
    assert lazy.loads == 1
