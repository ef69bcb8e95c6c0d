"""MboxEndpoint: reading mboxrd files and trees, writing them, round trips."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailgw.errors import EndpointError
from mailgw.migrate.body import MessageBody, canonical_crlf
from mailgw.migrate.endpoints.base import Destination, Source
from mailgw.migrate.endpoints.mbox import MboxEndpoint
from mailgw.migrate.endpoints.mboxfile import from_line_date
from mailgw.migrate.model import INBOX, AppendItem, FetchedMessage, FolderName, MessageMeta


def msg(subject: str, body: bytes = b"Hello.\r\n", date: str | None = None) -> bytes:
    head = f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
    head += f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n"
    if date is not None:
        head += f"Date: {date}\r\n"
    return head.encode() + b"\r\n" + body


async def fetch_all(ep: MboxEndpoint, folder: FolderName) -> list[FetchedMessage]:
    snap = await ep.snapshot(folder)
    return [m async for m in ep.fetch(folder, snap.messages)]


def read_all(path: Path, folder: FolderName = INBOX) -> list[FetchedMessage]:
    async def go() -> list[FetchedMessage]:
        ep = MboxEndpoint(path)
        await ep.connect()
        try:
            return await fetch_all(ep, folder)
        finally:
            await ep.close()

    return asyncio.run(go())


def write(path: Path, folder: FolderName, items: Sequence[AppendItem]) -> list[int | None]:
    async def go() -> list[int | None]:
        ep = MboxEndpoint(path)
        await ep.connect()
        await ep.ensure_folder(folder)
        state = await ep.open_folder(folder)
        results = await ep.append(folder, items)
        assert all(r.ok for r in results), results
        after = await ep.open_folder(folder)
        assert after.count == state.count + len(items)
        assert after.uidnext == after.count + 1 and after.uidvalidity == 1
        return [r.uid for r in results]

    return asyncio.run(go())


def item(data: bytes, flags: Iterable[str] = (), when: datetime | None = None) -> AppendItem:
    return AppendItem(MessageBody.from_bytes(data), frozenset(flags), when)


def test_protocols() -> None:
    ep = MboxEndpoint(Path("/nonexistent"))
    assert isinstance(ep, Source) and isinstance(ep, Destination)
    assert ep.display == "mbox:/nonexistent"


def test_round_trip_hash_flags_dates(tmp_path: Path) -> None:
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    datas = [
        msg("one", date="Thu, 04 Mar 2021 06:06:07 +0100"),
        msg("two", b"From the start\r\n>From quoted\r\n>>From twice\r\nend\r\n"),
        msg("three", b"no final newline"),
        msg("four", b"\r\n\r\nblank lines\r\n\r\n\r\n"),
    ]
    flags = [
        {"\\Seen", "\\Answered", "$Forwarded", "Work"},
        {"\\Flagged", "\\Draft", "\\Deleted"},
        set(),
        {"\\Seen"},
    ]
    uids = write(
        tmp_path / "out", ("Mail",), [item(d, f, when) for d, f in zip(datas, flags, strict=True)]
    )
    assert uids == [1, 2, 3, 4]
    got = read_all(tmp_path / "out", ("Mail",))
    assert [m.meta.flags for m in got] == [frozenset(f) for f in flags]
    for data, m in zip(datas, got, strict=True):
        expected = canonical_crlf(data if data.endswith(b"\r\n") else data + b"\r\n")
        assert m.body.read() == expected
        assert m.body.sha256 == hashlib.sha256(expected).hexdigest()
        assert m.meta.size == m.body.size
    # Date header wins; without one, the From_ line (our internaldate) is used
    assert got[0].meta.internaldate == datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert got[1].meta.internaldate == when
    raw = (tmp_path / "out" / "Mail").read_bytes()
    assert b"\r\n" not in raw
    assert raw.startswith(b"From MAILER-DAEMON Thu Mar  4 05:06:07 2021\n")
    assert b"\n>From the start\n>>From quoted\n>>>From twice\n" in raw
    assert b"Status: RO\nX-Status: A\nX-Keywords: $Forwarded Work\n\nHello.\n" in raw
    assert b"Status: O\nX-Status: DFT\n\n" in raw


def test_reads_lf_mboxrd_and_strips_status_fields(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.write_bytes(
        b"From alice@example.org Mon Jan  2 03:04:05 2006\n"
        b"Subject: first\n"
        b"Status: RO\n"
        b"X-Status: AF\n"
        b"X-Keywords: Work,$Label1 Later\n"
        b"X-UID: 7\n"
        b"X-IMAPbase: 1234 8\n"
        b"  0000000001\n"
        b"From: a@example.org\n"
        b"\n"
        b"body line\n"
        b">From escaped\n"
        b"From not a separator (no empty line before)\n"
        b"\n"
        b"From bob Tue Feb  3 04:05:06 2009\n"
        b"Subject: second\n"
        b"Status: O\n"
        b"\n"
        b"\n"
        b"two\n"
    )
    got = read_all(path)
    assert len(got) == 2
    first, second = got
    assert first.body.read() == (
        b"Subject: first\r\nFrom: a@example.org\r\n\r\nbody line\r\nFrom escaped\r\n"
        b"From not a separator (no empty line before)\r\n"
    )
    assert first.meta.flags == {"\\Seen", "\\Answered", "\\Flagged", "Work", "$Label1", "Later"}
    assert first.meta.internaldate == datetime(2006, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.body.read() == b"Subject: second\r\n\r\n\r\ntwo\r\n"
    assert second.meta.flags == frozenset()
    assert second.meta.key == f"{second.body.sha256}:1"


def test_duplicate_messages_get_numbered_keys(tmp_path: Path) -> None:
    data = msg("dup")
    write(tmp_path / "d", INBOX, [item(data), item(data), item(msg("other"))])
    got = read_all(tmp_path / "d")
    digest = got[0].body.sha256
    assert [m.meta.key for m in got[:2]] == [f"{digest}:1", f"{digest}:2"]
    assert got[2].meta.key.endswith(":1")


def test_tree_nested_non_ascii_and_thunderbird(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    write(root, ("Données", "Été 2024"), [item(msg("nested"))])
    write(root, ("Données",), [item(msg("parent"))])
    write(root, ("Archive", "Deep", "Leaf"), [item(msg("deep"))])
    write(root, INBOX, [item(msg("inbox"))])
    assert (root / "Données.sbd" / "Été 2024").is_file()
    assert (root / "Archive.sbd" / "Deep.sbd" / "Leaf").is_file()
    # Thunderbird's index files and a plain subdirectory
    (root / "Données.msf").write_bytes(b'// <!-- <mdb:mork:z v="1.4"/> -->\n')
    (root / "plain").mkdir()
    (root / "plain" / "box").write_bytes(b"From x Mon Jan  2 03:04:05 2006\nSubject: p\n\nP\n")

    async def go() -> list[tuple[FolderName, bool]]:
        ep = MboxEndpoint(root)
        await ep.connect()
        return [(f.name, f.selectable) for f in await ep.list_folders()]

    assert asyncio.run(go()) == [
        (INBOX, True),
        (("Archive",), False),
        (("Archive", "Deep"), False),
        (("Archive", "Deep", "Leaf"), True),
        (("Données",), True),
        (("Données", "Été 2024"), True),
        (("plain",), False),
        (("plain", "box"), True),
    ]
    [nested] = read_all(root, ("Données", "Été 2024"))
    assert b"Subject: nested" in nested.body.read()
    [plain] = read_all(root, ("plain", "box"))
    assert plain.body.read() == b"Subject: p\r\n\r\nP\r\n"


def test_inbox_file_any_case(tmp_path: Path) -> None:
    (tmp_path / "Inbox").write_bytes(b"From x Mon Jan  2 03:04:05 2006\nSubject: i\n\nI\n")
    [m] = read_all(tmp_path)
    assert m.body.read() == b"Subject: i\r\n\r\nI\r\n"


def test_single_file_destination_only_inbox(tmp_path: Path) -> None:
    path = tmp_path / "one.mbox"
    path.write_bytes(b"")

    async def go() -> None:
        ep = MboxEndpoint(path)
        await ep.connect()
        assert [f.name for f in await ep.list_folders()] == [INBOX]
        with pytest.raises(EndpointError, match="only INBOX"):
            await ep.ensure_folder(("Other",))
        await ep.ensure_folder(INBOX)
        res = await ep.append(INBOX, [item(msg("a")), item(msg("b"))])
        assert [r.uid for r in res] == [1, 2]
        res = await ep.append(INBOX, [item(msg("c"))])
        assert [r.uid for r in res] == [3]

    asyncio.run(go())
    assert [m.body.read().split(b"\r\n")[2] for m in read_all(path)] == [
        b"Subject: a",
        b"Subject: b",
        b"Subject: c",
    ]


def test_append_after_foreign_file_without_trailing_blank(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"From x Mon Jan  2 03:04:05 2006\nSubject: old\n\nold body")
    write(path, INBOX, [item(msg("new"))])
    got = read_all(path)
    assert got[0].body.read() == b"Subject: old\r\n\r\nold body\r\n"
    assert b"Subject: new" in got[1].body.read()


def test_crlf_mbox_file_read_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "crlf"
    path.write_bytes(b"From x Mon Jan  2 03:04:05 2006\r\nSubject: old\r\n\r\nold\r\n\r\n")
    write(path, INBOX, [item(msg("new"))])
    got = read_all(path)
    assert got[0].body.read() == b"Subject: old\r\n\r\nold\r\n"
    assert got[1].body.read() == msg("new")


def test_big_message_is_spooled(tmp_path: Path) -> None:
    line = b"x" * 998 + b"\r\n"
    data = msg("big", line * (5 * 1024 * 1024 // len(line) + 1))
    assert len(data) > 5 * 1024 * 1024
    src = item(data, ["\\Seen"])
    write(tmp_path / "big", INBOX, [src, item(msg("small"))])
    got = read_all(tmp_path / "big")
    assert not got[0].body.in_memory
    assert got[0].body.sha256 == src.body.sha256 and got[0].body.size == len(data)
    assert got[0].meta.flags == {"\\Seen"}
    assert got[1].body.in_memory


def test_index_fetch_bodies_set_flags_delete(tmp_path: Path) -> None:
    root = tmp_path / "t"
    datas = [msg(f"m{i}", date="Mon, 2 Jan 2006 03:04:05 +0000") for i in range(4)]
    write(root, ("F",), [item(d, ["\\Seen"] if i == 1 else []) for i, d in enumerate(datas)])

    async def go() -> None:
        ep = MboxEndpoint(root)
        await ep.connect()
        idx = await ep.index(("F",))
        assert [(d.uid, d.message_id, d.flags) for d in idx] == [
            (1, "<m0@example.org>", frozenset()),
            (2, "<m1@example.org>", {"\\Seen"}),
            (3, "<m2@example.org>", frozenset()),
            (4, "<m3@example.org>", frozenset()),
        ]
        assert [d.size for d in idx] == [len(d) for d in datas]
        assert [d.uid for d in await ep.index(("F",), 3)] == [3, 4]
        bodies = {uid: b.read() async for uid, b in ep.fetch_bodies(("F",), [4, 2, 9])}
        assert bodies == {4: datas[3], 2: datas[1]}
        await ep.set_flags(("F",), [(2, frozenset()), (3, frozenset({"\\Flagged", "Kw"}))])
        idx = await ep.index(("F",))
        assert [d.flags for d in idx] == [set(), set(), {"\\Flagged", "Kw"}, set()]
        snap = await ep.snapshot(("F",))
        await ep.delete(("F",), [snap.messages[0].key, snap.messages[2].key])
        left = [m.body.read() async for m in ep.fetch(("F",), (await ep.snapshot(("F",))).messages)]
        assert left == [datas[1], datas[3]]

    asyncio.run(go())
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp files left


def test_parallel_writers_do_not_interleave(tmp_path: Path) -> None:
    root = tmp_path / "par"
    big = b"y" * 70_000 + b"\r\n"

    async def go() -> None:
        a = MboxEndpoint(root)
        b = a.clone()
        await a.ensure_folder(INBOX)

        async def feed(ep: MboxEndpoint, tag: str) -> None:
            for i in range(10):
                await ep.append(INBOX, [item(msg(f"{tag}{i}", big * 3))])

        await asyncio.gather(feed(a, "a"), feed(b, "b"))
        assert (await a.open_folder(INBOX)).count == 20

    asyncio.run(go())
    got = read_all(root)
    assert len(got) == 20
    assert all(m.body.read().endswith(big * 3) for m in got)


def test_not_an_mbox_and_missing_folder(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"Subject: not mbox\n\nx\n")

    async def go() -> None:
        with pytest.raises(EndpointError, match="not an mbox"):
            await MboxEndpoint(bad).snapshot(INBOX)
        with pytest.raises(EndpointError, match="no folder"):
            await MboxEndpoint(tmp_path).snapshot(("Nope",))

    asyncio.run(go())


def test_from_line_date() -> None:
    assert from_line_date(b"From a@b Sat Jan  3 01:05:34 1996\n") == datetime(
        1996, 1, 3, 1, 5, 34, tzinfo=UTC
    )
    assert from_line_date(b"From - Tue Feb 3 04:05 +0100 2009") == datetime(
        2009, 2, 3, 4, 5, tzinfo=UTC
    )
    assert from_line_date(b"From nobody") is None


def test_meta_flags_survive_snapshot_only(tmp_path: Path) -> None:
    write(tmp_path / "s", INBOX, [item(msg("x"), ["\\Answered"])])

    async def go() -> list[MessageMeta]:
        return (await MboxEndpoint(tmp_path / "s").snapshot(INBOX)).messages

    [meta] = asyncio.run(go())
    assert meta.flags == {"\\Answered"} and meta.size == len(msg("x"))
