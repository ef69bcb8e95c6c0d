"""The IMAP client (mailgw.migrate.imapwire) and ImapEndpoint error paths against a
tiny scripted IMAP server on 127.0.0.1 (real Dovecot: tests/interop)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailgw.errors import ConnectFailed, EndpointError, LoginFailed
from mailgw.migrate.body import MessageBody
from mailgw.migrate.endpoints.imap import ImapEndpoint
from mailgw.migrate.imapwire import (
    ImapClient,
    Literal,
    astring,
    format_internaldate,
    is_loopback,
    uid_set,
)
from mailgw.migrate.model import AppendItem, MessageMeta, TlsOptions

_LIT = re.compile(rb"\{(\d+)(\+?)\}\r\n\Z")

# handler(tag, command with literal data inline) -> reply bytes (None: drop the connection)
Handler = Callable[[str, bytes], Awaitable[bytes | None]]


class FakeServer:
    """Reads commands (answering ``+`` to synchronizing literals), hands each to
    ``handler`` and writes its reply; records every command."""

    def __init__(self, greeting: bytes, handler: Handler) -> None:
        self.greeting = greeting
        self.handler = handler
        self.commands: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A reader task queues commands as they arrive (so pipelined commands are seen
        while an earlier one is still being answered); this loop answers in order."""
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

        async def read_commands() -> None:
            try:
                while True:
                    cmd = b""
                    while True:
                        line = await reader.readline()
                        if not line:
                            return
                        cmd += line
                        m = _LIT.search(line)
                        if m is None:
                            break
                        if not m.group(2):
                            writer.write(b"+ go\r\n")
                            await writer.drain()
                        cmd += await reader.readexactly(int(m.group(1)))
                    tag, _, rest = cmd.partition(b" ")
                    self.commands.append(rest)
                    await queue.put((tag.decode(), rest))
            except (ConnectionError, asyncio.IncompleteReadError):
                return
            finally:
                await queue.put(None)

        task = asyncio.create_task(read_commands())
        try:
            writer.write(self.greeting)
            await writer.drain()
            while (item := await queue.get()) is not None:
                reply = await self.handler(*item)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            task.cancel()
            writer.close()


CAPS = b"IMAP4rev1 AUTH=PLAIN"


def basic(extra: dict[bytes, bytes] | None = None, caps: bytes = CAPS) -> Handler:
    """OK to everything; CAPABILITY lists ``caps``; ``extra`` maps a command prefix to
    the untagged lines sent before the OK."""

    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd.startswith(b"CAPABILITY"):
            return b"* CAPABILITY " + caps + b"\r\n" + tag.encode() + b" OK done\r\n"
        if cmd.startswith(b"LOGOUT"):
            return b"* BYE bye\r\n" + tag.encode() + b" OK bye\r\n"
        for prefix, lines in (extra or {}).items():
            if cmd.startswith(prefix):
                return lines + tag.encode() + b" OK done\r\n"
        return tag.encode() + b" OK done\r\n"

    return handle


def client(port: int, **kw: object) -> ImapClient:
    return ImapClient("127.0.0.1", port, implicit_tls=False, tls=TlsOptions(), timeout=5, **kw)  # type: ignore[arg-type]


def test_helpers() -> None:
    assert uid_set([5, 1, 2, 3, 9, 10]) == b"1:3,5,9:10"
    assert astring("INBOX") == b"INBOX"
    assert astring('a "b"\\') == b'"a \\"b\\"\\\\"'
    assert astring("pässword") == Literal("pässword".encode())
    assert astring("") == b'""'
    assert format_internaldate(
        datetime(1998, 5, 4, 9, 5, 1, tzinfo=timezone(-timedelta(hours=7, minutes=30)))
    ) == ("04-May-1998 09:05:01 -0730")
    assert format_internaldate(datetime(2001, 12, 31, tzinfo=UTC)) == "31-Dec-2001 00:00:00 +0000"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("192.0.2.1") and not is_loopback("mail.example.com")


def test_bye_greeting() -> None:
    async def go() -> None:
        async with FakeServer(b"* BYE too many connections\r\n", basic()) as srv:
            with pytest.raises(ConnectFailed, match="too many connections"):
                await client(srv.port).connect()

    asyncio.run(go())


def test_connection_refused() -> None:
    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", basic()) as srv:
            port = srv.port
        with pytest.raises(ConnectFailed, match="cannot connect"):
            await client(port).connect()

    asyncio.run(go())


