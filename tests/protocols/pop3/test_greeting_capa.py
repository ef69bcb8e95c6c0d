"""Greeting (RFC 1939 section 4) and CAPA (RFC 2449 section 5)."""

from __future__ import annotations

from mailgw.protocols.pop3 import SendData

from .helpers import login, make_conn, run

CAPA_BASE = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"


def test_greeting_has_no_apop_timestamp() -> None:
    greeting = make_conn().greeting()
    assert greeting == b"+OK mail.example.org mailgw ready.\r\n"
    assert b"<" not in greeting


def test_capa_plaintext_allowed_with_stls(bytewise: bool) -> None:
    out, events = run(make_conn(), b"CAPA\r\n", bytewise=bytewise)
    assert out == CAPA_BASE + b"USER\r\nSASL PLAIN\r\nSTLS\r\nIMPLEMENTATION mailgw\r\n.\r\n"
    assert events == [SendData(out)]


def test_capa_plaintext_disallowed_hides_auth(bytewise: bool) -> None:
    conn = make_conn(plaintext_auth_allowed=False)
    out, _ = run(conn, b"capa\r\n", bytewise=bytewise)
    assert out == CAPA_BASE + b"STLS\r\nIMPLEMENTATION mailgw\r\n.\r\n"


def test_capa_under_tls_lists_auth_but_not_stls() -> None:
    conn = make_conn(plaintext_auth_allowed=False, tls_active=True, stls_available=True)
    out, _ = run(conn, b"CAPA\r\n")
    assert out == CAPA_BASE + b"USER\r\nSASL PLAIN\r\nIMPLEMENTATION mailgw\r\n.\r\n"


def test_capa_without_stls_available() -> None:
    out, _ = run(make_conn(stls_available=False, implementation="mailgw 0.1"), b"CAPA\r\n")
    assert out == CAPA_BASE + b"USER\r\nSASL PLAIN\r\nIMPLEMENTATION mailgw 0.1\r\n.\r\n"


def test_capa_in_transaction(bytewise: bool) -> None:
    conn = make_conn()
    login(conn)
    out, _ = run(conn, b"CAPA\r\n", bytewise=bytewise)
    assert out == CAPA_BASE + b"IMPLEMENTATION mailgw\r\n.\r\n"


def test_capa_with_argument_is_an_error() -> None:
    out, _ = run(make_conn(), b"CAPA X\r\n")
    assert out == b"-ERR Too many arguments.\r\n"
