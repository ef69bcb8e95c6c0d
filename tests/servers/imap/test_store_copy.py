"""STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE with UIDPLUS responses."""

from __future__ import annotations

import re

from tests.servers.imap.imap_fixtures import ImapHarness, RawClient, imap_fixture  # noqa: F401

MSG = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def session(imap: ImapHarness, count: int) -> RawClient:
    for _ in range(count):
        imap.deliver(MSG)
    raw = imap.raw(imap.start())
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    return raw


def test_store_modes_and_silent(imap: ImapHarness) -> None:
    raw = session(imap, 2)
    lines = raw.cmd(b"a", b"STORE 1 +FLAGS (\\Flagged $Work)")
    assert lines[0] == b"* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))\r\n"
    lines = raw.cmd(b"b", b"STORE 1 -FLAGS (\\Flagged)")
    assert lines[0] == b"* 1 FETCH (FLAGS ($Work \\Recent))\r\n"
    lines = raw.cmd(b"c", b"STORE 1:2 FLAGS.SILENT (\\Seen)")
    assert lines == [b"c OK STORE completed\r\n"]
    lines = raw.cmd(b"d", b"UID STORE 2 +FLAGS (\\Answered)")
    assert lines[0] == b"* 2 FETCH (UID 2 FLAGS (\\Answered \\Seen \\Recent))\r\n"
    infos = imap.folder().messages()
    assert infos[0].flags == {"\\Seen"} and infos[0].keywords == frozenset()
    assert infos[1].flags == {"\\Seen", "\\Answered"}
    assert raw.cmd(b"e", b"STORE 1 +FLAGS (\\Bogus)")[-1].startswith(b"e BAD")
    assert raw.cmd(b"f", b"STORE 1 +FLAGS (\\Recent)")[-1].startswith(b"f BAD")


def test_copy_with_copyuid_and_trycreate(imap: ImapHarness) -> None:
    raw = session(imap, 3)
    raw.cmd(b"a", b"STORE 2 +FLAGS.SILENT (\\Flagged)")
    lines = raw.cmd(b"b", b"COPY 2:3 Trash")
    m = re.match(rb"b OK \[COPYUID (\d+) 2:3 1:2\] ", lines[-1])
    assert m, lines
    assert int(m.group(1)) == imap.folder(name="Trash").uidvalidity
    trash = imap.folder(name="Trash").messages()
    assert [i.flags for i in trash] == [{"\\Flagged"}, frozenset()]
    lines = raw.cmd(b"c", b"COPY 1 Nowhere")
    assert lines[-1].startswith(b"c NO [TRYCREATE]")
    lines = raw.cmd(b"d", b"UID COPY 3 Trash")
    assert lines[-1].startswith(b"d OK [COPYUID ")


def test_move_sends_copyuid_then_expunge(imap: ImapHarness) -> None:
    raw = session(imap, 3)
    lines = raw.cmd(b"m", b"MOVE 2 Archive")
    assert lines[0].startswith(b"* OK [COPYUID ") and b" 2 1] " in lines[0]
    assert lines[1] == b"* 2 EXPUNGE\r\n"
    assert lines[-1].startswith(b"m OK")
    lines = raw.cmd(b"u", b"UID MOVE 3 Archive")
    assert b"* 2 EXPUNGE\r\n" in lines  # UID 3 is now sequence number 2
    assert [i.uid for i in imap.folder().messages()] == [1]
    assert len(imap.folder(name="Archive").messages()) == 2


def test_expunge_and_uid_expunge(imap: ImapHarness) -> None:
    raw = session(imap, 4)
    raw.cmd(b"a", b"STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    lines = raw.cmd(b"b", b"UID EXPUNGE 2:3")
    assert lines == [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"b OK EXPUNGE completed\r\n"]
    lines = raw.cmd(b"c", b"EXPUNGE")
    assert lines == [b"* 2 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n", b"c OK EXPUNGE completed\r\n"]
    assert imap.folder().messages() == []


def test_imapclient_uidplus(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    client = imap.imapclient(imap.start())
    client.select_folder("INBOX")
    client.copy([1], "Drafts")
    client.move([1], "Junk")
    assert client.search() == []
    assert client.folder_status("Junk", ["MESSAGES"])[b"MESSAGES"] == 1
    assert client.folder_status("Drafts", ["MESSAGES"])[b"MESSAGES"] == 1
