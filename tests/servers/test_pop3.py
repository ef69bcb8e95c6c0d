"""The POP3 listener end to end: poplib and raw sockets against a real server.

Security-sensitive behaviour (plaintext refusal, STLS injection, limits,
the auth-failure delay) is in ``test_pop3_security.py``.
"""

from __future__ import annotations

import base64
import poplib
import time
from pathlib import Path

import pytest

from mailgw.protocols.pop3.dotstuff import DotStuffer
from mailgw.servers.pop3 import pop3_size
from mailgw.store import MessageInfo, Store
from mailgw.store.wire import CHUNK
from tests.servers.conftest import USERS
from tests.servers.pop3_fixtures import Pop3Harness, crlf, pop3_fixture, stuffed  # noqa: F401

MSG1 = b"From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n"
DOTS = (
    b"From: b@example.org\r\nSubject: dots\r\n\r\n"
    b".\r\n..\r\n.leading dot\r\n. \r\nmiddle . dot\r\n.\r\n"
)
EIGHT_BIT = b"Subject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\xff\x80\r\n"


def plain_ir(user: str, password: str, authzid: str = "") -> bytes:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode())


def big_message(size: int) -> bytes:
    head = b"From: big@example.org\r\nSubject: big\r\n\r\n"
    line = b".0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"  # dot-led: stuffing too
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body


# --- login -----------------------------------------------------------------------------


def test_user_pass_on_trusted_plaintext_listener(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    port = pop3.start("pop3-trusted")
    client = pop3.client(port)
    assert client.getwelcome().startswith(b"+OK mx.example.org")
    assert client.user("alice").startswith(b"+OK")
    assert client.pass_(USERS["alice"]).startswith(b"+OK")
    assert client.stat() == (1, len(MSG1))
    assert client.quit().startswith(b"+OK")


def test_login_with_local_domain_and_wrong_password(pop3: Pop3Harness) -> None:
    port = pop3.start("pop3-trusted")
    client = pop3.client(port)
    client.user("bob")
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        client.pass_("wrong")
    client.user("Bob@example.org")
    assert client.pass_(USERS["bob"]).startswith(b"+OK")
    assert client.stat() == (0, 0)


def test_auth_plain_with_initial_response(pop3: Pop3Harness) -> None:
    port = pop3.start("pop3-trusted")
    raw = pop3.raw(port)
    assert raw.cmd(b"AUTH PLAIN " + plain_ir("alice", USERS["alice"])).startswith(b"+OK")
    assert raw.cmd(b"STAT") == b"+OK 0 0\r\n"


def test_auth_plain_with_continuation(pop3: Pop3Harness) -> None:
    port = pop3.start("pop3-trusted")
    raw = pop3.raw(port)
    assert raw.cmd(b"AUTH PLAIN") == b"+ \r\n"
    assert raw.cmd(plain_ir("alice", USERS["alice"], authzid="alice")).startswith(b"+OK")
    assert raw.cmd(b"NOOP") == b"+OK\r\n"


def test_auth_plain_wrong_password_and_cancel(pop3: Pop3Harness) -> None:
    port = pop3.start("pop3-trusted")
    raw = pop3.raw(port)
    assert raw.cmd(b"AUTH PLAIN " + plain_ir("alice", "nope")).startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"AUTH PLAIN") == b"+ \r\n"
    assert raw.cmd(b"*").startswith(b"-ERR")
    assert raw.cmd(b"STAT").startswith(b"-ERR")  # still AUTHORIZATION
    raw.login("alice")


def test_auth_plain_authzid_of_another_user_is_refused(pop3: Pop3Harness) -> None:
    """RFC 4616 section 2: no proxy authorization; the right password is not enough."""
    port = pop3.start("pop3-trusted")
    raw = pop3.raw(port)
    reply = raw.cmd(b"AUTH PLAIN " + plain_ir("alice", USERS["alice"], authzid="bob"))
    assert reply.startswith(b"-ERR [AUTH]")
    assert raw.cmd(b"STAT").startswith(b"-ERR")
    assert not pop3.locked("alice") and not pop3.locked("bob")


