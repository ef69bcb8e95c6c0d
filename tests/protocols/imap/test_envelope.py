"""envelope: address parsing, Dovecot string forms, field rules."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.envelope import (
    Address,
    envelope,
    nstring,
    nstring_nolf,
    parse_addresses,
    string_for_humans,
)
from mailgw.protocols.imap.mime import parse


def A(name: bytes | None, route: bytes | None, mbox: bytes | None, dom: bytes | None) -> Address:
    return Address(name, route, mbox, dom)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"a@b.c", [A(None, None, b"a", b"b.c")]),
        (b"Name <a@b>", [A(b"Name", None, b"a", b"b")]),
        (b'"Last, First" <a@b>', [A(b"Last, First", None, b"a", b"b")]),
        (b'"q\\"x" <a@b>', [A(b'q"x', None, b"a", b"b")]),
        (b"a@b (Comment)", [A(b"Comment", None, b"a", b"b")]),
        (b"=?utf-8?q?x?= <a@b>", [A(b"=?utf-8?q?x?=", None, b"a", b"b")]),
        (b"<@r1,@r2:a@b>", [A(None, b"@r1,@r2", b"a", b"b")]),
        (
            b"G: a@b, c@d;, e@f",
            [
                A(None, None, b"G", None),
                A(None, None, b"a", b"b"),
                A(None, None, b"c", b"d"),
                A(None, None, None, None),
                A(None, None, b"e", b"f"),
            ],
        ),
        (
            b"undisclosed-recipients:;",
            [A(None, None, b"undisclosed-recipients", None), A(None, None, None, None)],
        ),
        (b"justlocal", [A(None, None, b"justlocal", b"MISSING_DOMAIN")]),
        (b"", []),
        (b"  ,  ", []),
    ],
)
def test_parse_addresses(value: bytes, expected: list[Address]) -> None:
    assert parse_addresses(value) == expected


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, b"NIL"),
        (b"plain", b'"plain"'),
        (b'a"b', b'"a\\"b"'),
        (b'""""""', b'{6}\r\n""""""'),  # more than four quoted-specials
        (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
        (b"", b'""'),
    ],
)
def test_nstring(value: bytes | None, wire: bytes) -> None:
    assert serializer.value(nstring(value)) == wire


def test_nstring_nolf_unfolds() -> None:
    assert serializer.value(nstring_nolf(b"a\r\n b")) == b'"a b"'


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (b"Hello world", b'"Hello world"'),
        (b"A   folded\r\n\tsubject ", b"{16}\r\nA folded subject"),
        (b'say "hi"', b'{8}\r\nsay "hi"'),
        (b"  \t ", b'""'),
        (b"nul\x00", b"{4}\r\nnul\x80"),
    ],
)
def test_string_for_humans(value: bytes, wire: bytes) -> None:
    assert serializer.value(string_for_humans(value)) == wire


def test_envelope_defaults_last_wins_and_nil() -> None:
    msg = parse(
        b"From: F <f@x>\r\nSubject: one\r\nSubject: two\r\nTo:\r\nSender:\r\n"
        b"Message-ID:\r\n <id@x>\r\n\r\n"
    )
    wire = serializer.value(envelope(msg.root))
    assert wire == (
        b'(NIL "two" (("F" NIL "f" "x")) (("F" NIL "f" "x")) (("F" NIL "f" "x"))'
        b' NIL NIL NIL NIL " <id@x>")'
    )


def test_empty_envelope() -> None:
    assert serializer.value(envelope(parse(b"").root)) == b"(" + b" ".join([b"NIL"] * 10) + b")"
