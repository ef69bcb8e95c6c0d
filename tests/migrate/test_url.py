"""Endpoint URLs: parsing, defaults, refusals, display."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailgw.errors import UsageError
from mailgw.migrate.url import EndpointSpec, parse_endpoint


@pytest.mark.parametrize(
    ("text", "kind", "port", "implicit"),
    [
        ("imap://alice@mail.example.com", "imap", 143, False),
        ("imaps://alice@mail.example.com", "imaps", 993, True),
        ("pop3://alice@mail.example.com", "pop3", 110, False),
        ("pop3s://alice@mail.example.com", "pop3s", 995, True),
        ("pop://alice@mail.example.com", "pop3", 110, False),
        ("POPS://alice@mail.example.com/", "pop3s", 995, True),
        ("IMAP://alice@mail.example.com:1143", "imap", 1143, False),
    ],
)
def test_network_kinds_and_default_ports(text: str, kind: str, port: int, implicit: bool) -> None:
    spec = parse_endpoint(text, role="source")
    assert (spec.kind, spec.user, spec.host, spec.port) == (kind, "alice", "mail.example.com", port)
    assert spec.implicit_tls is implicit
    assert spec.needs_password and spec.is_network and spec.path is None


def test_percent_decoded_user_and_last_at() -> None:
    spec = parse_endpoint("imaps://user%40example.com@mail.example.com", role="source")
    assert spec.user == "user@example.com" and spec.host == "mail.example.com"
    assert spec.display == "imaps://user%40example.com@mail.example.com:993"
    bare = parse_endpoint("imap://bob@example.org@10.0.0.5:2143", role="destination")
    assert (bare.user, bare.host, bare.port) == ("bob@example.org", "10.0.0.5", 2143)
    assert parse_endpoint("imap://J%C3%B6rg@h", role="source").user == "Jörg"


def test_ipv6_literals() -> None:
    spec = parse_endpoint("imap://alice@[::1]:1143", role="destination")
    assert (spec.host, spec.port) == ("::1", 1143)
    assert spec.display == "imap://alice@[::1]:1143"
    assert parse_endpoint("pop3s://a@[2001:db8::2]", role="source").port == 995
    with pytest.raises(UsageError, match="brackets"):
        parse_endpoint("imap://alice@::1:143", role="source")
    with pytest.raises(UsageError, match="closing"):
        parse_endpoint("imap://alice@[::1:143", role="source")
    with pytest.raises(UsageError, match="not an IPv6"):
        parse_endpoint("imap://alice@[nothost]:143", role="source")


def test_password_in_url_refused_and_not_echoed() -> None:
    with pytest.raises(UsageError) as info:
        parse_endpoint("imaps://alice:s3cret@mail.example.com", role="source")
    message = str(info.value)
    assert "password" in message and "--src-password-file" in message
    assert "MAILGW_SRC_PASSWORD" in message
    assert "s3cret" not in message and "alice:***@mail.example.com" in message
    assert info.value.exit_code == 2


def test_pop3_destination_refused() -> None:
    parse_endpoint("pop3://alice@h", role="source")
    for text in ("pop3://alice@h", "pop3s://alice@h", "pop://alice@h"):
        with pytest.raises(UsageError, match="only be a source"):
            parse_endpoint(text, role="destination")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("imap://mail.example.com", "no user name"),
        ("imap://@mail.example.com", "no user name"),
        ("imap://alice@", "no host"),
        ("imap://alice@mail.example.com:0", "port"),
        ("imap://alice@mail.example.com:70000", "port"),
        ("imap://alice@mail.example.com:imap", "port"),
        ("imap://alice@mail.example.com/INBOX", "not a folder"),
        ("imap://alice@mail.example.com?x=1", "query"),
        ("imap:alice@mail.example.com", "expected imap://"),
        ("imap://alice@bad_host!", "not a host name"),
        ("http://alice@mail.example.com", "unknown endpoint"),
        ("/var/mail/alice", "unknown endpoint"),
        ("maildir:", "no path"),
        ("mbox://otherhost/x", "local"),
    ],
)
def test_errors(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        parse_endpoint(text, role="source")
    assert "source" in str(info.value)


def test_file_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_endpoint("maildir:/srv/mail/a", role="source").path == Path("/srv/mail/a")
    rel = parse_endpoint("maildir:old/Maildir", role="destination")
    assert rel.path == tmp_path / "old" / "Maildir" and rel.path.is_absolute()
    home = parse_endpoint("mbox:~/x.mbox", role="source")
    assert home.path == tmp_path / "home" / "x.mbox"
    assert parse_endpoint("maildir:///srv/x/", role="source").path == Path("/srv/x")
    assert parse_endpoint("mbox:../y/./z", role="source").path == Path(
        os.path.normpath(tmp_path / ".." / "y" / "z")
    )
    spec = parse_endpoint("mbox:/srv/a.mbox", role="destination")
    assert spec.display == "mbox:/srv/a.mbox"
    assert not spec.needs_password and not spec.is_network


def test_spec_is_frozen_and_display_has_no_password() -> None:
    spec = EndpointSpec(kind="imap", user="a:b", host="h", port=143)
    assert spec.display == "imap://a%3Ab@h:143"  # a ':' in the user cannot read as a password
    with pytest.raises(AttributeError):
        spec.port = 1  # type: ignore[misc]
