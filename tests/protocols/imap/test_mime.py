"""mime.parse: offsets, sizes, broken MIME, bounds, and a fuzz that nothing raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgw.protocols.imap import mime
from mailgw.protocols.imap.bodystructure import body, bodystructure
from mailgw.protocols.imap.commands import BodySection
from mailgw.protocols.imap.envelope import envelope
from mailgw.protocols.imap.sections import section_bytes

SIMPLE = b"From: a@b\r\nSubject: hi\r\n\r\nline 1\r\nline 2\r\n"
MULTI = (
    b"Content-Type: multipart/mixed; boundary=xx\r\n\r\npre\r\n"
    b"--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--xx\r\n\r\nsecond\r\n--xx--\r\nepilogue\r\n"
)


def test_simple_offsets() -> None:
    msg = mime.parse(SIMPLE)
    root = msg.root
    assert msg.data[root.header_start : root.body_start] == b"From: a@b\r\nSubject: hi\r\n\r\n"
    assert msg.data[root.body_start : root.body_end] == b"line 1\r\nline 2\r\n"
    assert [(h.name, h.value) for h in root.headers] == [(b"From", b"a@b"), (b"Subject", b"hi")]
    assert root.kind == mime.TEXT and not root.is_mime


def test_multipart_children_exclude_boundary_crlf() -> None:
    msg = mime.parse(MULTI)
    root = msg.root
    assert root.kind == mime.MULTIPART and root.boundary == b"xx"
    bodies = [msg.data[c.body_start : c.body_end] for c in root.children]
    assert bodies == [b"hello", b"second"]
    assert root.children[1].is_mime  # a body part of a multipart is MIME
    assert root.body_end == len(MULTI)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a\nb\n", (4 + 2, 2)),
        (b"a\r\nb\r\n", (6, 2)),
        (b"a\r\nb\nc", (7, 2)),
        (b"", (0, 0)),
    ],
)
def test_sizes_count_bare_lf_as_crlf(raw: bytes, expected: tuple[int, int]) -> None:
    msg = mime.parse(b"\n" + raw)
    assert (msg.size(1, len(msg.data)), msg.lines(1, len(msg.data))) == expected


def test_wire_normalises_only_bare_lf() -> None:
    msg = mime.parse(b"S: x\n\na\r\nb\nc\rd\n")
    assert msg.wire(0, len(msg.data)) == b"S: x\r\n\r\na\r\nb\r\nc\rd\r\n"
    assert msg.total_size == len(msg.wire(0, len(msg.data)))


def test_missing_final_boundary_and_outer_boundary_closes_inner() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b1\n\n--b1\n"
        b"Content-Type: multipart/related; boundary=b2\n\n--b2\n\ninner\n"
        b"--b1\n\nlast\n"
    )
    msg = mime.parse(raw)
    outer = msg.root
    assert len(outer.children) == 2
    related = outer.children[0]
    assert related.kind == mime.MULTIPART and len(related.children) == 1
    inner = related.children[0]
    assert msg.data[inner.body_start : inner.body_end] == b"inner"
    assert msg.data[outer.children[1].body_start : outer.children[1].body_end] == b"last\n"


def test_multipart_without_boundary_has_no_children() -> None:
    msg = mime.parse(b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n")
    assert msg.root.kind == mime.MULTIPART and msg.root.children == []


def test_boundary_line_in_part_header_ends_the_header() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nX-A: 1\r\n--q--\r\n"
    msg = mime.parse(raw)
    child = msg.root.children[0]
    assert msg.data[child.header_start : child.body_start] == b"X-A: 1"
    assert child.body_start == child.body_end


def test_longest_boundary_wins() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n"
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--ab--\r\n"
    )
    msg = mime.parse(raw)
    inner = msg.root.children[0]
    assert len(inner.children) == 1
    assert msg.data[inner.children[0].body_start : inner.children[0].body_end] == b"x"


def test_message_rfc822_has_one_child() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n"
    msg = mime.parse(raw)
    assert msg.root.kind == mime.MESSAGE and len(msg.root.children) == 1
    child = msg.root.children[0]
    assert child.get("subject")[0].value == b"in"


def test_nesting_is_bounded() -> None:
    depth = mime.MAX_DEPTH + 50
    raw = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    msg = mime.parse(raw + b"\r\nleaf\r\n")
    levels = 0
    part = msg.root
    while part.children:
        part = part.children[0]
        levels += 1
    assert levels <= mime.MAX_DEPTH
    assert bodystructure(msg)  # and it still serialises


def test_huge_header_and_8bit() -> None:
    raw = b"Subject: " + "é".encode() * 100000 + b"\r\nX: \xff\xfe\r\n\r\nb"
    msg = mime.parse(raw)
    assert msg.root.get("x")[0].value == b"\xff\xfe"
    assert msg.data[msg.root.body_start :] == b"b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"text/plain", ("text", "plain", [])),
        (b' TEXT / Plain ; Charset = "x" (c)', ("TEXT", "Plain", [("Charset", "x")])),
        (b"a/b; n*0=x; n*1=y", ("a", "b", [("n", "xy")])),
        (
            b"a/b; n*=utf-8''%41; m*0*=us-ascii''b; m*1=%",
            ("a", "b", [("m*", "us-ascii''b%25"), ("n*", "utf-8''%41")]),
        ),
        (b"a/b; n*1=y", ("a", "b", [("n*1", "y")])),
        # a broken parameter makes Dovecot skip the rest octet by octet: so do we
        (b"a/b; broken; k=v", ("a", "b", [])),
        (b"a/b; k=v; broken", ("a", "b", [("k", "v")])),
    ],
)
def test_parse_content_type(value: bytes, expected: tuple[str, str, list[tuple[str, str]]]) -> None:
    ct = mime.parse_content_type(value)
    assert (ct.type, ct.subtype, ct.params) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _exercise(data)


_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: message/rfc822\n",
        b'Content-Type: multipart/digest; boundary="b"\r\n',
        b"--b\r\n",
        b"--b--\n",
        b"\r\n",
        b"\n",
        b'From: "x\\" y" <a@b>, g: c@d;, (c) e@\r\n',
        b"Subject: \t=?x?q?y?= \0\r\n",
        b" folded\r\n",
        b"body\xff\r",
        b"Content-Disposition: a; f*0*=x; f*2=y\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_mime_shaped_bytes_never_raise(data: bytes) -> None:
    _exercise(data)


def _exercise(data: bytes) -> None:
    msg = mime.parse(data)
    from mailgw.protocols.imap import serializer

    serializer.value(envelope(msg.root))
    serializer.value(body(msg))
    serializer.value(bodystructure(msg))
    for part in ((), (1,), (2,), (1, 1), (2, 1)):
        for text in (None, "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            if text == "MIME" and not part:
                continue
            section = BodySection(part=part, text=text, fields=("FROM",), partial=(1, 5))  # type: ignore[arg-type]
            result = section_bytes(msg, section)
            assert result is None or len(result) <= 5
