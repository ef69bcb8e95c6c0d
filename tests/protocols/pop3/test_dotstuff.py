"""Byte-stuffing across chunk boundaries (RFC 1939 section 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.protocols.pop3.dotstuff import DotStuffer, stuff, top_excerpt


def feed_all(chunks: list[bytes]) -> bytes:
    s = DotStuffer()
    return b"".join(s.feed(c) for c in chunks) + s.end()


def unstuff(wire: bytes) -> list[bytes]:
    """What a client reading CRLF lines gets back: body lines, unstuffed."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    lines = wire.split(b"\r\n")[:-2]
    assert all(b"\n" not in line for line in lines)
    assert all(line[:1] != b"." or line[:2] == b".." for line in lines)
    return [line[1:] if line.startswith(b".") else line for line in lines]


@pytest.mark.parametrize(
    ("chunks", "wire"),
    [
        ([b".a\r\n"], b"..a\r\n.\r\n"),
        ([b"a\r\n", b".b\r\n"], b"a\r\n..b\r\n.\r\n"),  # "." at the start of a chunk
        ([b"a\r\n", b"..b"], b"a\r\n...b\r\n.\r\n"),
        ([b"a\r", b"\n.b"], b"a\r\n..b\r\n.\r\n"),  # CRLF split between chunks
        ([b"a\r\n", b".", b"\r\n"], b"a\r\n..\r\n.\r\n"),  # a lone "." line
        ([b"a\r", b"\n", b".", b"\r", b"\n"], b"a\r\n..\r\n.\r\n"),
        ([b"x.y\r\n"], b"x.y\r\n.\r\n"),  # dots inside a line stay
        ([b"a\n.b\n"], b"a\r\n..b\r\n.\r\n"),  # bare LF becomes CRLF
        ([b"a\r"], b"a\r\n.\r\n"),  # body ends with a lone CR
        ([b"a"], b"a\r\n.\r\n"),  # no final newline
        ([], b".\r\n"),  # empty body
        ([b"", b".", b""], b"..\r\n.\r\n"),
    ],
)
def test_stuffer_table(chunks: list[bytes], wire: bytes) -> None:
    assert feed_all(chunks) == wire


def test_feed_after_end_is_an_error() -> None:
    s = DotStuffer()
    s.end()
    with pytest.raises(ValueError):
        s.feed(b"x")


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_chunking_does_not_change_output(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert feed_all(chunks) == stuff(data)


@given(st.lists(st.binary(max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b)))
def test_client_gets_the_lines_back(lines: list[bytes]) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    assert unstuff(stuff(data)) == lines


def test_top_excerpt_negative_lines() -> None:
    with pytest.raises(ValueError):
        top_excerpt(b"a", -1)
