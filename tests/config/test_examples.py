"""The shipped examples are valid, and the packaged example is the file."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

import pytest

from mailgw.config.defaults import example_text
from mailgw.config.describe import describe
from mailgw.config.loader import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_packaged_example_is_examples_office_yaml() -> None:
    assert example_text() == (EXAMPLES / "office.yaml").read_text(encoding="utf-8")


def office_copy(tmp_path: Path) -> Path:
    """office.yaml with /etc/mailgw/ and /var/lib/mailgw pointed into tmp_path."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "cert.pem").write_text("cert")
    (tmp_path / "etc" / "key.pem").write_text("key")
    text = (EXAMPLES / "office.yaml").read_text(encoding="utf-8")
    assert "/etc/mailgw/cert.pem" in text and "/etc/mailgw/key.pem" in text
    text = text.replace("/etc/mailgw/", f"{tmp_path}/etc/").replace(
        "/var/lib/mailgw", f"{tmp_path}/var"
    )
    path = tmp_path / "office.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_office_example_is_valid(tmp_path: Path) -> None:
    config = load_config(office_copy(tmp_path))
    assert config.domains == ("office.example", "office.lan")
    assert config.aliases["postmaster@office.example"] == ("alice",)
    assert len(config.aliases["info@office.example"]) > 1
    assert config.catch_all == {"office.lan": "alice"}
    assert config.relay_networks == ()
    modes = {(x.protocol, x.port, x.tls, x.trusted) for x in config.listeners}
    assert modes == {
        ("smtp", 25, "starttls", False),
        ("submission", 587, "starttls", False),
        ("submission", 465, "implicit", False),
        ("pop3", 110, "starttls", False),
        ("pop3", 995, "implicit", False),
        ("smtp", 2525, "none", True),
    }
    lan = next(x for x in config.listeners if x.port == 2525)
    assert lan.address == "192.168.1.10"
    assert "Warning" not in describe(config)


def test_office_example_without_cert_fails(tmp_path: Path) -> None:
    path = office_copy(tmp_path)
    (tmp_path / "etc" / "key.pem").unlink()
    with pytest.raises(Exception, match=r"tls\.key: file not found"):
        load_config(path)


def test_minimal_example_is_valid(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "minimal.yaml", tmp_path / "minimal.yaml")
    config = load_config(tmp_path / "minimal.yaml")
    assert len(config.domains) == 1
    assert config.tls is None
    assert config.relay_networks == ()
    assert config.data_dir == tmp_path / "mailgw-data"
    assert {x.protocol for x in config.listeners} == {"smtp", "pop3"}
    assert all(x.port > 1024 for x in config.listeners)


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(EXAMPLES / "mailgw.service")
    service = unit["Service"]
    assert service["User"] == "mailgw"
    assert service["ExecStart"] == "/usr/local/bin/mailgw --config /etc/mailgw/mailgw.yaml serve"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/mailgw"
    assert service["PrivateTmp"] == "true"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
