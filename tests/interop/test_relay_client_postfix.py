"""The relay client delivering to a real Postfix: as a smarthost (STARTTLS, several
messages over one connection) and by MX through a private dnsmasq.

Postfix is told to refuse bare LF from anyone (``smtpd_forbid_bare_newline``, no
exclusions), so a message we relay with bare LF in it only arrives because the
client converted it; a raw control session shows Postfix really refuses it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from mailgw.relay.client import OutMessage, Timeouts, deliver
from mailgw.relay.routing import Route, Router, resolve_targets
from tests.interop.dnsserver import DnsmasqServer
from tests.interop.peers import LOOPBACK, PeerUnavailable, PostfixInstance, make_peer_dir

TIMEOUTS = Timeouts(connect=10, greeting=30, command=30, data_init=30, data_end=60, quit=5)
STRICT = {
    "smtpd_forbid_bare_newline": "reject",
    "smtpd_forbid_bare_newline_exclusions": "",
}
TLSMGR = "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"  # smtpd TLS needs it


def make_message(i: int, rcpt: str, *, body: bytes | None = None) -> OutMessage:
    data = (
        f"From: Bob <bob@office.lan>\r\nTo: <{rcpt}>\r\nSubject: relay test {i}\r\n"
        f"Message-ID: <relay-{i}@office.lan>\r\nDate: Thu, 23 Nov 2023 12:00:00 +0000\r\n\r\n"
    ).encode() + (body if body is not None else f"message {i}\r\n.leading dot\r\n".encode())
    return OutMessage(f"Q{i:04d}", "bob@office.lan", [rcpt], data=data)


def delivered(pf: PostfixInstance, user: str, count: int) -> dict[str, bytes]:
    """Message-ID -> file bytes for ``user``'s Maildir once ``count`` arrived."""
    out: dict[str, bytes] = {}
    for path in pf.wait_for_messages(count, user):
        data = path.read_bytes()
        for line in data.split(b"\n\n", 1)[0].split(b"\n"):
            if line.lower().startswith(b"message-id:"):
                out[line.split(b":", 1)[1].strip().decode()] = data
    return out


def assert_same_message(stored: bytes, sent: bytes) -> None:
    """Postfix stores LF line ends and prepends its trace headers; the rest is ours."""
    expected = sent.replace(b"\r\n", b"\n")
    assert stored.endswith(expected), stored
    prefix = stored[: -len(expected)]
    names = [
        line.split(b":", 1)[0] for line in prefix.split(b"\n") if line and line[:1] not in b" \t"
    ]
    assert set(names) <= {b"Return-Path", b"X-Original-To", b"Delivered-To", b"Received"}, names


