"""Misbehaving servers made here (asyncio on 127.0.0.1): each gets its own clear state,
and a run over all of them at once ends by the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from mailgw.probe.model import ProbeResult
from mailgw.probe.runner import ProbeOptions, run_probes
from mailgw.probe.smtp import probe_smtp
from mailgw.probe.targets import Target

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LOOPBACK = "127.0.0.1"


@dataclass
class Recorder:
    commands: list[str] = field(default_factory=list)
    pipelined: list[str] = field(default_factory=list)  # commands that arrived before a reply


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # cancelled at the end of the test, or the probe went away
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(wrapped, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def refused_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def closes_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


async def busy_421(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"421-busy.example Service not available\r\n421 try again later\r\n")
    await writer.drain()
    await reader.read(100)


async def plaintext_on_tls_port(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)  # the ClientHello
    writer.write(b"220 this is not TLS at all\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


def fake_smtp(
    rec: Recorder,
    *,
    banner_delay: float = 0.0,
    starttls: str | None = None,  # None: not offered; "drop": 220 then close; "hang"
) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(banner_delay)
        writer.write(b"220 fake.example ESMTP\r\n")
        await writer.drain()
        while True:
            line = (await reader.readline()).decode().strip()
            if not line:
                return
            rec.commands.append(line)
            if reader._buffer:  # type: ignore[attr-defined]
                rec.pipelined.append(line)
            verb = line.split()[0].upper()
            if verb == "EHLO":
                ext = ["SIZE 1000", "8BITMIME"] + (["STARTTLS"] if starttls else [])
                lines = ["fake.example hello", *ext]
                for i, text in enumerate(lines):
                    sep = " " if i == len(lines) - 1 else "-"
                    writer.write(f"250{sep}{text}\r\n".encode())
            elif verb == "STARTTLS":
                if starttls == "hang":
                    await asyncio.sleep(3600)
                writer.write(b"220 go ahead\r\n")
                await writer.drain()
                return  # drop the connection instead of a TLS handshake
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"500 what\r\n")
            await writer.drain()

    return handler


async def pop3_err(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"-ERR too many connections\r\n")
    await writer.drain()
    await reader.read(100)


async def imap_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"* BYE go away\r\n")
    await writer.drain()
    await reader.read(100)


def options(**kw: object) -> ProbeOptions:
    base: dict[str, object] = {"deadline": 2.0, "ehlo_name": "probe.test", "tarpit_after": 5.0}
    base.update(kw)
    return ProbeOptions(**base)  # type: ignore[arg-type]


async def probe(handler: Handler, proto: str = "smtp", **kw: object) -> ProbeResult:
    async with serve(handler) as port:
        report = await run_probes([Target(LOOPBACK, port, proto)], options(**kw))
    assert len(report.results) == 1
    return report.results[0]


def test_never_answers_is_timeout() -> None:
    r = asyncio.run(probe(never_answers, deadline=0.5))
    assert r.state == "timeout"
    assert r.address == LOOPBACK and r.banner is None
    assert "banner" in (r.error or "")
    assert "connect" in r.timings and "banner" not in r.timings


def test_closes_at_once_is_closed() -> None:
    r = asyncio.run(probe(closes_at_once))
    assert r.state == "closed", r.error
    assert r.banner is None and r.address == LOOPBACK


def test_garbage() -> None:
    r = asyncio.run(probe(garbage))
    assert r.state == "garbage"
    assert "HTTP/1.1 400" in (r.error or "")


def test_421_banner_is_rejected() -> None:
    r = asyncio.run(probe(busy_421))
    assert r.state == "rejected"
    assert r.banner == "421 busy.example Service not available\n421 try again later"


def test_broken_tls_handshake() -> None:
    r = asyncio.run(probe(plaintext_on_tls_port, proto="smtps"))
    assert r.state == "tls_failed", r.error
    assert r.implicit_tls and r.tls is None and r.banner is None


def test_refused() -> None:
    port = refused_port()
    report = asyncio.run(run_probes([Target(LOOPBACK, port, "imap")], options()))
    r = report.results[0]
    assert r.state == "refused"
    assert not r.reachable


def test_slow_banner_is_tarpit_but_ok() -> None:
    rec = Recorder()
    r = asyncio.run(probe(fake_smtp(rec, banner_delay=0.3), tarpit_after=0.1))
    assert r.state == "ok", r.error
    assert r.tarpit
    assert r.banner == "220 fake.example ESMTP"
    assert r.smtp is not None and r.smtp.size_limit == 1000 and r.smtp.eightbitmime
    assert r.starttls_offered is False and r.starttls_ok is None


def test_fast_banner_is_no_tarpit_and_no_pipelining() -> None:
    rec = Recorder()
    r = asyncio.run(probe(fake_smtp(rec)))
    assert r.state == "ok" and not r.tarpit
    assert r.capabilities == ["SIZE 1000", "8BITMIME"]
    assert r.smtp is not None and not r.smtp.pipelining and r.smtp.ehlo_host == "fake.example"
    assert rec.commands == ["EHLO probe.test", "QUIT"]
    assert rec.pipelined == []


def test_drops_after_starttls() -> None:
    rec = Recorder()
    r = asyncio.run(probe(fake_smtp(rec, starttls="drop")))
    assert r.state == "tls_failed", r.error
    assert r.starttls_offered is True and r.starttls_ok is False
    assert "closed" in (r.error or "")
    assert r.capabilities == ["SIZE 1000", "8BITMIME", "STARTTLS"]


def test_timeout_keeps_what_was_gathered() -> None:
    rec = Recorder()
    r = asyncio.run(probe(fake_smtp(rec, starttls="hang"), deadline=0.5))
    assert r.state == "timeout"
    assert "'starttls'" in (r.error or "")
    assert r.banner == "220 fake.example ESMTP"
    assert r.starttls_offered is True and r.starttls_ok is None
    assert "STARTTLS" in r.capabilities
    assert r.smtp is not None and r.smtp.size_limit == 1000


def test_pop3_err_greeting_and_imap_bye_are_rejected() -> None:
    r = asyncio.run(probe(pop3_err, proto="pop3"))
    assert r.state == "rejected" and r.banner == "-ERR too many connections"
    r = asyncio.run(probe(imap_bye, proto="imap"))
    assert r.state == "rejected" and r.banner == "* BYE go away"


def test_pop3_and_imap_garbage() -> None:
    assert asyncio.run(probe(garbage, proto="pop3")).state == "garbage"
    assert asyncio.run(probe(garbage, proto="imap")).state == "garbage"


def test_dns_failed() -> None:
    r = asyncio.run(probe_smtp(Target("no-such-host.invalid", 25, "smtp"), options(), None))
    assert r.state == "dns_failed", r.error
    assert not r.reachable


async def _all_at_once(deadline: float) -> tuple[dict[str, ProbeResult], float]:
    handlers: dict[str, tuple[Handler, str]] = {
        "never": (never_answers, "smtp"),
        "closes": (closes_at_once, "pop3"),
        "garbage": (garbage, "imap"),
        "421": (busy_421, "smtp"),
        "tls": (plaintext_on_tls_port, "imaps"),
        "slow": (fake_smtp(Recorder(), banner_delay=deadline * 4), "submission"),
        "drops": (fake_smtp(Recorder(), starttls="drop"), "smtp"),
    }
    async with contextlib.AsyncExitStack() as stack:
        targets = []
        for handler, proto in handlers.values():
            port = await stack.enter_async_context(serve(handler))
            targets.append(Target(LOOPBACK, port, proto))
        targets.append(Target(LOOPBACK, refused_port(), "pop3s"))
        report = await run_probes(targets, options(deadline=deadline))
    names = [*handlers, "refused"]
    assert [r.port for r in report.results] == [t.port for t in targets]  # input order
    return dict(zip(names, report.results, strict=True)), report.elapsed


def test_all_bad_peers_at_once_end_by_the_deadline() -> None:
    deadline = 1.0
    results, elapsed = asyncio.run(_all_at_once(deadline))
    states = {name: r.state for name, r in results.items()}
    assert states == {
        "never": "timeout",
        "closes": "closed",
        "garbage": "garbage",
        "421": "rejected",
        "tls": "tls_failed",
        "slow": "timeout",
        "drops": "tls_failed",
        "refused": "refused",
    }
    assert all(r.error for r in results.values())
    assert all("total" in r.timings for r in results.values())
    # the slowest peer would take 4 deadlines: the run stopped at the deadline instead
    assert elapsed < deadline * 4


@pytest.mark.parametrize("proto", ["smtp", "pop3", "imap"])
def test_deadline_applies_to_each_protocol(proto: str) -> None:
    r = asyncio.run(probe(never_answers, proto=proto, deadline=0.3))
    assert r.state == "timeout" and r.proto == proto


# --- odd but legal servers ------------------------------------------------------------------


def fake_imap(seen: list[str]) -> Handler:
    """No capabilities in the greeting, a literal in an untagged response, LOGINDISABLED:
    the probe must use AUTHENTICATE PLAIN (with ``insecure``)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK fake IMAP ready\r\n")
        await writer.drain()
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            seen.append(line)
            tag, _, rest = line.partition(" ")
            verb = rest.split(" ")[0].upper()
            if verb == "CAPABILITY":
                writer.write(b"* ID {5}\r\nhello)\r\n")  # a literal to step over
                writer.write(b"* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN\r\n")
                writer.write(f"{tag} OK done\r\n".encode())
            elif verb == "AUTHENTICATE":
                writer.write(b"+ \r\n")
                await writer.drain()
                token = (await reader.readline()).decode().strip()
                seen.append(token)
                writer.write(f"{tag} OK logged in\r\n".encode())
            elif verb == "LOGOUT":
                writer.write(f"* BYE bye\r\n{tag} OK done\r\n".encode())
                await writer.drain()
                return
            else:
                writer.write(f"{tag} BAD what\r\n".encode())
            await writer.drain()

    return handler


