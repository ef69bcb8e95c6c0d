"""Account: Maildir creation, folders, subscriptions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mailgw.errors import FolderExists, FolderNotFound, InvalidFolderName, StoreError
from mailgw.store import Account, Store
from mailgw.store.uidlist import parse_uidlist


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_creates_maildir_only(store: Store) -> None:
    acct = store.account("bob")
    assert not acct.home.exists()
    acct.ensure(special_use=False)
    acct.ensure()  # idempotent: an existing Maildir gets no special-use folders
    assert sorted(os.listdir(acct.maildir)) == ["cur", "new", "tmp"]
    for p in (acct.home, acct.maildir, acct.maildir / "cur", acct.maildir / "new"):
        assert mode(p) == 0o700
    assert acct.home == store.mail_root / "bob"


def test_inbox_always_exists(store: Store) -> None:
    acct = store.account("carol")
    assert acct.list_folders() == ["INBOX"]
    acct.ensure(special_use=False)
    assert acct.folder("inbox").name == "INBOX"
    assert (acct.maildir / "new").is_dir()


def test_create_list_delete(acct: Account) -> None:
    for name in ("Sent", "Projects/2024", "Données", "INBOX/sub"):
        f = acct.create_folder(name)
        assert f.name == name
    assert acct.list_folders() == ["INBOX", "Données", "INBOX/sub", "Projects/2024", "Sent"]
    sent = acct.maildir / ".Sent"
    assert sorted(os.listdir(sent)) == ["cur", "dovecot-uidlist", "maildirfolder", "new", "tmp"]
    assert (sent / "maildirfolder").stat().st_size == 0
    assert mode(sent) == 0o700
    ul = parse_uidlist((sent / "dovecot-uidlist").read_bytes())
    assert ul is not None
    assert ul.records == []
    assert acct.folder("Sent").uidvalidity == ul.uidvalidity
    assert (acct.maildir / ".Donn&AOk-es").is_dir()
    assert (acct.maildir / ".Projects.2024").is_dir()
    assert not (acct.maildir / ".Projects").exists()  # parents are not created, as in Dovecot
    assert os.listdir(acct.maildir / "tmp") == []
    with pytest.raises(FolderExists):
        acct.create_folder("Sent")
    with pytest.raises(FolderExists):
        acct.create_folder("inbox")
    acct.folder("Sent").deliver(b"x\r\n")
    acct.delete_folder("Sent")
    assert "Sent" not in acct.list_folders()
    assert not sent.exists()
    assert os.listdir(acct.maildir / "tmp") == []
    with pytest.raises(FolderNotFound):
        acct.folder("Sent")
    with pytest.raises(FolderNotFound):
        acct.delete_folder("Sent")
    with pytest.raises(StoreError):
        acct.delete_folder("INBOX")


def test_folder_not_found(acct: Account) -> None:
    with pytest.raises(FolderNotFound):
        acct.folder("Nope")


def test_rename_moves_children(acct: Account) -> None:
    acct.create_folder("Work")
    acct.create_folder("Work/2023")
    acct.create_folder("Workshop")
    acct.folder("Work/2023").deliver(b"x\r\n")
    validity = acct.folder("Work/2023").uidvalidity
    acct.rename_folder("Work", "Archive/Work")
    assert acct.list_folders() == ["INBOX", "Archive/Work", "Archive/Work/2023", "Workshop"]
    moved = acct.folder("Archive/Work/2023")
    assert moved.uidvalidity == validity
    assert len(moved.messages()) == 1
    with pytest.raises(FolderExists):
        acct.rename_folder("Workshop", "Archive/Work")
    with pytest.raises(FolderNotFound):
        acct.rename_folder("Nope", "Other")
    with pytest.raises(InvalidFolderName):
        acct.rename_folder("Workshop", "Workshop/inner")
    with pytest.raises(FolderExists):
        acct.rename_folder("Workshop", "INBOX")


def test_rename_inbox_moves_messages(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(b"a\r\n")
    inbox.deliver(b"b\r\n", flags={"\\Seen"})
    inbox.messages()
    acct.rename_folder("INBOX", "Old")
    assert inbox.messages() == []
    old = acct.folder("Old")
    assert sorted(old.read(m) for m in old.messages()) == [b"a\r\n", b"b\r\n"]


def test_subscriptions_file_format(acct: Account) -> None:
    assert acct.subscriptions() == []
    for name in ("Sent", "Projects/2024", "Données", "INBOX", "x&y"):
        acct.subscribe(name)
    acct.subscribe("Sent")  # already there
    # byte for byte what Dovecot 2.3 writes for the same subscriptions
    assert (acct.maildir / "subscriptions").read_bytes() == (
        b"V\t2\n\nSent\nProjects\t2024\nDonn&AOk-es\nINBOX\nx&-y\n"
    )
    assert mode(acct.maildir / "subscriptions") == 0o600
    assert acct.subscriptions() == ["Sent", "Projects/2024", "Données", "INBOX", "x&y"]
    for name in ("Sent", "Projects/2024", "Données", "INBOX", "x&y", "never"):
        acct.unsubscribe(name)
    assert (acct.maildir / "subscriptions").read_bytes() == b"V\t2\n\n"
    assert not (acct.maildir / "subscriptions.lock").exists()


def test_folder_objects_are_cached(acct: Account) -> None:
    acct.create_folder("A")
    assert acct.folder("A") is acct.folder("A")
    assert acct.folder("INBOX") is acct.folder("inbox")
