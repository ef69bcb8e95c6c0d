"""describe(): one line per listener with its TLS mode and AUTH policy."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from mailgw.config.describe import auth_policy, describe, endpoint, warnings
from mailgw.config.schema import Config, ListenerConfig, TlsConfig


def _config(*listeners: ListenerConfig) -> Config:
    return Config(
        data_dir=Path("/var/lib/mailgw"),
        hostname="mail.a.example",
        domains=("a.example", "a.lan"),
        listeners=listeners,
        tls=TlsConfig(Path("/etc/mailgw/cert.pem"), Path("/etc/mailgw/key.pem")),
        catch_all={"a.lan": "alice"},
        relay_networks=(ipaddress.ip_network("192.168.1.0/24"),),
        source="/etc/mailgw/mailgw.yaml",
    )


def _listener_line(text: str, name: str) -> str:
    lines = [line for line in text.splitlines() if line.split()[:1] == [name]]
    assert len(lines) == 1, text
    return lines[0]


def test_describe_lists_every_listener() -> None:
    config = _config(
        ListenerConfig("mx", "smtp", "0.0.0.0", 25, "starttls"),
        ListenerConfig("submissions", "submission", "::", 465, "implicit"),
        ListenerConfig("lan", "smtp", "192.168.1.10", 2525, "none", trusted=True),
        ListenerConfig("pop3", "pop3", "127.0.0.1", 110, "none"),
    )
    text = describe(config)
    assert not text.endswith("\n")
    assert "Configuration:   /etc/mailgw/mailgw.yaml" in text
    assert "Data directory:  /var/lib/mailgw" in text
    assert "Users file:      /var/lib/mailgw/users.passwd" in text
    assert "Domains:         a.example, a.lan" in text
    assert "192.168.1.0/24" in text
    assert _listener_line(text, "mx").split()[:4] == ["mx", "smtp", "0.0.0.0:25", "STARTTLS"]
    assert _listener_line(text, "mx").endswith("AUTH over TLS only")
    assert "[::]:465" in _listener_line(text, "submissions")
    assert "implicit TLS" in _listener_line(text, "submissions")
    lan = _listener_line(text, "lan")
    assert "plaintext" in lan and lan.endswith("AUTH allowed in plaintext (trusted)")
    assert _listener_line(text, "pop3").endswith("(nobody can log in)")
    # columns line up: the address column starts at the same offset everywhere
    offsets = {
        line.index(":") for line in text.splitlines() if line.startswith("  ") and ":" in line
    }
    assert len(offsets) >= 1
    assert "Warning" not in text


def test_auth_policy_and_endpoint() -> None:
    assert (
        auth_policy(ListenerConfig("a", "pop3", "127.0.0.1", 1, "starttls")) == "AUTH over TLS only"
    )
    assert "trusted" in auth_policy(ListenerConfig("a", "pop3", "127.0.0.1", 1, "starttls", True))
    assert endpoint("::1", 25) == "[::1]:25"
    assert endpoint("10.0.0.1", 25) == "10.0.0.1:25"


def test_trusted_wildcard_listener_warns() -> None:
    config = _config(ListenerConfig("open", "smtp", "0.0.0.0", 25, "none", trusted=True))
    assert len(warnings(config)) == 1
    assert "Warning: listener open is trusted" in describe(config)
