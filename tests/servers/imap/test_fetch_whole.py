"""FETCH of whole messages from the stored bytes: CRLF and bare-LF files, partials,
groups of messages per read, batched \\Seen (fetch.py)."""

from __future__ import annotations

import imaplib

import pytest

from mailgw.servers.imap import fetch as fetch_mod
from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

CRLF_MSG = b"Subject: crlf\r\n\r\nline one\r\nline two\r\n"
LF_MSG = b"Subject: lf\n\nline one\nline two\r\nline three\n"
LF_WIRE = b"Subject: lf\r\n\r\nline one\r\nline two\r\nline three\r\n"


def _plant(imap: ImapHarness, name: str, data: bytes) -> None:
    """A file as another program might leave it: no W= in its name."""
    folder = imap.folder()
    (folder.path / "cur" / f"{name},S={len(data)}:2,").write_bytes(data)


def _select(imap: ImapHarness) -> imaplib.IMAP4:
    client = imap.client(imap.start())
    assert client.select("INBOX")[0] == "OK"
    return client


@pytest.mark.parametrize("planted", [False, True])
def test_whole_message_is_sent_with_crlf(imap: ImapHarness, planted: bool) -> None:
    if planted:
        _plant(imap, "1700000000.M1P1.host", CRLF_MSG)
        _plant(imap, "1700000001.M2P1.host", LF_MSG)
    else:
        imap.deliver(CRLF_MSG)
        imap.deliver(LF_MSG)
    client = _select(imap)
    for _ in range(2):  # the second time from the per-process cache
        _, data = client.fetch("1:2", "(BODY.PEEK[] RFC822.SIZE)")
        assert data[0][1] == CRLF_MSG and data[2][1] == LF_WIRE
        assert b"RFC822.SIZE %d" % len(CRLF_MSG) in data[0][0] + data[1]
        assert b"RFC822.SIZE %d" % len(LF_WIRE) in data[2][0] + data[3]
    _, data = client.fetch("2", "(BODY.PEEK[]<10.6> RFC822 BODY.PEEK[]<999.5>)")
    assert data[0][0].endswith(b"BODY[]<10> {6}") and data[0][1] == LF_WIRE[10:16]
    assert data[1][1] == LF_WIRE
    assert data[2][0].endswith(b"BODY[]<999> {0}") and data[2][1] == b""


def test_groups_keep_order_and_content(imap: ImapHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "GROUP_BYTES", 100)  # about two messages per read
    bodies = [b"Subject: m%d\r\n\r\n" % i + b"x" * (i * 7) + b"\r\n" for i in range(1, 12)]
    for b in bodies:
        imap.deliver(b)
    client = _select(imap)
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    assert typ == "OK"
    literals = [d for d in data if isinstance(d, tuple)]
    assert [lit[1] for lit in literals] == bodies
    assert [int(lit[0].split()[0]) for lit in literals] == list(range(1, 12))


def test_body_marks_seen_once_per_command(imap: ImapHarness) -> None:
    for i in range(3):
        imap.deliver(b"Subject: %d\r\n\r\nbody\r\n" % i)
    client = _select(imap)
    client.store("2", "+FLAGS", "(\\Seen)")
    _, data = client.fetch("1:3", "(BODY[])")
    heads = [d[0] + d1 for d, d1 in zip(data[0::2], data[1::2], strict=True)]
    assert b"FLAGS" in heads[0] and b"FLAGS" not in heads[1] and b"FLAGS" in heads[2]
    assert all("\\Seen" in i.flags for i in imap.folder().messages())


def test_expunged_file_is_left_out(imap: ImapHarness) -> None:
    imap.deliver(CRLF_MSG)
    imap.deliver(CRLF_MSG)
    client = _select(imap)
    info = imap.folder().messages()[0]
    info.path.unlink()  # gone behind the store's back
    typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    literals = [d for d in data if isinstance(d, tuple)]
    assert len(literals) == 1 and literals[0][0].startswith(b"2 (")
