"""Framer (lines + literals, discarding) and Scanner (RFC 3501 section 9 tokens)."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap.lexer import (
    Chunk,
    Complete,
    Framer,
    Line,
    LiteralStart,
    ParseError,
    RawCommand,
    Scanner,
    StreamedLiteral,
    TooLong,
)


def test_complete_lines_crlf_and_bare_lf() -> None:
    f = Framer(64, 128)
    f.feed(b"a NOOP\r\nb NOOP\nc")
    assert f.next() == Complete(RawCommand(b"a NOOP"))
    assert f.next() == Complete(RawCommand(b"b NOOP"))
    assert f.next() is None
    assert f.has_data()
    f.feed(b" NOOP\r\n")
    assert f.next() == Complete(RawCommand(b"c NOOP"))
    assert not f.has_data()


def test_literal_inline_and_normalised_crlf() -> None:
    f = Framer(64, 128)
    f.feed(b"a LOGIN {3}\nabc {2+}\r\nxy\r\n")
    start = f.next()
    assert start == LiteralStart(b"a LOGIN {3}\r\n", 3, True, 8)
    assert f.next() is None  # waiting for a decision
    f.accept_literal(stream=False)
    assert isinstance(f.next(), LiteralStart)
    f.accept_literal(stream=False)
    assert f.next() == Complete(RawCommand(b"a LOGIN {3}\r\nabc {2+}\r\nxy"))


def test_streamed_literal_chunks() -> None:
    f = Framer(64, 128)
    f.feed(b"a APPEND x {10}\r\n01234")
    assert isinstance(f.next(), LiteralStart)
    f.accept_literal(stream=True)
    assert f.next() == Chunk(b"01234", False)
    assert f.next() is None
    f.feed(b"56789\r\n")
    assert f.next() == Chunk(b"56789", True)
    assert f.next() == Complete(RawCommand(b"a APPEND x {10}\r\n", (11,)))


def test_too_long_line_discarded_as_it_arrives() -> None:
    f = Framer(64, 128)
    f.feed(b"t1 " + b"x" * 100)
    assert f.next() == TooLong(b"t1 " + b"x" * 61, "Line")
    for _ in range(100):
        f.feed(b"y" * 1000)
        assert f.next() is None
        assert f.buffered == 0  # nothing kept while discarding
    f.feed(b"\r\nb NOOP\r\n")
    assert f.next() == Complete(RawCommand(b"b NOOP"))


def test_too_long_line_with_trailing_non_sync_literal_skips_it() -> None:
    f = Framer(64, 128)
    f.feed(b"t1 " + b"x" * 100 + b" {12+}\r\nb LOGOUT\r\nxx\r\nc NOOP\r\n")
    assert isinstance(f.next(), TooLong)
    assert f.next() == Complete(RawCommand(b"c NOOP"))


def test_command_too_long_across_literals() -> None:
    f = Framer(64, 100)
    f.feed(b"a LOGIN {60}\r\n" + b"x" * 60 + b" " + b"y" * 40 + b"\r\nb NOOP\r\n")
    assert isinstance(f.next(), LiteralStart)
    f.accept_literal(stream=False)
    assert f.next() == TooLong(b"a LOGIN {60}\r\n" + b"x" * 50, "Command")
    assert f.next() == Complete(RawCommand(b"b NOOP"))


def test_skip_and_drop() -> None:
    f = Framer(64, 128)
    f.feed(b"a X {5+}\r\n12345 rest\r\nb NOOP\r\n")
    assert isinstance(f.next(), LiteralStart)
    f.skip_literal()
    assert f.next() == Complete(RawCommand(b"b NOOP"))
    f.feed(b"a X {5}\r\nc NOOP\r\n")
    assert isinstance(f.next(), LiteralStart)
    f.drop_command()
    assert f.next() == Complete(RawCommand(b"c NOOP"))
    with pytest.raises(RuntimeError):
        f.accept_literal(stream=False)


def test_raw_lines() -> None:
    f = Framer(64, 128)
    f.raw_lines = True
    f.feed(b"DONE {5}\r\n")
    assert f.next() == Line(b"DONE {5}")


@pytest.mark.parametrize(
    ("data", "value", "rest"),
    [
        (b"abc def", b"abc", b" def"),
        (b"a]b", b"a]b", b""),
        (b'"a b" x', b"a b", b" x"),
        (b'"\\"\\\\"', b'"\\', b""),
        (b"{3}\r\nabc", b"abc", b""),
        (b"{0+}\r\n", b"", b""),
    ],
)
def test_astring(data: bytes, value: bytes, rest: bytes) -> None:
    sc = Scanner(data)
    assert sc.astring() == value
    assert sc.data[sc.pos :] == rest


@pytest.mark.parametrize(
    "data", [b"", b"(x", b'"abc', b'"a\\b"', b'"a\rb"', b"{3}\r\nab", b"{x}\r\n"]
)
def test_astring_errors(data: bytes) -> None:
    with pytest.raises(ParseError):
        Scanner(data).astring()


def test_atom_number_tag_nstring_list_mailbox() -> None:
    assert Scanner(b"FLAGS)").atom() == "FLAGS"
    with pytest.raises(ParseError):
        Scanner(b"(x").atom()
    assert Scanner(b"4294967295").number() == 2**32 - 1
    for bad in (b"4294967296", b"x", b""):
        with pytest.raises(ParseError):
            Scanner(bad).number()
    with pytest.raises(ParseError):
        Scanner(b"0").number(nonzero=True)
    assert Scanner(b"A+1").tag() == "A"
    with pytest.raises(ParseError):
        Scanner(b"+x").tag()
    assert Scanner(b"NIL").nstring() is None
    assert Scanner(b"%/*]").list_mailbox() == b"%/*]"


def test_streamed_literal_has_no_inline_data() -> None:
    sc = Scanner(RawCommand(b"{5}\r\n x", (0,)))
    assert sc.literal() == StreamedLiteral(5)
    assert sc.data[sc.pos :] == b" x"
    with pytest.raises(ParseError):
        Scanner(RawCommand(b"{5}\r\n", (0,))).string()
