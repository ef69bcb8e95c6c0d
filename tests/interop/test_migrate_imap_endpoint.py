"""ImapEndpoint (mailgw.migrate.endpoints.imap) against a private Dovecot 2.3.

Both hierarchy separators, nested and non-ASCII folder names, SPECIAL-USE,
MULTIAPPEND with flags, keywords and an old INTERNALDATE read back identical,
a > 4 MiB body streamed to a spool file, APPENDUID, set_flags, index, delete,
and TLS (implicit, STARTTLS, untrusted certificate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailgw.errors import ConnectFailed, LoginFailed
from mailgw.migrate.body import MessageBody
from mailgw.migrate.endpoints.base import Destination, Source
from mailgw.migrate.endpoints.imap import ImapEndpoint
from mailgw.migrate.model import INBOX, AppendItem, TlsOptions
from tests.e2e_util import make_certs
from tests.interop.peers import DovecotInstance

pytestmark = pytest.mark.interop

SPECIAL_CONF = 'namespace inbox {\n mailbox "Sent Messages" {\n special_use = \\Sent\n }\n}\n'


@pytest.fixture(params=["/", "."])
def dovecot(
    request: pytest.FixtureRequest,
    dovecot_factory: Callable[..., DovecotInstance],
    peer_dir: Path,
) -> DovecotInstance:
    return _dovecot(dovecot_factory, peer_dir, request.param)


def _dovecot(
    factory: Callable[..., DovecotInstance], peer_dir: Path, separator: str, **kw: object
) -> DovecotInstance:
    data = peer_dir / "data"
    passwd = peer_dir / "users.passwd"
    passwd.write_text("alice:{PLAIN}pw::::::\n")
    return factory(data, passwd, separator=separator, extra_conf=SPECIAL_CONF, **kw)


def _endpoint(dc: DovecotInstance, batch_messages: int = 50) -> ImapEndpoint:
    assert dc.imap_port is not None
    return ImapEndpoint(
        "127.0.0.1",
        dc.imap_port,
        "alice",
        "pw",
        implicit_tls=False,
        tls=TlsOptions(),
        batch_messages=batch_messages,
    )


def _message(subject: str, mid: str, body: bytes = b"hello\r\n") -> MessageBody:
    head = (
        f"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: {mid}\r\nDate: Mon, 4 May 1998 10:00:00 +0200\r\n\r\n"
    ).encode()
    return MessageBody.from_bytes(head + body)


def test_folders_both_separators(dovecot: DovecotInstance) -> None:
    sep = dovecot.separator

    async def go() -> None:
        ep = _endpoint(dovecot)
        assert isinstance(ep, Source) and isinstance(ep, Destination)
        assert ep.display == f"imap://alice@127.0.0.1:{dovecot.imap_port}"
        await ep.connect()
        try:
            assert ep.separator == sep
            await ep.ensure_folder(("Projects", "2024"))
            await ep.ensure_folder(("Données", "Été ✓"))
            await ep.ensure_folder(("Sent Messages",), "\\Sent")
            await ep.ensure_folder(("Projects", "2024"))  # already there: fine
            await ep.ensure_folder(INBOX)
            folders = {f.name: f for f in await ep.list_folders()}
        finally:
            await ep.close()
        assert INBOX in folders
        assert ("Projects", "2024") in folders
        assert ("Données", "Été ✓") in folders
        assert folders[("Sent Messages",)].special_use == "\\Sent"
        assert folders[INBOX].special_use is None
        assert all(f.selectable for n, f in folders.items() if len(n) == 2)
        # Dovecot sees the same names; on disk they are modified UTF-7 (Maildir++ ".")
        listing = dovecot.doveadm("mailbox", "list", "-u", "alice").splitlines()
        assert f"Données{sep}Été ✓" in listing
        assert f"Projects{sep}2024" in listing
        maildir = dovecot.data_dir / "mail" / "alice" / "Maildir"
        assert (maildir / ".Donn&AOk-es.&AMk-t&AOk- &JxM-").is_dir()

    asyncio.run(go())


def test_append_read_back_flags_index_delete(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path
) -> None:
    dc = _dovecot(dovecot_factory, peer_dir, "/")
    old = datetime(1998, 5, 4, 10, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    big_payload = b"".join(
        b"line %07d of a big message ........................\r\n" % i for i in range(90_000)
    )
    assert len(big_payload) > 4 << 20
    bodies = [
        _message("one", "<one@example.com>"),
        _message("two", "<two@example.com>", b"bare LF body\nsecond line\n"),
        _message("big", "<big@example.com>", big_payload),
    ]
    flags = [
        frozenset({"\\Seen", "$Forwarded", "Work"}),
        frozenset({"\\Flagged", "\\Answered", "\\Recent"}),
        frozenset(),
    ]

    async def go() -> None:
        dst = _endpoint(dc, batch_messages=2)
        src = dst.clone()
        await dst.connect()
        await src.connect()
        try:
            folder = ("Archive", "1998")
            await dst.ensure_folder(folder)
            state = await dst.open_folder(folder)
            assert state.count == 0 and state.uidnext == 1 and state.uidvalidity > 0
            assert state.permanent_flags is not None and "\\*" in state.permanent_flags
            items = [
                AppendItem(b, f, old if i < 2 else None)
                for i, (b, f) in enumerate(zip(bodies, flags, strict=True))
            ]
            conn = dst._client
            assert conn is not None and conn.has("MULTIAPPEND") and conn.has("UIDPLUS")
            results = await dst.append(folder, items)
            assert [r.ok for r in results] == [True, True, True], results
            uids = [r.uid for r in results]
            assert uids == [1, 2, 3]

            snap = await src.snapshot(folder)
            assert snap.uidvalidity == state.uidvalidity
            assert [m.key for m in snap.messages] == ["1", "2", "3"]
            assert snap.messages[0].flags == flags[0]
            assert snap.messages[1].flags == frozenset({"\\Flagged", "\\Answered"})
            assert snap.messages[0].internaldate == old
            assert snap.messages[2].size == bodies[2].size
            # requested order is kept, also across batches
            order = [snap.messages[i] for i in (2, 0, 1)]
            got = [fm async for fm in src.fetch(folder, order)]
            assert [fm.meta.key for fm in got] == ["3", "1", "2"]
            by_key = {fm.meta.key: fm.body for fm in got}
            for i, b in enumerate(bodies):
                assert by_key[str(i + 1)].sha256 == b.sha256
                assert by_key[str(i + 1)].size == b.size
            assert by_key["3"].in_memory is False  # streamed to a spool file
            assert by_key["1"].in_memory is True
            for fm in got:
                fm.body.close()

            index = await dst.index(folder)
            assert [(m.uid, m.message_id, m.size) for m in index] == [
                (1, "<one@example.com>", bodies[0].size),
                (2, "<two@example.com>", bodies[1].size),
                (3, "<big@example.com>", bodies[2].size),
            ]
            assert [m.uid for m in await dst.index(folder, 3)] == [3]
            assert await dst.index(folder, 9) == []

            await dst.set_flags(
                folder,
                [
                    (1, frozenset({"\\Deleted", "Other"})),
                    (3, frozenset({"\\Seen"})),
                    (2, frozenset({"\\Seen"})),
                ],
            )
            after = {m.uid: m.flags for m in await dst.index(folder)}
            assert after == {
                1: frozenset({"\\Deleted", "Other"}),
                2: frozenset({"\\Seen"}),
                3: frozenset({"\\Seen"}),
            }
            pulled = [(u, b.sha256) async for u, b in dst.fetch_bodies(folder, [2, 7])]
            assert pulled == [(2, bodies[1].sha256)]

            # delete only message 2: message 1 (also \Deleted) must survive
            await src.delete(folder, ["2"])
            snap2 = await src.snapshot(folder)
            assert [m.key for m in snap2.messages] == ["1", "3"]
            status = dc.mailbox_status("alice", "Archive/1998")
            assert status["Archive/1998"]["messages"] == 2
        finally:
            await src.close()
            await dst.close()

    asyncio.run(go())


def test_empty_folder_and_login_refused(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path
) -> None:
    dc = _dovecot(dovecot_factory, peer_dir, ".")

    async def go() -> None:
        ep = _endpoint(dc)
        await ep.connect()
        try:
            await ep.ensure_folder(("Empty",))
            snap = await ep.snapshot(("Empty",))
            assert snap.messages == [] and snap.uidvalidity > 0
            assert [fm async for fm in ep.fetch(("Empty",), [])] == []
            assert await ep.index(("Empty",)) == []
        finally:
            await ep.close()
        bad = ImapEndpoint(
            "127.0.0.1", dc.imap_port or 0, "alice", "wrong", implicit_tls=False, tls=TlsOptions()
        )
        with pytest.raises(LoginFailed, match="refused"):
            await bad.connect()

    asyncio.run(go())


def test_tls_implicit_starttls_and_untrusted(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path
) -> None:
    certs = make_certs(peer_dir / "certs")
    dc = _dovecot(dovecot_factory, peer_dir, "/", ssl_cert=certs.cert, ssl_key=certs.key)
    trusted = TlsOptions(ca_file=certs.ca_cert)

    async def go() -> None:
        assert dc.imaps_port is not None and dc.imap_port is not None
        for port, implicit in ((dc.imaps_port, True), (dc.imap_port, False)):
            ep = ImapEndpoint("127.0.0.1", port, "alice", "pw", implicit_tls=implicit, tls=trusted)
            await ep.connect()
            try:
                client = ep._client
                assert client is not None and client.secure
                assert next(f.name for f in await ep.list_folders()) == INBOX
            finally:
                await ep.close()
        untrusted = ImapEndpoint(
            "127.0.0.1", dc.imaps_port, "alice", "pw", implicit_tls=True, tls=TlsOptions()
        )
        with pytest.raises(ConnectFailed, match="certificate"):
            await untrusted.connect()
        insecure = ImapEndpoint(
            "127.0.0.1",
            dc.imaps_port,
            "alice",
            "pw",
            implicit_tls=True,
            tls=TlsOptions(insecure=True),
        )
        await insecure.connect()
        await insecure.close()
        assert insecure.display.startswith("imaps://alice@127.0.0.1:")

    asyncio.run(go())


def test_created_uids_match_dovecot(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path
) -> None:
    """APPENDUID uids are the ones Dovecot reports, also without MULTIAPPEND batching."""
    dc = _dovecot(dovecot_factory, peer_dir, "/")

    async def go() -> None:
        ep = _endpoint(dc, batch_messages=1)
        await ep.connect()
        try:
            now = datetime(1970, 1, 2, tzinfo=UTC)
            items = [AppendItem(_message(f"m{i}", f"<m{i}@x>"), frozenset(), now) for i in range(4)]
            res = await ep.append(INBOX, items)
            assert [r.uid for r in res] == [1, 2, 3, 4]
            state = await ep.open_folder(INBOX)
            assert state.count == 4 and state.uidnext == 5
            snap = await ep.snapshot(INBOX)
            assert {m.internaldate for m in snap.messages} == {now}
        finally:
            await ep.close()

    asyncio.run(go())
