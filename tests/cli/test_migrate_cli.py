"""``mailgw migrate``: options to MigrateOptions, passwords never from argv, exit
codes, the report on stdout and in --report-json, --dry-run, --batch.  The engine
and the endpoints are fakes (the CLI is tested on its own)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import mailgw.migrate.open as open_mod
from mailgw.cli.main import main
from mailgw.errors import ConnectFailed
from mailgw.migrate.model import MigrateOptions
from mailgw.migrate.results import AccountReport, FolderReport


@dataclass
class FakeEndpoint:
    display: str
    password: str | None


@dataclass
class Fake:
    calls: list[dict[str, Any]] = field(default_factory=list)
    behave: Callable[[FakeEndpoint, FakeEndpoint, MigrateOptions], AccountReport] | None = None

    async def migrate_account(
        self,
        src: FakeEndpoint,
        dst: FakeEndpoint,
        options: MigrateOptions,
        state: Any,
        progress: Any = None,
    ) -> AccountReport:
        self.calls.append(
            {"src": src, "dst": dst, "options": options, "path": state.path, "ro": state.readonly}
        )
        await asyncio.sleep(0)
        if self.behave is not None:
            return self.behave(src, dst, options)
        folder = FolderReport(
            source="INBOX",
            destination="INBOX",
            source_count=3,
            source_bytes=3000,
            copied=2,
            copied_bytes=2000,
            skipped_present=1,
            flags_synced=1,
        )
        return AccountReport(
            source=src.display, destination=dst.display, dry_run=options.dry_run, folders=[folder]
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fake:
    engine = Fake()
    module = types.ModuleType("mailgw.migrate.engine")
    module.migrate_account = engine.migrate_account  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailgw.migrate.engine", module)
    monkeypatch.setattr(
        open_mod, "make_endpoint", lambda spec, pw, tls, **kw: FakeEndpoint(spec.display, pw)
    )
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for var in ("MAILGW_SRC_PASSWORD", "MAILGW_DST_PASSWORD", "MAILGW_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return engine


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["migrate", *args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_options_map_to_migrate_options(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "maildir:/srv/a",
        "maildir:/srv/b",
        "--include",
        "^INBOX",
        "--include",
        "Projects/",
        "--exclude",
        "^Junk$",
        "--map",
        "Sent Items=Sent",
        "--map",
        "Old/Archive=/Archive/",
        "--dst-folder",
        "Imported",
        "--since",
        "2024-01-01",
        "--before",
        "2024-06-30",
        "--min-size",
        "512k",
        "--max-size",
        "10M",
        "-j",
        "3",
        "--batch-size",
        "20",
        "--verify",
        "--delete-source",
    )
    assert code == 0, out
    (call,) = fake.calls
    assert call["options"] == MigrateOptions(
        include=["^INBOX", "Projects/"],
        exclude=["^Junk$"],
        folder_map={"Sent Items": "Sent", "Old/Archive": "Archive"},
        dst_folder="Imported",
        since=datetime(2024, 1, 1).astimezone(),
        before=datetime(2024, 6, 30).astimezone(),
        min_size=512 * 1024,
        max_size=10 * 1024 * 1024,
        dry_run=False,
        delete_source=True,
        verify=True,
        jobs=3,
        batch_messages=20,
    )
    assert call["options"].since.tzinfo is not None
    assert call["src"] == FakeEndpoint("maildir:/srv/a", None)
    assert call["ro"] is False
    assert "Migration maildir:/srv/a -> maildir:/srv/b" in out
    assert "Verdict: complete (exit 0)" in out


def test_defaults(fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, "maildir:/srv/a", "mbox:/srv/b.mbox", "--no-progress")
    assert code == 0
    (call,) = fake.calls
    assert call["options"] == MigrateOptions()
    assert call["path"].parent == tmp_path / "state" / "mailgw" / "migrate"


def test_passwords_from_files_env_and_stdin(
    fake: Fake,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pw = tmp_path / "src.pw"
    pw.write_text("s3cret source\nignored\n")
    monkeypatch.setenv("MAILGW_DST_PASSWORD", "dst-from-env")
    code, _, _ = run(
        capsys,
        "imaps://alice@old.example.com",
        "imap://alice@[::1]:1143",
        "--src-password-file",
        str(pw),
    )
    assert code == 0
    assert fake.calls[-1]["src"].password == "s3cret source"
    assert fake.calls[-1]["dst"].password == "dst-from-env"
    monkeypatch.setenv("MAILGW_SRC_PASSWORD", "src-from-env")
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin\n"))
    code, _, _ = run(
        capsys,
        "pop3://bob@old.example.com",
        "imaps://bob@new.example.com",
        "--dst-password-file",
        "-",
    )
    assert code == 0
    assert fake.calls[-1]["src"].password == "src-from-env"
    assert fake.calls[-1]["dst"].password == "from-stdin"


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["imaps://alice@h", "maildir:/b"], "no password for the source imaps://alice@h:993"),
        (["imaps://alice:secret@h", "maildir:/b"], "password in the URL"),
        (["maildir:/a", "imaps://alice@h", "--dst-password", "secret"], "No such option"),
        (["maildir:/a", "maildir:/b", "--src-password-file", "/x"], "takes no password"),
        (
            ["imaps://a@h", "imaps://b@h", "--src-password-file", "-", "--dst-password-file", "-"],
            "only one of",
        ),
        (["maildir:/a", "pop3://u@h"], "only be a source"),
        (["maildir:/a"], "missing SOURCE and DEST"),
        (["maildir:/a", "maildir:/a"], "the same"),
        (["maildir:/a", "maildir:/b", "--since", "2024-13-01"], "not a date"),
        (
            ["maildir:/a", "maildir:/b", "--since", "2024-02-01", "--before", "2024-01-01"],
            "--since must be before",
        ),
        (["maildir:/a", "maildir:/b", "--max-size", "ten"], "not a size"),
        (["maildir:/a", "maildir:/b", "--min-size", "2M", "--max-size", "1M"], "larger"),
        (["maildir:/a", "maildir:/b", "--include", "(unclosed"], "not a regular expression"),
        (["maildir:/a", "maildir:/b", "--map", "NoEquals"], "not SRC=DST"),
        (["maildir:/a", "maildir:/b", "-j", "0"], "-j"),
        (["maildir:/a", "maildir:/b", "--ca-file", "/nonexistent/ca.pem"], "does not exist"),
        (["maildir:/a", "maildir:/b", "--batch", "x.csv"], "not both"),
    ],
)
def test_usage_errors_exit_2(
    fake: Fake, capsys: pytest.CaptureFixture[str], args: list[str], why: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert why in err, err
    assert "secret" not in out + err.replace("--dst-password", "")  # never echoed
    assert fake.calls == []


def test_exit_1_some_failed_and_report_json(
    fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def behave(src: FakeEndpoint, dst: FakeEndpoint, options: MigrateOptions) -> AccountReport:
        folder = FolderReport(
            source="INBOX",
            destination="INBOX",
            source_count=4,
            copied=3,
            failed=1,
            errors=["42: NO message too big"],
            flags_synced=2,
        )
        return AccountReport(source=src.display, destination=dst.display, folders=[folder])

    fake.behave = behave
    target = tmp_path / "report.json"
    code, out, _ = run(capsys, "maildir:/a", "maildir:/b", "--report-json", str(target))
    assert code == 1
    assert "INBOX: 42: NO message too big" in out
    assert "Verdict: incomplete: 1 message(s) failed (exit 1)" in out
    data = json.loads(target.read_text())
    assert data["verdict"] == "incomplete" and data["exit_code"] == 1
    assert data["source"] == "maildir:/a" and data["destination"] == "maildir:/b"
    (folder,) = data["folders"]
    assert (folder["source_count"], folder["copied"], folder["skipped_present"]) == (4, 3, 0)
    assert (folder["failed"], folder["flags_synced"]) == (1, 2)
    assert data["totals"]["failed"] == 1


def test_exit_3_connection_failure(
    fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def behave(src: FakeEndpoint, dst: FakeEndpoint, options: MigrateOptions) -> AccountReport:
        raise ConnectFailed("old.example.com:993: connection refused")

    fake.behave = behave
    monkeypatch.setenv("MAILGW_SRC_PASSWORD", "pw")
    target = tmp_path / "r.json"
    code, out, _ = run(
        capsys, "imaps://a@old.example.com", "maildir:/b", "--report-json", str(target)
    )
    assert code == 3
    assert "Verdict: failed: old.example.com:993: connection refused (exit 3)" in out
    data = json.loads(target.read_text())
    assert data["verdict"] == "failed" and data["exit_code"] == 3


def test_dry_run_prints_plan(
    fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "s.sqlite"
    code, out, _ = run(capsys, "--dry-run", "maildir:/a", "maildir:/b", "--state", str(state))
    assert code == 0
    assert fake.calls[0]["options"].dry_run is True and fake.calls[0]["ro"] is True
    assert not state.exists()
    lines = out.splitlines()
    assert lines[0].startswith("Plan for maildir:/a -> maildir:/b (dry run")
    inbox = next(line for line in lines if line.startswith("INBOX -> INBOX"))
    assert inbox.split()[3:] == ["3", "2.9", "KiB", "2", "2.0", "KiB", "1"]
    assert "Would copy 2 of 3 message(s)" in out


def test_quiet_prints_only_problems(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["-q", "migrate", "maildir:/a", "maildir:/b"])
    assert info.value.code == 0
    out, err = capsys.readouterr()
    assert out == "" and err == ""

    def behave(src: FakeEndpoint, dst: FakeEndpoint, options: MigrateOptions) -> AccountReport:
        return AccountReport(source=src.display, destination=dst.display, error="refused")

    fake.behave = behave
    with pytest.raises(SystemExit) as info:
        main(["-q", "migrate", "maildir:/a", "maildir:/b"])
    assert info.value.code == 3
    assert "Verdict: failed: refused" in capsys.readouterr().out


def test_batch(fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "pw").mkdir()
    (tmp_path / "pw" / "alice").write_text("alice-pw\n")
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text(
        "source,destination,source_password_file,dst_folder\n"
        "imaps://alice@old.example.com,maildir:/srv/alice,pw/alice,\n"
        "# carol has an mbox\n"
        "mbox:/var/mail/carol,maildir:/srv/carol,,Old mail\n"
    )

    def behave(src: FakeEndpoint, dst: FakeEndpoint, options: MigrateOptions) -> AccountReport:
        failed = 1 if "carol" in src.display else 0
        folder = FolderReport(source="INBOX", destination="INBOX", copied=1, failed=failed)
        return AccountReport(source=src.display, destination=dst.display, folders=[folder])

    fake.behave = behave
    target = tmp_path / "report.json"
    code, out, _ = run(
        capsys, "--batch", str(csv_file), "--report-json", str(target), "--accounts-parallel", "1"
    )
    assert code == 1
    passwords = {c["src"].display: c["src"].password for c in fake.calls}
    assert passwords == {
        "imaps://alice@old.example.com:993": "alice-pw",
        "mbox:/var/mail/carol": None,
    }
    folders = {c["src"].display: c["options"].dst_folder for c in fake.calls}
    assert folders["mbox:/var/mail/carol"] == "Old mail"
    assert "Summary: 2 account(s): 1 complete, 1 incomplete, 0 failed" in out
    data = json.loads(target.read_text())
    assert data["verdict"] == "incomplete" and data["exit_code"] == 1
    assert [a["source"] for a in data["accounts"]] == [
        "imaps://alice@old.example.com:993",
        "mbox:/var/mail/carol",
    ]


def test_batch_config_error_names_line(
    fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text("source,destination\nmaildir:/a,maildir:/b\nnope,maildir:/c\n")
    code, _, err = run(capsys, "--batch", str(csv_file))
    assert code == 2
    assert f"{csv_file}:3: source: " in err
    assert fake.calls == []
    code, _, err = run(capsys, "--batch", str(csv_file), "--state", "x")
    assert code == 2 and "--state cannot be used with --batch" in err


def test_help_and_man_page_document_exit_codes() -> None:
    from mailgw.cli.manpage import mailgw_pages

    page = mailgw_pages()["mailgw-migrate.1"]
    for code, meaning in (
        ("0", "complete"),
        ("1", "some messages failed"),
        ("2", "usage or configuration error"),
        ("3", "connection or login failure"),
    ):
        assert f".TP\n\\fB{code}\\fR\n{meaning}" in page
    assert "\\fBmailgw\\fR [\\fIGLOBAL OPTIONS\\fR] \\fBmigrate\\fR" in page
    assert "\\fB\\-\\-src\\-password\\-file\\fR" in page


def test_import_is_lazy() -> None:
    code = (
        "import sys, mailgw.cli.migrate\n"
        "heavy = [m for m in ('tqdm', 'sqlite3', 'mailgw.migrate.batch', 'mailgw.migrate.engine',"
        " 'mailgw.migrate.endpoints.imap') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_missing_file_source_is_a_usage_error(
    kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped source path must not look like an empty source (exit 0, nothing copied)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    missing = tmp_path / "no-such-source"
    code, out, err = run(capsys, f"{kind}:{missing}", f"maildir:{tmp_path / 'dst'}")
    assert code == 2, (out, err)
    assert "no such file or directory" in (out + err).lower()
    assert not (tmp_path / "dst").exists()
