"""describe(): one line per listener with its TLS mode and AUTH policy; the relay section."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest

from mailgw.config.describe import (
    auth_policy,
    describe,
    duration,
    endpoint,
    route_auth,
    route_tls,
    warnings,
)
from mailgw.config.loader import load_config
from mailgw.config.schema import Config, ListenerConfig, RelayConfig, RouteConfig, TlsConfig


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


# --- the relay section --------------------------------------------------------


def _relay_config(*routes: RouteConfig, **relay: object) -> Config:
    base = _config(ListenerConfig("sub", "submission", "127.0.0.1", 587, "starttls"))
    return dataclasses.replace(base, relay=RelayConfig(routes=routes, **relay))  # type: ignore[arg-type]


def _route_block(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  route {name} "))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        block.append(line)
    return block


def test_no_relay_section_says_relay_is_off() -> None:
    text = describe(_config(ListenerConfig("mx", "smtp", "0.0.0.0", 25, "starttls")))
    assert "Relay:           off" in text
    assert "451 4.3.2" in text
    assert "route " not in text


def test_relay_section_shows_queue_and_routes(tmp_path: Path) -> None:
    secret_file = tmp_path / "isp.pass"
    secret_file.write_text("hunter2-secret\n")
    isp = RouteConfig(
        name="isp",
        hosts=("smtp.isp.example", "smtp2.isp.example:2525"),
        port=587,
        username="office@isp.example",
        password_file=secret_file,
    )
    backup = RouteConfig(
        name="backup",
        hosts=("2001:db8::25",),
        port=465,
        tls="implicit",
        ca_file=Path("/etc/mailgw/isp-ca.pem"),
        username="u2",
        password_env="MAILGW_BACKUP_PASSWORD",
        domains=("backup.example",),
    )
    partner = RouteConfig(
        name="partner",
        kind="mx",
        port=25,
        tls_required=False,
        tls_verify=False,
        domains=("partner.example", "partner.org"),
        concurrency=2,
    )
    config = _relay_config(
        partner,
        backup,
        isp,
        lifetime=5 * 86400.0,
        retry_min=300.0,
        retry_max=4 * 3600.0,
        delay_warning=4 * 3600.0,
        spool_dir=Path("/var/spool/mailgw"),
        nameservers=("127.0.0.1", "::1"),
        resolver_port=5353,
        postmaster="postmaster@a.example",
    )
    text = describe(config)
    assert "hunter2" not in text
    assert "Warning" not in text
    assert "  spool directory: /var/spool/mailgw" in text
    assert "  lifetime:        5d " in text
    assert "first after 5m, doubling up to every 4h" in text
    assert "  delay DSN:       after 4h" in text
    assert "postmaster@a.example" in text
    assert "127.0.0.1:5353, [::1]:5353" in text

    head, hosts, tls, auth, limits = _route_block(text, "isp")
    assert head == "  route isp (smarthost) for every other domain (default route)"
    assert hosts.split(":", 1)[1].strip() == (
        "smtp.isp.example:587, smtp2.isp.example:2525 (in this order: failover)"
    )
    assert tls.endswith("STARTTLS, required, certificate verified")
    assert auth.endswith(f"office@isp.example (password from file {secret_file})")
    assert limits.endswith("100 messages per connection, 4 connections per destination")

    head, hosts, tls, auth, _ = _route_block(text, "backup")
    assert head == "  route backup (smarthost) for backup.example"
    assert hosts.endswith("[2001:db8::25]:465")
    assert "failover" not in hosts
    assert tls.endswith(
        "implicit TLS, required, certificate verified against /etc/mailgw/isp-ca.pem"
    )
    assert auth.endswith("u2 (password from $MAILGW_BACKUP_PASSWORD)")

    head, hosts, tls, auth, limits = _route_block(text, "partner")
    assert head == "  route partner (mx) for partner.example, partner.org"
    assert "MX of the recipient domain" in hosts and hosts.endswith("port 25")
    assert tls.endswith("STARTTLS, opportunistic, certificate not verified")
    assert auth.endswith("AUTH:   none")
    assert limits.endswith("2 connections per destination")
    # routes appear in configuration order, after the listeners
    order = [text.index(f"  route {n} ") for n in ("partner", "backup", "isp")]
    assert order == sorted(order) and text.index("Listeners:") < order[0]


def test_relay_defaults_spool_in_data_dir_no_delay_warning() -> None:
    route = RouteConfig(name="out", hosts=("relay.example",))
    config = _relay_config(route, delay_warning=None, retry_min=600.0, retry_max=600.0)
    text = describe(config)
    assert "  spool directory: /var/lib/mailgw/queue" in text
    assert "  delay DSN:       never" in text
    assert "first after 10m, fixed" in text
    assert "  postmaster:      none (no notices)" in text
    assert "the system's (/etc/resolv.conf)" in text
    assert _route_block(text, "out")[3].endswith("AUTH:   none")


def test_route_tls_labels() -> None:
    plain = RouteConfig(name="p", hosts=("h",), tls="none", tls_required=False, port=25)
    assert route_tls(plain) == "none (plaintext)"
    assert route_auth(plain) == "none"


def test_password_over_weak_tls_warns() -> None:
    plain = RouteConfig(
        name="lan",
        hosts=("10.0.0.1",),
        tls="none",
        tls_required=False,
        username="gw",
        password_env="GW_PASS",
    )
    unverified = RouteConfig(
        name="selfsigned",
        hosts=("relay.lan",),
        tls_verify=False,
        username="gw",
        password_env="GW_PASS",
        domains=("x.example",),
    )
    anonymous = RouteConfig(name="anon", hosts=("h",), tls_required=False, domains=("y.example",))
    config = _relay_config(plain, unverified, anonymous)
    found = warnings(config)
    assert len(found) == 2, found
    assert "route lan may send the password of gw in plaintext" in found[0]
    assert "route selfsigned" in found[1] and "not checked" in found[1]
    assert "Warning: route lan" in describe(config)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "0.5s"),
        (45, "45s"),
        (90, "1m30s"),
        (300, "5m"),
        (5400, "1h30m"),
        (432000, "5d"),
        (90061, "1d1h1m1s"),
        (14400, "4h"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_relay_example_file_described(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    source = (examples / "relay.yaml").read_text(encoding="utf-8")
    path = tmp_path / "relay.yaml"
    path.write_text(source.replace("/var/lib/mailgw", str(tmp_path / "var")), encoding="utf-8")
    text = describe(load_config(path))
    assert f"  spool directory: {tmp_path / 'var' / 'queue'}" in text
    assert "  route isp (smarthost) for every other domain (default route)" in text
    assert "office@isp.example (password from $MAILGW_ISP_PASSWORD)" in text
    assert "  route partner (mx) for partner.example" in text
    assert "Warning" not in text