def test_login_refused_and_password_not_echoed() -> None:
    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd.startswith(b"AUTHENTICATE"):
            return tag.encode() + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        return await basic()(tag, cmd)

    async def go() -> None:
        async with FakeServer(
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n", handle
        ) as srv:
            c = client(srv.port)
            await c.connect()
            with pytest.raises(LoginFailed, match="refused") as info:
                await c.login("alice", "s3cret")
            assert "s3cret" not in str(info.value)
            await c.abort()
            # SASL-IR: the initial response is on the command line
            token = base64.b64encode(b"\0alice\0s3cret")
            assert srv.commands[-1] == b"AUTHENTICATE PLAIN " + token + b"\r\n"

    asyncio.run(go())


def test_auth_plain_without_sasl_ir_and_capability_refresh() -> None:
    auth_tag: list[str] = []

    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd == b"AUTHENTICATE PLAIN\r\n":
            auth_tag.append(tag)
            return b"+ \r\n"
        if auth_tag and (tag + " " + cmd.decode()).startswith(
            base64.b64encode(b"\0alice\0pw").decode()
        ):
            ok = f"{auth_tag[0]} OK [CAPABILITY IMAP4rev1 UIDPLUS MULTIAPPEND] Logged in\r\n"
            return ok.encode()
        return await basic()(tag, cmd)

    async def go() -> None:
        async with FakeServer(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", handle) as srv:
            c = client(srv.port)
            await c.connect()
            await c.login("alice", "pw")
            assert c.has("UIDPLUS") and c.has("MULTIAPPEND") and not c.has("AUTH=PLAIN")
            await c.logout()

    asyncio.run(go())


def test_login_with_literal_password_sync() -> None:
    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", basic(caps=b"IMAP4rev1")) as srv:
            c = client(srv.port)
            await c.connect()
            await c.login("alice", 'pä"ss')
            login = [cmd for cmd in srv.commands if cmd.startswith(b"LOGIN")]
            assert login == [b"LOGIN alice {6}\r\n" + 'pä"ss'.encode() + b"\r\n"]
            await c.logout()

    asyncio.run(go())


def test_logindisabled() -> None:
    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", basic(caps=b"IMAP4rev1 LOGINDISABLED")) as srv:
            c = client(srv.port)
            await c.connect()
            with pytest.raises(LoginFailed, match="LOGINDISABLED"):
                await c.login("alice", "pw")
            await c.abort()
            assert not any(cmd.startswith(b"LOGIN") for cmd in srv.commands)

    asyncio.run(go())


def test_plaintext_refused_off_loopback() -> None:
    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", basic()) as srv:
            c = client(srv.port)
            await c.connect()
            c.host = "mail.example.com"  # as if the server were remote
            with pytest.raises(ConnectFailed, match="plaintext"):
                await c.login("alice", "pw")
            await c.abort()
            assert not any(b"AUTHENTICATE" in cmd for cmd in srv.commands)

    asyncio.run(go())


def test_dropped_connection_mid_command() -> None:
    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd.startswith(b"SELECT"):
            return b"* 3 EXISTS\r\n"  # ... and then the connection drops
        return await basic()(tag, cmd)

    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", handle) as srv:
            c = client(srv.port)
            await c.connect()
            await c.login("alice", "pw")

            async def select_then_drop(tag: str, cmd: bytes) -> bytes | None:
                if cmd.startswith(b"SELECT"):
                    return None
                return await handle(tag, cmd)

            srv.handler = select_then_drop
            with pytest.raises(EndpointError, match="closed by the server"):
                await c.check(b"SELECT INBOX")
            await c.abort()

    asyncio.run(go())


def test_fetch_is_pipelined_and_ordered() -> None:
    """The second batch's UID FETCH is sent before the first is answered: the fake
    answers the first command only once the second has arrived."""
    bodies = {u: MessageBody.from_bytes(b"Subject: %d\n\nbody %d\n" % (u, u)) for u in (1, 2, 3)}
    srv: list[FakeServer] = []

    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd.startswith(b"UID FETCH"):
            uids = [int(x) for x in re.findall(rb"\d+", cmd.split(b" ")[2])]
            if uids == [1, 2]:  # answer only once the next batch's command is here
                for _ in range(500):
                    if sum(c.startswith(b"UID FETCH") for c in srv[0].commands) == 2:
                        break
                    await asyncio.sleep(0.01)
                else:
                    return None
            out = b""
            for u in sorted(uids):
                data = bodies[u].read()
                out += b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (u, u, len(data), data)
            return out + tag.encode() + b" OK done\r\n"
        if cmd.startswith(b"EXAMINE"):
            return b"* 3 EXISTS\r\n" + tag.encode() + b" OK [READ-ONLY] done\r\n"
        if cmd.startswith(b"LIST"):
            return b'* LIST (\\Noselect) "/" ""\r\n' + tag.encode() + b" OK done\r\n"
        return await basic()(tag, cmd)

    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", handle) as server:
            srv.append(server)
            ep = ImapEndpoint(
                "127.0.0.1",
                server.port,
                "alice",
                "pw",
                implicit_tls=False,
                tls=TlsOptions(),
                batch_messages=2,
                timeout=10,
            )
            await ep.connect()
            metas = [MessageMeta(str(u), bodies[u].size) for u in (2, 1, 3)]
            got = [(fm.meta.key, fm.body.sha256) async for fm in ep.fetch(("INBOX",), metas)]
            assert got == [(str(u), bodies[u].sha256) for u in (2, 1, 3)]
            await ep.close()

    asyncio.run(go())


def test_multiappend_sync_literals_retry_one_by_one() -> None:
    """No LITERAL+: each literal waits for '+'.  A MULTIAPPEND refused as a whole is
    retried per message, so only the bad one fails."""
    appended: list[bytes] = []

    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd.startswith(b"APPEND"):
            n = cmd.count(b"Subject:")
            if b"Subject: bad" in cmd:
                return tag.encode() + b" NO [LIMIT] too big\r\n"
            appended.append(cmd)
            first = len(appended) * 10
            uids = f"{first}" if n == 1 else f"{first}:{first + n - 1}"
            return tag.encode() + f" OK [APPENDUID 77 {uids}] done\r\n".encode()
        if cmd.startswith(b"LIST"):
            return b'* LIST (\\Noselect) "." ""\r\n' + tag.encode() + b" OK done\r\n"
        return await basic(caps=b"IMAP4rev1 AUTH=PLAIN MULTIAPPEND UIDPLUS")(tag, cmd)

    date = datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    items = [
        AppendItem(
            MessageBody.from_bytes(b"Subject: a\n\nA\n"), frozenset({"\\Seen", "\\Recent"}), date
        ),
        AppendItem(MessageBody.from_bytes(b"Subject: bad\n\nB\n"), frozenset(), None),
        AppendItem(MessageBody.from_bytes(b"Subject: c\n\nC\n"), frozenset({"Work"}), None),
    ]

    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", handle) as srv:
            ep = ImapEndpoint(
                "127.0.0.1", srv.port, "alice", "pw", implicit_tls=False, tls=TlsOptions()
            )
            await ep.connect()
            assert ep.separator == "."
            res = await ep.append(("Old", "Box"), items)
            await ep.close()
            assert [r.ok for r in res] == [True, False, True]
            assert res[1].error is not None and "too big" in res[1].error
            assert [r.uid for r in res] == [10, None, 20]
            multi = [
                c for c in srv.commands if c.startswith(b"APPEND") and c.count(b"Subject") == 3
            ]
            assert len(multi) == 1
            assert multi[0].startswith(
                b'APPEND Old.Box (\\Seen) "31-Dec-1999 23:59:59 +0000" {17}\r\n'
                b"Subject: a\r\n\r\nA\r\n ("
            )
            assert b"\\Recent" not in multi[0]

    asyncio.run(go())


def test_delete_needs_uidplus() -> None:
    async def handle(tag: str, cmd: bytes) -> bytes | None:
        if cmd.startswith(b"SELECT"):
            return b"* 1 EXISTS\r\n" + tag.encode() + b" OK [READ-WRITE] done\r\n"
        return await basic()(tag, cmd)

    async def go() -> None:
        async with FakeServer(b"* OK hi\r\n", handle) as srv:
            ep = ImapEndpoint(
                "127.0.0.1", srv.port, "alice", "pw", implicit_tls=False, tls=TlsOptions()
            )
            await ep.connect()
            with pytest.raises(EndpointError, match="UIDPLUS"):
                await ep.delete(("INBOX",), ["1"])
            await ep.close()
            assert not any(b"EXPUNGE" in c or b"STORE" in c for c in srv.commands)

    asyncio.run(go())
