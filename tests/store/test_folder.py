"""Folder: durable delivery, UIDs, flags and keywords, expunge, threads."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mailgw.errors import MessageNotFound, StoreError
from mailgw.store import Account, Store
from mailgw.store.uidlist import parse_uidlist

MSG = b"Subject: test\r\n\r\nbody\r\n"


def files(path: Path) -> list[str]:
    return sorted(os.listdir(path))


def test_deliver_to_new(acct: Account) -> None:
    inbox = acct.folder()
    key = inbox.deliver(MSG)
    assert files(inbox.path / "new") == [key]
    assert files(inbox.path / "tmp") == []
    assert files(inbox.path / "cur") == []
    assert key.endswith(f",S={len(MSG)},W={len(MSG)}")
    assert (inbox.path / "new" / key).read_bytes() == MSG
    assert (inbox.path / "new" / key).stat().st_mode & 0o777 == 0o600
    assert not (inbox.path / "dovecot-uidlist").exists()  # delivery leaves the uidlist alone


def test_deliver_with_flags_goes_to_cur(acct: Account) -> None:
    inbox = acct.folder()
    key = inbox.deliver(MSG, flags={"\\Seen", "\\Draft"}, keywords={"$Junk"})
    assert files(inbox.path / "cur") == [key + ":2,DSa"]
    assert (inbox.path / "dovecot-keywords").read_bytes() == b"0 $Junk\n"
    [m] = inbox.messages()
    assert m.flags == {"\\Seen", "\\Draft"}
    assert m.keywords == {"$Junk"}


def test_streaming_write_is_invisible_until_commit(acct: Account) -> None:
    inbox = acct.folder()
    with inbox.open_tmp() as tmp:
        tmp.write(b"Subject: x\r")
        tmp.write(b"\n\r\nline\nbare\r\n")
        assert files(inbox.path / "new") == []
        assert inbox.messages() == []
        uid = tmp.commit(internaldate=1_600_000_000)
        key = tmp.key
        assert key is not None
        assert uid == 1 == tmp.uid
    assert files(inbox.path / "tmp") == []
    data = b"Subject: x\r\n\r\nline\nbare\r\n"
    assert key.endswith(f",S={len(data)},W={len(data) + 1}")
    [m] = inbox.messages()
    assert inbox.read(m) == data
    assert m.internaldate == 1_600_000_000
    assert m.size == len(data)


def test_abort_and_exception_leave_nothing(acct: Account) -> None:
    inbox = acct.folder()
    tmp = inbox.open_tmp()
    tmp.write(b"partial")
    tmp.abort()
    with pytest.raises(RuntimeError), inbox.open_tmp() as tmp2:
        tmp2.write(b"partial")
        raise RuntimeError("client went away")
    for sub in ("tmp", "new", "cur"):
        assert files(inbox.path / sub) == []
    with pytest.raises(StoreError):
        tmp.write(b"more")


def test_failed_commit_leaves_nothing(acct: Account) -> None:
    inbox = acct.folder()
    with pytest.raises(ValueError):
        inbox.deliver(MSG, flags={"\\Recent"})
    for sub in ("tmp", "new", "cur"):
        assert files(inbox.path / sub) == []


def test_uids_in_delivery_order_and_uidlist_format(acct: Account) -> None:
    inbox = acct.folder()
    keys = [inbox.deliver(MSG + bytes([65 + i])) for i in range(5)]
    msgs = inbox.messages()
    assert [m.uid for m in msgs] == [1, 2, 3, 4, 5]
    assert [m.key for m in msgs] == keys
    assert inbox.uidnext == 6
    assert abs(inbox.uidvalidity - time.time()) < 3600
    text = (inbox.path / "dovecot-uidlist").read_text()
    lines = text.splitlines()
    assert lines[0].startswith(f"3 V{inbox.uidvalidity} N6 G")
    assert lines[1:] == [f"{i + 1} :{k}" for i, k in enumerate(keys)]
    # new messages are appended; the header is left as it was
    k6 = inbox.deliver(MSG)
    assert inbox.messages()[-1].uid == 6
    assert (inbox.path / "dovecot-uidlist").read_text() == text + f"6 :{k6}\n"


def test_uids_stable_across_stores(store: Store, acct: Account) -> None:
    inbox = acct.folder()
    for _ in range(3):
        inbox.deliver(MSG)
    first = [(m.uid, m.key) for m in inbox.messages()]
    validity = inbox.uidvalidity
    inbox.set_flags(2, frozenset({"\\Seen"}), frozenset())
    again = Store(store.mail_root).account("alice").folder()
    assert [(m.uid, m.key) for m in again.messages()] == first
    assert again.uidvalidity == validity
    again.deliver(MSG)
    assert [m.uid for m in again.messages()] == [1, 2, 3, 4]
    assert [m.uid for m in inbox.messages()] == [1, 2, 3, 4]


def test_flags_and_keywords_round_trip(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    [m] = inbox.messages()
    m2 = inbox.set_flags(1, frozenset({"\\Seen", "\\Answered"}), frozenset({"a1", "b2"}))
    assert m2.flags == {"\\Seen", "\\Answered"}
    assert m2.keywords == {"a1", "b2"}
    assert m2.path.parent.name == "cur"
    assert files(inbox.path / "new") == []
    assert files(inbox.path / "cur") == [m.key + ":2,RSab"]
    assert inbox.messages() == [m2]
    m3 = inbox.set_flags(1, frozenset({"\\Deleted"}), frozenset({"b2"}))
    assert files(inbox.path / "cur") == [m.key + ":2,Tb"]
    assert (m3.flags, m3.keywords) == ({"\\Deleted"}, {"b2"})
    assert inbox.read(m) == MSG  # stale info: the store finds the renamed file
    with pytest.raises(MessageNotFound):
        inbox.set_flags(99, frozenset(), frozenset())
    with pytest.raises(ValueError):
        inbox.set_flags(1, frozenset({"\\Recent"}), frozenset())
    with pytest.raises(ValueError):
        inbox.set_flags(1, frozenset(), frozenset({"two words"}))


def test_unknown_letters_survive_renames(acct: Account) -> None:
    inbox = acct.folder()
    key = inbox.deliver(MSG)
    os.rename(inbox.path / "new" / key, inbox.path / "cur" / (key + ":2,PSz"))
    [m] = inbox.messages()
    assert m.flags == {"\\Seen"}
    assert m.keywords == set()  # "z" is not in dovecot-keywords
    inbox.set_flags(1, frozenset({"\\Flagged"}), frozenset())
    assert files(inbox.path / "cur") == [key + ":2,FPz"]


def test_keyword_limit(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.messages()
    kws = frozenset(f"k{i:02d}" for i in range(26))
    m = inbox.set_flags(1, frozenset(), kws)
    assert m.keywords == kws
    assert m.path.name.endswith(":2,abcdefghijklmnopqrstuvwxyz")
    with pytest.raises(StoreError):
        inbox.set_flags(1, frozenset(), frozenset({"one-too-many"}))


def test_expunge(acct: Account) -> None:
    inbox = acct.folder()
    for i in range(4):
        inbox.deliver(MSG + bytes([48 + i]))
    msgs = inbox.messages()
    inbox.set_flags(2, frozenset({"\\Deleted"}), frozenset())
    assert inbox.expunge([2, 4, 42]) == [2, 4]
    assert [m.uid for m in inbox.messages()] == [1, 3]
    assert len(files(inbox.path / "new")) + len(files(inbox.path / "cur")) == 2
    ul = parse_uidlist((inbox.path / "dovecot-uidlist").read_bytes())
    assert ul is not None
    assert [r.uid for r in ul.records] == [1, 3]
    assert ul.next_uid == 5  # the header keeps UIDNEXT above the expunged last UID
    inbox.deliver(MSG)
    assert [m.uid for m in inbox.messages()] == [1, 3, 5]
    with pytest.raises(MessageNotFound):
        inbox.read(msgs[1])


def test_vanished_files_dropped_on_rewrite(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.deliver(MSG)
    [m1, _] = inbox.messages()
    os.unlink(m1.path)  # removed behind our back
    assert [m.uid for m in inbox.messages()] == [2]
    inbox.deliver(MSG)  # next assignment rewrites the uidlist without UID 1
    assert [m.uid for m in inbox.messages()] == [2, 3]
    ul = parse_uidlist((inbox.path / "dovecot-uidlist").read_bytes())
    assert ul is not None
    assert [r.uid for r in ul.records] == [2, 3]
    assert ul.next_uid == 4


def test_scans_are_cached_when_nothing_changed(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.messages()
    old = time.time() - 10  # directories older than the mtime granularity window
    for sub in ("new", "cur"):
        os.utime(inbox.path / sub, (old, old))
    inbox.messages()
    scans = inbox.scans
    for _ in range(5):
        inbox.messages()
    assert inbox.scans == scans
    inbox.deliver(MSG)
    assert len(inbox.messages()) == 2
    assert inbox.scans > scans


def test_respects_dovecot_uidlist_lock(acct: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    lock = inbox.path / "dovecot-uidlist.lock"
    lock.write_text("1:otherhost")  # held by someone, fresh
    from mailgw.store import fsutil

    real = fsutil.dotlock
    monkeypatch.setattr("mailgw.store.folder.dotlock", lambda p, **kw: real(p, timeout=0.2, **kw))
    with pytest.raises(StoreError):
        inbox.messages()
    assert lock.exists()
    old = time.time() - 121
    os.utime(lock, (old, old))  # stale after 120 s, as in Dovecot
    assert [m.uid for m in inbox.messages()] == [1]
    assert not lock.exists()


def test_concurrent_deliveries_and_scans(store: Store, acct: Account) -> None:
    n_threads, per_thread = 8, 15
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            # each thread uses its own Store object, as separate sessions would
            folder = Store(store.mail_root).account("alice").folder()
            for j in range(per_thread):
                folder.deliver(f"Subject: {i}-{j}\r\n\r\n".encode())
                folder.messages()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    msgs = acct.folder().messages()
    uids = [m.uid for m in msgs]
    assert len(msgs) == n_threads * per_thread
    assert uids == list(range(1, n_threads * per_thread + 1))
    assert len({m.key for m in msgs}) == len(msgs)
    ul = parse_uidlist((acct.folder().path / "dovecot-uidlist").read_bytes())
    assert ul is not None
    assert [r.uid for r in ul.records] == uids
