"""The fast byte-stuffing paths of the POP3 core against a per-line reference model.

``DotStuffer`` (``mailgw.protocols.pop3.dotstuff``) avoids Python loops per
line: a two-count check for bare LF (skipped with ``crlf=True``), and a
memchr-speed search for line-initial dots that falls back to ``replace``
when a chunk has many dots.  These tests pin every path to the obvious
implementation of RFC 1939 section 3.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.protocols.pop3 import dotstuff
from mailgw.protocols.pop3.dotstuff import DotStuffer, stuff

_BARE_LF = re.compile(rb"(?<!\r)\n")


def reference(message: bytes) -> bytes:
    """Bare LF -> CRLF, then one more "." on every line that starts with one."""
    text = _BARE_LF.sub(b"\r\n", message)
    if not text:
        return b".\r\n"
    lines = text.split(b"\r\n")
    body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)
    if text.endswith(b"\r\n"):
        return body + b".\r\n"
    if text.endswith(b"\r"):
        return body + b"\n.\r\n"
    return body + b"\r\n.\r\n"


def feed_all(chunks: list[bytes], crlf: bool = False) -> bytes:
    s = DotStuffer(crlf=crlf)
    return b"".join(s.feed(c) for c in chunks) + s.end()


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


ALPHABET = st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"a", b"..", b"\n."])
MESSAGES = st.lists(ALPHABET, max_size=200).map(b"".join)
CRLF_LINES = st.lists(st.sampled_from([b"", b".", b"..", b"a.b", b".x", b"xy"]), max_size=200)


@given(MESSAGES, st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_matches_reference_in_any_chunking(message: bytes, cuts: list[int]) -> None:
    assert feed_all(cut(message, cuts)) == reference(message)


@given(CRLF_LINES, st.lists(st.integers(min_value=0, max_value=800), max_size=6))
def test_crlf_hint_gives_the_same_bytes(lines: list[bytes], cuts: list[int]) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    assert feed_all(cut(message, cuts), crlf=True) == reference(message)


@pytest.mark.parametrize("dots", [0, 1, dotstuff._FEW_DOTS - 1, dotstuff._FEW_DOTS, 500])
@pytest.mark.parametrize("line_initial", [True, False])
def test_few_and_many_dots(dots: int, line_initial: bool) -> None:
    line = b".dot\r\n" if line_initial else b"a.dot\r\n"
    message = b"head\r\n" + (line + b"QUJD" * 19 + b"\r\n") * dots + b"tail\r\n"
    assert stuff(message) == reference(message)
    assert feed_all([message], crlf=True) == reference(message)


def test_bare_lf_file_with_dots_is_sent_as_crlf() -> None:
    message = b"Subject: x\n\n.one\n..two\nthree.\n"
    assert stuff(message) == b"Subject: x\r\n\r\n..one\r\n...two\r\nthree.\r\n.\r\n"
