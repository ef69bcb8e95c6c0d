"""The selected view (selected.py): shared snapshots, updates, resolve; and
changes.shared_listing (one folder listing shared by concurrent sessions)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, cast

from mailgw.protocols.imap import commands as c
from mailgw.servers.imap import changes
from mailgw.servers.imap.selected import SelectedMailbox
from mailgw.store import Folder, MessageInfo


class FakeFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.uidvalidity = 7
        self.calls = 0
        self.infos: list[MessageInfo] = []
        self.gate = threading.Event()
        self.gate.set()

    def messages(self) -> list[MessageInfo]:
        self.gate.wait(5)
        self.calls += 1
        return list(self.infos)


def info(uid: int, flags: tuple[str, ...] = (), sub: str = "cur") -> MessageInfo:
    return MessageInfo(
        uid=uid,
        key=f"k{uid}",
        path=Path(f"/x/{sub}/k{uid}:2,"),
        size=10,
        flags=frozenset(flags),
        keywords=frozenset(),
        internaldate=0.0,
        modseq=uid + 1,
    )


def uids(*ranges: tuple[int, int]) -> c.SequenceSet:
    return c.SequenceSet(tuple(c.SeqRange(a, b) for a, b in ranges))


def open_view(folder: FakeFolder, infos: list[MessageInfo]) -> SelectedMailbox:
    return SelectedMailbox.open(cast(Folder, folder), False, infos, set())


def test_views_share_one_snapshot_and_uid_map(tmp_path: Path) -> None:
    folder = FakeFolder(tmp_path / "a")
    infos = [info(u) for u in (1, 2, 5, 9)]
    a = open_view(folder, infos)
    b = open_view(folder, list(infos))
    assert a.snap is b.snap and a.uids is b.uids
    other = open_view(FakeFolder(tmp_path / "b"), infos)
    assert other.snap is not a.snap


def test_flag_change_new_message_and_expunge(tmp_path: Path) -> None:
    folder = FakeFolder(tmp_path / "a")
    first = [info(u) for u in (1, 2, 3)]
    view = open_view(folder, first)
    watcher = open_view(folder, first)
    second = [first[0], info(2, ("\\Seen",)), info(4)]  # 2 flagged, 3 gone, 4 new
    view.apply(second, [4])
    assert view.has_expunged() and len(view) == 4
    assert view.updates(False) == (
        b"* 4 EXISTS\r\n* 1 RECENT\r\n* 2 FETCH (FLAGS (\\Seen))\r\n"
    )  # no EXPUNGE while answering FETCH/STORE/SEARCH (RFC 3501 7.4.1)
    assert view.updates(True) == b"* 3 EXPUNGE\r\n"
    assert list(view.uids) == [1, 2, 4] and view.uids is view.snap.uids
    # a view two snapshots behind falls back to a full comparison
    third = [*second, info(5)]
    open_view(folder, third)
    watcher.apply(third)
    assert watcher.updates(True) == (
        b"* 3 EXPUNGE\r\n* 4 EXISTS\r\n* 0 RECENT\r\n* 2 FETCH (FLAGS (\\Seen))\r\n"
    )


def test_own_store_is_not_reported_again(tmp_path: Path) -> None:
    folder = FakeFolder(tmp_path / "a")
    view = open_view(folder, [info(1), info(2)])
    [(seq, m)] = view.resolve(uids((2, 2)), uid=True)
    changed = info(2, ("\\Flagged",))
    view.set_flags(m, changed)
    assert view.flags_of(view.resolve(uids((2, 2)), uid=True)[0][1]) == ["\\Flagged"]
    view.apply([info(1), changed])
    assert seq == 2 and view.updates(True) == b""


def test_resolve_by_uid_and_sequence(tmp_path: Path) -> None:
    view = open_view(FakeFolder(tmp_path / "a"), [info(u) for u in (3, 5, 8, 13)])
    got = view.resolve(uids((4, 8), (13, c.STAR), (1, 1)), uid=True)
    assert [(s, m.uid) for s, m in got] == [(2, 5), (3, 8), (4, 13)]
    assert [m.uid for _, m in view.resolve(uids((c.STAR, 3)), uid=False)] == [8, 13]
    assert view.resolve(uids((20, c.STAR)), uid=True)[0][1].uid == 13  # "*" is the largest
    assert view.seq(8) == 3


def test_shared_listing_is_shared_but_never_stale(tmp_path: Path) -> None:
    folder = FakeFolder(tmp_path / "a")
    folder.infos = [info(1)]

    async def main() -> list[Any]:
        f = cast(Folder, folder)
        folder.gate.clear()
        first = asyncio.ensure_future(changes.shared_listing(f))
        await asyncio.sleep(0.05)  # the first listing is running (blocked)
        folder.infos = [info(1), info(2)]
        later = [asyncio.ensure_future(changes.shared_listing(f)) for _ in range(5)]
        await asyncio.sleep(0.05)
        folder.gate.set()
        return [await first, *[await t for t in later]]

    results = asyncio.run(main())
    assert folder.calls == 2  # one running, one shared by the five that came later
    assert len(results[0]) in (1, 2)
    assert all([i.uid for i in r] == [1, 2] for r in results[1:])
