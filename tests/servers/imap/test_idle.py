"""IDLE and cross-session updates: SMTP delivery, another IMAP session, POP3 QUIT."""

from __future__ import annotations

import poplib
import smtplib

from mailgw.servers.pop3 import start_pop3_listener
from mailgw.servers.smtp import start_smtp_listener
from tests.servers.conftest import USERS
from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

MSG = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def test_idle_hears_smtp_delivery(imap: ImapHarness) -> None:
    port = imap.start()
    _, smtp_port = imap._start(start_smtp_listener, "smtp-trusted", imap.ctx)
    client = imap.imapclient(port)
    client.select_folder("INBOX")
    client.idle()
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
        smtp.sendmail("x@example.net", ["alice@example.org"], MSG)
    responses = client.idle_check(timeout=10)
    client.idle_done()
    assert (1, b"EXISTS") in responses


def test_idle_hears_other_session_flags_and_expunge(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    imap.deliver(MSG)
    port = imap.start()
    watcher = imap.imapclient(port)
    watcher.select_folder("INBOX")
    actor = imap.client(port)
    actor.select("INBOX")
    watcher.idle()
    actor.store("1", "+FLAGS", "(\\Flagged)")
    seen = watcher.idle_check(timeout=10)
    assert any(r[1] == b"FETCH" and b"\\Flagged" in r[2][r[2].index(b"FLAGS") + 1] for r in seen)
    actor.store("2", "+FLAGS", "(\\Deleted)")
    actor.expunge()
    got: list[object] = []
    for _ in range(5):
        got += watcher.idle_check(timeout=10)
        if (2, b"EXPUNGE") in got:
            break
    watcher.idle_done()
    assert (2, b"EXPUNGE") in got


def test_no_expunge_during_fetch_until_noop(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    imap.deliver(MSG)
    port = imap.start()
    raw = imap.raw(port)
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    other = imap.client(port)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    lines = raw.cmd(b"f", b"FETCH 1:2 (UID)")  # RFC 3501 7.4.1: no EXPUNGE now
    assert not any(line.endswith(b" EXPUNGE\r\n") for line in lines)
    assert b"* 2 FETCH (UID 2)\r\n" in lines
    assert lines[-1].startswith(b"f NO [EXPUNGEISSUED]")
    lines = raw.cmd(b"n", b"NOOP")
    assert lines == [b"* 1 EXPUNGE\r\n", b"n OK NOOP completed\r\n"]
    assert raw.cmd(b"g", b"FETCH 1 (UID)")[0] == b"* 1 FETCH (UID 2)\r\n"


def test_two_sessions_see_each_others_changes(imap: ImapHarness) -> None:
    port = imap.start()
    a = imap.client(port)
    b = imap.client(port)
    a.select("INBOX")
    b.select("INBOX")
    b.append("INBOX", None, None, MSG)
    a.noop()
    assert a.untagged_responses["EXISTS"][-1] == b"1"
    b.store("1", "+FLAGS", "(\\Answered)")
    a.noop()
    _typ, data = a.fetch("1", "(FLAGS)")
    assert b"\\Answered" in data[0]


def test_pop3_deletions_show_after_quit(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    imap.deliver(MSG)
    port = imap.start()
    _, pop_port = imap._start(start_pop3_listener, "pop3-trusted", imap.ctx)
    raw = imap.raw(port)
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    pop = poplib.POP3("127.0.0.1", pop_port, timeout=30)
    pop.user("alice")
    pop.pass_(USERS["alice"])
    pop.dele(1)
    assert raw.cmd(b"n1", b"NOOP") == [b"n1 OK NOOP completed\r\n"]  # not yet
    pop.quit()
    assert raw.cmd(b"n2", b"NOOP") == [b"* 1 EXPUNGE\r\n", b"n2 OK NOOP completed\r\n"]
