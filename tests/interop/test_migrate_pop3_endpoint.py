"""Pop3Source (mailgw.migrate.endpoints.pop3) against a private Dovecot 2.3 POP3,
mailgw's own POP3 server and a minimal in-test server without CAPA/UIDL.

Also reads the Maildir Dovecot wrote (uidlist, keywords set with doveadm) with
MaildirEndpoint and checks that both endpoints see the same messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailgw.errors import ConnectFailed, EndpointError, LoginFailed
from mailgw.migrate.body import canonical_crlf
from mailgw.migrate.endpoints.base import Source
from mailgw.migrate.endpoints.maildir import MaildirEndpoint
from mailgw.migrate.endpoints.pop3 import Pop3Source, is_loopback
from mailgw.migrate.model import INBOX, FetchedMessage, FolderInfo, FolderSnapshot, TlsOptions
from mailgw.store import Store
from tests.e2e_util import CertFiles, ServeProcess
from tests.interop.peers import DovecotInstance, write_plain_passwd

pytestmark = pytest.mark.interop

LOOPBACK = "127.0.0.1"
BIG_LINE = b"b" * 998 + b"\r\n"
MESSAGES = [
    b"From: bob@example.com\r\nSubject: one\r\nMessage-ID: <one@x>\r\n"
    b"Date: Mon, 4 May 1998 10:00:00 +0200\r\n\r\nhello\r\n.leading dot\r\n..two dots\r\n.\r\n",
    b"From: bob@example.com\nSubject: lf only\nMessage-ID: <two@x>\n"
    b"Received: from a by b; Tue, 5 May 1998 11:00:00 +0000\n\nline\n",
    b"From: bob@example.com\r\nSubject: big\r\n\r\n" + BIG_LINE * 2200,
]


def seed(maildir: Path, messages: list[bytes]) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(messages):
        path = maildir / "new" / f"{1600000000 + i}.M{i}P1.seed"
        path.write_bytes(data)
        os.utime(path, (1600000000 + i, 1600000000 + i))


async def read_all(ep: Pop3Source) -> tuple[FolderSnapshot, list[FetchedMessage]]:
    snap = await ep.snapshot(INBOX)
    return snap, [m async for m in ep.fetch(INBOX, snap.messages)]


@pytest.fixture
def dovecot(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path, certs: CertFiles
) -> DovecotInstance:
    data = peer_dir / "data"
    seed(data / "mail" / "alice" / "Maildir", MESSAGES)
    passwd = peer_dir / "users.passwd"
    write_plain_passwd(passwd, {"alice": "pw"})
    return dovecot_factory(
        data, passwd, protocols=("pop3",), ssl_cert=certs.cert, ssl_key=certs.key
    )


def pop3(
    dc: DovecotInstance, certs: CertFiles, *, implicit: bool = False, **kw: object
) -> Pop3Source:
    port = dc.pop3s_port if implicit else dc.pop3_port
    assert port is not None
    tls = TlsOptions(ca_file=certs.ca_cert, **kw)  # type: ignore[arg-type]
    return Pop3Source(LOOPBACK, port, "alice", "pw", implicit_tls=implicit, tls=tls)


def test_dovecot_stls_snapshot_fetch_delete(dovecot: DovecotInstance, certs: CertFiles) -> None:
    maildir = dovecot.data_dir / "mail" / "alice" / "Maildir"

    async def go() -> None:
        ep = pop3(dovecot, certs)
        assert isinstance(ep, Source)
        assert ep.display == f"pop3://alice@127.0.0.1:{dovecot.pop3_port}"
        await ep.connect()
        assert ep._writer is not None and ep._writer.get_extra_info("ssl_object") is not None
        assert "PIPELINING" in ep.capabilities and "UIDL" in ep.capabilities
        assert await ep.list_folders() == [FolderInfo(INBOX)]
        snap, got = await read_all(ep)
        assert snap.uidvalidity == 0
        assert [m.body.read() for m in got] == [canonical_crlf(m) for m in MESSAGES]
        assert [m.meta.size for m in got] == [len(canonical_crlf(m)) for m in MESSAGES]
        assert not got[2].body.in_memory  # > 1 MiB: spooled
        assert got[0].meta.internaldate == datetime(1998, 5, 4, 8, 0, tzinfo=UTC)
        assert got[1].meta.internaldate == datetime(1998, 5, 5, 11, 0, tzinfo=UTC)
        assert got[2].meta.internaldate is None
        # fetch in another order, and a subset
        again = [m async for m in ep.fetch(INBOX, [snap.messages[1], snap.messages[0]])]
        assert [m.meta.key for m in again] == [snap.messages[1].key, snap.messages[0].key]

        # the Maildir Dovecot wrote, read directly: same messages, UIDL = %08Xu%08Xv
        md = MaildirEndpoint(maildir)
        md_snap = await md.snapshot(INBOX)
        assert md_snap.uidvalidity > 0
        assert [m.key for m in snap.messages] == [
            f"{uid:08x}{md_snap.uidvalidity:08x}" for uid in (1, 2, 3)
        ]
        md_got = [m async for m in md.fetch(INBOX, md_snap.messages)]
        assert [m.body.sha256 for m in md_got] == [m.body.sha256 for m in got]

        await ep.delete(INBOX, [snap.messages[0].key, "no-such-key"])
        assert ep._writer is None  # QUIT committed and closed the session
        ep2 = ep.clone()
        await ep2.connect()
        fresh = [m async for m in ep2.fetch(INBOX, snap.messages)]  # no snapshot first
        assert [m.meta.key for m in fresh] == [m.key for m in snap.messages[1:]]
        snap2, got2 = await read_all(ep2)
        assert [m.key for m in snap2.messages] == [m.key for m in snap.messages[1:]]
        assert [m.body.sha256 for m in got2] == [m.body.sha256 for m in got[1:]]
        await ep2.close()
        with pytest.raises(EndpointError):
            await ep2.snapshot(INBOX)

    asyncio.run(go())


def test_dovecot_keywords_read_from_its_maildir(dovecot: DovecotInstance) -> None:
    dovecot.doveadm("mailbox", "status", "-u", "alice", "messages", "INBOX")  # assigns UIDs
    dovecot.doveadm(
        "flags", "add", "-u", "alice", "\\Seen $Forwarded Work", "mailbox", "INBOX", "uid", "1"
    )
    dovecot.doveadm("flags", "add", "-u", "alice", "\\Flagged", "mailbox", "INBOX", "uid", "3")
    maildir = dovecot.data_dir / "mail" / "alice" / "Maildir"

    async def go() -> None:
        snap = await MaildirEndpoint(maildir).snapshot(INBOX)
        assert [m.flags for m in snap.messages] == [
            {"\\Seen", "$Forwarded", "Work"},
            frozenset(),
            {"\\Flagged"},
        ]
        # INTERNALDATE = the mtime Dovecot uses
        status = dovecot.doveadm("fetch", "-u", "alice", "date.received", "mailbox", "INBOX")
        assert status.count("date.received:") == 3
        assert snap.messages[0].internaldate == datetime.fromtimestamp(1600000000, UTC)

    asyncio.run(go())


def test_dovecot_pop3s_and_certificate_checks(dovecot: DovecotInstance, certs: CertFiles) -> None:
    async def go() -> None:
        ep = pop3(dovecot, certs, implicit=True)
        assert ep.display.startswith("pop3s://alice@127.0.0.1:")
        await ep.connect()
        snap = await ep.snapshot(INBOX)
        assert len(snap.messages) == 3
        await ep.close()

        untrusted = Pop3Source(
            LOOPBACK, dovecot.pop3s_port or 0, "alice", "pw", implicit_tls=True, tls=TlsOptions()
        )
        with pytest.raises(ConnectFailed, match=r"TLS|certificate"):
            await untrusted.connect()
        stls_untrusted = Pop3Source(
            LOOPBACK, dovecot.pop3_port or 0, "alice", "pw", implicit_tls=False, tls=TlsOptions()
        )
        with pytest.raises(ConnectFailed, match="TLS"):
            await stls_untrusted.connect()
        insecure = Pop3Source(
            LOOPBACK,
            dovecot.pop3s_port or 0,
            "alice",
            "pw",
            implicit_tls=True,
            tls=TlsOptions(insecure=True),
        )
        await insecure.connect()
        await insecure.close()

        bad = Pop3Source(
            LOOPBACK,
            dovecot.pop3_port or 0,
            "alice",
            "wrong",
            implicit_tls=False,
            tls=TlsOptions(ca_file=certs.ca_cert),
        )
        with pytest.raises(LoginFailed):
            await bad.connect()

    asyncio.run(go())


def test_mailgw_pop3_server(serve_factory: Callable[..., ServeProcess], certs: CertFiles) -> None:
    serve = serve_factory({"alice": "pw"})
    folder = Store(serve.data / "mail").account("alice").folder()
    for data in MESSAGES[:2]:
        folder.deliver(data)

    async def go() -> None:
        ep = Pop3Source(
            LOOPBACK,
            serve.port("pop3"),
            "alice",
            "pw",
            implicit_tls=False,
            tls=TlsOptions(ca_file=certs.ca_cert),
        )
        await ep.connect()
        assert ep._writer is not None and ep._writer.get_extra_info("ssl_object") is not None
        snap, got = await read_all(ep)
        infos = folder.messages()
        assert [m.key for m in snap.messages] == [
            f"{i.uid:08x}{folder.uidvalidity:08x}" for i in infos
        ]
        assert sorted(m.body.read() for m in got) == sorted(canonical_crlf(m) for m in MESSAGES[:2])
        await ep.close()

    asyncio.run(go())


# --- a minimal POP3 server: no CAPA, no UIDL ----------------------------------------------


class MiniPop3:
    """RFC 1939 without the optional UIDL (and without CAPA: RFC 2449 is optional)."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = [canonical_crlf(m) for m in messages]
        self.deleted: set[int] = set()
        self.commands: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, LOOPBACK, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _session(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"+OK mini\r\n")
        pending: set[int] = set()
        while line := await r.readline():
            cmd, _, arg = line.decode().strip().partition(" ")
            self.commands.append(cmd.upper())
            cmd = cmd.upper()
            if cmd == "USER":
                w.write(b"+OK\r\n")
            elif cmd == "PASS":
                w.write(b"+OK\r\n" if arg == "pw" else b"-ERR [AUTH] bad password\r\n")
            elif cmd == "LIST":
                w.write(b"+OK\r\n")
                for i, m in enumerate(self.messages, 1):
                    w.write(f"{i} {len(m)}\r\n".encode())
                w.write(b".\r\n")
            elif cmd == "RETR":
                m = self.messages[int(arg) - 1]
                stuffed = b"".join(
                    b"." + ln if ln.startswith(b".") else ln for ln in m.splitlines(True)
                )
                w.write(b"+OK\r\n" + stuffed + b".\r\n")
            elif cmd == "DELE":
                pending.add(int(arg))
                w.write(b"+OK\r\n")
            elif cmd == "QUIT":
                self.deleted |= pending
                w.write(b"+OK bye\r\n")
                await w.drain()
                break
            else:
                w.write(b"-ERR unknown command\r\n")
            await w.drain()
        w.close()


