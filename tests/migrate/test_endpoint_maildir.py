"""MaildirEndpoint: reading Dovecot-style Maildir++ trees, writing through mailgw.store."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailgw.errors import EndpointError
from mailgw.migrate.body import MessageBody, canonical_crlf
from mailgw.migrate.endpoints.base import Destination, Source
from mailgw.migrate.endpoints.maildir import MaildirEndpoint, split_flags
from mailgw.migrate.model import INBOX, AppendItem, FetchedMessage, FolderName, FolderSnapshot
from mailgw.store import Store


def msg(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n"
    ).encode() + body


def item(data: bytes, flags: Iterable[str] = (), when: datetime | None = None) -> AppendItem:
    return AppendItem(MessageBody.from_bytes(data), frozenset(flags), when)


async def read_folder(
    ep: MaildirEndpoint, folder: FolderName
) -> tuple[FolderSnapshot, list[FetchedMessage]]:
    snap = await ep.snapshot(folder)
    return snap, [m async for m in ep.fetch(folder, snap.messages)]


def tree_state(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out.append((str(p.relative_to(root)), st.st_mtime_ns, st.st_size))
    return sorted(out)


def test_protocols_and_separator() -> None:
    ep = MaildirEndpoint(Path("/x/Maildir"))
    assert isinstance(ep, Source) and isinstance(ep, Destination)
    assert ep.separator == "."
    assert ep.display == "maildir:/x/Maildir"


def test_split_flags() -> None:
    system, kw = split_flags(frozenset({"\\Seen", "\\Recent", "$Fwd", "bad kw", "Work"}))
    assert system == {"\\Seen"} and kw == {"$Fwd", "Work"}


def make_dovecot_maildir(root: Path) -> None:
    """What Dovecot 2.3 leaves: LF files, uidlist, keywords, a flagged file in cur/."""
    for d in ("cur", "new", "tmp"):
        (root / d).mkdir(parents=True)
    (root / "dovecot-uidlist").write_text(
        "3 V1700000000 N4 Gabcdef\n1 :1700000001.M1P1.host,S=37,W=41\n"
        "2 :1700000002.M1P1.host,S=35,W=39\n"
    )
    (root / "dovecot-keywords").write_text("0 $Forwarded\n1 Work\n")
    a = root / "cur" / "1700000001.M1P1.host,S=37,W=41:2,RSab"
    a.write_bytes(b"Subject: a\nMessage-ID: <a@x>\n\nbody a\n")
    b = root / "cur" / "1700000002.M1P1.host,S=35,W=39:2,DFT"
    b.write_bytes(b"Subject: b\nMessage-ID: <b@x>\n\nbody\n")
    c = root / "new" / "1690000000.M5P1.host"
    c.write_bytes(b"Subject: c\r\n\r\nnot in uidlist, older\r\n")
    for i, p in enumerate((a, b, c)):
        os.utime(p, (1600000000 + i, 1600000000 + i))
    sub = root / ".Donn&AOk-es.&AMk-t&AOk-"
    for d in ("cur", "new", "tmp"):
        (sub / d).mkdir(parents=True)
    (sub / "new" / "1700000003.M1P1.host").write_bytes(b"Subject: d\n\nd\n")
    (root / ".Empty").mkdir()  # not a Maildir: ignored
    (root / ".Empty" / "x").write_bytes(b"")


def test_reads_dovecot_style_maildir_without_writing(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    make_dovecot_maildir(root)
    before = tree_state(root)

    async def go() -> None:
        ep = MaildirEndpoint(root)
        await ep.connect()
        folders = await ep.list_folders()
        assert [(f.name, f.selectable, f.special_use) for f in folders] == [
            (INBOX, True, None),
            (("Données",), False, None),
            (("Données", "Été"), True, None),
        ]
        snap, got = await read_folder(ep, INBOX)
        assert snap.uidvalidity == 1700000000
        keys = [m.key for m in snap.messages]
        assert keys == [
            "1700000001.M1P1.host,S=37,W=41",
            "1700000002.M1P1.host,S=35,W=39",
            "1690000000.M5P1.host",
        ]
        assert [m.flags for m in snap.messages] == [
            {"\\Answered", "\\Seen", "$Forwarded", "Work"},
            {"\\Draft", "\\Flagged", "\\Deleted"},
            frozenset(),
        ]
        assert [m.size for m in snap.messages] == [41, 39, 37]
        assert [m.internaldate for m in snap.messages] == [
            datetime.fromtimestamp(1600000000 + i, UTC) for i in range(3)
        ]
        assert got[0].body.read() == b"Subject: a\r\nMessage-ID: <a@x>\r\n\r\nbody a\r\n"
        assert got[0].body.size == 41
        sub_snap, sub_got = await read_folder(ep, ("Données", "Été"))
        assert sub_snap.uidvalidity == 0
        assert [m.body.read() for m in sub_got] == [b"Subject: d\r\n\r\nd\r\n"]

    asyncio.run(go())
    assert tree_state(root) == before  # the source tree was not touched


def test_fetch_follows_renamed_file_and_skips_gone(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    make_dovecot_maildir(root)

    async def go() -> None:
        ep = MaildirEndpoint(root)
        snap = await ep.snapshot(INBOX)
        # another program changes flags (rename) and expunges one meanwhile
        os.rename(
            root / "cur" / "1700000001.M1P1.host,S=37,W=41:2,RSab",
            root / "cur" / "1700000001.M1P1.host,S=37,W=41:2,S",
        )
        os.unlink(root / "new" / "1690000000.M5P1.host")
        got = [m async for m in ep.fetch(INBOX, snap.messages)]
        assert [m.meta.key for m in got] == [m.key for m in snap.messages[:2]]

    asyncio.run(go())


def test_round_trip_through_store(tmp_path: Path) -> None:
    dst = tmp_path / "dst" / "Maildir"
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    datas = [msg("one"), msg("two", b"LF only\nlines\n"), msg("three", b"x" * 10)]
    flags = [{"\\Seen", "$Forwarded", "Work"}, {"\\Draft", "\\Flagged"}, set()]
    folder = ("Données", "Été 2024")

    async def go() -> None:
        ep = MaildirEndpoint(dst)
        await ep.connect()
        await ep.ensure_folder(folder)
        await ep.ensure_folder(folder)  # idempotent
        await ep.ensure_folder(INBOX)
        state = await ep.open_folder(folder)
        assert state.count == 0 and state.uidnext == 1 and state.uidvalidity > 0
        assert state.permanent_flags is None
        res = await ep.append(folder, [item(d, f, when) for d, f in zip(datas, flags, strict=True)])
        assert [(r.ok, r.uid) for r in res] == [(True, 1), (True, 2), (True, 3)]
        after = await ep.open_folder(folder)
        assert (after.count, after.uidnext, after.uidvalidity) == (3, 4, state.uidvalidity)

        src = MaildirEndpoint(dst)
        names = [f.name for f in await src.list_folders()]
        assert names == [INBOX, ("Données",), folder]
        snap, got = await read_folder(src, folder)
        assert snap.uidvalidity == state.uidvalidity
        assert [m.body.sha256 for m in got] == [item(d).body.sha256 for d in datas]
        assert [m.body.read() for m in got] == [canonical_crlf(d) for d in datas]
        assert [m.meta.flags for m in got] == [frozenset(f) for f in flags]
        assert all(m.meta.internaldate == when for m in got)
        assert [m.meta.size for m in got] == [len(canonical_crlf(d)) for d in datas]

    asyncio.run(go())
    # laid out as Dovecot does; readable by mailgw's own store
    assert (dst / ".Donn&AOk-es.&AMk-t&AOk- 2024" / "dovecot-uidlist").is_file()
    assert not (dst / ".Sent").exists()  # no implicit special-use folders
    assert "Données/Été 2024" in (dst / "subscriptions").read_text(encoding="utf-8").replace(
        "\t", "/"
    ).replace("Donn&AOk-es", "Données").replace("&AMk-t&AOk-", "Été")
    acct = Store(tmp_path).account("dst")
    assert acct.maildir == dst
    infos = acct.folder("Données/Été 2024").messages()
    assert [i.keywords for i in infos] == [{"$Forwarded", "Work"}, set(), set()]


def test_index_fetch_bodies_set_flags(tmp_path: Path) -> None:
    dst = tmp_path / "Maildir"

    async def go() -> None:
        ep = MaildirEndpoint(dst)
        await ep.ensure_folder(("F",))
        datas = [msg("a"), msg("b", b"bare\nLF\n"), b"Subject: no id\r\n\r\nx\r\n"]
        await ep.append(("F",), [item(d) for d in datas])
        idx = await ep.index(("F",))
        assert [(d.uid, d.message_id, d.size) for d in idx] == [
            (1, "<a@example.org>", len(canonical_crlf(datas[0]))),
            (2, "<b@example.org>", len(canonical_crlf(datas[1]))),
            (3, None, len(datas[2])),
        ]
        assert [d.uid for d in await ep.index(("F",), 2)] == [2, 3]
        bodies = {u: b.read() async for u, b in ep.fetch_bodies(("F",), [2, 7, 1])}
        assert bodies == {2: canonical_crlf(datas[1]), 1: datas[0]}
        await ep.set_flags(("F",), [(1, frozenset({"\\Seen", "Kw"})), (9, frozenset())])
        await ep.set_flags(("F",), [(2, frozenset({"\\Answered"}))])
        idx = await ep.index(("F",))
        assert [d.flags for d in idx] == [{"\\Seen", "Kw"}, {"\\Answered"}, frozenset()]

    asyncio.run(go())


def test_big_message_spooled_and_delete(tmp_path: Path) -> None:
    dst = tmp_path / "Maildir"
    line = b"z" * 998 + b"\r\n"
    big = msg("big", line * (5 * 1024 * 1024 // len(line) + 1))

    async def go() -> None:
        ep = MaildirEndpoint(dst)
        await ep.ensure_folder(INBOX)
        src_item = item(big, ["\\Seen"])
        await ep.append(INBOX, [src_item, item(msg("small"))])
        snap, got = await read_folder(ep, INBOX)
        assert not got[0].body.in_memory
        assert got[0].body.sha256 == src_item.body.sha256
        await ep.delete(INBOX, [snap.messages[0].key])
        snap2, got2 = await read_folder(ep, INBOX)
        assert [m.key for m in snap2.messages] == [snap.messages[1].key]
        assert b"Subject: small" in got2[0].body.read()

    asyncio.run(go())


def test_bad_names_and_missing(tmp_path: Path) -> None:
    async def go() -> None:
        ep = MaildirEndpoint(tmp_path / "Maildir")
        assert await ep.list_folders() == []
        with pytest.raises(EndpointError):
            await ep.ensure_folder(("a.b",))
        with pytest.raises(EndpointError):
            await ep.ensure_folder(("a/b",))
        with pytest.raises(EndpointError, match="no folder"):
            await ep.snapshot(("Nope",))
        with pytest.raises(EndpointError):
            await ep.open_folder(("Nope",))

    asyncio.run(go())
