"""FETCH and UID FETCH: items, macros, sections, partials, \\Seen, sequence errors."""

from __future__ import annotations

import imaplib

from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

MSG = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: Hello\r\n"
    b"Message-ID: <1@example.org>\r\n\r\nline one\r\nline two\r\n"
)
MULTI = (
    b"From: a@example.org\r\nSubject: multi\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
    b"--XX\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--XX--\r\n"
)


def selected(imap: ImapHarness, *messages: bytes) -> imaplib.IMAP4:
    for m in messages:
        imap.deliver(m)
    client = imap.client(imap.start())
    assert client.select("INBOX")[0] == "OK"
    return client


def test_fetch_metadata_and_macros(imap: ImapHarness) -> None:
    client = selected(imap, MSG)
    typ, data = client.fetch("1", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    line = data[0]
    assert typ == "OK"
    assert b"UID 1" in line and b"FLAGS (\\Recent)" in line
    assert b"RFC822.SIZE %d" % len(MSG) in line
    assert imaplib.Internaldate2tuple(line) is not None
    _, data = client.fetch("1", "ALL")
    assert b"ENVELOPE (NIL " in data[0] and b'"Hello"' in data[0]
    assert b'(("Alice" NIL "alice" "example.org"))' in data[0]
    _, data = client.fetch("1", "FULL")
    assert b'BODY ("text" "plain"' in data[0]


def test_fetch_sections_and_partial(imap: ImapHarness) -> None:
    client = selected(imap, MSG, MULTI)
    _, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
    assert data[0][0].endswith(b"BODY[HEADER.FIELDS (SUBJECT FROM)] {51}")
    assert data[0][1] == b"From: Alice <alice@example.org>\r\nSubject: Hello\r\n\r\n"
    _, data = client.fetch("1", "(BODY.PEEK[TEXT]<5.3>)")
    assert data[0][0].endswith(b"BODY[TEXT]<5> {3}") and data[0][1] == b"one"
    _, data = client.fetch("2", "(BODY.PEEK[2] BODY.PEEK[1.MIME] BODYSTRUCTURE)")
    assert data[0][1] == b"<p>two</p>"
    assert data[1][1] == b"Content-Type: text/plain\r\n\r\n"
    assert b'"mixed"' in data[-1] or b'"mixed"' in data[1][0] + data[-1]
    _typ, data = client.fetch("1", "(RFC822.HEADER)")
    assert data[0][1] == MSG.split(b"\r\n\r\n")[0] + b"\r\n\r\n"


def test_body_sets_seen_and_peek_does_not(imap: ImapHarness) -> None:
    client = selected(imap, MSG, MSG)
    _, data = client.fetch("1", "(BODY.PEEK[])")
    assert b"FLAGS" not in data[0][0]
    assert "\\Seen" not in imap.folder().messages()[0].flags
    _, data = client.fetch("1", "(BODY[])")
    assert data[0][1] == MSG
    assert b"\\Seen" in data[1]  # the changed flags are returned (RFC 3501 6.4.5)
    assert "\\Seen" in imap.folder().messages()[0].flags
    _typ, data = client.fetch("2", "(RFC822)")
    assert "\\Seen" in imap.folder().messages()[1].flags


def test_uid_fetch_and_sequence_errors(imap: ImapHarness) -> None:
    client = selected(imap, MSG, MSG, MSG)
    typ, data = client.uid("FETCH", "2:*", "(FLAGS)")
    assert typ == "OK" and [d.split(b" ")[0] for d in data] == [b"2", b"3"]
    assert b"UID 2" in data[0]
    typ, data = client.uid("FETCH", "99", "(FLAGS)")
    assert typ == "OK" and data == [None]
    raw = imap.raw(imap.start())
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    assert raw.cmd(b"f1", b"FETCH 4 FLAGS")[-1].startswith(b"f1 BAD")
    assert raw.cmd(b"f2", b"FETCH 1:* (FLAGS)")[-1].startswith(b"f2 OK")
    lines = raw.cmd(b"f3", b"FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
    assert lines[0] == b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\n"
    assert lines[1] == b"Subject: Hello\r\n"
    assert lines[2] == b"\r\n"
    assert lines[3] == b" FLAGS (\\Seen))\r\n"


def test_condstore_modseq(imap: ImapHarness) -> None:
    client = imap.imapclient(imap.start())
    imap.deliver(MSG)
    imap.deliver(MSG)
    assert b"CONDSTORE" in client.capabilities()
    assert client.enable("CONDSTORE") == [b"CONDSTORE"]
    info = client.select_folder("INBOX", readonly=False)
    assert info[b"HIGHESTMODSEQ"] >= 1
    first = client.fetch([1, 2], ["MODSEQ"])
    client.add_flags([1], [b"\\Flagged"])
    since = first[2][b"MODSEQ"][0]
    changed = client.fetch([1, 2], ["FLAGS"], modifiers=[f"CHANGEDSINCE {since}"])
    assert list(changed) == [1]
    assert info[b"UIDNEXT"] == 3
