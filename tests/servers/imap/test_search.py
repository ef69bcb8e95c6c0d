"""SEARCH, UID SEARCH, ESEARCH (RETURN), CHARSET."""

from __future__ import annotations

from tests.servers.imap.imap_fixtures import ImapHarness, RawClient, imap_fixture  # noqa: F401


def msg(subject: str, body: str = "hello") -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


def session(imap: ImapHarness) -> RawClient:
    imap.deliver(msg("apple", "red fruit"))
    imap.deliver(msg("banana", "yellow fruit"))
    imap.deliver(msg("cherry", "red stone fruit"))
    raw = imap.raw(imap.start())
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    raw.cmd(b"f", b"STORE 2 +FLAGS.SILENT (\\Flagged)")
    return raw


def test_search_keys(imap: ImapHarness) -> None:
    raw = session(imap)
    assert raw.cmd(b"a", b"SEARCH ALL")[0] == b"* SEARCH 1 2 3\r\n"
    assert raw.cmd(b"b", b"SEARCH FLAGGED")[0] == b"* SEARCH 2\r\n"
    assert raw.cmd(b"c", b"SEARCH BODY red")[0] == b"* SEARCH 1 3\r\n"
    assert raw.cmd(b"d", b"SEARCH OR SUBJECT apple SUBJECT cherry")[0] == b"* SEARCH 1 3\r\n"
    assert raw.cmd(b"e", b"SEARCH NOT FLAGGED 2:*")[0] == b"* SEARCH 3\r\n"
    assert raw.cmd(b"f", b"UID SEARCH UID 2:3 UNFLAGGED")[0] == b"* SEARCH 3\r\n"
    assert raw.cmd(b"g", b"SEARCH SUBJECT nothing")[0] == b"* SEARCH\r\n"
    assert raw.cmd(b"h", b"SEARCH CHARSET UTF-8 TEXT fruit")[0] == b"* SEARCH 1 2 3\r\n"
    assert raw.cmd(b"i", b"SEARCH CHARSET KOI8-R TEXT x")[-1].startswith(b"i NO [BADCHARSET")


def test_esearch(imap: ImapHarness) -> None:
    raw = session(imap)
    lines = raw.cmd(b"a", b"SEARCH RETURN (MIN MAX COUNT) TEXT fruit")
    assert lines[0] == b'* ESEARCH (TAG "a") MIN 1 MAX 3 COUNT 3\r\n'
    lines = raw.cmd(b"b", b"UID SEARCH RETURN () BODY red")
    assert lines[0] == b'* ESEARCH (TAG "b") UID ALL 1,3\r\n'


def test_imapclient_search(imap: ImapHarness) -> None:
    imap.deliver(msg("one"))
    imap.deliver(msg("two"))
    client = imap.imapclient(imap.start())
    client.select_folder("INBOX")
    assert client.search(["SUBJECT", "two"]) == [2]
    assert client.search("UNSEEN") == [1, 2]
