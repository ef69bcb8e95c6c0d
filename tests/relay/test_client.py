"""The relay's SMTP client against aiosmtpd and a raw scripted server (plaintext cases)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailgw.protocols.smtp.data import to_crlf
from mailgw.relay.client import (
    DeliveryResult,
    OutMessage,
    TargetsUnavailable,
    Timeouts,
    deliver,
    status_of,
)
from mailgw.relay.routing import Route, Target
from tests.relay.test_client_support import LOOPBACK, RawServer, Recorder, start_aiosmtpd

FAST = Timeouts(connect=5, greeting=5, command=5, data_init=5, data_end=5, quit=2)


def plain_route(**kwargs: object) -> Route:
    base: dict[str, object] = {"hosts": ("unused",), "tls": "none"}
    base.update(kwargs)
    return Route("test", **base)  # type: ignore[arg-type]


def message(
    i: int, *recipients: str, sender: str = "bob@office.lan", body: bytes = b""
) -> OutMessage:
    data = (
        f"From: bob@office.lan\r\nSubject: test {i}\r\n"
        f"Message-ID: <m{i}@office.lan>\r\n\r\n".encode()
        + (body or f"body {i}\r\n".encode())
    )
    return OutMessage(f"ID{i:04d}", sender, list(recipients), data=data)


def run_deliver(
    port: int, batch: list[OutMessage], route: Route | None = None, **kwargs: object
) -> list[DeliveryResult]:
    targets = [Target(LOOPBACK, port)]
    return asyncio.run(deliver(targets, route or plain_route(), batch, timeouts=FAST, **kwargs))  # type: ignore[arg-type]


def statuses(result: DeliveryResult) -> dict[str, tuple[str, str]]:
    return {r.address: (r.status, r.reply.split(" ", 2)[1]) for r in result.recipients}


ServerFactory = Callable[..., tuple[Recorder, int]]


@pytest.fixture
def smtpd(free_port: Callable[[], int]) -> Iterator[ServerFactory]:
    controllers = []

    def make(pipelining: bool = False, **kwargs: object) -> tuple[Recorder, int]:
        handler = Recorder(pipelining=pipelining)
        port = free_port()
        controllers.append(start_aiosmtpd(handler, port, **kwargs))
        return handler, port

    yield make
    for c in controllers:
        c.stop()


@pytest.mark.parametrize(
    "code,status",
    [(250, "ok"), (354, "ok"), (421, "temp"), (452, "temp"), (550, "perm"), (554, "perm")],
)
def test_status_classification(code: int, status: str) -> None:
    assert status_of(code) == status


@pytest.mark.parametrize("pipelining", [False, True])
def test_batch_over_one_connection_with_per_recipient_replies(
    smtpd: ServerFactory, pipelining: bool
) -> None:
    handler, port = smtpd(pipelining=pipelining)
    batch = [
        message(1, "ok1@remote.example", "perm1@remote.example", "temp1@remote.example"),
        message(2, "ok2@remote.example", sender="rejectdata@office.lan"),
        message(3, "perm3@remote.example", "temp3@remote.example"),  # nothing accepted: RSET
        message(4, "ok4@remote.example", "ok4b@remote.example"),
        message(5, "ok5@remote.example", sender=""),  # null sender (a bounce)
    ]
    results = run_deliver(port, batch)
    assert [r.message_id for r in results] == [m.id for m in batch]
    assert statuses(results[0]) == {
        "ok1@remote.example": ("ok", "2.0.0"),
        "perm1@remote.example": ("perm", "5.1.1"),
        "temp1@remote.example": ("temp", "4.2.0"),
    }
    assert results[0].recipients[0].reply == "250 2.0.0 Ok: queued as M1"
    assert statuses(results[1]) == {"ok2@remote.example": ("perm", "5.6.0")}
    assert statuses(results[2]) == {
        "perm3@remote.example": ("perm", "5.1.1"),
        "temp3@remote.example": ("temp", "4.2.0"),
    }
    assert statuses(results[3]) == {
        "ok4@remote.example": ("ok", "2.0.0"),
        "ok4b@remote.example": ("ok", "2.0.0"),
    }
    assert results[4].all_ok
    got = handler.messages
    assert [m.rcpt_tos for m in got] == [
        ["ok1@remote.example"],
        ["ok4@remote.example", "ok4b@remote.example"],
        ["ok5@remote.example"],
    ]
    assert [m.mail_from for m in got] == ["bob@office.lan", "bob@office.lan", "<>"]
    assert {m.session for m in got} == {0}
    assert len(handler.sessions) == 1
    assert got[1].content == batch[3].data


def test_max_per_connection_opens_new_connections(smtpd: ServerFactory) -> None:
    handler, port = smtpd(pipelining=True)
    batch = [message(i, f"ok{i}@remote.example") for i in range(5)]
    results = run_deliver(port, batch, plain_route(max_per_connection=2))
    assert all(r.all_ok for r in results)
    assert [m.session for m in handler.messages] == [0, 0, 1, 1, 2]
    assert [m.content for m in handler.messages] == [m.data for m in batch]


def test_message_read_from_spool_file(smtpd: ServerFactory, tmp_path: Path) -> None:
    handler, port = smtpd()
    path = tmp_path / "msg"
    path.write_bytes(b"Subject: from a file\r\n\r\nhello\r\n")
    results = run_deliver(
        port, [OutMessage("F1", "a@office.lan", ["ok@r.example"], data_path=path)]
    )
    assert results[0].all_ok
    assert handler.messages[0].content == path.read_bytes()


TRICKY = (
    b"Subject: dots and line ends\n"
    b"\n"
    b".\n"
    b"..two dots\r\n"
    b".hidden\r\n"
    b"bare CR\rin the middle\r\n"
    b"\r\n.\r\n"  # a would-be terminator inside the message
    b"\xc3\xa9t\xc3\xa9 8-bit\n"
    b"no final newline."
)
CANONICAL = to_crlf(TRICKY) + b"\r\n"


def test_bare_lf_converted_and_dots_round_trip(smtpd: ServerFactory) -> None:
    handler, port = smtpd(pipelining=True)
    results = run_deliver(port, [message(1, "ok@r.example", body=TRICKY)])
    assert results[0].all_ok
    received = handler.messages[0].content
    assert received.endswith(CANONICAL)
    assert b"\n" not in received.replace(b"\r\n", b"")
    assert b"\r" not in received.replace(b"\r\n", b"")
    assert "BODY=8BITMIME" in handler.messages[0].mail_options


def test_exact_wire_bytes_are_dot_stuffed_crlf() -> None:
    async def scenario() -> tuple[list[DeliveryResult], RawServer]:
        raw = await RawServer().start()
        try:
            msg = OutMessage("W1", "a@office.lan", ["x@r.example"], data=TRICKY)
            results = await deliver(
                [Target(LOOPBACK, raw.port)], plain_route(), [msg], timeouts=FAST
            )
        finally:
            await raw.stop()
        return results, raw

    results, raw = asyncio.run(scenario())
    assert results[0].all_ok
    assert raw.wire == [
        b"Subject: dots and line ends\r\n"
        b"\r\n"
        b"..\r\n"
        b"...two dots\r\n"
        b"..hidden\r\n"
        b"bare CR\r\nin the middle\r\n"
        b"\r\n..\r\n"
        b"\xc3\xa9t\xc3\xa9 8-bit\r\n"
        b"no final newline.\r\n"
        b".\r\n"
    ]
    # 8-bit data and 8BITMIME offered: BODY=8BITMIME; SIZE not offered: no SIZE=
    mail = next(c for c in raw.commands if c.startswith("MAIL"))
    assert mail == "MAIL FROM:<a@office.lan> BODY=8BITMIME"


def test_size_parameter_and_limit(smtpd: ServerFactory) -> None:
    handler, port = smtpd(data_size_limit=400)
    small = message(1, "ok@r.example")
    big = message(2, "ok@r.example", body=b"x" * 1000 + b"\r\n")
    results = run_deliver(port, [small, big])
    assert results[0].all_ok
    assert f"SIZE={len(small.data or b'')}" in handler.messages[0].mail_options
    assert "BODY=8BITMIME" not in handler.messages[0].mail_options  # 7-bit data
    assert statuses(results[1]) == {"ok@r.example": ("perm", "5.3.4")}
    assert len(handler.messages) == 1


def test_smtputf8_used_when_needed_and_offered(smtpd: ServerFactory) -> None:
    handler, port = smtpd(enable_SMTPUTF8=True)
    results = run_deliver(port, [message(1, "jörg@r.example"), message(2, "ok@bücher.example")])
    assert all(r.all_ok for r in results)
    first, second = handler.messages
    assert "SMTPUTF8" in first.mail_options and first.rcpt_tos == ["jörg@r.example"]
    # a non-ASCII domain alone goes as its A-label, without SMTPUTF8
    assert "SMTPUTF8" not in second.mail_options
    assert second.rcpt_tos == ["ok@xn--bcher-kva.example"]


def test_smtputf8_needed_but_not_offered_is_permanent(smtpd: ServerFactory) -> None:
    handler, port = smtpd(enable_SMTPUTF8=False)
    results = run_deliver(port, [message(1, "jörg@r.example"), message(2, "ok@r.example")])
    assert statuses(results[0]) == {"jörg@r.example": ("perm", "5.6.7")}
    assert results[1].all_ok
    assert [m.rcpt_tos for m in handler.messages] == [["ok@r.example"]]


def test_failover_to_next_target(smtpd: ServerFactory, free_port: Callable[[], int]) -> None:
    handler, port = smtpd()
    dead = free_port()
    targets = [Target(LOOPBACK, dead), Target(LOOPBACK, port)]
    results = asyncio.run(
        deliver(targets, plain_route(), [message(1, "ok@r.example")], timeouts=FAST)
    )
    assert results[0].all_ok
    assert results[0].recipients[0].remote == f"{LOOPBACK}:{port}"
    assert len(handler.messages) == 1


def test_no_target_reachable_raises_temporary(free_port: Callable[[], int]) -> None:
    targets = [Target(LOOPBACK, free_port()), Target(LOOPBACK, free_port())]
    with pytest.raises(TargetsUnavailable) as info:
        asyncio.run(deliver(targets, plain_route(), [message(1, "a@r.example")], timeouts=FAST))
    assert info.value.reply.startswith("451 4.4.1")
    assert len(info.value.errors) == 2
    with pytest.raises(TargetsUnavailable):
        asyncio.run(deliver([], plain_route(), [message(1, "a@r.example")], timeouts=FAST))


def test_greeting_421_skips_target(smtpd: ServerFactory) -> None:
    handler, port = smtpd()

    async def scenario() -> list[DeliveryResult]:
        raw = await RawServer().start()
        raw_port = raw.port
        try:
            # a server that greets then says 421 to EHLO
            raw.on_command = lambda line: "421 4.3.2 busy" if line.startswith("EHLO") else None
            targets = [Target(LOOPBACK, raw_port), Target(LOOPBACK, port)]
            return await deliver(
                targets, plain_route(), [message(1, "ok@r.example")], timeouts=FAST
            )
        finally:
            await raw.stop()

    results = asyncio.run(scenario())
    assert results[0].all_ok and len(handler.messages) == 1


@pytest.mark.parametrize("pipelining", [False, True])
def test_connection_lost_makes_unanswered_recipients_temporary(pipelining: bool) -> None:
    rcpts = 0

    def drop_on_second_message(line: str) -> str | None:
        nonlocal rcpts
        if line.startswith("RCPT"):
            rcpts += 1
            if rcpts == 2:
                return "CLOSE"
        return None

    async def scenario() -> tuple[list[DeliveryResult], RawServer]:
        caps = ("PIPELINING",) if pipelining else ("8BITMIME",)
        raw = await RawServer(capabilities=caps, on_command=drop_on_second_message).start()
        try:
            batch = [
                message(1, "a@r.example"),
                message(2, "b@r.example"),
                message(3, "c@r.example"),
            ]
            return await deliver(
                [Target(LOOPBACK, raw.port)], plain_route(), batch, timeouts=FAST
            ), raw
        finally:
            await raw.stop()

    results, raw = asyncio.run(scenario())
    assert len(raw.wire) == 1
    assert statuses(results[0]) == {"a@r.example": ("ok", "2.0.0")}
    assert statuses(results[1]) == {"b@r.example": ("temp", "4.4.2")}
    assert statuses(results[2]) == {"c@r.example": ("temp", "4.4.2")}
    assert "not attempted" in results[2].recipients[0].reply


def test_reply_timeout_is_temporary() -> None:
    async def scenario() -> list[DeliveryResult]:
        hang = asyncio.Event()

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 slow ESMTP\r\n")
            await reader.readline()  # EHLO
            writer.write(b"250 slow\r\n")
            await reader.readline()  # MAIL: never answered
            await hang.wait()
            writer.close()

        server = await asyncio.start_server(client, LOOPBACK, 0)
        port = server.sockets[0].getsockname()[1]
        quick = Timeouts(connect=2, greeting=2, command=0.3, data_init=0.3, data_end=0.3, quit=0.3)
        try:
            return await deliver(
                [Target(LOOPBACK, port)], plain_route(), [message(1, "a@r.example")], timeouts=quick
            )
        finally:
            hang.set()
            server.close()
            await server.wait_closed()

    results = asyncio.run(scenario())
    assert statuses(results[0]) == {"a@r.example": ("temp", "4.4.2")}
    assert "timeout" in results[0].recipients[0].reply
