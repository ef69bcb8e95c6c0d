"""Report rendering (text, dry-run plan, JSON) and the tqdm progress display."""

from __future__ import annotations

import io
import json
from pathlib import Path

from mailgw.migrate.progress import TqdmProgress
from mailgw.migrate.report import (
    batch_json,
    human_bytes,
    render_batch,
    render_plan,
    render_text,
    write_json,
)
from mailgw.migrate.results import AccountReport, FolderReport


def _report(**extra: object) -> AccountReport:
    inbox = FolderReport(
        source="INBOX",
        destination="INBOX",
        source_count=12,
        source_bytes=40_000,
        copied=10,
        copied_bytes=30_000,
        skipped_present=2,
        flags_synced=3,
    )
    sent = FolderReport(
        source="Sent Items",
        destination="Sent",
        source_count=5,
        source_bytes=3 << 20,
        copied=4,
        copied_bytes=2 << 20,
        skipped_present=0,
        failed=1,
        flags_dropped=["$Label1", "$Label1", "Work"],
        errors=["17: NO [LIMIT] message too big"],
    )
    report = AccountReport(
        source="imaps://alice@old.example.com:993",
        destination="maildir:/srv/mail/alice",
        folders=[inbox, sent],
        started=100.0,
        finished=104.25,
    )
    for key, value in extra.items():
        setattr(report, key, value)
    return report


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(10 << 20) == "10.0 MiB"
    assert human_bytes(3 << 30) == "3.0 GiB"
    assert human_bytes(5 << 60) == "5120.0 PiB"


def test_text_report_table_totals_errors_verdict() -> None:
    text = render_text(_report())
    lines = text.splitlines()
    assert lines[0] == "Migration imaps://alice@old.example.com:993 -> maildir:/srv/mail/alice"
    header = lines[1].split()
    expected = ["FOLDER", "->", "DESTINATION", "SOURCE", "COPIED", "PRESENT", "FAILED", "FLAGS"]
    assert header[:8] == expected
    assert "VERIFY" in header and "DELETED" not in header
    inbox = next(line for line in lines if line.startswith("INBOX -> INBOX"))
    assert inbox.split()[3:9] == ["12", "10", "2", "0", "3", "-"]
    sent = next(line for line in lines if line.startswith("Sent Items -> Sent"))
    assert sent.split()[4:9] == ["5", "4", "0", "1", "0"]
    assert sent.rstrip().endswith("$Label1 Work")  # dropped flags, deduplicated
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1:6] == ["17", "14", "2", "1", "3"]
    assert "Copied 14 message(s) (2.0 MiB) in 2 folder(s) in 4.2s" in text
    assert "Errors (1):" in text and "  Sent Items: 17: NO [LIMIT] message too big" in text
    assert lines[-1] == "Verdict: incomplete: 1 message(s) failed (exit 1)"


def test_complete_verdict_deleted_and_verify_columns() -> None:
    report = _report()
    sent = report.folders[1]
    sent.failed, sent.errors, sent.deleted_source = 0, [], 4
    report.folders[0].verified = 10
    text = render_text(report)
    assert text.splitlines()[-1] == "Verdict: complete (exit 0)"
    assert "DELETED" in text and "Deleted 4 message(s) from the source." in text
    inbox = next(line for line in text.splitlines() if line.startswith("INBOX"))
    assert "10 ok" in inbox
    report.folders[0].verify_failed = 2
    text = render_text(report)
    assert "2 FAILED" in text
    assert "2 message(s) differ at the destination (exit 1)" in text


def test_errors_are_capped() -> None:
    report = _report()
    report.folders[0].errors = [f"{n}: broken" for n in range(30)]
    report.folders[0].failed = 30
    text = render_text(report, max_errors=5)
    assert "Errors (31):" in text
    assert "  INBOX: 4: broken" in text and "INBOX: 5: broken" not in text
    assert "... and 26 more" in text