def test_imap_logindisabled_uses_authenticate_plain() -> None:
    seen: list[str] = []
    r = asyncio.run(probe(fake_imap(seen), proto="imap", user="u", password="p w", insecure=True))
    assert r.state == "ok", r.error
    assert r.capabilities == ["IMAP4rev1", "LOGINDISABLED", "AUTH=PLAIN"]
    assert r.auth_before_tls == ["PLAIN"] and r.starttls_offered is False
    assert r.login == "ok"
    assert seen == ["p1 CAPABILITY", "p2 AUTHENTICATE PLAIN", "AHUAcCB3", "p3 LOGOUT"]


def test_imap_login_without_tls_is_skipped() -> None:
    r = asyncio.run(probe(fake_imap([]), proto="imap", user="u", password="p"))
    assert r.state == "ok" and r.login == "skipped" and r.login_error


async def fake_pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"+OK fake POP3\r\n")
    await writer.drain()
    while line := (await reader.readline()).decode().strip():
        verb = line.split()[0].upper()
        if verb == "CAPA":
            writer.write(b"+OK\r\nUSER\r\n..DOTTED\r\n.\r\n")
        elif verb == "USER":
            writer.write(b"+OK\r\n")
        elif verb == "PASS":
            ok = line == "PASS right"
            writer.write(b"+OK in\r\n" if ok else b"-ERR [AUTH] wrong password\r\n")
        elif verb == "QUIT":
            writer.write(b"+OK bye\r\n")
            await writer.drain()
            return
        await writer.drain()


def test_pop3_user_pass_login() -> None:
    r = asyncio.run(probe(fake_pop3, proto="pop3", user="u", password="right", insecure=True))
    assert r.state == "ok" and r.login == "ok"
    assert r.capabilities == ["USER", ".DOTTED"]  # dot-unstuffed (RFC 1939 3)
    assert r.auth_before_tls == [] and r.starttls_offered is False
    r = asyncio.run(probe(fake_pop3, proto="pop3", user="u", password="bad", insecure=True))
    assert r.state == "ok" and r.login == "failed"
    assert r.login_error == "-ERR [AUTH] wrong password"