def test_implicit_tls_listener(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    port = pop3.start("pop3s")
    client = pop3.client_ssl(port)
    caps = client.capa()
    assert "USER" in caps and caps["SASL"] == ["PLAIN"] and "STLS" not in caps
    client.user("alice")
    client.pass_(USERS["alice"])
    _, lines, _ = client.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == MSG1
    client.quit()


# --- reading ---------------------------------------------------------------------------


def test_stat_list_uidl_retr_byte_for_byte(pop3: Pop3Harness) -> None:
    big = big_message(3 * 1024 * 1024)
    messages = [MSG1, DOTS, EIGHT_BIT, big]
    for data in messages:
        pop3.deliver(data)
    folder = pop3.inbox()
    infos = folder.messages()
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()

    total = sum(len(m) for m in messages)
    assert raw.cmd(b"STAT") == f"+OK {len(messages)} {total}\r\n".encode()
    _, listing = raw.multi(b"LIST")
    assert listing == b"".join(b"%d %d\r\n" % (i, len(m)) for i, m in enumerate(messages, 1)) + (
        b".\r\n"
    )
    assert raw.cmd(b"LIST 3") == b"+OK 3 %d\r\n" % len(EIGHT_BIT)
    _, uidls = raw.multi(b"UIDL")
    expected = [f"{i.uid:08x}{folder.uidvalidity:08x}".encode() for i in infos]
    assert uidls == b"".join(b"%d %s\r\n" % (n, u) for n, u in enumerate(expected, 1)) + b".\r\n"
    assert raw.cmd(b"UIDL 2") == b"+OK 2 " + expected[1] + b"\r\n"

    for n, data in enumerate(messages, 1):
        status, body = raw.multi(b"RETR %d" % n)
        assert status == b"+OK %d octets\r\n" % len(data)
        assert body == stuffed(data), f"message {n}"

    # poplib undoes the stuffing: the same message again
    assert raw.cmd(b"QUIT").startswith(b"+OK")
    client = pop3.client(port)
    client.user("alice")
    client.pass_(USERS["alice"])
    _, lines, _ = client.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == DOTS
    assert lines[3:6] == [b".", b"..", b".leading dot"]


def test_bare_lf_files_come_out_with_crlf(pop3: Pop3Harness) -> None:
    lf_message = b"Subject: lf\n\n.dot\nline two\r\nline three\n"
    pop3.deliver(lf_message)  # the store names it with ,S=..,W=..
    # a file dropped by another MDA, without sizes in its name
    inbox = pop3.inbox()
    (inbox.path / "new" / "1700000000.M1P1Q1.elsewhere").write_bytes(lf_message)
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    want = crlf(lf_message)
    assert raw.cmd(b"STAT") == b"+OK 2 %d\r\n" % (2 * len(want))
    for n in (1, 2):
        assert raw.cmd(b"LIST %d" % n) == b"+OK %d %d\r\n" % (n, len(want))
        status, body = raw.multi(b"RETR %d" % n)
        assert status == b"+OK %d octets\r\n" % len(want)
        assert body == stuffed(want)
        assert b"\n" not in body.replace(b"\r\n", b"")


def test_unterminated_last_line_is_terminated(pop3: Pop3Harness) -> None:
    pop3.deliver(b"Subject: x\r\n\r\nno newline at end")
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    _, body = raw.multi(b"RETR 1")
    assert body == b"Subject: x\r\n\r\nno newline at end\r\n.\r\n"


@pytest.mark.parametrize("split", [1, 7, 65535, 65536])
def test_bare_lf_and_stuffing_across_chunks(split: int) -> None:
    data = b"a\r\nb\n.c\r\r\n.\n" * 10000  # 150000 bytes
    stuffer = DotStuffer()
    wire = stuffer.feed(data[:split]) + stuffer.feed(data[split:]) + stuffer.end()
    assert wire == stuffed(crlf(data))


@pytest.mark.parametrize("named", [True, False])
def test_pop3_size_counts_bare_lf_as_crlf(tmp_path: Path, named: bool) -> None:
    # a CRLF straddles the 1 MiB read chunk; bare LFs on both sides of it
    data = b"a\n" + b"x" * (CHUNK - 3) + b"\r\n" + b"b\nc\r\n" * 1000
    assert data[CHUNK - 1 : CHUNK + 1] == b"\r\n"
    name = f"1.M1P1Q1.h,S={len(data)},W={len(crlf(data))}" if named else "1.M1P1Q1.h"
    path = tmp_path / name
    path.write_bytes(data)
    info = MessageInfo(1, name, path, len(data), frozenset(), frozenset(), 0.0)
    assert pop3_size(info) == len(crlf(data))


def test_top(pop3: Pop3Harness) -> None:
    message = b"From: a@example.org\r\nSubject: top\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n"
    pop3.deliver(message)
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    head = b"From: a@example.org\r\nSubject: top\r\n\r\n"
    assert raw.multi(b"TOP 1 0")[1] == head + b".\r\n"
    assert raw.multi(b"TOP 1 2")[1] == head + b"line 1\r\n..line 2\r\n.\r\n"
    assert raw.multi(b"TOP 1 99")[1] == stuffed(message)
    assert raw.cmd(b"TOP 2 0").startswith(b"-ERR")
    assert raw.cmd(b"TOP 1 x").startswith(b"-ERR")
    client = pop3.client(port)
    client.user("bob")
    client.pass_(USERS["bob"])
    with pytest.raises(poplib.error_proto):
        client.top(1, 0)


def test_message_numbers_and_errors(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    assert raw.cmd(b"RETR 2").startswith(b"-ERR")
    assert raw.cmd(b"RETR 0").startswith(b"-ERR")
    assert raw.cmd(b"LIST 9").startswith(b"-ERR")
    assert raw.cmd(b"DELE 1").startswith(b"+OK")
    assert raw.cmd(b"RETR 1").startswith(b"-ERR")
    assert raw.cmd(b"DELE 1").startswith(b"-ERR")
    assert raw.cmd(b"USER alice").startswith(b"-ERR")  # not in TRANSACTION
    assert raw.cmd(b"NOOP") == b"+OK\r\n"


def test_pipelined_commands_answered_in_order(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    pop3.deliver(DOTS)
    port = pop3.start()
    raw = pop3.raw(port)
    login = f"USER alice\r\nPASS {USERS['alice']}\r\n".encode()
    raw.send(login + b"STAT\r\nRETR 2\r\nLIST 1\r\nQUIT\r\n")
    assert raw.line() == b"+OK\r\n"
    assert raw.line().startswith(b"+OK")
    assert raw.line() == b"+OK 2 %d\r\n" % (len(MSG1) + len(DOTS))
    assert raw.line().startswith(b"+OK")
    assert raw.body() == stuffed(DOTS)
    assert raw.line() == b"+OK 1 %d\r\n" % len(MSG1)
    assert raw.line().startswith(b"+OK")
    assert raw.read_to_eof() == b""


def test_retr_of_a_message_expunged_meanwhile(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    pop3.deliver(DOTS)
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    inbox = pop3.inbox()
    inbox.expunge([inbox.messages()[0].uid])  # e.g. an IMAP client
    assert raw.cmd(b"RETR 1").startswith(b"-ERR")
    assert raw.cmd(b"TOP 1 0").startswith(b"-ERR")
    assert raw.multi(b"RETR 2")[1] == stuffed(DOTS)
    assert raw.cmd(b"QUIT").startswith(b"+OK")


def test_retr_of_a_message_renamed_meanwhile(pop3: Pop3Harness) -> None:
    """An IMAP client setting flags renames the file (new/ -> cur/:2,S): still found."""
    pop3.deliver(MSG1)
    pop3.deliver(DOTS)
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    inbox = pop3.inbox()
    for info in inbox.messages():
        inbox.set_flags(info.uid, frozenset({"\\Seen"}), frozenset())
    assert not any((inbox.path / "new").iterdir())
    assert raw.multi(b"RETR 2")[1] == stuffed(DOTS)
    assert raw.multi(b"TOP 1 0")[1] == b"From: a@example.org\r\nSubject: one\r\n\r\n.\r\n"


# --- deleting --------------------------------------------------------------------------


def test_dele_then_rset_keeps_everything(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    pop3.deliver(DOTS)
    port = pop3.start()
    client = pop3.client(port)
    client.user("alice")
    client.pass_(USERS["alice"])
    client.dele(1)
    client.dele(2)
    assert client.stat() == (0, 0)
    assert client.rset().startswith(b"+OK")
    assert client.stat() == (2, len(MSG1) + len(DOTS))
    client.quit()
    assert len(pop3.inbox().messages()) == 2


def test_dele_then_quit_removes_from_maildir(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    pop3.deliver(DOTS)
    keep = pop3.deliver(EIGHT_BIT)
    port = pop3.start()
    client = pop3.client(port)
    client.user("alice")
    client.pass_(USERS["alice"])
    client.dele(1)
    client.dele(2)
    assert client.quit().startswith(b"+OK")
    infos = pop3.inbox().messages()
    assert [i.key for i in infos] == [keep]
    files = [p for sub in ("new", "cur") for p in (pop3.inbox().path / sub).iterdir()]
    assert len(files) == 1 and files[0].read_bytes() == EIGHT_BIT
    assert not pop3.locked("alice")


def test_dele_then_dropped_connection_deletes_nothing(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    pop3.deliver(DOTS)
    port = pop3.start()
    raw = pop3.raw(port)
    raw.login()
    assert raw.cmd(b"DELE 1").startswith(b"+OK")
    assert raw.cmd(b"DELE 2").startswith(b"+OK")
    raw.close()  # no QUIT
    pop3.wait_unlocked("alice")
    assert len(pop3.inbox().messages()) == 2
    client = pop3.client(port)
    client.user("alice")
    client.pass_(USERS["alice"])
    assert client.stat() == (2, len(MSG1) + len(DOTS))


# --- UIDL stability, maildrop lock ------------------------------------------------------


def _uidls(pop3: Pop3Harness, port: int) -> list[bytes]:
    client = pop3.client(port)
    client.user("alice")
    client.pass_(USERS["alice"])
    _, lines, _ = client.uidl()
    client.quit()
    return [line.split()[1] for line in lines]


def test_uidls_stable_across_sessions_and_restart(pop3: Pop3Harness) -> None:
    for data in (MSG1, DOTS, EIGHT_BIT):
        pop3.deliver(data)
    port = pop3.start()
    first = _uidls(pop3, port)
    folder = Store(pop3.ctx.config.mail_root).account("alice").folder("INBOX")
    infos = folder.messages()
    assert first == [f"{i.uid:08x}{folder.uidvalidity:08x}".encode() for i in infos]
    assert len(set(first)) == 3
    assert _uidls(pop3, port) == first
    # a new message gets a new UIDL, the others keep theirs
    pop3.deliver(MSG1)
    second = _uidls(pop3, port)
    assert second[:3] == first and second[3] not in first
    # "restart": a new ServerContext and listener over the same data directory
    port2 = pop3.start("pop3-trusted", pop3.context())
    assert _uidls(pop3, port2) == second


def test_second_session_gets_in_use_until_first_quits(pop3: Pop3Harness) -> None:
    pop3.deliver(MSG1)
    port = pop3.start()
    first = pop3.client(port)
    first.user("alice")
    first.pass_(USERS["alice"])
    second = pop3.raw(port)
    assert second.cmd(b"USER alice") == b"+OK\r\n"
    assert second.cmd(f"PASS {USERS['alice']}".encode()).startswith(b"-ERR [IN-USE]")
    assert second.cmd(b"STAT").startswith(b"-ERR")  # still AUTHORIZATION
    other = pop3.client(port)  # another user is not affected
    other.user("bob")
    other.pass_(USERS["bob"])
    first.dele(1)
    first.quit()
    second.login("alice")
    assert second.cmd(b"STAT") == b"+OK 0 0\r\n"


def test_lock_released_when_client_disconnects_during_login(pop3: Pop3Harness) -> None:
    port = pop3.start()
    raw = pop3.raw(port)
    raw.send(f"USER alice\r\nPASS {USERS['alice']}\r\n".encode())
    raw.close()
    # whether or not the login completed, the lock must not outlive the session
    deadline = time.monotonic() + 30
    client = pop3.client(port)
    client.user("alice")
    while True:
        try:
            client.pass_(USERS["alice"])
            break
        except poplib.error_proto as exc:
            assert b"[IN-USE]" in exc.args[0] and time.monotonic() < deadline
            time.sleep(0.01)
            client.user("alice")
    assert client.stat() == (0, 0)
