"""BODY[section]<partial> extraction and response names."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.commands import BodySection, FetchAtt
from mailgw.protocols.imap.mime import parse
from mailgw.protocols.imap.sections import fetch_item, find_part, section_bytes, section_name

MSG = (
    b"From: a@b\nSubject: s\n  folded\nX-Other: o\n\n"
    b"--b\n"  # not a boundary: no multipart here
)
MULTI = parse(
    b"Content-Type: multipart/mixed; boundary=b\r\nSubject: m\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\none\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
    b"--b--\r\n"
)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (BodySection(), b"From: a@b\r\nSubject: s\r\n  folded\r\nX-Other: o\r\n\r\n--b\r\n"),
        (BodySection(text="HEADER"), b"From: a@b\r\nSubject: s\r\n  folded\r\nX-Other: o\r\n\r\n"),
        (BodySection(text="TEXT"), b"--b\r\n"),
        (
            BodySection(text="HEADER.FIELDS", fields=("SUBJECT", "FROM")),
            b"From: a@b\r\nSubject: s\r\n  folded\r\n\r\n",
        ),
        (
            BodySection(text="HEADER.FIELDS.NOT", fields=("SUBJECT",)),
            b"From: a@b\r\nX-Other: o\r\n\r\n",
        ),
        (BodySection(part=(1,)), b"--b\r\n"),
        (BodySection(part=(2,)), None),
        (BodySection(partial=(0, 4)), b"From"),
        (
            BodySection(partial=(6, 1000)),
            b"a@b\r\nSubject: s\r\n  folded\r\nX-Other: o\r\n\r\n--b\r\n",
        ),
        (BodySection(partial=(10000, 4)), b""),
    ],
)
def test_lf_message_sections(section: BodySection, expected: bytes | None) -> None:
    assert section_bytes(parse(MSG), section) == expected


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (BodySection(part=(1,)), b"one"),
        (BodySection(part=(1,), text="MIME"), b"Content-Type: text/plain\r\n\r\n"),
        (BodySection(part=(1, 1)), b"one"),
        (BodySection(part=(2,)), b"Subject: inner\r\n\r\ninner body"),
        (BodySection(part=(2,), text="HEADER"), b"Subject: inner\r\n\r\n"),
        (BodySection(part=(2,), text="TEXT"), b"inner body"),
        (BodySection(part=(2, 1)), b"inner body"),
        (BodySection(part=(2, 1, 1)), None),
        (BodySection(part=(1,), text="HEADER"), None),
        (BodySection(part=(3,)), None),
        (BodySection(part=(2,), text="TEXT", partial=(6, 100)), b"body"),
    ],
)
def test_part_numbers(section: BodySection, expected: bytes | None) -> None:
    assert section_bytes(MULTI, section) == expected


def test_find_part_root() -> None:
    assert find_part(MULTI, ()) is MULTI.root


def test_crlf_message_is_sliced_not_rebuilt() -> None:
    raw = b"S: x\r\n\r\n" + b"y" * 100000
    msg = parse(raw)
    assert msg.crlf_only
    assert section_bytes(msg, BodySection()) == raw


@pytest.mark.parametrize(
    ("section", "name"),
    [
        (BodySection(peek=True), b"BODY[]"),
        (BodySection(part=(1, 2), text="MIME"), b"BODY[1.2.MIME]"),
        (
            BodySection(text="HEADER.FIELDS", fields=("FROM", "TO")),
            b"BODY[HEADER.FIELDS (FROM TO)]",
        ),
        (BodySection(part=(3,), partial=(5, 10)), b"BODY[3]<5>"),
    ],
)
def test_section_name(section: BodySection, name: bytes) -> None:
    assert section_name(section).value == name


def test_fetch_items_serialise() -> None:
    msg = parse(b"Subject: x\n\nhi\n")
    items = [fetch_item(msg, FetchAtt(n)) for n in ("RFC822.SIZE", "RFC822.TEXT", "RFC822.HEADER")]
    wire = serializer.fetch(1, [i for i in items if i is not None])
    assert (
        wire == b"* 1 FETCH (RFC822.SIZE 18 RFC822.TEXT {4}\r\nhi\r\n"
        b" RFC822.HEADER {14}\r\nSubject: x\r\n\r\n)\r\n"
    )
    assert fetch_item(msg, FetchAtt("FLAGS")) is None
    missing = fetch_item(msg, BodySection(part=(4,)))
    assert missing is not None and serializer.value(missing[1]) == b"{0}\r\n"