def test_connection_failure() -> None:
    report = AccountReport(
        source="imaps://alice@old.example.com:993",
        destination="maildir:/m",
        error="login refused: [AUTHENTICATIONFAILED] Invalid credentials",
    )
    text = render_text(report)
    assert "Error: login refused" in text
    assert text.splitlines()[-1].startswith("Verdict: failed: login refused")
    assert text.rstrip().endswith("(exit 3)")


def test_dry_run_plan() -> None:
    report = _report(dry_run=True)
    for f in report.folders:
        f.failed, f.errors, f.flags_synced = 0, [], 0
    text = render_text(report)  # dispatches to the plan
    assert text == render_plan(report)
    lines = text.splitlines()
    assert lines[0].startswith("Plan for imaps://alice@old.example.com:993 -> maildir:")
    assert "nothing is written" in lines[0]
    assert lines[1].split()[3:] == ["MESSAGES", "SIZE", "TO", "COPY", "COPY", "SIZE", "PRESENT"]
    sent = next(line for line in lines if line.startswith("Sent Items -> Sent"))
    assert sent.split()[4:] == ["5", "3.0", "MiB", "4", "2.0", "MiB", "0"]
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1] == "17"
    assert "Would copy 14 of 17 message(s) (2.0 MiB of 3.0 MiB) in 2 folder(s)" in text
    assert "Verdict" not in text


def test_json_and_batch(tmp_path: Path) -> None:
    ok = _report()
    ok.folders[1].failed, ok.folders[1].errors = 0, []
    bad = AccountReport(source="pop3://b@h:110", destination="maildir:/b", error="refused")
    data = batch_json([ok, bad])
    assert data["verdict"] == "incomplete" and data["exit_code"] == 1
    assert [a["verdict"] for a in data["accounts"]] == ["complete", "failed"]
    assert data["accounts"][0]["folders"][1]["flags_dropped"] == ["$Label1", "$Label1", "Work"]
    assert batch_json([bad])["verdict"] == "failed" and batch_json([bad])["exit_code"] == 3
    target = tmp_path / "r.json"
    write_json(target, data)
    assert json.loads(target.read_text()) == json.loads(json.dumps(data))
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left
    text = render_batch([ok, bad])
    assert "Summary: 2 account(s): 1 complete, 0 incomplete, 1 failed" in text
    assert text.count("Migration ") == 2 and "\n\nMigration pop3://" in text
    assert "exit 3)\n\nSummary: " in text  # a blank line after each account
    assert text.splitlines()[-1] == "Verdict: incomplete (exit 1)"
    row = next(line for line in text.splitlines() if line.startswith("pop3://b@h:110 -> "))
    assert row.split()[3:] == ["failed", "0", "0", "0"]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_disabled_without_tty() -> None:
    out = io.StringIO()
    progress = TqdmProgress(file=out)
    assert not progress.enabled
    bar = progress.folder("acct", "INBOX", 3, 3000)
    bar.advance(1, 1000)
    bar.close()
    assert out.getvalue() == ""


def test_progress_bars_positions_and_summary() -> None:
    out = _Tty()
    progress = TqdmProgress(file=out, show_account=True, mininterval=0)
    assert progress.enabled
    a = progress.folder("alice", "INBOX", 2, 4096)
    b = progress.folder("alice", "Sent", 1, 2048)
    assert (a._position, b._position) == (0, 1)  # type: ignore[attr-defined]
    a.advance(1, 2048)
    a.advance(1, 2048)
    a.close()
    a.close()  # idempotent
    c = progress.folder("bob", "INBOX", 1, 10)
    assert c._position == 0  # type: ignore[attr-defined]  # the freed line is reused
    b.close()
    c.close()
    text = out.getvalue()
    assert "alice INBOX" in text and "4.00kB/4.00kB" in text and "2/2 msg" in text
    assert "alice INBOX: 2/2 messages, 4.0 KiB in" in text
