"""Authentication: CAPABILITY, LOGIN, AUTHENTICATE PLAIN (SASL-IR), STARTTLS, implicit TLS."""

from __future__ import annotations

import base64
import imaplib

import pytest

from tests.servers.conftest import USERS
from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

PLAIN = base64.b64encode(f"\0alice\0{USERS['alice']}".encode())


def caps(client: imaplib.IMAP4) -> set[str]:
    typ, data = client.capability()
    assert typ == "OK"
    return set(data[0].decode().split())


def test_trusted_plaintext_login_and_capabilities(imap: ImapHarness) -> None:
    port = imap.start("imap-trusted")
    client = imap.client(port, login=False)
    before = caps(client)
    assert {"IMAP4rev1", "AUTH=PLAIN", "SASL-IR", "LITERAL+", "IDLE"} <= before
    assert "LOGINDISABLED" not in before and "STARTTLS" not in before
    assert "UIDPLUS" not in before  # mailbox extensions only after login
    assert client.login("alice", USERS["alice"])[0] == "OK"
    after = caps(client)
    for cap in ("UIDPLUS", "MOVE", "NAMESPACE", "SPECIAL-USE", "ESEARCH", "CHILDREN", "UNSELECT"):
        assert cap in after
    assert "LIST-EXTENDED" in after and "LIST-STATUS" in after and "MULTIAPPEND" in after
    assert any(c.startswith("APPENDLIMIT=") for c in after)
    assert "AUTH=PLAIN" not in after


@pytest.mark.parametrize("listener", ["imap-plain", "imap"])
def test_untrusted_plaintext_has_logindisabled_and_refuses(
    imap: ImapHarness, listener: str
) -> None:
    port = imap.start(listener)
    raw = imap.raw(port, greeting=False)
    greeting = raw.line()
    assert b"LOGINDISABLED" in greeting and b"AUTH=" not in greeting
    assert (b"STARTTLS" in greeting) == (listener == "imap")
    reply = raw.cmd(b"a1", f"LOGIN alice {USERS['alice']}".encode())
    assert reply[-1].startswith(b"a1 NO [PRIVACYREQUIRED]")
    reply = raw.cmd(b"a2", b"AUTHENTICATE PLAIN " + PLAIN)
    assert reply[-1].startswith(b"a2 NO [PRIVACYREQUIRED]")
    assert raw.cmd(b"a3", b"SELECT INBOX")[-1].startswith(b"a3 BAD")
    assert imap.ctx.limiter.failures("127.0.0.1") == 0  # refused, not tried


def test_starttls_then_login(imap: ImapHarness) -> None:
    port = imap.start("imap")
    client = imap.client(port, login=False)
    assert "STARTTLS" in caps(client) and "LOGINDISABLED" in caps(client)
    assert client.starttls(ssl_context=imap.tls.client_context())[0] == "OK"
    after = caps(client)
    assert "STARTTLS" not in after and "LOGINDISABLED" not in after and "AUTH=PLAIN" in after
    assert client.login("alice", USERS["alice"])[0] == "OK"
    assert client.select("INBOX")[0] == "OK"


def test_implicit_tls(imap: ImapHarness) -> None:
    port = imap.start("imaps")
    client = imap.client_ssl(port)
    assert "AUTH=PLAIN" in caps(client) and "STARTTLS" not in caps(client)
    assert client.login("alice@example.org", USERS["alice"])[0] == "OK"


def test_wrong_password_is_authenticationfailed_and_delayed(imap: ImapHarness) -> None:
    port = imap.start()
    raw = imap.raw(port)
    reply = raw.cmd(b"a1", b"LOGIN alice wrong")
    assert reply[-1].startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    assert imap.sleep.delays, "the shared failure delay was not applied"
    assert imap.ctx.limiter.failures("127.0.0.1") == 1
    raw.login()


def test_authenticate_plain_sasl_ir_and_continuation(imap: ImapHarness) -> None:
    port = imap.start()
    raw = imap.raw(port)
    reply = raw.cmd(b"a1", b"AUTHENTICATE PLAIN " + PLAIN)
    assert reply[-1].startswith(b"a1 OK [CAPABILITY ")
    raw2 = imap.raw(port)
    raw2.send(b"b1 AUTHENTICATE PLAIN\r\n")
    assert raw2.line() == b"+ \r\n"
    raw2.send(PLAIN + b"\r\n")
    assert raw2.line().startswith(b"b1 OK")
    raw3 = imap.raw(port)
    raw3.send(b"c1 AUTHENTICATE PLAIN\r\n")
    assert raw3.line() == b"+ \r\n"
    raw3.send(b"*\r\n")
    assert raw3.line().startswith(b"c1 BAD")
    assert raw3.cmd(b"c2", b"AUTHENTICATE CRAM-MD5")[-1].startswith(b"c2 NO")


def test_imapclient_login_and_plain(imap: ImapHarness) -> None:
    port = imap.start()
    client = imap.imapclient(port, login=False)
    client.plain_login("alice", USERS["alice"])
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
