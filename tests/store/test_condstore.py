"""MODSEQ / HIGHESTMODSEQ (RFC 7162) in the mailgw-modseq sidecar."""

from __future__ import annotations

import os

import pytest

from mailgw.store import Account, ModifiedSince, Store
from mailgw.store.modseq import MODSEQ_FILE, ModseqLog

MSG = b"Subject: cs\r\n\r\nbody\r\n"


def test_new_messages_and_flag_changes_bump_modseq(acct: Account) -> None:
    inbox = acct.folder()
    assert inbox.messages() == []
    empty = inbox.highestmodseq
    assert empty >= 1  # RFC 7162: mod-sequences are positive
    inbox.deliver(MSG)
    [m1] = inbox.messages()
    assert m1.modseq > empty
    assert inbox.highestmodseq == m1.modseq
    uid2 = inbox.deliver_uid(MSG)
    m2 = inbox.messages()[1]
    assert m2.uid == uid2
    assert m2.modseq > m1.modseq
    before = inbox.highestmodseq
    res = inbox.store_flags([1, 2], {"\\Seen"}, mode="add")
    assert [i.uid for i in res.changed] == [1, 2]
    assert res.highestmodseq > before
    assert {i.modseq for i in res.changed} == {res.highestmodseq}  # one STORE, one modseq
    assert [m.modseq for m in inbox.messages()] == [res.highestmodseq] * 2
    # a STORE that changes nothing does not bump
    again = inbox.store_flags([1, 2], {"\\Seen"}, mode="add")
    assert again.changed == [] and again.highestmodseq == res.highestmodseq
    # expunge bumps HIGHESTMODSEQ
    inbox.expunge([2])
    assert inbox.highestmodseq > res.highestmodseq
    assert [m.modseq for m in inbox.messages()] == [res.highestmodseq]


def test_unchanged_since(acct: Account) -> None:
    inbox = acct.folder()
    for _ in range(3):
        inbox.deliver(MSG)
    msgs = inbox.messages()
    base = max(m.modseq for m in msgs)
    inbox.set_flags(2, frozenset({"\\Flagged"}), frozenset())  # 2 now newer than base
    res = inbox.store_flags([1, 2, 3, 77], {"\\Seen"}, mode="add", unchanged_since=base)
    assert res.failed == [2]
    assert [i.uid for i in res.changed] == [1, 3]
    assert inbox.messages()[1].flags == {"\\Flagged"}
    with pytest.raises(ModifiedSince):
        inbox.set_flags(2, frozenset(), frozenset(), unchanged_since=base)
    m2 = inbox.messages()[1]
    assert inbox.set_flags(2, frozenset(), frozenset(), unchanged_since=m2.modseq).flags == set()


def test_store_modes_keywords(acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG, keywords={"old"})
    inbox.messages()
    inbox.store_flags([1], {"\\Seen"}, {"new"}, mode="add")
    [m] = inbox.messages()
    assert (m.flags, m.keywords) == ({"\\Seen"}, {"old", "new"})
    inbox.store_flags([1], (), {"old"}, mode="remove")
    [m] = inbox.messages()
    assert (m.flags, m.keywords) == ({"\\Seen"}, {"new"})
    inbox.store_flags([1], {"\\Draft"}, mode="replace")
    [m] = inbox.messages()
    assert (m.flags, m.keywords) == ({"\\Draft"}, set())
    with pytest.raises(ValueError):
        inbox.store_flags([1], {"\\Seen"}, mode="toggle")


def test_changes_by_other_programs_get_modseqs(store: Store, acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.deliver(MSG)
    m1, m2 = inbox.messages()
    high = inbox.highestmodseq
    # e.g. Dovecot sets \Seen on UID 1 by renaming, and a POP3 process deletes UID 2
    os.rename(m1.path, inbox.path / "cur" / (m1.key + ":2,S"))
    os.unlink(m2.path)
    fresh = Store(store.mail_root).account("alice").folder()  # another process' view
    [n1] = fresh.messages()
    assert n1.flags == {"\\Seen"}
    assert n1.modseq > high
    assert fresh.highestmodseq > high
    assert inbox.messages()[0].modseq == n1.modseq  # both views agree


def test_modseq_survives_restart_and_compacts(store: Store, acct: Account) -> None:
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.messages()
    for i in range(30):
        inbox.set_flags(1, frozenset({"\\Seen"} if i % 2 else set()), frozenset())
    high = inbox.highestmodseq
    again = Store(store.mail_root).account("alice").folder()
    assert again.highestmodseq == high
    assert again.messages()[0].modseq == high
    # compaction keeps HIGHESTMODSEQ in the header
    log = ModseqLog(inbox.path / MODSEQ_FILE)
    log.refresh()
    log._rewrite()
    text = (inbox.path / MODSEQ_FILE).read_text()
    assert text.splitlines()[0] == f"mailgw-modseq 1 V{inbox.uidvalidity} H{high}"
    assert len(text.splitlines()) == 2
    assert Store(store.mail_root).account("alice").folder().highestmodseq == high


def test_modseq_log_format_and_partial_lines(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    path = Path(tmp_path) / MODSEQ_FILE
    log = ModseqLog(path)
    m = log.record(42, {1: "", 2: "S"})
    assert m == 2
    m = log.record(42, {2: None})
    assert m == 3
    m = log.record(42, {}, bump=True)
    assert m == 4
    assert path.read_text() == ("mailgw-modseq 1 V42 H0\n1 2 :\n2 2 :S\n2 3 -\nH 4\n")
    with open(path, "a") as fh:
        fh.write("1 9 :F")  # a write in progress: ignored
    other = ModseqLog(path)
    other.refresh()
    assert other.highest == 4
    assert other.entries == {1: (2, "")}
    # a new UIDVALIDITY starts over above the old HIGHESTMODSEQ
    path.write_text("mailgw-modseq 1 V42 H4\n1 2 :\n")
    fresh = ModseqLog(path)
    assert fresh.record(43, {7: "S"}) == 5
    fresh2 = ModseqLog(path)
    fresh2.refresh()
    assert fresh2.uidvalidity == 43
    assert fresh2.entries == {7: (5, "S")}


def test_automatic_compaction(acct: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailgw.store.modseq.COMPACT_MIN", 10)
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.messages()
    for i in range(40):
        inbox.set_flags(1, frozenset({"\\Seen"} if i % 2 else set()), frozenset())
    lines = (inbox.path / MODSEQ_FILE).read_text().splitlines()
    assert len(lines) < 25
    assert inbox.messages()[0].modseq == inbox.highestmodseq
