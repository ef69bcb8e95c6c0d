"""What IMAP needs from the store: APPEND/COPY/MOVE UIDs, \\Recent, folders, UIDVALIDITY."""

from __future__ import annotations

import errno
import os
import stat
import threading

import pytest

from mailgw.errors import FolderNotFound
from mailgw.store import SPECIAL_USE, Account, Store
from mailgw.store.uidlist import parse_uidlist
from mailgw.store.uidvalidity import next_uidvalidity

MSG = b"Subject: imap\r\n\r\nbody\r\n"


def uidlist_uids(path: os.PathLike[str] | str) -> list[int]:
    with open(os.path.join(path, "dovecot-uidlist"), "rb") as fh:
        ul = parse_uidlist(fh.read())
    assert ul is not None
    return [r.uid for r in ul.records]


# --- APPEND ---------------------------------------------------------------------


def test_commit_returns_uid_and_appends_uidlist_line(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)  # SMTP fast path: no UID yet
    inbox.messages()
    inbox.deliver(MSG)  # another one without a UID
    with inbox.open_tmp() as tmp:
        tmp.write(MSG[:5])
        tmp.write(MSG[5:])
        uid = tmp.commit(flags={"\\Seen"}, keywords={"$Sent"}, internaldate=1_500_000_000)
    assert uid == 2  # given at once under the lock; the SMTP file gets the next one
    assert uidlist_uids(inbox.path) == [1, 2]
    msgs = inbox.messages()
    assert [m.uid for m in msgs] == [1, 2, 3]
    by_uid = {m.uid: m for m in msgs}
    assert by_uid[2].key == tmp.key
    assert by_uid[2].flags == {"\\Seen"} and by_uid[2].keywords == {"$Sent"}
    assert by_uid[2].internaldate == 1_500_000_000
    assert inbox.uidnext == 4


