"""The spool: durable enqueue, corruption handling, errors, locking across processes."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailgw.relay import spool as spool_mod
from mailgw.relay.spool import (
    Busy,
    QueueEntry,
    QueueEntryNotFound,
    RecipientState,
    Spool,
    SpoolError,
    new_id,
)

REPO = Path(__file__).resolve().parents[2]
DATA = b"Subject: t\r\n\r\nbody\r\n"


def test_enqueue_writes_message_and_meta(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "q")
    ident = spool.enqueue("bob@office.lan", ["x@example.com", "y@example.org"], DATA, source="send")
    assert spool.message_path(ident).read_bytes() == DATA
    meta = json.loads((tmp_path / "q" / "meta" / f"{ident}.json").read_bytes())
    assert meta["id"] == ident and meta["sender"] == "bob@office.lan"
    assert meta["source"] == "send" and meta["size"] == len(DATA)
    assert [r["address"] for r in meta["recipients"]] == ["x@example.com", "y@example.org"]
    assert {r["state"] for r in meta["recipients"]} == {"pending"}
    assert set(meta) == {
        "id", "created", "sender", "source", "size", "held", "held_reason",
        "next_attempt", "attempts", "warned", "recipients",
    }  # fmt: skip
    assert os.listdir(tmp_path / "q" / "tmp") == []
    assert [e.id for e in spool.entries()] == [ident]


def test_ids_are_time_ordered_and_unique() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and i == i.upper() for i in ids)


def test_entries_sorted_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ids = [spool.enqueue("", [f"r{i}@x.example"], DATA, source="dsn") for i in range(5)]
    assert [e.id for e in spool.entries()] == ids


def test_roundtrip_json() -> None:
    entry = QueueEntry(
        id="0123456789ABCDEF",
        created=1.5,
        sender="",
        source="dsn",
        size=3,
        next_attempt=2.0,
        recipients=[RecipientState("a@b.example", "failed", 2, 1.0, "550 no", True)],
        held=True,
        held_reason="why",
        attempts=2,
        warned=True,
    )
    assert QueueEntry.from_json(json.loads(json.dumps(entry.to_json()))) == entry


@pytest.mark.parametrize(
    "content",
    [
        b"garbage{{{",
        b"",
        b"[1, 2]",
        b'{"id": "0000000000000001"}',
        b"\xff\xfe not utf-8",
    ],
)
def test_corrupt_meta_is_skipped(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    good = spool.enqueue("a@b.example", ["c@d.example"], DATA, source="smtp")
    (tmp_path / "meta" / "0000000000000001.json").write_bytes(content)
    with caplog.at_level("WARNING", logger="mailgw.relay"):
        assert [e.id for e in spool.entries()] == [good]
    assert "0000000000000001" in caplog.text
    with pytest.raises(SpoolError, match="corrupt"):
        spool.load("0000000000000001")


def test_msg_without_meta_is_invisible_and_cleaned(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.ensure_dirs()
    orphan = tmp_path / "msg" / "00000000000000AA"
    orphan.write_bytes(DATA)
    (tmp_path / "tmp" / "junk").write_bytes(b"x")
    assert spool.entries() == []
    with pytest.raises(QueueEntryNotFound):
        spool.load("00000000000000AA")
    assert spool.cleanup(max_age=3600) == 0  # too young
    old = 1_000_000_000
    os.utime(orphan, (old, old))
    os.utime(tmp_path / "tmp" / "junk", (old, old))
    assert spool.cleanup(max_age=3600) == 2
    assert not orphan.exists()


def test_meta_without_msg_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ident = spool.enqueue("a@b.example", ["c@d.example"], DATA, source="smtp")
    os.unlink(tmp_path / "msg" / ident)
    assert spool.entries() == []


def test_unwritable_spool_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    spool = Spool(blocker / "queue")
    with pytest.raises(SpoolError) as info:
        spool.enqueue("a@b.example", ["c@d.example"], DATA, source="send")
    assert str(blocker / "queue") in str(info.value)
    assert "Not a directory" in str(info.value)
    assert info.value.exit_code == 1
    assert not info.value.transient


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_spool_dir(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "q")
    spool.ensure_dirs()
    os.chmod(tmp_path / "q" / "tmp", 0o500)
    try:
        with pytest.raises(SpoolError, match="Permission denied"):
            spool.enqueue("a@b.example", ["c@d.example"], DATA, source="send")
    finally:
        os.chmod(tmp_path / "q" / "tmp", 0o700)


@pytest.mark.parametrize("fail_at", [1, 2])
def test_full_disk_leaves_nothing_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """ENOSPC on the message (1st write) or the metadata (2nd write): no trace left."""
    spool = Spool(tmp_path)
    spool.ensure_dirs()
    real_write = os.write
    calls = {"n": 0}

    def write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(spool_mod.os, "write", write)
    with pytest.raises(SpoolError) as info:
        spool.enqueue("a@b.example", ["c@d.example"], DATA, source="send")
    monkeypatch.undo()
    assert info.value.transient
    assert "No space left on device" in str(info.value) and str(tmp_path) in str(info.value)
    for sub in ("tmp", "msg", "meta"):
        assert os.listdir(tmp_path / sub) == [], sub


def test_save_hold_release_flush_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ident = spool.enqueue("a@b.example", ["c@d.example"], DATA, source="smtp", now=100.0)
    entry = spool.load(ident.lower())  # ids are case-insensitive on input
    entry.next_attempt = 9e18
    entry.attempts = 3
    spool.save(entry)
    assert spool.load(ident).attempts == 3
    assert spool.hold(ident, "because").held_reason == "because"
    assert spool.flush() == []  # held entries stay held
    released = spool.release(ident)
    assert not released.held and released.held_reason is None
    entry = spool.load(ident)
    entry.next_attempt = 9e18
    spool.save(entry)
    assert spool.flush() == [ident]
    assert spool.load(ident).next_attempt < 9e18
    spool.remove(ident)
    assert spool.entries() == []
    assert not spool.message_path(ident).exists()
    with pytest.raises(QueueEntryNotFound):
        spool.remove(ident)
    with pytest.raises(QueueEntryNotFound):
        spool.load("../../etc/passwd")


def test_lock_in_one_process(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ident = spool.enqueue("a@b.example", ["c@d.example"], DATA, source="smtp")
    with spool.attempt_lock(ident), pytest.raises(Busy), spool.attempt_lock(ident):
        pass
    with spool.attempt_lock(ident):  # released: free again
        pass
    assert os.listdir(tmp_path / "lock") == []


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mailgw.relay.spool import Spool
    spool = Spool(Path(sys.argv[1]))
    with spool.attempt_lock(sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


def test_two_processes_one_lock(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ident = spool.enqueue("a@b.example", ["c@d.example"], DATA, source="smtp")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), ident],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(Busy, match=ident), spool.attempt_lock(ident):
            pass
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "released"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with spool.attempt_lock(ident):
        pass
