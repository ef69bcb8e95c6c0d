from __future__ import annotations

from pathlib import Path

import pytest

from mailgw.errors import ConfigError, UsageError
from mailgw.probe.model import STANDARD_PORTS
from mailgw.probe.targets import Target, parse_target, read_targets_file


def test_bare_host_expands_to_the_seven_standard_ports() -> None:
    targets = parse_target("mail.example.com")
    assert [(t.port, t.proto) for t in targets] == [(p, n) for n, p in STANDARD_PORTS.items()]
    assert {t.host for t in targets} == {"mail.example.com"}
    assert len(targets) == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mx.example:25", Target("mx.example", 25, "smtp")),
        ("mx.example:465", Target("mx.example", 465, "smtps")),
        ("mx.example:993", Target("mx.example", 993, "imaps")),
        ("mx.example:2525/smtp", Target("mx.example", 2525, "smtp")),
        ("mx.example:10143/IMAP", Target("mx.example", 10143, "imap")),
        ("mx.example/pop3s", Target("mx.example", 995, "pop3s")),
        ("[::1]:143/imap", Target("::1", 143, "imap")),
        ("[::1]:587", Target("::1", 587, "submission")),
        ("127.0.0.1:110", Target("127.0.0.1", 110, "pop3")),
    ],
)
def test_one_target(text: str, expected: Target) -> None:
    assert parse_target(text) == [expected]


def test_defaults_from_the_command_line() -> None:
    assert parse_target("h", default_proto="imap") == [Target("h", 143, "imap")]
    assert parse_target("h", port=2525, default_proto="smtp") == [Target("h", 2525, "smtp")]
    assert parse_target("h", port=993) == [Target("h", 993, "imaps")]
    # what the text says wins over the defaults
    assert parse_target("h:110", default_proto="imap") == [Target("h", 110, "imap")]
    assert parse_target("h:110/pop3", default_proto="imap", port=1) == [Target("h", 110, "pop3")]


def test_str_round_trips() -> None:
    for text in ("h:25/smtp", "[::1]:143/imap", "1.2.3.4:995/pop3s"):
        (target,) = parse_target(text)
        assert str(target) == text
        assert parse_target(str(target)) == [target]


def test_implicit_tls_and_family() -> None:
    assert Target("h", 465, "smtps").implicit_tls and Target("h", 465, "smtps").family == "smtp"
    assert not Target("h", 587, "submission").implicit_tls
    assert Target("h", 587, "submission").family == "smtp"
    assert Target("h", 995, "pop3s").family == "pop3"
    assert Target("h", 993, "imaps").family == "imap"


def test_non_standard_port_needs_a_protocol() -> None:
    with pytest.raises(UsageError, match="/proto"):
        parse_target("h:2525")


@pytest.mark.parametrize(
    "text",
    ["", "h:", "h:abc", "h:0", "h:70000", "h/", "h/http", "[::1", "[::1]x", ":25", "[zz]:25/smtp"],
)
def test_bad_targets(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


def test_targets_file(tmp_path: Path) -> None:
    path = tmp_path / "targets"
    path.write_text("# mail hosts\n\nmx1.example:25   # primary\n[::1]:10993/imaps\nh/imap\n")
    assert read_targets_file(path) == [
        Target("mx1.example", 25, "smtp"),
        Target("::1", 10993, "imaps"),
        Target("h", 143, "imap"),
    ]


def test_targets_file_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "targets"
    path.write_text("ok.example:25\n\nbad.example:2525\n")
    with pytest.raises(ConfigError) as info:
        read_targets_file(path)
    assert info.value.file == str(path) and info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")


def test_missing_targets_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_targets_file(tmp_path / "nope")