@pytest.fixture
def tls_files() -> Iterator[tuple[Path, Path, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("mx.peer.test", LOOPBACK)
    d = make_peer_dir("mailgw-relay-tls-")
    chain, key, ca_file = d / "cert.pem", d / "key.pem", d / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield chain, key, ca_file
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_smarthost_starttls_batch_over_one_connection(
    postfix_factory: Callable[..., PostfixInstance], tls_files: tuple[Path, Path, Path]
) -> None:
    chain, key, ca_file = tls_files
    pf = postfix_factory(
        users=("alice", "bob"),
        domain="peer.test",
        main_extra={
            **STRICT,
            "smtpd_tls_cert_file": str(chain),
            "smtpd_tls_key_file": str(key),
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_received_header": "yes",
        },
        master_extra=TLSMGR,
    )
    route = Route("isp", kind="smarthost", hosts=(f"{LOOPBACK}:{pf.port}",), ca_file=ca_file)
    batch = [make_message(i, ("alice", "bob")[i % 2] + "@peer.test") for i in range(6)]
    batch.append(make_message(6, "nobody@peer.test"))  # unknown user: 5xx at RCPT
    batch.append(make_message(7, "alice@peer.test", body=b"bare\nLF\n.\n..dots\nend"))

    async def run() -> list:
        targets = await resolve_targets(route, "peer.test")
        return await deliver(targets, route, batch, helo_name="gw.office.lan", timeouts=TIMEOUTS)

    results = asyncio.run(run())
    by_id = {r.message_id: r for r in results}
    assert by_id["Q0006"].recipients[0].status == "perm"
    assert by_id["Q0006"].recipients[0].reply.startswith("550 5.1.1")
    for msg in batch[:6] + batch[7:]:
        assert by_id[msg.id].all_ok, by_id[msg.id]
        assert "queued as" in by_id[msg.id].recipients[0].reply

    alice = delivered(pf, "alice", 4)
    bob = delivered(pf, "bob", 3)
    assert sorted(alice) == [f"<relay-{i}@office.lan>" for i in (0, 2, 4, 7)]
    assert sorted(bob) == [f"<relay-{i}@office.lan>" for i in (1, 3, 5)]
    for msg in batch[:6]:
        stored = {**alice, **bob}[f"<relay-{msg.id[1:].lstrip('0') or '0'}@office.lan>"]
        assert_same_message(stored, msg.data or b"")
        assert b"TLS" in stored.split(b"\n\n", 1)[0]  # smtpd_tls_received_header
    # bare LF arrived normalised; dot lines unstuffed exactly
    assert alice["<relay-7@office.lan>"].endswith(b"\n\nbare\nLF\n.\n..dots\nend\n")
    log = pf.log_text()
    # one SMTP session carried all 8 messages (the other connection is the start-up probe)
    sessions = [line for line in log.splitlines() if "disconnect from" in line and "ehlo=" in line]
    assert len(sessions) == 1, sessions
    assert " starttls=1 " in sessions[0] and " mail=8 " in sessions[0], sessions[0]
    assert "bare <LF>" not in log


def test_postfix_refuses_bare_lf_as_configured(
    postfix_factory: Callable[..., PostfixInstance],
) -> None:
    """Control for the test above: the same Postfix refuses a raw bare-LF message."""
    pf = postfix_factory(users=("alice",), domain="peer.test", main_extra=STRICT)
    with socket.create_connection((LOOPBACK, pf.port), 10) as s:
        f = s.makefile("rwb")

        def cmd(line: bytes) -> bytes:
            f.write(line)
            f.flush()
            reply = b""
            while True:
                got = f.readline()
                reply += got
                if not got or got[3:4] != b"-":
                    return reply

        assert f.readline().startswith(b"220")
        assert cmd(b"EHLO raw.test\r\n").startswith(b"250")
        assert cmd(b"MAIL FROM:<bob@office.lan>\r\n").startswith(b"250")
        assert cmd(b"RCPT TO:<alice@peer.test>\r\n").startswith(b"250")
        assert cmd(b"DATA\r\n").startswith(b"354")
        final = cmd(b"Subject: raw\r\n\r\nbare\nLF\r\n.\r\n")
    assert not final.startswith(b"250"), final
    assert pf.messages("alice") == []


@pytest.fixture
def mx_dns() -> Iterator[DnsmasqServer]:
    try:
        server = DnsmasqServer(
            mx={"peer.test": [(20, "backup.peer.test"), (10, "mx.peer.test")]},
            hosts={"mx.peer.test": [LOOPBACK], "backup.peer.test": ["127.0.0.2"]},
            zones=("test",),
        )
    except PeerUnavailable as exc:
        pytest.skip(f"dnsmasq unavailable: {exc}")
    with server:
        yield server


def test_mx_delivery_through_private_dns(
    postfix_factory: Callable[..., PostfixInstance], mx_dns: DnsmasqServer
) -> None:
    pf = postfix_factory(users=("alice", "bob"), domain="peer.test", main_extra=STRICT)
    router = Router(
        [
            Route("direct", kind="mx", port=pf.port, tls_required=False, domains=("peer.test",)),
            Route("isp", hosts=("smtp.isp.invalid",), domains=("*",)),
        ]
    )
    route = router.route_for("Peer.Test")
    assert route.name == "direct"
    batch = [make_message(i, "bob@peer.test") for i in range(3)]

    async def run() -> list:
        targets = await resolve_targets(route, "peer.test", mx_dns.resolver())
        assert [(t.host, t.name) for t in targets] == [
            (LOOPBACK, "mx.peer.test"),
            ("127.0.0.2", "backup.peer.test"),
        ]
        return await deliver(targets, route, batch, helo_name="gw.office.lan", timeouts=TIMEOUTS)

    results = asyncio.run(run())
    assert all(r.all_ok for r in results), results
    assert results[0].recipients[0].remote == f"mx.peer.test[{LOOPBACK}]:{pf.port}"
    bob = delivered(pf, "bob", 3)
    assert sorted(bob) == [f"<relay-{i}@office.lan>" for i in range(3)]
    for msg in batch:
        assert_same_message(bob[f"<relay-{msg.id[-1]}@office.lan>"], msg.data or b"")
