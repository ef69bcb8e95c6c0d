"""``mailgw queue``: through the Typer app (CliRunner) and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailgw.cli.main import app
from mailgw.cli.queue import human_duration, nagios_status
from mailgw.errors import MailgwError
from mailgw.relay.spool import Busy, QueueEntryNotFound, Spool

REPO = Path(__file__).resolve().parents[2]
DATA = b"Subject: queued\r\nFrom: a@office.lan\r\n\r\nbody\r\n"


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Spool:
    data = tmp_path / "data"
    monkeypatch.setenv("MAILGW_DATA", str(data))
    monkeypatch.delenv("MAILGW_CONFIG", raising=False)
    return Spool(data / "queue")


def invoke(*args: str, input: str | None = None) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, ["queue", *args], input=input)
    return result.exit_code, result.output, result.exception


def test_list_empty_and_table(spool: Spool) -> None:
    code, out, _ = invoke("list")
    assert code == 0 and "empty" in out
    ident = spool.enqueue("a@office.lan", ["x@example.com", "y@example.org"], DATA, source="smtp")
    entry = spool.load(ident)
    entry.recipients[1].state = "delivered"
    entry.attempts = 2
    spool.save(entry)
    code, out, _ = invoke("list")
    assert code == 0
    header, row, total = out.strip().splitlines()
    assert header.split() == ["ID", "AGE", "SIZE", "SENDER", "RECIPIENTS", "TRIES", "NEXT", "HELD"]
    assert row.startswith(ident) and "a@office.lan" in row
    assert "x@example.com" in row and "y@example.org (delivered)" in row
    assert "1 message(s)" in total


def test_list_json_lines(spool: Spool) -> None:
    a = spool.enqueue("", ["x@example.com"], DATA, source="dsn")
    b = spool.enqueue("b@office.lan", ["y@example.org"], DATA, source="send")
    entry = spool.load(b)
    entry.recipients[0].last_reply = "451 4.7.1 try later"
    entry.recipients[0].attempts = 1
    entry.attempts = 1
    entry.next_attempt = time.time() + 600
    spool.save(entry)
    code, out, _ = invoke("list", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [o["id"] for o in lines] == [a, b]
    assert lines[0]["sender"] == ""
    second = lines[1]
    assert second["attempts"] == 1 and second["age"] >= 0
    assert 500 < second["next_attempt_in"] <= 600
    assert second["recipients"][0]["last_reply"] == "451 4.7.1 try later"


def test_show(spool: Spool) -> None:
    ident = spool.enqueue("a@office.lan", ["x@example.com"], DATA, source="smtp")
    code, out, _ = invoke("show", ident.lower())
    assert code == 0
    assert f"id:           {ident}" in out and "x@example.com: pending" in out
    assert "Subject: queued" in out and "body" not in out
    code, _, exc = invoke("show", "FFFFFFFFFFFFFFFF")
    assert code == 1 and isinstance(exc, QueueEntryNotFound)


def test_hold_release_flush_delete(spool: Spool) -> None:
    ident = spool.enqueue("a@office.lan", ["x@example.com"], DATA, source="smtp")
    code, out, _ = invoke("hold", ident, "--reason", "investigating")
    assert code == 0 and spool.load(ident).held_reason == "investigating"
    code, out, _ = invoke("list")
    assert "yes: investigating" in out
    code, out, _ = invoke("flush", ident)
    assert code == 0 and "release it first" in out
    code, out, _ = invoke("release")
    assert code == 0 and "1 message(s) released" in out
    assert not spool.load(ident).held
    entry = spool.load(ident)
    entry.next_attempt = time.time() + 3600
    spool.save(entry)
    code, out, _ = invoke("flush")
    assert code == 0 and "1 message(s) due now" in out
    assert spool.load(ident).next_attempt <= time.time()
    code, _, exc = invoke("delete", ident)  # not a TTY, no --yes
    assert isinstance(exc, MailgwError) and exc.exit_code == 2  # main() maps it to 2
    with spool.attempt_lock(ident):
        code, _, exc = invoke("delete", ident, "--yes")
        assert code == 1 and "try again" in str(exc)
    code, out, _ = invoke("delete", ident, "--yes")
    assert code == 0 and spool.entries() == []


def test_hold_busy_entry(spool: Spool) -> None:
    ident = spool.enqueue("a@office.lan", ["x@example.com"], DATA, source="smtp")
    with spool.attempt_lock(ident):
        code, _, exc = invoke("hold", ident)
    assert code == 1 and isinstance(exc, MailgwError) and not isinstance(exc, Busy)
    assert not spool.load(ident).held


def _entries(spool: Spool, ages: list[float], held: str | None = None) -> list[object]:
    now = time.time()
    for age in ages:
        spool.enqueue("a@office.lan", ["x@example.com"], DATA, source="smtp", now=now - age)
    if held:
        spool.hold(spool.entries()[0].id, held)
    return list(spool.entries())


@pytest.mark.parametrize(
    ("ages", "held", "code", "word"),
    [
        ([], None, 0, "OK"),
        ([10.0, 20.0], None, 0, "OK"),
        ([10.0] * 3, None, 1, "WARNING"),  # count >= warn 3
        ([10.0] * 5, None, 2, "CRITICAL"),  # count >= crit 5
        ([700.0], None, 1, "WARNING"),  # age >= warn 600
        ([4000.0], None, 2, "CRITICAL"),  # age >= crit 3600
        ([10.0], "smarthost authentication failed: 535 5.7.8", 1, "WARNING"),
    ],
)
def test_nagios_thresholds(
    spool: Spool, ages: list[float], held: str | None, code: int, word: str
) -> None:
    entries = _entries(spool, ages, held)
    got, line = nagios_status(
        entries,  # type: ignore[arg-type]
        time.time(),
        warn_count=3,
        crit_count=5,
        warn_age=600,
        crit_age=3600,
    )
    assert got == code
    assert line.startswith(f"QUEUE {word} - {len(ages)} message")
    text, perf = line.split(" | ")
    assert perf.startswith(f"messages={len(ages)};3;5;0 oldest=")
    assert ";600;3600;0" in perf
    if held:
        assert held in text and "1 held" in text
    rc, out, _ = invoke(
        "status", "--nagios", "--warn-count", "3", "--crit-count", "5",
        "--warn-age", "600", "--crit-age", "3600",
    )  # fmt: skip
    assert rc == code and out.startswith(f"QUEUE {word}")


def test_nagios_unknown_on_bad_thresholds(spool: Spool) -> None:
    rc, out, _ = invoke("status", "--nagios", "--warn-count", "9", "--crit-count", "2")
    assert rc == 3 and out.startswith("QUEUE UNKNOWN")


def test_nagios_unknown_when_spool_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MAILGW_DATA", str(tmp_path))
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / "meta").write_text("not a dir")
    rc, out, _ = invoke("status", "--nagios")
    assert rc == 3 and out.startswith("QUEUE UNKNOWN") and "meta" in out


def test_human_duration() -> None:
    assert [human_duration(s) for s in (5, 300, 3 * 3600 + 720, 2 * 86400 + 4 * 3600)] == [
        "5s", "5m", "3h12m", "2d4h",
    ]  # fmt: skip


def test_run_pass_with_local_delivery_only(spool: Spool) -> None:
    """``queue run`` drives the real runner; a message for a local user lands locally."""
    pytest.importorskip("mailgw.relay.runner")
    ident = spool.enqueue("a@localhost", ["nobody-here@localhost"], DATA, source="send")
    code, _out, exc = invoke("run")
    assert exc is None or isinstance(exc, SystemExit), exc
    assert code == 0
    # unknown local user: permanent failure (DSN to a@localhost) or still queued,
    # but never an exception and never the same entry twice
    ids = [e.id for e in spool.entries()]
    assert ids.count(ident) <= 1


def test_subprocess_list_and_status(spool: Spool, tmp_path: Path) -> None:
    ident = spool.enqueue("a@office.lan", ["x@example.com"], DATA, source="smtp")
    env = {
        "PATH": "/usr/bin:/bin",
        "MAILGW_DATA": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mailgw", "queue", "list", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["id"] == ident
    proc = subprocess.run(
        [sys.executable, "-m", "mailgw", "queue", "status", "--nagios", "--warn-count", "1"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout.startswith("QUEUE WARNING - 1 message")
    proc = subprocess.run(
        [sys.executable, "-m", "mailgw", "queue", "show", "0000000000000000"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == "mailgw: error: no such queue entry: 0000000000000000"
    assert os.listdir(tmp_path / "data" / "queue" / "meta") == [f"{ident}.json"]
