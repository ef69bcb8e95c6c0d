"""Store.deliver_many: one write, hard links, all-or-nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mailgw.errors import FolderNotFound, InvalidUserName, StoreError
from mailgw.store import Store

MSG = b"Subject: hi\r\n\r\nto many\r\n"


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "dovecot" not in p.name)


def test_deliver_many_three_users(store: Store) -> None:
    store.account("carol").ensure()
    store.account("carol").create_folder("Lists")
    targets = [("alice", "INBOX"), ("bob", "INBOX"), ("carol", "Lists")]
    keys = store.deliver_many(targets, MSG, internaldate=1_500_000_000)
    assert len(keys) == 3
    inodes = set()
    for (user, name), key in zip(targets, keys, strict=True):
        folder = store.account(user).folder(name)
        assert os.listdir(folder.path / "tmp") == []
        [m] = folder.messages()
        assert m.key == key
        assert folder.read(m) == MSG
        assert m.internaldate == 1_500_000_000
        inodes.add(m.path.stat().st_ino)
    assert len(inodes) == 1  # written once, hard-linked
    assert store.account("alice").folder().messages()[0].path.stat().st_nlink == 3


def test_deliver_many_copies_across_filesystems(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    store.deliver_many([("alice", "INBOX"), ("bob", "INBOX")], MSG, internaldate=1_400_000_000)
    a = store.account("alice").folder().messages()[0]
    b = store.account("bob").folder().messages()[0]
    assert a.path.stat().st_ino != b.path.stat().st_ino
    assert b.path.read_bytes() == MSG
    assert b.internaldate == 1_400_000_000


def test_deliver_many_dedupes_targets(store: Store) -> None:
    keys = store.deliver_many([("alice", "INBOX"), ("alice", "inbox")], MSG)
    assert keys[0] == keys[1]
    assert len(store.account("alice").folder().messages()) == 1


def test_deliver_many_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.account("alice").ensure(special_use=False)
    store.account("bob").ensure(special_use=False)
    real_rename = os.rename
    calls = []

    def failing_rename(src: str | Path, dst: str | Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(StoreError):
        store.deliver_many([("alice", "INBOX"), ("bob", "INBOX")], MSG)
    assert all_files(store.mail_root) == []


def test_deliver_many_validates_before_writing(store: Store) -> None:
    store.account("alice").ensure(special_use=False)
    with pytest.raises(FolderNotFound):
        store.deliver_many([("alice", "INBOX"), ("bob", "Missing")], MSG)
    with pytest.raises(InvalidUserName):
        store.deliver_many([("alice", "INBOX"), ("../evil", "INBOX")], MSG)
    assert all_files(store.mail_root) == []
    assert store.deliver_many([], MSG) == []


def test_accounts_are_reused(store: Store) -> None:
    assert store.account("alice") is store.account("alice")
