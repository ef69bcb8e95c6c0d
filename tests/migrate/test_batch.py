"""``--batch accounts.csv``: parsing with file:line errors, running accounts with
bounded concurrency, failures isolated per account.  The engine is a fake."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import mailgw.migrate.open as open_mod
from mailgw.errors import ConfigError, ConnectFailed, LoginFailed
from mailgw.migrate.batch import AccountJob, load_batch, run_account, run_batch
from mailgw.migrate.model import MigrateOptions, NullProgress, TlsOptions
from mailgw.migrate.results import AccountReport, FolderReport, overall_exit
from mailgw.migrate.url import parse_endpoint


@dataclass
class FakeEndpoint:
    display: str
    password: str | None


@dataclass
class FakeEngine:
    """Stands in for mailgw.migrate.engine: records calls, returns a report."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    behave: Callable[[FakeEndpoint, FakeEndpoint], AccountReport] | None = None
    active: int = 0
    max_active: int = 0

    async def migrate_account(
        self,
        src: FakeEndpoint,
        dst: FakeEndpoint,
        options: MigrateOptions,
        state: Any,
        progress: Any = None,
    ) -> AccountReport:
        self.calls.append(
            {
                "src": src,
                "dst": dst,
                "options": options,
                "state": state,
                "path": state.path,
                "readonly": state.readonly,
                "progress": progress,
            }
        )
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        for _ in range(5):
            await asyncio.sleep(0)
        self.active -= 1
        if self.behave is not None:
            return self.behave(src, dst)
        folder = FolderReport(source="INBOX", destination="INBOX", source_count=1, copied=1)
        return AccountReport(source=src.display, destination=dst.display, folders=[folder])


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    fake = FakeEngine()
    module = types.ModuleType("mailgw.migrate.engine")
    module.migrate_account = fake.migrate_account  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailgw.migrate.engine", module)
    monkeypatch.setattr(
        open_mod, "make_endpoint", lambda spec, pw, tls, **kw: FakeEndpoint(spec.display, pw)
    )
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return fake


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "accounts.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
# nightly migration of the old server
source,destination,source_password_file,destination_password_file,dst_folder

imaps://alice@old.example.com,maildir:/srv/mail/alice,pw/alice,,
  # bob's mail comes over POP3 into a folder
