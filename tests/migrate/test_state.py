"""StateDB: rows survive reopening, the pair is enforced, read-only never writes."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from mailgw.errors import UsageError
from mailgw.migrate.state import DONE, PENDING, StateDB, StateRow


def row(key: str, *, status: str = DONE, uid: int | None = 1, **kw: object) -> StateRow:
    base: dict[str, object] = {
        "src_folder": ("Projects", "2024"),
        "src_uidvalidity": 7,
        "src_key": key,
        "dst_folder": ("Archiv", "Données"),
        "sha256": "ab" * 32,
        "size": 123,
        "flags": frozenset({"\\Seen", "$Work"}),
        "internaldate": 1700000000.5,
        "dst_uidvalidity": 9,
        "dst_uid": uid,
        "dst_uidnext": 5,
        "status": status,
    }
    base.update(kw)
    return StateRow(**base)  # type: ignore[arg-type]


def test_rows_roundtrip_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = StateDB(path)
    db.put([row("1", uid=11), row("2", status=PENDING, uid=None)])
    db.close()
    db = StateDB(path)
    got = sorted(db.rows(("Projects", "2024"), ("Archiv", "Données")), key=lambda r: r.src_key)
    assert got == [row("1", uid=11), row("2", status=PENDING, uid=None)]
    assert db.rows(("Projects",), ("Archiv", "Données")) == []
    assert db.claimed(("Archiv", "Données"), 9) == {11}  # pending rows claim nothing
    assert db.claimed(("Archiv", "Données"), 10) == set()
    db.close()


def test_put_replaces_by_key_and_remove(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    db.put([row("1", status=PENDING, uid=None)])
    db.put([row("1", uid=3)])
    assert [
        (r.status, r.dst_uid) for r in db.rows(("Projects", "2024"), ("Archiv", "Données"))
    ] == [(DONE, 3)]
    # the same source message into another destination folder is another row
    db.put([row("1", uid=4, dst_folder=("Other",))])
    assert db.count() == 2
    db.remove([row("1")])
    assert db.count() == 1
    assert db.rows(("Projects", "2024"), ("Other",))[0].dst_uid == 4
    db.close()


def test_wal_and_durable_commits(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = StateDB(path)
    db.put([row("1")])
    # another connection sees the committed row at once (no pending transaction)
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    other.close()
    db.close()


def test_bind_refuses_another_pair(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = StateDB(path)
    db.bind("imap://a@x:143", "maildir:/m")
    db.bind("imap://a@x:143", "maildir:/m")  # same pair: fine
    assert db.meta() == {"source": "imap://a@x:143", "destination": "maildir:/m"}
    with pytest.raises(UsageError, match="not imap://b@x:143"):
        db.bind("imap://b@x:143", "maildir:/m")
    db.close()


def test_bind_without_record_writes_nothing(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    db.bind("a", "b", record=False)
    assert db.meta() == {}
    db.close()


def test_readonly_missing_file_is_empty_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none" / "s.sqlite"
    db = StateDB(path, readonly=True)
    assert db.rows(("INBOX",), ("INBOX",)) == []
    db.bind("a", "b")
    with pytest.raises(RuntimeError):
        db.put([row("1")])
    db.close()
    assert not path.exists() and not path.parent.exists()


def test_readonly_reads_existing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = StateDB(path)
    db.bind("a", "b")
    db.put([row("1")])
    db.close()
    ro = StateDB(path, readonly=True)
    assert len(ro.rows(("Projects", "2024"), ("Archiv", "Données"))) == 1
    with pytest.raises(UsageError):
        ro.bind("a", "c")
    ro.close()


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    StateDB(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(UsageError, match="newer"):
        StateDB(path)


def test_not_a_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageError):
        StateDB(path)


def test_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    p1 = StateDB.default_path("imap://a@x:143", "maildir:/m")
    p2 = StateDB.default_path("imap://a@x:143", "maildir:/n")
    assert p1 != p2
    assert p1.parent == tmp_path / "state" / "mailgw" / "migrate"
    assert p1.suffix == ".sqlite" and len(p1.stem) == 16
    for d in (tmp_path / "state", tmp_path / "state" / "mailgw", p1.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    db = StateDB(p1)
    db.close()
    assert stat.S_IMODE(p1.stat().st_mode) == 0o600
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert StateDB.default_path("a", "b").parent == tmp_path / "home/.local/state/mailgw/migrate"
