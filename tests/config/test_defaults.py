"""Embedded defaults: loopback listeners, data dir from $MAILGW_DATA."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgw.config.defaults import IMAP_LISTENER, embedded_config
from mailgw.config.loader import load_config
from mailgw.config.schema import ListenerConfig, TlsConfig


def test_defaults_without_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILGW_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.data_dir == tmp_path / "mailgw-data"
    assert config.data_dir.is_absolute()
    assert config.domains == ("localhost",)
    assert config.hostname
    assert config.source == "<embedded defaults>"
    # serve makes these on first start: the loader must not require them
    assert config.tls == TlsConfig(
        cert=tmp_path / "mailgw-data" / "tls" / "cert.pem",
        key=tmp_path / "mailgw-data" / "tls" / "key.pem",
    )
    assert not config.tls.cert.exists()
    assert config.passwd_path == tmp_path / "mailgw-data" / "users.passwd"
    assert config.listeners == (
        ListenerConfig("smtp", "smtp", "127.0.0.1", 2525, "starttls", True),
        ListenerConfig("submission", "submission", "127.0.0.1", 2587, "starttls", True),
        ListenerConfig("pop3", "pop3", "127.0.0.1", 2110, "starttls", True),
        ListenerConfig("imap", "imap", "127.0.0.1", 2143, "starttls", True),
    )
    assert config.relay_networks == ()


def test_defaults_with_mailgw_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILGW_DATA", "rel/data")
    assert load_config(None).data_dir == tmp_path / "rel" / "data"
    monkeypatch.setenv("MAILGW_DATA", str(tmp_path / "abs"))
    config = embedded_config()
    assert config.data_dir == tmp_path / "abs"
    assert config.tls is not None and config.tls.key == tmp_path / "abs" / "tls" / "key.pem"


def test_every_default_listener_is_loopback_and_trusted() -> None:
    for listener in (*load_config(None).listeners, IMAP_LISTENER):
        assert listener.address == "127.0.0.1"
        assert listener.trusted
        assert listener.tls == "starttls"
    assert (IMAP_LISTENER.protocol, IMAP_LISTENER.port) == ("imap", 2143)
