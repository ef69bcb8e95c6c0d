"""APPEND: streamed literals, flags and date, APPENDUID, MULTIAPPEND, LITERAL+, limits."""

from __future__ import annotations

import datetime as dt
import os
import re

from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

MSG = b"From: a@example.org\r\nSubject: appended\r\n\r\nbody\r\n"


def test_append_with_flags_and_date(imap: ImapHarness) -> None:
    client = imap.client(imap.start())
    date = dt.datetime(2020, 5, 17, 10, 30, tzinfo=dt.UTC)
    typ, data = client.append("Sent", "(\\Seen $Label)", date, MSG)
    assert typ == "OK"
    m = re.match(rb"\[APPENDUID (\d+) 1\]", data[0])
    assert m and int(m.group(1)) == imap.folder(name="Sent").uidvalidity
    (info,) = imap.folder(name="Sent").messages()
    assert info.flags == {"\\Seen"} and info.keywords == {"$Label"}
    assert info.internaldate == date.timestamp()
    assert imap.folder(name="Sent").read(info) == MSG


def test_append_to_missing_mailbox_is_trycreate_before_data(imap: ImapHarness) -> None:
    raw = imap.raw(imap.start())
    raw.login()
    raw.send(b"a1 APPEND Nowhere {%d}\r\n" % len(MSG))
    assert raw.line().startswith(b"a1 NO [TRYCREATE]")  # no "+": the data is never sent
    assert raw.cmd(b"a2", b"NOOP")[-1].startswith(b"a2 OK")


def test_multiappend_and_literal_plus_into_other_folder(imap: ImapHarness) -> None:
    raw = imap.raw(imap.start())
    raw.login()
    raw.send(
        b"a1 APPEND Drafts (\\Draft) {%d+}\r\n%s {%d+}\r\n%s\r\n"
        % (len(MSG), MSG, len(MSG) + 1, MSG + b"x")
    )
    line = raw.line()
    assert re.match(rb"a1 OK \[APPENDUID \d+ 1:2\] ", line), line
    drafts = imap.folder(name="Drafts")
    infos = drafts.messages()
    assert [i.flags for i in infos] == [{"\\Draft"}, frozenset()]
    assert drafts.read(infos[1]) == MSG + b"x"
    inbox_tmp = imap.ctx.config.mail_root / "alice" / "Maildir" / "tmp"
    assert [p for p in os.listdir(inbox_tmp) if not p.startswith(".")] == []


def test_append_into_selected_mailbox_reports_exists(imap: ImapHarness) -> None:
    raw = imap.raw(imap.start())
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    raw.send(b"a1 APPEND INBOX {%d}\r\n" % len(MSG))
    assert raw.line().startswith(b"+ ")
    raw.send(MSG + b"\r\n")
    lines = raw.until_tagged(b"a1")
    assert b"* 1 EXISTS\r\n" in lines and lines[-1].startswith(b"a1 OK [APPENDUID ")


def test_append_too_big(imap: ImapHarness) -> None:
    ctx = imap.context(max_message_size=1000)
    raw = imap.raw(imap.start(ctx=ctx))
    raw.login()
    lines = raw.cmd(b"c", b"CAPABILITY")
    assert b"APPENDLIMIT=1000" in lines[0]
    raw.send(b"a1 APPEND INBOX {1001}\r\n")
    assert raw.line().startswith(b"a1 NO [TOOBIG]")
    assert imap.folder().messages() == []


def test_imapclient_append(imap: ImapHarness) -> None:
    client = imap.imapclient(imap.start())
    reply = client.append("INBOX", MSG, flags=[b"\\Flagged"])
    assert b"APPENDUID" in reply
    client.select_folder("INBOX")
    assert client.search(["FLAGGED"]) == [1]
