"""The sans-IO IMAP response parser (mailgw.protocols.imap.response): tables fed
whole and one byte at a time, streamed literals, limits, and a Hypothesis fuzz."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgw.protocols.imap.response import (
    NEED_DATA,
    Capability,
    Continuation,
    ESearch,
    Event,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListResponse,
    LiteralData,
    LiteralEnd,
    LiteralStart,
    Namespace,
    OtherUntagged,
    Recent,
    ResponseCode,
    ResponseError,
    ResponseParser,
    Search,
    Status,
    StatusData,
    Streamed,
    Tagged,
)


def events(data: bytes, *, bytewise: bool = False, **kw: int) -> list[Event]:
    p = ResponseParser(**kw)
    out: list[Event] = []
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for chunk in [*chunks, b""]:
        p.receive_data(chunk)
        while (e := p.next_event()) is not NEED_DATA:
            out.append(e)
    return _merge(out)


def _merge(evs: list[Event]) -> list[Event]:
    """Join consecutive LiteralData (byte-wise feeding splits them)."""
    out: list[Event] = []
    for e in evs:
        if isinstance(e, LiteralData) and out and isinstance(out[-1], LiteralData):
            out[-1] = LiteralData(out[-1].data + e.data)
        else:
            out.append(e)
    return out


TZ2 = timezone(timedelta(hours=2))
TABLE: list[tuple[bytes, list[Event]]] = [
    (b"+ go ahead\r\n", [Continuation("go ahead")]),
    (b"+\r\n", [Continuation("")]),
    (b"a1 OK done\r\n", [Tagged("a1", "OK", None, "done")]),
    (b"a2 NO [TRYCREATE] no such\r\n", [Tagged("a2", "NO", ResponseCode("TRYCREATE"), "no such")]),
    (b"a3 BAD\r\n", [Tagged("a3", "BAD", None, "")]),
    (
        b"A4 OK [APPENDUID 38505 3955:3957,4000] APPEND completed\r\n",
        [
            Tagged(
                "A4",
                "OK",
                ResponseCode("APPENDUID", (38505, (3955, 3956, 3957, 4000))),
                "APPEND completed",
            )
        ],
    ),
    (
        b"A5 OK [COPYUID 7 1:2 5,9] x\r\n",
        [Tagged("A5", "OK", ResponseCode("COPYUID", (7, (1, 2), (5, 9))), "x")],
    ),
    (
        b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n",
        [
            Status(
                "OK",
                ResponseCode("CAPABILITY", frozenset({"IMAP4REV1", "LITERAL+", "AUTH=PLAIN"})),
                "Dovecot ready.",
            )
        ],
    ),
    (b"* BYE shutting down\r\n", [Status("BYE", None, "shutting down")]),
    (
        b"* OK [UIDVALIDITY 3857529045] UIDs\r\n",
        [Status("OK", ResponseCode("UIDVALIDITY", 3857529045), "UIDs")],
    ),
    (b"* OK [UIDNEXT 4392] next\r\n", [Status("OK", ResponseCode("UIDNEXT", 4392), "next")]),
    (
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        [
            Status(
                "OK",
                ResponseCode("PERMANENTFLAGS", frozenset({"\\Deleted", "\\Seen", "\\*"})),
                "Limited",
            )
        ],
    ),
    (
        b"* CAPABILITY IMAP4rev1 MULTIAPPEND APPENDLIMIT=1000\r\n",
        [Capability(frozenset({"IMAP4REV1", "MULTIAPPEND", "APPENDLIMIT=1000"}))],
    ),
    (
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Messages"\r\n',
        [ListResponse("LIST", frozenset({"\\HasNoChildren", "\\Sent"}), "/", b"Sent Messages")],
    ),
    (b"* LSUB () NIL INBOX\r\n", [ListResponse("LSUB", frozenset(), None, b"INBOX")]),
    (
        b'* LIST (\\Noselect) "." {8}\r\nDonn&AOk\r\n',
        [ListResponse("LIST", frozenset({"\\Noselect"}), ".", b"Donn&AOk")],
    ),
    (
        b'* LIST () "\\\\" a\\b ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        [ListResponse("LIST", frozenset(), "\\", b"a\\b", (b"CHILDINFO", (b"SUBSCRIBED",)))],
    ),
    (
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
        [StatusData(b"blurdybloop", {"MESSAGES": 231, "UIDNEXT": 44292})],
    ),
    (b"* SEARCH 2 84 882\r\n", [Search((2, 84, 882))]),
    (b"* SEARCH\r\n", [Search(())]),
    (b"* SEARCH 1 (MODSEQ 9)\r\n", [Search((1,))]),
    (
        b'* ESEARCH (TAG "A1") UID MIN 2 ALL 2:5\r\n',
        [ESearch("A1", True, {"MIN": 2, "ALL": "2:5"})],
    ),
    (b"* FLAGS (\\Answered $Forwarded)\r\n", [Flags(("\\Answered", "$Forwarded"))]),
    (
        b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#public/" "/"))\r\n',
        [Namespace(((b"", "/"),), ((b"~", "/"),), ((b"#shared/", "/"), (b"#public/", "/")))],
    ),
    (b'* NAMESPACE (("INBOX." ".")) NIL NIL\r\n', [Namespace(((b"INBOX.", "."),), (), ())]),
    (b"* 23 EXISTS\r\n* 3 RECENT\r\n* 5 EXPUNGE\r\n", [Exists(23), Recent(3), Expunge(5)]),
    (b"* ID NIL\r\n", [OtherUntagged("ID", b"NIL")]),
    (
        b'* 12 FETCH (UID 7 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 44827)\r\n",
        [
            Fetch(
                12,
                {
                    "UID": 7,
                    "FLAGS": ("\\Seen",),
                    "INTERNALDATE": datetime(
                        1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7))
                    ),
                    "RFC822.SIZE": 44827,
                },
            )
        ],
    ),
    (
        b'* 1 FETCH (INTERNALDATE " 4-May-1998 10:00:00 +0200" '
        b"BODY[HEADER.FIELDS (MESSAGE-ID)] {9}\r\n"
        b"M: <x>\r\n\r UID 3)\r\n",
        [
            Fetch(
                1,
                {
                    "INTERNALDATE": datetime(1998, 5, 4, 10, 0, 0, tzinfo=TZ2),
                    "BODY[HEADER.FIELDS (MESSAGE-ID)]": b"M: <x>\r\n\r",
                    "UID": 3,
                },
            )
        ],
    ),
    (
        b'* 2 FETCH (BODY[]<0> NIL BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1))\r\n',
        [
            Fetch(
                2, {"BODY[]<0>": None, "BODY": (b"TEXT", b"PLAIN", None, None, None, b"7BIT", 3, 1)}
            )
        ],
    ),
]


@pytest.mark.parametrize(("wire", "expected"), TABLE)
@pytest.mark.parametrize("bytewise", [False, True])
def test_table(wire: bytes, expected: list[Event], bytewise: bool) -> None:
    assert events(wire, bytewise=bytewise) == expected


@pytest.mark.parametrize("bytewise", [False, True])
def test_large_literal_streams(bytewise: bool) -> None:
    body = b"x" * 300 + b"\r\n"
    wire = b"* 4 FETCH (UID 9 BODY[] {%d}\r\n%s)\r\na1 OK done\r\n" % (len(body), body)
    evs = events(wire, bytewise=bytewise, inline_literal_max=100)
    assert evs == [
        LiteralStart(len(body)),
        LiteralData(body),
        LiteralEnd(),
        Fetch(4, {"UID": 9, "BODY[]": Streamed(0, len(body))}),
        Tagged("a1", "OK", None, "done"),
    ]


def test_streamed_literal_is_not_buffered() -> None:
    p = ResponseParser(inline_literal_max=10, max_response=1000)
    p.receive_data(b"* 1 FETCH (BODY[] {5000}\r\n")
    assert p.next_event() == LiteralStart(5000)
    for _ in range(5):
        p.receive_data(b"y" * 1000)
        assert p.next_event() == LiteralData(b"y" * 1000)
        assert p.buffered == 0
    assert p.next_event() == LiteralEnd()
    p.receive_data(b" UID 2)\r\n")
    assert p.next_event() == Fetch(1, {"BODY[]": Streamed(0, 5000), "UID": 2})


@pytest.mark.parametrize(
    "wire",
    [
        b"a1 MAYBE x\r\n",
        b"* 1 FETCH (UID x)\r\n",
        b"* 1 FETCH (UID 1\r\n",
        b'* 1 FETCH (INTERNALDATE "31-Feb-2000 00:00:00 +0000")\r\n',
        b"* OK [UIDNEXT abc] x\r\n",
        b"* OK [APPENDUID 1 1:99999999999] x\r\n",
        b'* LIST (\\Noselect) "/" "unterminated\r\n',
        b"* 1 FETCH (BODY[] {5}\r\nab",  # EOF inside a literal
        b"* OK partial",  # EOF inside a line
        b'* NAMESPACE (("" "/")) NIL\r\n',
    ],
)
def test_errors(wire: bytes) -> None:
    with pytest.raises(ResponseError):
        events(wire)


def test_line_limit_and_sticky_error() -> None:
    p = ResponseParser(max_line=64)
    p.receive_data(b"* OK " + b"a" * 100)
    with pytest.raises(ResponseError, match="longer than 64"):
        p.next_event()
    p.receive_data(b"\r\n")
    with pytest.raises(ResponseError):
        p.next_event()


def test_response_size_limit() -> None:
    p = ResponseParser(max_line=100, max_response=200, inline_literal_max=150)
    p.receive_data(b"* 1 FETCH (BODY[] {150}\r\n" + b"z" * 150 + b" X {150}\r\n")
    with pytest.raises(ResponseError, match="longer than 200"):
        while p.next_event() is not NEED_DATA:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=40))
def test_fuzz_any_bytes(data: bytes, inline: int) -> None:
    for bytewise in (False, True):
        with contextlib.suppress(ResponseError):
            events(data, bytewise=bytewise, inline_literal_max=inline, max_line=128)


_TOKENS = st.sampled_from(
    [
        b"* ",
        b"a1 ",
        b"OK ",
        b"FETCH ",
        b"(",
        b")",
        b"{3}\r\n",
        b"{40}\r\n",
        b"UID ",
        b"1 ",
        b"BODY[] ",
        b'"x" ',
        b"NIL ",
        b"[",
        b"]",
        b"\\Seen ",
        b"\r\n",
        b"LIST ",
        b"NAMESPACE ",
        b"APPENDUID 1 2:3",
        b"FLAGS ",
        b"INTERNALDATE ",
        b'" 1-Jan-2000 00:00:00 +0000"',
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=30))
def test_fuzz_grammar_shaped(tokens: list[bytes]) -> None:
    with contextlib.suppress(ResponseError):
        events(b"".join(tokens), inline_literal_max=10)
