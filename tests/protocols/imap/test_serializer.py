"""Response serializer: status responses, untagged data, quoted vs literal strings."""

from __future__ import annotations

import pytest

from mailgw.protocols.errors import LocalProtocolError
from mailgw.protocols.imap import serializer as s
from mailgw.protocols.imap.serializer import Atom, Literal, Raw


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("plain", b'"plain"'),
        ("", b'""'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("Grüße", b"{7}\r\nGr\xc3\xbc\xc3\x9fe"),
        (b"a\r\nb", b"{4}\r\na\r\nb"),
        (b"nul\x00", b"{4}\r\nnul\x00"),
        ("x" * 1025, b"{1025}\r\n" + b"x" * 1025),
        ("x" * 1024, b'"' + b"x" * 1024 + b'"'),
    ],
)
def test_string_quoted_or_literal(value: str | bytes, wire: bytes) -> None:
    assert s.string(value) == wire


def test_value_model() -> None:
    assert s.value(None) == b"NIL"
    assert s.value(42) == b"42"
    assert s.value([Atom("\\Seen"), "x", None, [1, 2]]) == b'(\\Seen "x" NIL (1 2))'
    assert s.value(Literal(b"ab")) == b"{2}\r\nab"
    assert s.value(Raw(b"BODY[]")) == b"BODY[]"
    assert s.value(()) == b"()"
    for bad in (True, -1):
        with pytest.raises(LocalProtocolError):
            s.value(bad)


def test_astring_and_mailbox() -> None:
    assert s.astring("INBOX") == b"INBOX"
    assert s.astring("NIL") == b'"NIL"'
    assert s.astring("a b") == b'"a b"'
    assert s.astring("") == b'""'
    assert s.mailbox("Données") == b"Donn&AOk-es"
    assert s.mailbox("Sent Items") == b'"Sent Items"'


def test_status_responses() -> None:
    assert s.tagged("a1", "OK", "SELECT completed", "READ-WRITE") == (
        b"a1 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert s.tagged("a1", "NO", "Nope") == b"a1 NO Nope\r\n"
    assert s.untagged("OK", "Ready", "UIDVALIDITY 3857529045") == (
        b"* OK [UIDVALIDITY 3857529045] Ready\r\n"
    )
    assert s.bye("Logging out") == b"* BYE Logging out\r\n"
    assert s.continuation() == b"+ Ready for literal data\r\n"
    assert s.continuation_base64(b"") == b"+ \r\n"
    assert s.continuation_base64(b"hi") == b"+ aGk=\r\n"


@pytest.mark.parametrize(
    "call",
    [
        lambda: s.tagged("a", "OK", "two\r\nlines"),
        lambda: s.tagged("a", "BYE", "x"),
        lambda: s.tagged("a b", "OK", "x"),
        lambda: s.untagged("OK", "x", "BAD]CODE"),
        lambda: s.exists(-1),
        lambda: s.expunge(0),
    ],
)
def test_misuse_is_local_error(call: object) -> None:
    with pytest.raises(LocalProtocolError):
        call()  # type: ignore[operator]


def test_untagged_data() -> None:
    assert s.capability(["IMAP4rev1", "IDLE"]) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
    assert s.flags(["\\Seen", "$Junk"]) == b"* FLAGS (\\Seen $Junk)\r\n"
    assert s.exists(23) == b"* 23 EXISTS\r\n"
    assert s.recent(0) == b"* 0 RECENT\r\n"
    assert s.expunge(3) == b"* 3 EXPUNGE\r\n"
    assert s.search([2, 84, 882]) == b"* SEARCH 2 84 882\r\n"
    assert s.search([], modseq=5) == b"* SEARCH (MODSEQ 5)\r\n"
    assert s.esearch("A1", True, [("MIN", 2), ("ALL", "2:5,9")]) == (
        b'* ESEARCH (TAG "A1") UID MIN 2 ALL 2:5,9\r\n'
    )
    assert s.list_(["\\HasNoChildren"], ".", "Données") == (
        b'* LIST (\\HasNoChildren) "." Donn&AOk-es\r\n'
    )
    assert s.list_(["\\Noselect"], None, "", kind="LSUB") == b'* LSUB (\\Noselect) NIL ""\r\n'
    assert s.status("INBOX", [("MESSAGES", 3), ("UIDNEXT", 9)]) == (
        b"* STATUS INBOX (MESSAGES 3 UIDNEXT 9)\r\n"
    )
    assert s.enabled(["CONDSTORE"]) == b"* ENABLED CONDSTORE\r\n"


def test_fetch_response_picks_literal_for_unsafe_strings() -> None:
    body = b"Subject: x\r\n\r\nhi\r\n"
    out = s.fetch(
        12,
        [
            ("UID", 7),
            ("FLAGS", [Atom("\\Seen")]),
            ("INTERNALDATE", "17-Jul-1996 02:44:25 -0700"),
            (Raw(b"BODY[HEADER]"), body),
            ("ENVELOPE", [None, "subj", None]),
        ],
    )
    assert out == (
        b'* 12 FETCH (UID 7 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"BODY[HEADER] {18}\r\nSubject: x\r\n\r\nhi\r\n"
        b' ENVELOPE (NIL "subj" NIL))\r\n'
    )
