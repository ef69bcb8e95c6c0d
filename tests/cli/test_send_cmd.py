"""``mailgw send`` through the Typer app, ``main()`` dispatch and the console entry."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailgw.cli.main import app, main
from mailgw.relay.spool import Spool

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Spool:
    data = tmp_path / "data"
    monkeypatch.setenv("MAILGW_DATA", str(data))
    monkeypatch.delenv("MAILGW_CONFIG", raising=False)
    return Spool(data / "queue")


def test_cli_runner_passes_sendmail_flags(spool: Spool) -> None:
    result = CliRunner().invoke(
        app, ["send", "-oi", "-fbob@office.lan", "-F", "Bob B", "-odb", "x@example.com"],
        input="Subject: s\n\n.\nend\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [entry] = spool.entries()
    assert entry.sender == "bob@office.lan"
    data = spool.message_path(entry.id).read_bytes()
    assert b"From: Bob B <bob@office.lan>" in data and data.endswith(b"\r\n.\r\nend\r\n")


def test_cli_runner_usage_code(spool: Spool) -> None:
    result = CliRunner().invoke(app, ["send", "-bs"], input="")
    assert result.exit_code == 64
    assert spool.entries() == []


def test_global_config_option_reaches_send(
    tmp_path: Path, spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x\n")))
    with pytest.raises(SystemExit) as info:
        main(["-c", str(tmp_path / "nope.yaml"), "send", "x@example.com"])
    assert info.value.code == 78


def test_main_dispatch_without_typer(tmp_path: Path) -> None:
    """``mailgw send`` never imports Typer (fast start)."""
    code = (
        "import sys, io\n"
        "sys.stdin = io.TextIOWrapper(io.BytesIO(b'hi\\n'))\n"
        "from mailgw.cli.main import main\n"
        "try:\n"
        "    main(['send', 'x@example.com'])\n"
        "except SystemExit as e:\n"
        "    print(e.code, 'typer' in sys.modules, 'click' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "MAILGW_DATA": str(tmp_path)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.stdout.split() == ["0", "False", "False"], proc.stderr
    assert len(Spool(tmp_path / "queue").entries()) == 1


def test_help_lists_send_and_queue() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "send" in result.output and "queue" in result.output
