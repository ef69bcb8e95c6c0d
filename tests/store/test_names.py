"""Folder and user name validation and the Maildir++ mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailgw.errors import InvalidFolderName, InvalidUserName
from mailgw.store import Account, Store
from mailgw.store.names import (
    disk_name,
    folder_dir,
    name_from_disk,
    name_from_subscription,
    normalize_folder,
    subscription_line,
    validate_user,
)

BAD_FOLDERS = [
    "",
    "../x",
    "a/../../b",
    "..",
    ".",
    "a/./b",
    "/etc",
    "/",
    "a\x00b",
    "a\nb",
    "a\tb",
    "a\x7fb",
    "~root",
    "a/~b",
    "a//b",
    "a/",
    "a.b",  # Dovecot 2.3: "Character not allowed in mailbox name: '.'"
    ".hidden",
    "x" * 300,
]


@pytest.mark.parametrize("name", BAD_FOLDERS)
def test_bad_folder_names(name: str) -> None:
    with pytest.raises(InvalidFolderName):
        normalize_folder(name)


@pytest.mark.parametrize("name", BAD_FOLDERS)
def test_bad_folder_names_through_account(acct: Account, name: str) -> None:
    for call in (acct.folder, acct.create_folder, acct.subscribe, acct.delete_folder):
        with pytest.raises(InvalidFolderName):
            call(name)
    assert acct.list_folders() == ["INBOX"]


@pytest.mark.parametrize(
    ("name", "canonical", "disk"),
    [
        ("Sent", "Sent", ".Sent"),
        ("Projects/2024", "Projects/2024", ".Projects.2024"),
        ("Données", "Données", ".Donn&AOk-es"),
        ("Ünï/Çø", "Ünï/Çø", ".&ANw-n&AO8-.&AMcA+A-"),
        ("x&y", "x&y", ".x&-y"),
        ("inbox/bar", "INBOX/bar", ".INBOX.bar"),
        ("a~b", "a~b", ".a~b"),
        ("sp ace", "sp ace", ".sp ace"),
    ],
)
def test_disk_mapping(name: str, canonical: str, disk: str) -> None:
    assert normalize_folder(name) == canonical
    assert disk_name(canonical) == disk
    assert name_from_disk(disk) == canonical


@pytest.mark.parametrize("name", ["INBOX", "inbox", "Inbox", "iNbOx"])
def test_inbox_is_the_root(tmp_path: Path, name: str) -> None:
    canonical = normalize_folder(name)
    assert canonical == "INBOX"
    assert folder_dir(tmp_path, canonical) == tmp_path


@pytest.mark.parametrize("dirname", [".", "..", "..x", "cur", ".&AGE-", ".a..b", ".&"])
def test_not_folder_dirs(dirname: str) -> None:
    assert name_from_disk(dirname) is None


def test_subscription_lines() -> None:
    assert subscription_line("Projects/2024") == "Projects\t2024"
    assert subscription_line("Données") == "Donn&AOk-es"
    assert name_from_subscription("Projects\t2024") == "Projects/2024"
    assert name_from_subscription("a\t\tb") is None


def test_symlinked_folder_outside_maildir_is_refused(acct: Account, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    for sub in ("cur", "new", "tmp"):
        (outside / sub).mkdir(parents=True)
    os.symlink(outside, acct.maildir / ".Evil")
    with pytest.raises(InvalidFolderName):
        acct.folder("Evil")


@pytest.mark.parametrize("user", ["alice", "a", "bob.smith", "x-1_2", "0", "a" * 64])
def test_good_users(store: Store, user: str) -> None:
    assert validate_user(user) == user
    assert store.account(user).maildir == store.mail_root / user / "Maildir"


@pytest.mark.parametrize(
    "user", ["", "Alice", "../x", "a/b", ".a", "a.", "-a", "a" * 65, "a b", "~root", "a\x00"]
)
def test_bad_users(store: Store, user: str) -> None:
    with pytest.raises(InvalidUserName):
        store.account(user)
