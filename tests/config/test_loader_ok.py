"""Valid files load into the schema dataclasses, paths made absolute."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgw.config.defaults import DATA_ENV
from mailgw.config.loader import is_hostname, load_config
from mailgw.config.schema import LimitsConfig, ListenerConfig, TlsConfig

FULL = """
data_dir: data
hostname: Mail.A.Example
domains: [A.example, b.example, bücher.example]
users_file: etc/users.passwd
log_level: DEBUG
tls:
  cert: certs/../cert.pem
  key: key.pem
aliases:
  Postmaster@A.example: Alice
  team@b.example: [alice, bob@a.example, carol@BÜCHER.example]
catch_all:
  "@b.example": carol
relay_networks: [192.168.1.0/24, "fd00::/8", 10.1.2.3]
limits:
  max_recipients: 5
  auth_failure_delay: 2
listeners:
  - {protocol: smtp, address: 0.0.0.0, port: 25, tls: starttls}
  - name: lan
    protocol: submission
    address: "::1"
    port: 587
    tls: implicit
    trusted: true
  - {protocol: imap, address: 127.0.0.1, port: 0}
  - {protocol: pop3, address: 127.0.0.1, port: 0}
"""


def test_full_file(write_config: Callable[[str], Path], cert_files: tuple[Path, Path]) -> None:
    path = write_config(FULL)
    config = load_config(path)
    base = path.parent
    assert config.source == str(path)
    assert config.data_dir == base / "data"
    assert config.users_file == base / "etc" / "users.passwd"
    assert config.passwd_path == base / "etc" / "users.passwd"
    assert config.hostname == "mail.a.example"
    assert config.domains == ("a.example", "b.example", "xn--bcher-kva.example")
    assert config.log_level == "debug"
    assert config.tls == TlsConfig(cert=cert_files[0], key=cert_files[1])
    assert config.aliases == {
        "postmaster@a.example": ("alice",),
        "team@b.example": ("alice", "bob@a.example", "carol@xn--bcher-kva.example"),
    }
    assert config.catch_all == {"b.example": "carol"}
    assert config.relay_networks == (
        ipaddress.ip_network("192.168.1.0/24"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("10.1.2.3/32"),
    )
    assert config.limits == LimitsConfig(max_recipients=5, auth_failure_delay=2.0)
    assert config.listeners == (
        ListenerConfig("smtp-25", "smtp", "0.0.0.0", 25, "starttls", False),
        ListenerConfig("lan", "submission", "::1", 587, "implicit", True),
        ListenerConfig("imap-0", "imap", "127.0.0.1", 0, "none", False),
        ListenerConfig("pop3-0", "pop3", "127.0.0.1", 0, "none", False),
    )


def test_relative_paths_resolve_against_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "mailgw"
    conf_dir.mkdir(parents=True)
    (conf_dir / "tls").mkdir()
    (conf_dir / "tls" / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    (conf_dir / "mailgw.yaml").write_text(
        "data_dir: ../../var/mail\nusers_file: users\ndomains: [a.example]\n"
        "tls: {cert: tls/c.pem, key: ../../k.pem}\n"
        "listeners: [{protocol: smtp, address: 127.0.0.1, port: 25}]\n"
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # A relative config path: the base is its directory, not the cwd.
    config = load_config(Path(os.path.relpath(conf_dir / "mailgw.yaml", elsewhere)))
    assert config.data_dir == tmp_path / "var" / "mail"
    assert config.users_file == conf_dir / "users"
    assert config.tls == TlsConfig(cert=conf_dir / "tls" / "c.pem", key=tmp_path / "k.pem")
    assert config.data_dir.is_absolute()


def test_absolute_paths_are_kept(
    write_config: Callable[[str], Path], tmp_path: Path, cert_files: tuple[Path, Path]
) -> None:
    path = write_config(
        f"data_dir: {tmp_path / 'abs'}\ndomains: [a.example]\n"
        f"tls: {{cert: {cert_files[0]}, key: {cert_files[1]}}}\n"
        "listeners: [{protocol: pop3, address: 127.0.0.1, port: 995, tls: implicit}]\n"
    )
    config = load_config(path)
    assert config.data_dir == tmp_path / "abs"
    assert config.tls is not None and config.tls.cert == cert_files[0]


def test_data_dir_defaults_to_environment(
    write_config: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "envdata"))
    path = write_config(
        "domains: [a.example]\nlisteners: [{protocol: smtp, address: 127.0.0.1, port: 1}]\n"
    )
    config = load_config(path)
    assert config.data_dir == tmp_path / "envdata"
    assert config.tls is None
    assert config.users_file is None
    assert config.limits == LimitsConfig()
    assert config.aliases == {} and config.catch_all == {} and config.relay_networks == ()


def test_merge_keys_and_anchors(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        """
        domains: [a.example]
        listeners:
          - &lan {protocol: smtp, address: 192.168.1.10, port: 25, trusted: true}
          - <<: *lan
            protocol: pop3
            port: 110
        """
    )
    config = load_config(path)
    assert [(x.protocol, x.port, x.trusted) for x in config.listeners] == [
        ("smtp", 25, True),
        ("pop3", 110, True),
    ]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("localhost", True),
        ("office.lan", True),
        ("a-b.example", True),
        ("xn--bcher-kva.example", True),
        ("-a.example", False),
        ("a_b.example", False),
        ("a..example", False),
        ("example.", False),
        ("", False),
        ("a" * 64 + ".example", False),
    ],
)
def test_is_hostname(name: str, ok: bool) -> None:
    assert is_hostname(name) is ok