pop3s://bob%40example.com@old.example.com,imap://bob@[::1]:1143,/etc/pw/bob,dst-pw,"Old, POP"
mbox:/var/mail/carol,maildir:/srv/mail/carol
"""


def test_load_batch(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    jobs = load_batch(path)
    assert [j.line for j in jobs] == [4, 6, 7]
    alice, bob, carol = jobs
    assert alice.source == parse_endpoint("imaps://alice@old.example.com", role="source")
    assert alice.source_password_file == path.parent / "pw" / "alice"
    assert alice.destination_password_file is None and alice.dst_folder is None
    assert bob.source.user == "bob@example.com" and bob.destination.host == "::1"
    assert bob.source_password_file == Path("/etc/pw/bob")
    assert bob.destination_password_file == path.parent / "dst-pw"
    assert bob.dst_folder == "Old, POP"
    assert carol.source.kind == "mbox" and carol.source_password_file is None


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("source\nmaildir:/a\n", ":1: ", "no 'destination' column"),
        ("source,destination,password\n", ":1: password: ", "unknown column"),
        ("source,destination,source\n", ":1: source: ", "twice"),
        ("# c\n\nsource,destination\n# c\nimap://old,maildir:/b\n", ":5: source: ", "no user"),
        ("source,destination\nmaildir:/a,pop3://u@h\n", ":2: destination: ", "only be a source"),
        ("source,destination\nimap://u:pw@h,maildir:/b\n", ":2: source: ", "password in the URL"),
        ("source,destination\n,maildir:/b\n", ":2: source: ", "empty"),
        ("source,destination\nmaildir:/a,maildir:/a\n", ":2: destination: ", "the same"),
        ("source,destination\nmaildir:/a,maildir:/b,x\n", ":2: ", "3 fields"),
        (
            "source,destination,source_password_file\nmaildir:/a,maildir:/b,pw\n",
            ":2: source_password_file: ",
            "takes no password",
        ),
        (
            "source,destination\nmaildir:/a,maildir:/b\n#\nmaildir:/a,maildir:/b\n",
            ":4: ",
            "same source and destination as line 2",
        ),
        ("# only a comment\n", ": ", "expected a header row"),
        ("source,destination\n", ": ", "no accounts"),
        ('source,destination\n"maildir:/a,maildir:/b\n', ":2: ", "bad CSV"),
    ],
)
def test_load_batch_errors(tmp_path: Path, text: str, where: str, why: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_batch(path)
    message = str(info.value)
    assert message.startswith(str(path) + where), message
    assert why in message
    assert info.value.exit_code == 2


def test_load_batch_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_batch(tmp_path / "missing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"source,destination\nmaildir:/\xe9,maildir:/b\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_batch(bad)


def _jobs(n: int) -> list[AccountJob]:
    return [
        AccountJob(
            source=parse_endpoint(f"imaps://u{i}@old.example.com", role="source"),
            destination=parse_endpoint(f"maildir:/srv/mail/u{i}", role="destination"),
            dst_folder="Imported" if i == 0 else None,
        )
        for i in range(n)
    ]


def test_run_batch_bounded_and_isolated(engine: FakeEngine, tmp_path: Path) -> None:
    def behave(src: FakeEndpoint, dst: FakeEndpoint) -> AccountReport:
        if "u1@" in src.display:
            raise ConnectFailed("old.example.com:993: connection refused")
        if "u2@" in src.display:
            raise RuntimeError("engine bug")
        folder = FolderReport(source="INBOX", destination="INBOX", source_count=1, copied=1)
        return AccountReport(source=src.display, destination=dst.display, folders=[folder])

    engine.behave = behave
    jobs = _jobs(5)
    passwords = [(f"pw{i}", None) for i in range(5)]
    options = MigrateOptions(dst_folder="Default")
    reports = asyncio.run(
        run_batch(jobs, passwords, options, TlsOptions(), NullProgress(), parallel=2)
    )
    assert engine.max_active == 2
    assert [r.source for r in reports] == [j.source.display for j in jobs]  # input order
    assert [r.verdict for r in reports] == ["complete", "failed", "failed", "complete", "complete"]
    assert reports[1].exit_code == 3 and "connection refused" in (reports[1].error or "")
    assert reports[2].exit_code == 1 and "engine bug" in (reports[2].error or "")
    assert overall_exit(reports) == 1
    by_src = {c["src"].display: c for c in engine.calls}
    assert by_src[jobs[0].source.display]["options"].dst_folder == "Imported"  # the row's own
    assert by_src[jobs[3].source.display]["options"].dst_folder == "Default"
    assert by_src[jobs[3].source.display]["src"].password == "pw3"
    paths = {c["path"] for c in engine.calls}
    assert len(paths) == 5  # one state file per account
    assert all(str(p).startswith(str(tmp_path / "state" / "mailgw" / "migrate")) for p in paths)


def test_run_batch_all_failed_is_exit_3(engine: FakeEngine) -> None:
    def behave(src: FakeEndpoint, dst: FakeEndpoint) -> AccountReport:
        raise LoginFailed("authentication failed")

    engine.behave = behave
    reports = asyncio.run(
        run_batch(_jobs(3), [(None, None)] * 3, MigrateOptions(), TlsOptions(), parallel=1)
    )
    assert engine.max_active == 1
    assert overall_exit(reports) == 3


def test_run_account_state_and_dry_run(engine: FakeEngine, tmp_path: Path) -> None:
    job = _jobs(1)[0]
    state = tmp_path / "custom.sqlite"
    dry = asyncio.run(
        run_account(job, ("pw", None), MigrateOptions(dry_run=True), TlsOptions(), None, state)
    )
    assert dry.exit_code == 0
    assert engine.calls[0]["readonly"] is True and not state.exists()  # nothing written
    asyncio.run(run_account(job, ("pw", None), MigrateOptions(), TlsOptions(), None, state))
    assert engine.calls[1]["readonly"] is False and engine.calls[1]["path"] == state
    assert state.exists()
    assert isinstance(engine.calls[1]["progress"], NullProgress)


def test_shipped_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "accounts.csv"
    jobs = load_batch(example)
    assert len(jobs) == 4
    assert jobs[0].source_password_file == example.parent / "secrets" / "alice-old"
    assert jobs[1].source.user == "bob@example.com"
    assert jobs[2].source.kind == "pop3s" and jobs[2].dst_folder == "Old POP mail"
    assert jobs[3].source.kind == "mbox" and jobs[3].destination_password_file is None
