"""CAPABILITY, NOOP, ID, ENABLE, CHECK, LOGOUT and the serve app wiring."""

from __future__ import annotations

from mailgw.config.defaults import embedded_config
from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401


def test_greeting_id_enable_check_logout(imap: ImapHarness) -> None:
    raw = imap.raw(imap.start(), greeting=False)
    greeting = raw.line()
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ") and b"mx.example.org" in greeting
    lines = raw.cmd(b"i", b'ID ("name" "test")')
    assert lines[0] == b'* ID ("name" "mailgw")\r\n'
    assert raw.cmd(b"c", b"CHECK")[-1].startswith(b"c BAD")  # not selected
    raw.login()
    assert raw.cmd(b"e", b"ENABLE CONDSTORE X-UNKNOWN")[0] == b"* ENABLED CONDSTORE\r\n"
    raw.cmd(b"s", b"SELECT INBOX")
    assert raw.cmd(b"c2", b"CHECK") == [b"c2 OK CHECK completed\r\n"]
    raw.send(b"l LOGOUT\r\n")
    assert raw.read_to_eof() == b"* BYE Logging out\r\nl OK Logout completed\r\n"


def test_embedded_defaults_listen_for_imap() -> None:
    imap = [lc for lc in embedded_config().listeners if lc.protocol == "imap"]
    assert [(lc.port, lc.tls, lc.trusted) for lc in imap] == [(2143, "starttls", True)]
    assert embedded_config().limits.imap_idle_timeout >= 1800
