"""Bare CR/LF detection and dot-stuffing (mailgw.protocols.smtp.data)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgw.protocols.smtp.data import dot_stuff, dot_unstuff, find_bare_cr_lf, to_crlf


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
    offset = find_bare_cr_lf(data)
    bad = [
        i
        for i, b in enumerate(data)
        if (b == 13 and data[i + 1 : i + 2] != b"\n") or (b == 10 and (i == 0 or data[i - 1] != 13))
    ]
    assert offset == (bad[0] if bad else None)
