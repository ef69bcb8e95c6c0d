"""BODY / BODYSTRUCTURE values, serialised (Dovecot-compatible forms)."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.bodystructure import body, bodystructure, content_fields
from mailgw.protocols.imap.mime import parse


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"Subject: x\r\n\r\nab\r\n",
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1)',
        ),
        (b"Subject: x\n\nab\ncd\n", b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 8 2)'),
        (
            b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAA==",
            b'("image" "png" NIL NIL NIL "base64" 4)',
        ),
        (
            b"Content-Type: multipart/mixed\r\n\r\nno boundary",
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")',
        ),
        (
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--",
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)'
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) "mixed")',
        ),
        (  # no MIME-Version and no Content-Type: Content-* fields do not count
            b"Content-Transfer-Encoding: base64\r\n\r\nx",
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)',
        ),
    ],
)
def test_body(raw: bytes, expected: bytes) -> None:
    assert serializer.value(body(parse(raw))) == expected


def test_bodystructure_extension_data() -> None:
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: Application/X-Y; a="1 2"\r\n'
        b"Content-Disposition: attachment; filename=f.bin\r\nContent-Language: en, fr\r\n"
        b"Content-Location:\r\n http://x/y\r\nContent-MD5: abc\r\nContent-ID: <i@x>\r\n"
        b"Content-Description: d\r\n\r\nxyz"
    )
    assert serializer.value(bodystructure(parse(raw))) == (
        b'("Application" "X-Y" ("a" "1 2") "<i@x>" "d" "7bit" 3 "abc"'
        b' ("attachment" ("filename" "f.bin")) ("en" "fr") " http://x/y")'
    )


def test_message_rfc822_structure() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n"
    assert serializer.value(body(parse(raw))) == (
        b'("message" "rfc822" NIL NIL NIL "7bit" 21 (NIL "in" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) 3)'
    )


def test_first_content_field_wins() -> None:
    raw = b"MIME-Version: 1.0\r\nContent-ID: <a>\r\nContent-ID: <b>\r\n\r\n"
    assert content_fields(parse(raw).root).id == b"<a>"
