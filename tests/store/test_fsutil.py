"""Atomic rewrites and dot-locks."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mailgw.errors import StoreError
from mailgw.store.fsutil import atomic_write, dotlock


def test_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_dotlock_excludes(tmp_path: Path) -> None:
    target = tmp_path / "dovecot-uidlist"
    inside = []
    overlap = []

    def worker() -> None:
        for _ in range(20):
            with dotlock(target):
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(1)
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
    assert not (tmp_path / "dovecot-uidlist.lock").exists()


def test_dotlock_timeout_and_stale(tmp_path: Path) -> None:
    target = tmp_path / "x"
    lock = tmp_path / "x.lock"
    lock.write_text("1:some-other-host")
    with pytest.raises(StoreError), dotlock(target, timeout=0.1):
        pass
    old = time.time() - 200
    os.utime(lock, (old, old))
    with dotlock(target, timeout=0.1):
        assert lock.read_text().startswith(f"{os.getpid()}:")
    assert not lock.exists()


def test_dotlock_of_dead_local_process_is_stale(tmp_path: Path) -> None:
    import socket

    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0)
    os.waitpid(pid, 0)
    (tmp_path / "x.lock").write_text(f"{pid}:{socket.gethostname()}")
    with dotlock(tmp_path / "x", timeout=0.1):
        pass