def test_without_capa_and_uidl_keys_are_hashes() -> None:
    dup = b"Subject: dup\r\n\r\nsame\r\n"
    server = MiniPop3([MESSAGES[0], dup, dup, MESSAGES[2]])

    async def go() -> None:
        port = await server.start()
        ep = Pop3Source(LOOPBACK, port, "alice", "pw", implicit_tls=False, tls=TlsOptions())
        await ep.connect()  # no STLS on a loopback server: plaintext allowed
        snap, got = await read_all(ep)
        h = [hashlib.sha256(m).hexdigest() for m in server.messages]
        assert [m.key for m in snap.messages] == [
            f"sha256:{h[0]}",
            f"sha256:{h[1]}",
            f"sha256:{h[1]}:2",
            f"sha256:{h[3]}",
        ]
        assert [m.body.read() for m in got] == server.messages
        assert got[0].meta.internaldate == datetime(1998, 5, 4, 8, 0, tzinfo=UTC)
        assert server.commands.count("RETR") == 4  # fetched once, from the spool after
        await ep.delete(INBOX, [snap.messages[2].key])
        assert server.deleted == {3}

        bad = Pop3Source(LOOPBACK, port, "alice", "nope", implicit_tls=False, tls=TlsOptions())
        with pytest.raises(LoginFailed, match="bad password"):
            await bad.connect()
        assert server.server is not None
        server.server.close()

    asyncio.run(go())


def test_plaintext_refused_to_a_non_loopback_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    import mailgw.migrate.endpoints.pop3 as pop3mod

    server = MiniPop3([MESSAGES[0]])
    monkeypatch.setattr(pop3mod, "is_loopback", lambda address: False)

    async def go() -> None:
        port = await server.start()
        ep = Pop3Source(LOOPBACK, port, "alice", "pw", implicit_tls=False, tls=TlsOptions())
        with pytest.raises(ConnectFailed, match="no STLS"):
            await ep.connect()
        assert "PASS" not in server.commands and "USER" not in server.commands
        allowed = Pop3Source(
            LOOPBACK, port, "alice", "pw", implicit_tls=False, tls=TlsOptions(allow_plaintext=True)
        )
        await allowed.connect()
        assert len((await allowed.snapshot(INBOX)).messages) == 1
        await allowed.close()
        assert server.server is not None
        server.server.close()

    asyncio.run(go())


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("192.0.2.1") and not is_loopback("localhost")
