"""SELECT, EXAMINE, CLOSE, UNSELECT: byte transcripts and state changes."""

from __future__ import annotations

import re

from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

MSG = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def test_select_transcript(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    imap.deliver(MSG)
    folder = imap.folder()
    folder.messages()
    folder.store_flags([1], ["\\Seen"], mode="add")
    raw = imap.raw(imap.start())
    raw.login()
    lines = raw.cmd(b"s1", b"SELECT INBOX")
    text = b"".join(lines)
    assert lines[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]" in text
    assert b"* 2 EXISTS\r\n" in lines
    assert b"* 1 RECENT\r\n" in lines  # message 1 left new/ when its flags changed
    assert b"* OK [UNSEEN 2] " in text
    assert re.search(rb"\* OK \[UIDVALIDITY \d+\] ", text)
    assert b"* OK [UIDNEXT 3] " in text
    assert lines[-1] == b"s1 OK [READ-WRITE] SELECT completed\r\n"
    # a second session does not get the same messages as \Recent (RFC 3501 2.3.2)
    other = imap.raw(imap.start())
    other.login()
    assert b"* 0 RECENT\r\n" in other.cmd(b"s2", b"SELECT INBOX")


def test_examine_is_read_only(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    raw = imap.raw(imap.start())
    raw.login()
    lines = raw.cmd(b"e1", b"EXAMINE INBOX")
    assert b"* OK [PERMANENTFLAGS ()] " in b"".join(lines)
    assert lines[-1].startswith(b"e1 OK [READ-ONLY]")
    assert raw.cmd(b"e2", b"STORE 1 +FLAGS (\\Seen)")[-1].startswith(b"e2 NO")
    assert raw.cmd(b"e3", b"EXPUNGE")[-1].startswith(b"e3 NO")
    raw.cmd(b"e4", b"FETCH 1 BODY[]")
    assert imap.folder().messages()[0].flags == frozenset()  # EXAMINE never sets \Seen


def test_close_expunges_silently_unselect_does_not(imap: ImapHarness) -> None:
    for _ in range(3):
        imap.deliver(MSG)
    raw = imap.raw(imap.start())
    raw.login()
    raw.cmd(b"a", b"SELECT INBOX")
    raw.cmd(b"b", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert raw.cmd(b"c", b"UNSELECT") == [b"c OK UNSELECT completed\r\n"]
    assert len(imap.folder().messages()) == 3
    assert raw.cmd(b"d", b"FETCH 1 FLAGS")[-1].startswith(b"d BAD")  # not selected
    raw.cmd(b"e", b"SELECT INBOX")
    assert raw.cmd(b"f", b"CLOSE") == [b"f OK CLOSE completed\r\n"]  # no EXPUNGE responses
    assert len(imap.folder().messages()) == 2


def test_failed_select_leaves_authenticated_state(imap: ImapHarness) -> None:
    raw = imap.raw(imap.start())
    raw.login()
    raw.cmd(b"a", b"SELECT INBOX")
    lines = raw.cmd(b"b", b"SELECT Missing")
    assert lines[-1].startswith(b"b NO [NONEXISTENT]")
    assert raw.cmd(b"c", b"FETCH 1 FLAGS")[-1].startswith(b"c BAD")