def test_commit_on_a_folder_without_uidlist(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    assert not (inbox.path / "dovecot-uidlist").exists()
    assert inbox.deliver_uid(MSG) == 2
    assert [m.uid for m in inbox.messages()] == [1, 2]


def test_uidlist_peek_ignores_a_partial_last_line(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver_uid(MSG)
    with open(inbox.path / "dovecot-uidlist", "ab") as fh:
        fh.write(b"57 :half-written")
    assert inbox.deliver_uid(MSG) == 2


def test_concurrent_appends_get_distinct_uids(store: Store, acct: Account) -> None:
    uids: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        folder = Store(store.mail_root).account("alice").folder()
        for _ in range(10):
            u = folder.deliver_uid(MSG)
            with lock:
                uids.append(u)
            acct.folder().deliver(MSG)  # interleaved SMTP deliveries

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(uids) == list(range(1, 41))
    msgs = acct.folder().messages()
    assert [m.uid for m in msgs] == list(range(1, 81))


# --- COPY / MOVE ----------------------------------------------------------------


def test_copy_keeps_flags_keywords_date_and_links(acct: Account) -> None:
    inbox = acct.folder()
    dst = acct.create_folder("Archive")
    dst.deliver_uid(MSG)  # dst keyword indexes differ from the source's
    dst.set_flags(1, frozenset(), frozenset({"zzz"}))
    inbox.deliver(b"one\r\n", keywords={"alpha", "beta"}, internaldate=1_400_000_000)
    inbox.deliver(b"two\n", flags={"\\Flagged"})
    inbox.deliver(b"three\r\n")
    inbox.messages()
    pairs = dst.copy_from(inbox, [3, 1, 99])
    assert pairs == [(1, 2), (3, 3)]
    got = {m.uid: m for m in dst.messages()}
    assert got[2].keywords == {"alpha", "beta"}
    assert got[2].internaldate == 1_400_000_000
    assert dst.read(got[2]) == b"one\r\n"
    assert got[2].path.stat().st_ino == inbox.messages()[0].path.stat().st_ino
    assert got[3].path.parent.name == "new"  # no flags: \Recent in the copy
    assert (dst.path / "dovecot-keywords").read_text() == "0 zzz\n1 alpha\n2 beta\n"
    assert uidlist_uids(dst.path) == [1, 2, 3]
    assert [m.uid for m in inbox.messages()] == [1, 2, 3]  # the source is untouched
    assert got[2].modseq > 0


def test_copy_across_filesystems(acct: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = acct.folder()
    dst = acct.create_folder("Other")
    inbox.deliver(MSG, flags={"\\Seen"}, internaldate=1_300_000_000)
    inbox.messages()

    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    assert dst.copy_from(inbox, [1]) == [(1, 1)]
    [m] = dst.messages()
    assert m.flags == {"\\Seen"} and m.internaldate == 1_300_000_000
    assert dst.read(m) == MSG
    assert os.listdir(dst.path / "tmp") == []


def test_move(acct: Account) -> None:
    inbox = acct.folder()
    trash = acct.create_folder("Trash")
    for i in range(3):
        inbox.deliver(MSG + bytes([48 + i]))
    inbox.messages()
    assert inbox.move_to(trash, [1, 3]) == [(1, 1), (3, 2)]
    assert [m.uid for m in inbox.messages()] == [2]
    assert [trash.read(m) for m in trash.messages()] == [MSG + b"0", MSG + b"2"]
    assert inbox.move_to(trash, [42]) == []


# --- \Recent --------------------------------------------------------------------


def test_claim_recent_only_once(store: Store, acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.deliver(MSG, flags={"\\Seen"})  # goes straight to cur/: not recent
    inbox.deliver(MSG)
    other = Store(store.mail_root).account("alice").folder()
    other.messages()
    assert inbox.claim_recent() == {1, 3}
    assert other.claim_recent() == set()
    assert inbox.claim_recent() == set()
    assert os.listdir(inbox.path / "new") == []
    assert sorted(n.rsplit(":", 1)[1] for n in os.listdir(inbox.path / "cur")) == [
        "2,",
        "2,",
        "2,S",
    ]
    assert [m.uid for m in inbox.messages()] == [1, 2, 3]  # UIDs unchanged


# --- folders --------------------------------------------------------------------


def test_new_accounts_get_special_use_folders(store: Store) -> None:
    acct = store.account("dave")
    acct.ensure()
    assert acct.list_folders() == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert acct.subscriptions() == list(SPECIAL_USE)
    assert SPECIAL_USE["Sent"] == "\\Sent"
    entries = {e.name: e for e in acct.list_entries()}
    assert entries["Sent"].attributes() == {"\\Sent", "\\HasNoChildren", "\\Subscribed"}
    assert entries["INBOX"].attributes() == {"\\HasNoChildren"}
    # an existing account is left alone
    acct.delete_folder("Junk")
    acct.ensure()
    assert "Junk" not in acct.list_folders()
    # delivery to a user without a Maildir makes one, as `mailgw user add` does
    store.deliver_many([("erin", "INBOX")], MSG)
    assert "Trash" in store.account("erin").list_folders()
    acct.ensure_special_use()
    assert "Junk" in acct.list_folders()


def test_delete_parent_keeps_children_as_noselect(acct: Account) -> None:
    acct.create_folder("Par")
    acct.create_folder("Par/Kid")
    acct.create_folder("Lone/Kid")  # parent never created, as Dovecot allows
    acct.subscribe("Par")
    acct.delete_folder("Par")
    assert acct.subscriptions() == ["Par"]  # kept, as Dovecot does
    entries = {e.name: e for e in acct.list_entries()}
    assert list(entries) == ["INBOX", "Lone", "Lone/Kid", "Par", "Par/Kid"]
    assert entries["Par"].attributes() == {"\\Noselect", "\\HasChildren", "\\Subscribed"}
    assert entries["Par"].attributes(extended=True) == {
        "\\NonExistent",
        "\\HasChildren",
        "\\Subscribed",
    }
    assert entries["Lone"].attributes() == {"\\Noselect", "\\HasChildren"}
    assert entries["Par/Kid"].attributes() == {"\\HasNoChildren"}
    assert acct.folder_attributes("Par") == {"\\Noselect", "\\HasChildren", "\\Subscribed"}
    assert acct.folder_attributes("Nope") == {"\\Noselect", "\\HasNoChildren"}
    with pytest.raises(FolderNotFound):
        acct.folder("Par")
    with pytest.raises(FolderNotFound):
        acct.delete_folder("Lone")  # RFC 3501 6.3.4: deleting a \Noselect name is an error
    assert acct.folder("Par/Kid").messages() == []


def test_rename_moves_children_and_subscriptions(acct: Account) -> None:
    acct.create_folder("Work")
    acct.create_folder("Work/2023")
    acct.create_folder("Workshop")
    for name in ("Work", "Work/2023", "Workshop", "Other"):
        acct.subscribe(name)
    acct.rename_folder("Work", "Old/Work")
    assert acct.list_folders() == ["INBOX", "Old/Work", "Old/Work/2023", "Workshop"]
    assert acct.subscriptions() == ["Old/Work", "Old/Work/2023", "Workshop", "Other"]
    acct.rename_folder("Workshop", "Shop", move_subscriptions=False)
    assert "Workshop" in acct.subscriptions()


def test_recreated_folder_gets_new_uidvalidity(acct: Account) -> None:
    a = acct.create_folder("Tmp").uidvalidity
    acct.delete_folder("Tmp")
    b = acct.create_folder("Tmp").uidvalidity
    assert b == a + 1
    main = acct.maildir / "dovecot-uidvalidity"
    assert main.read_bytes() == f"{b:08x}".encode()  # what Dovecot writes: no newline
    marker = acct.maildir / f"dovecot-uidvalidity.{b:08x}"
    assert marker.exists() and marker.stat().st_size == 0
    assert stat.S_IMODE(marker.stat().st_mode) == 0o444
    assert not (acct.maildir / f"dovecot-uidvalidity.{a:08x}").exists()


def test_uidvalidity_counter_recovers(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    root = Path(tmp_path)
    first = next_uidvalidity(root)
    assert next_uidvalidity(root) == first + 1
    (root / "dovecot-uidvalidity").unlink()  # lost main file: the marker is the authority
    assert next_uidvalidity(root) == first + 2
    (root / "dovecot-uidvalidity").write_bytes(b"garbage!")
    assert next_uidvalidity(root) == first + 3
    # two markers (a crash between create and cleanup): the larger wins, the other goes
    (root / "dovecot-uidvalidity").unlink()
    (root / f"dovecot-uidvalidity.{first:08x}").touch()
    assert next_uidvalidity(root) == first + 4
    assert sorted(p.name for p in root.iterdir()) == [
        "dovecot-uidvalidity",
        f"dovecot-uidvalidity.{first + 4:08x}",
    ]
