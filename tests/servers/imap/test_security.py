"""IMAP listener security: STARTTLS injection, traversal names, long lines, literal floods."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401


def test_starttls_with_pipelined_plaintext_closes(imap: ImapHarness) -> None:
    port = imap.start("imap")
    raw = imap.raw(port)
    raw.send(b"a1 STARTTLS\r\na2 LOGIN alice x\r\n")
    rest = raw.read_to_eof()  # closed, never upgraded
    assert b"a1 OK" not in rest and b"a2" not in rest


def test_starttls_unavailable_on_plain_listener(imap: ImapHarness) -> None:
    port = imap.start("imap-plain")
    raw = imap.raw(port)
    assert raw.cmd(b"a1", b"STARTTLS")[-1].startswith(b"a1 BAD")


def test_plaintext_before_tls_is_forgotten(imap: ImapHarness) -> None:
    port = imap.start("imap")
    raw = imap.raw(port)
    raw.send(b"a1 STARTTLS\r\n")
    assert raw.line().startswith(b"a1 OK")
    raw.starttls(imap.tls.client_context())
    reply = raw.cmd(b"a2", b"CAPABILITY")
    assert b"AUTH=PLAIN" in reply[0] and b"STARTTLS" not in reply[0]
    raw.login()


@pytest.mark.parametrize(
    "name",
    [b'"../evil"', b'"a/../../evil"', b'".hidden"', b'"/abs"', b'"a//b"', b'"~x"', b'"x.y"'],
)
def test_traversal_and_invalid_names_refused(imap: ImapHarness, name: bytes) -> None:
    port = imap.start()
    raw = imap.raw(port)
    raw.login()
    maildir = imap.ctx.config.mail_root / "alice" / "Maildir"
    before = sorted(os.listdir(maildir.parent.parent))
    reply = raw.cmd(b"c1", b"CREATE " + name)
    assert reply[-1].startswith(b"c1 NO"), reply
    assert raw.cmd(b"c2", b"SELECT " + name)[-1].startswith(b"c2 NO")
    assert raw.cmd(b"c3", b"RENAME INBOX " + name)[-1].startswith(b"c3 NO")
    assert raw.cmd(b"c4", b"APPEND " + name + b" {3+}\r\nabc")[-1].startswith(b"c4 NO")
    assert sorted(os.listdir(maildir.parent.parent)) == before
    assert not (maildir.parent.parent.parent / "evil").exists()


def test_long_line_is_refused_and_session_continues(imap: ImapHarness) -> None:
    port = imap.start()
    raw = imap.raw(port)
    raw.send(b"a1 NOOP " + b"x" * 20000 + b"\r\n")
    assert b"BAD" in raw.line()
    assert raw.cmd(b"a2", b"NOOP")[-1].startswith(b"a2 OK")


def test_literal_flood_before_login(imap: ImapHarness) -> None:
    port = imap.start()
    raw = imap.raw(port)
    # a synchronizing literal larger than the pre-auth limit: BAD, never "+"
    reply = raw.cmd(b"a1", b"LOGIN {1000000}")
    assert reply[-1].startswith(b"a1 BAD") and not any(r.startswith(b"+") for r in reply)
    # a non-synchronizing one already on its way: BYE [TOOBIG] and close
    raw.send(b"a2 LOGIN {1000000+}\r\n" + b"x" * 1000)
    rest = raw.read_to_eof()
    assert b"* BYE [TOOBIG]" in rest


def test_too_many_bad_commands_end_the_session(imap: ImapHarness) -> None:
    ctx = imap.context(bad_commands=3)
    port = imap.start(ctx=ctx)
    raw = imap.raw(port)
    for i in range(3):
        assert b"BAD" in raw.cmd(b"b%d" % i, b"BOGUS")[-1]
    raw.send(b"b9 BOGUS\r\n")
    assert b"* BYE" in raw.read_to_eof()


def test_autologout(imap: ImapHarness) -> None:
    ctx = imap.context(imap_idle_timeout=1)
    port = imap.start(ctx=ctx)
    raw = imap.raw(port)
    assert raw.read_to_eof().startswith(b"* BYE Autologout")


def test_append_aborted_by_disconnect_leaves_no_tmp_file(imap: ImapHarness) -> None:
    port = imap.start()
    raw = imap.raw(port)
    raw.login()
    raw.send(b"a1 APPEND INBOX {100000}\r\n")
    assert raw.line().startswith(b"+")
    raw.send(b"x" * 50000)
    tmp = imap.ctx.config.mail_root / "alice" / "Maildir" / "tmp"
    raw.sock.shutdown(socket.SHUT_RDWR)
    raw.close()
    probe = imap.raw(port)  # the server handles the close before our next login completes
    probe.login()
    probe.cmd(b"n", b"NOOP")
    for _ in range(200):
        if not [p for p in os.listdir(tmp) if not p.startswith(".")]:
            break
        time.sleep(0.01)
    assert [p for p in os.listdir(tmp) if not p.startswith(".")] == []
    assert imap.folder().messages() == []
