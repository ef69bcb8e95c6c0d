"""Bare CR/LF detection and dot-stuffing (mailgw.protocols.smtp.data)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.protocols.smtp.data import (
    TERMINATOR,
    DataCollector,
    dot_stuff,
    dot_unstuff,
    find_bare_cr_lf,
    to_crlf,
)


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"", None),
        (b"a\r\nb\r\n", None),
        (b"\r\n\r\n", None),
        (b"a\nb", 1),
        (b"a\rb", 1),
        (b"ok\r\n\n.\r\n", 4),  # smuggling: <LF>.<CR><LF>
        (b"ok\r\n.\n", 5),  # <CR><LF>.<LF>
        (b"ok\r.\r\n", 2),  # <CR>.<CR><LF>
        (b"end\r", 3),
        (b"\n", 0),
        (b"a\r\r\n", 1),
    ],
)
def test_find_bare_cr_lf(data: bytes, offset: int | None) -> None:
    assert find_bare_cr_lf(data) == offset


def test_to_crlf() -> None:
    assert to_crlf(b"a\nb\rc\r\nd") == b"a\r\nb\r\nc\r\nd"


def test_dot_stuff() -> None:
    assert dot_stuff(b".hidden\r\nx\n.\n") == b"..hidden\r\nx\r\n..\r\n.\r\n"
    assert dot_stuff(b"no newline") == b"no newline\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"


@given(st.binary(max_size=200))
def test_stuff_roundtrip_and_no_bare_eol(data: bytes) -> None:
    wire = dot_stuff(data)
    assert find_bare_cr_lf(wire) is None
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    # the terminator appears only once, at the very end
    assert (b"\r\n" + wire).count(b"\r\n.\r\n") == 1
    body = to_crlf(data)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    assert dot_unstuff(wire) == body


@given(st.binary(max_size=200))
def test_find_bare_cr_lf_matches_definition(data: bytes) -> None:
    check_bare_cr_lf_definition(data)


# Mostly clean CRLF text with the odd stray CR or LF: exercises the count fast path.
_pieces = st.sampled_from([b"\r\n", b"\r\n", b"a", b".", b"\r", b"\n", b"\n\r"])


@given(st.lists(_pieces, max_size=60).map(b"".join))
def test_find_bare_cr_lf_on_line_endings(data: bytes) -> None:
    check_bare_cr_lf_definition(data)


def check_bare_cr_lf_definition(data: bytes) -> None:
    offset = find_bare_cr_lf(data)
    bad = [
        i
        for i, b in enumerate(data)
        if (b == 13 and data[i + 1 : i + 2] != b"\n") or (b == 10 and (i == 0 or data[i - 1] != 13))
    ]
    assert offset == (bad[0] if bad else None)


# --- DataCollector: the same end of data, limits and content as aiosmtpd ---------------


def aiosmtpd_reference(
    stream: bytes, max_line: int, max_size: int | None
) -> tuple[str, bytes | None, int] | None:
    """aiosmtpd 1.4.6's DATA loop as a model: lines end at CRLF only; a line
    ".\\r\\n" ends DATA; (state, content, bytes consumed), None if no end yet.

    When a message is both too big and has a too-long line, which of the two
    rejections aiosmtpd gives depends on how the line arrived (its reader
    limit); the state is then "too-long|too-much" and either one is right."""
    pos, size, out = 0, 0, []
    too_long = too_much = False
    while True:
        j = stream.find(b"\r\n", pos)
        if j < 0:
            return None
        line, pos = stream[pos : j + 2], j + 2
        if line == b".\r\n":
            break
        size += len(line)
        too_much = too_much or bool(max_size and size > max_size)
        too_long = too_long or len(line) > max_line
        out.append(line[1:] if line.startswith(b".") else line)
    if too_long and too_much:
        return f"{DataCollector.TOO_LONG}|{DataCollector.TOO_MUCH}", None, pos
    if too_long or too_much:
        return (DataCollector.TOO_LONG if too_long else DataCollector.TOO_MUCH), None, pos
    return DataCollector.OK, b"".join(out), pos


def same(got: tuple[str, bytes | None, int], expected: tuple[str, bytes | None, int]) -> bool:
    return got[1:] == expected[1:] and got[0] in expected[0].split("|")


def result(c: DataCollector, end: int) -> tuple[str, bytes | None, int]:
    return c.state, (c.content() if c.state == DataCollector.OK else None), end


# Dots, CRs and LFs in every arrangement, with the odd longer line.
_data_pieces = st.sampled_from(
    [b"\r\n", b"\r\n", b".", b"..", b"a", b"\r", b"\n", b".\r\n", b"\r\n.\r\n", b"x" * 30]
)
_stream = st.lists(_data_pieces, max_size=40).map(b"".join)


@given(_stream, st.lists(st.integers(1, 12), min_size=1, max_size=40), st.integers(3, 40))
def test_collector_any_chunks_matches_aiosmtpd(data: bytes, cuts: list[int], max_line: int) -> None:
    stream = data + b"\r\n.\r\nQUIT\r\n"
    max_size = 60
    expected = aiosmtpd_reference(stream, max_line, max_size)
    assert expected is not None
    c = DataCollector(max_line=max_line, max_size=max_size)
    pos, i = 0, 0
    while True:
        block = stream[pos : pos + cuts[i % len(cuts)]]
        i += 1
        end = c.feed(block)
        if end is not None:
            assert same(result(c, pos + end), expected)
            return
        pos += len(block)


@given(_stream, st.lists(st.integers(1, 64), min_size=1, max_size=20), st.integers(3, 40))
def test_collector_reads_never_pass_the_terminator(
    data: bytes, arrivals: list[int], limit: int
) -> None:
    """Drive it as the server does (StreamReader.readuntil/readexactly with a
    limit, data arriving in pieces): the reads stop exactly at the end of data."""
    stream = data + b"\r\n.\r\nMAIL FROM:<a@b>\r\n"
    expected = aiosmtpd_reference(stream, limit, None)
    assert expected is not None
    c = DataCollector(max_line=limit)
    pos, avail, k = 0, 0, 0
    while True:
        avail = min(len(stream), max(avail, pos) + arrivals[k % len(arrivals)])
        k += 1
        size = c.next_read()
        if size is not None:
            if avail - pos < size:
                continue  # readexactly waits for more
            block = stream[pos : pos + size]
        else:  # asyncio.StreamReader.readuntil(TERMINATOR) with limit
            buf = stream[pos:avail]
            isep = buf.find(TERMINATOR)
            if isep >= 0 and isep <= limit:
                block = buf[: isep + len(TERMINATOR)]
            elif isep > limit:
                block = buf[:isep]  # LimitOverrunError(consumed=isep)
            elif len(buf) + 1 - len(TERMINATOR) > limit:
                block = buf[: len(buf) + 1 - len(TERMINATOR)]
            else:
                continue  # waits for more
        end = c.feed(block)
        if end is not None:
            assert end == len(block)  # nothing after the terminator was read
            assert same(result(c, pos + end), expected)
            return
        pos += len(block)


def test_collector_examples() -> None:
    c = DataCollector(max_line=1001)
    assert c.feed(b".\r\n") == 3 and c.content() == b""  # empty message
    c = DataCollector(max_line=1001)
    assert c.feed(b"..a\r\nb\n.\r\n") is None  # LF . CRLF ends nothing
    assert c.feed(b"..\r\n.\r\nRSET\r\n") == 7
    assert c.content() == b".a\r\nb\n.\r\n.\r\n"
    c = DataCollector(max_line=1001, max_size=10)
    assert c.feed(b"0123456789\r\n.\r\n") is not None and c.state == DataCollector.TOO_MUCH
    with pytest.raises(ValueError):
        c.content()
    c = DataCollector(max_line=1001)
    assert c.feed(b"x" * 999 + b"\r\n.\r\n") is not None and c.state == DataCollector.OK
    c = DataCollector(max_line=1001)
    assert c.feed(b"x" * 1000 + b"\r\n.\r\n") is not None and c.state == DataCollector.TOO_LONG
