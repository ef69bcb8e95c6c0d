"""``mailgw probe``'s engine against real servers: Debian's Dovecot (IMAP, POP3, STARTTLS
and implicit TLS; a test-CA certificate and a self-signed one about to expire), Postfix
(STARTTLS, SMTPS, AUTH through Dovecot SASL) and ``mailgw serve``; MX lookups against a
private dnsmasq.  Every reported field is checked against what the server was set up with."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from mailgw.probe.model import ProbeResult
from mailgw.probe.mx import MxError, mx_hosts, resolve_mx
from mailgw.probe.runner import ProbeOptions, run_probes
from mailgw.probe.targets import Target
from tests.e2e_util import DEFAULT_LISTENERS, CertFiles, Listener, ServeProcess
from tests.interop.dnsserver import DnsmasqServer
from tests.interop.peers import (
    LOOPBACK,
    DovecotInstance,
    PeerUnavailable,
    PostfixInstance,
    write_plain_passwd,
)

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice", "alice-Probe-Pw!1"
SIZE_LIMIT = 10240000
EXPIRES_IN = dt.timedelta(days=5, hours=12)


def probe(targets: list[Target], **kw: object) -> list[ProbeResult]:
    options = ProbeOptions(deadline=20.0, ehlo_name="probe.test", **kw)  # type: ignore[arg-type]
    report = asyncio.run(run_probes(targets, options))
    assert report.elapsed <= 20.0 + 1
    return report.results


def leaf_of(certs: CertFiles) -> x509.Certificate:
    return x509.load_der_x509_certificate(certs.leaf_der)


def assert_cert_is(r: ProbeResult, leaf: x509.Certificate, *, verified: bool) -> None:
    assert r.tls is not None and r.tls.cert is not None, r
    cert = r.tls.cert
    assert cert.subject == leaf.subject.rfc4514_string()
    assert cert.issuer == leaf.issuer.rfc4514_string()
    assert cert.serial == format(leaf.serial_number, "x")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    expected_sans = [*san.get_values_for_type(x509.DNSName)]
    expected_sans += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert cert.sans == expected_sans
    now = dt.datetime.now(dt.UTC)
    assert cert.days_left in {
        (leaf.not_valid_after_utc - now).days,
        (leaf.not_valid_after_utc - now).days - 1,  # a day boundary passed since the probe
    }
    assert cert.chain_verified is verified, cert.verify_error
    assert (cert.verify_error is None) is verified


# --- Dovecot --------------------------------------------------------------------------------


def dovecot(
    factory: Callable[..., DovecotInstance], peer_dir: Path, cert: Path, key: Path, name: str
) -> DovecotInstance:
    base = peer_dir / name
    base.mkdir()
    passwd = write_plain_passwd(base / "users.passwd", {USER: PASSWORD})
    return factory(
        base / "data",
        passwd,
        ssl_cert=cert,
        ssl_key=key,
        extra_conf="ssl_min_protocol = TLSv1.3\n",
    )


def dovecot_targets(dc: DovecotInstance, host: str = LOOPBACK) -> list[Target]:
    assert dc.imap_port and dc.imaps_port and dc.pop3_port and dc.pop3s_port
    return [
        Target(host, dc.imap_port, "imap"),
        Target(host, dc.imaps_port, "imaps"),
        Target(host, dc.pop3_port, "pop3"),
        Target(host, dc.pop3s_port, "pop3s"),
    ]


def test_dovecot_with_a_test_ca_certificate(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path, certs: CertFiles
) -> None:
    dc = dovecot(dovecot_factory, peer_dir, certs.cert, certs.key, "a")
    imap, imaps, pop3, pop3s = probe(
        dovecot_targets(dc, "localhost"), ca_file=certs.ca_cert, user=USER, password=PASSWORD
    )
    leaf = leaf_of(certs)
    for r in (imap, imaps, pop3, pop3s):
        assert r.state == "ok", r
        assert r.address == LOOPBACK and r.reachable and not r.tarpit
        assert r.tls is not None and r.tls.version == "TLSv1.3"  # ssl_min_protocol
        assert r.tls.cipher and r.tls.cipher.startswith("TLS_") and r.tls.bits
        assert_cert_is(r, leaf, verified=True)
        assert r.tls.cert is not None and r.tls.cert.hostname_match is True
        assert r.tls.cert.self_signed is False
        assert r.auth_mechanisms == ["PLAIN", "LOGIN"]  # auth_mechanisms = plain login
        assert r.login == "ok", r.login_error
        assert r.smtp is None
        for phase in ("dns", "connect", "tls", "banner", "capabilities", "login", "total"):
            assert phase in r.timings, (phase, r.timings)
    # STARTTLS ports: plaintext first.  Dovecot counts a loopback client as secured, so
    # disable_plaintext_auth = yes does not hide the mechanisms here
    for r in (imap, pop3):
        assert not r.implicit_tls
        assert r.starttls_offered is True and r.starttls_ok is True
        assert r.auth_before_tls == ["PLAIN", "LOGIN"]
        assert "capabilities_tls" in r.timings
    for r in (imaps, pop3s):
        assert r.implicit_tls and r.starttls_offered is None and r.starttls_ok is None
        assert r.capabilities == [] and r.auth_before_tls == []
    assert imap.banner is not None and imap.banner.startswith("* OK")
    assert {"IMAP4rev1", "STARTTLS", "AUTH=PLAIN"} <= set(imap.capabilities)
    assert "STARTTLS" not in imap.capabilities_tls
    assert {"AUTH=PLAIN", "AUTH=LOGIN"} <= set(imap.capabilities_tls)
    assert {"AUTH=PLAIN", "AUTH=LOGIN"} <= set(imaps.capabilities_tls)
    assert pop3.banner is not None and pop3.banner.startswith("+OK")
    assert "STLS" in pop3.capabilities and "USER" in pop3.capabilities_tls
    assert "SASL PLAIN LOGIN" in pop3.capabilities_tls
    assert "SASL PLAIN LOGIN" in pop3s.capabilities_tls


def test_dovecot_wrong_password_and_ip_host(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path, certs: CertFiles
) -> None:
    dc = dovecot(dovecot_factory, peer_dir, certs.cert, certs.key, "a")
    results = probe(dovecot_targets(dc), ca_file=certs.ca_cert, user=USER, password="wrong")
    for r in results:
        assert r.state == "ok", r
        assert r.login == "failed" and r.login_error, r
        assert r.tls is not None and r.tls.cert is not None
        assert r.tls.cert.hostname_match is True  # 127.0.0.1 is an IP SAN
    # without a CA file the system store does not know the test CA
    (r,) = probe([dovecot_targets(dc)[1]])
    assert r.state == "ok" and r.login is None
    assert r.tls is not None and r.tls.cert is not None
    assert r.tls.cert.chain_verified is False and r.tls.cert.verify_error


def test_dovecot_self_signed_about_to_expire(
    dovecot_factory: Callable[..., DovecotInstance], peer_dir: Path, tmp_path: Path
) -> None:
    """A self-signed certificate (not in any trust store) that expires in 5.5 days."""
    cert_path, key_path = tmp_path / "self.pem", tmp_path / "self.key"
    cert_pem, key_pem = expiring_self_signed(["selfsigned.test", "localhost"])
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    dc = dovecot(dovecot_factory, peer_dir, cert_path, key_path, "b")
    results = probe(dovecot_targets(dc, "localhost"))
    cert = x509.load_pem_x509_certificate(cert_pem)
    for r in results:
        assert r.state == "ok", r
        assert r.login is None
        assert r.tls is not None and r.tls.cert is not None
        assert r.tls.cert.self_signed is True
        assert r.tls.cert.subject == r.tls.cert.issuer == "CN=selfsigned.test"
        assert r.tls.cert.hostname_match is True
        assert_cert_is(r, cert, verified=False)
        assert r.tls.cert.days_left == EXPIRES_IN.days  # 5 whole days left
    # probed under a name the certificate does not hold
    results = probe(dovecot_targets(dc, LOOPBACK)[1:2])
    assert results[0].tls is not None and results[0].tls.cert is not None
    assert results[0].tls.cert.hostname_match is False


def expiring_self_signed(names: list[str]) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=300))
        .not_valid_after(now + EXPIRES_IN)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# --- Postfix with STARTTLS, SMTPS and Dovecot SASL -------------------------------------------


@pytest.fixture
def postfix_tls(
    dovecot_factory: Callable[..., DovecotInstance],
    postfix_factory: Callable[..., PostfixInstance],
    peer_dir: Path,
    certs: CertFiles,
) -> PostfixInstance:
    """Postfix: STARTTLS (TLS 1.2 only) and AUTH only over TLS; SASL by a Dovecot auth
    socket.  (Implicit TLS SMTP is checked against mailgw serve: a Postfix wrapper-mode
    service added through master_extra did not take its -o options here.)"""
    socket_path = peer_dir / "auth-postfix"
    passwd = write_plain_passwd(peer_dir / "users.passwd", {USER: PASSWORD})
    dovecot_factory(
        peer_dir / "data",
        passwd,
        protocols=("imap",),
        extra_conf=(
            f"service auth {{\n  unix_listener {socket_path} {{\n    mode = 0666\n  }}\n}}\n"
        ),
    )
    pf = postfix_factory(
        main_extra={
            "smtpd_tls_cert_file": str(certs.cert),
            "smtpd_tls_key_file": str(certs.key),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_protocols": ">=TLSv1.2, <=TLSv1.2",
            "smtpd_tls_auth_only": "yes",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(socket_path),
            "message_size_limit": str(SIZE_LIMIT),
        },
        master_extra="tlsmgr unix - - n 1000? 1 tlsmgr\n",  # for smtpd's TLS (peers.py lacks it)
    )
    return pf


def test_postfix_starttls_and_auth(postfix_tls: PostfixInstance, certs: CertFiles) -> None:
    pf = postfix_tls
    targets = [Target("localhost", pf.port, "submission"), Target(LOOPBACK, pf.port, "smtp")]
    sub, smtp = probe(targets, ca_file=certs.ca_cert, user=USER, password=PASSWORD)
    leaf = leaf_of(certs)
    for r in (sub, smtp):
        assert r.state == "ok", (r, pf.log_text())
        assert r.banner == "220 mx.peer.test ESMTP private test Postfix"
        assert r.smtp is not None
        assert r.smtp.ehlo_host == "mx.peer.test"
        assert r.smtp.size_limit == SIZE_LIMIT
        assert r.smtp.pipelining and r.smtp.eightbitmime and r.smtp.chunking
        assert not r.smtp.smtputf8  # smtputf8_enable = no
        assert r.tls is not None and r.tls.version == "TLSv1.2"  # smtpd_tls_protocols
        assert_cert_is(r, leaf, verified=True)
        assert r.tls.cert is not None and r.tls.cert.hostname_match is True
        assert r.auth_mechanisms == ["PLAIN", "LOGIN"]  # Dovecot's auth_mechanisms
        assert r.login == "ok", (r.login_error, pf.log_text())
        # smtpd_tls_auth_only: no AUTH before STARTTLS
        assert r.starttls_offered is True and r.starttls_ok is True
        assert "STARTTLS" in r.capabilities and "STARTTLS" not in r.capabilities_tls
        assert r.auth_before_tls == []
        assert not any(c.startswith("AUTH") for c in r.capabilities)
        assert "AUTH PLAIN LOGIN" in r.capabilities_tls


def test_postfix_wrong_password(postfix_tls: PostfixInstance) -> None:
    (r,) = probe([Target(LOOPBACK, postfix_tls.port, "submission")], user=USER, password="x")
    assert r.state == "ok" and r.starttls_ok is True
    assert r.login == "failed" and r.login_error is not None
    assert r.login_error.startswith("535")


def test_postfix_no_password_without_tls(postfix_factory: Callable[..., PostfixInstance]) -> None:
    pf = postfix_factory()  # no TLS at all
    (r,) = probe([Target(LOOPBACK, pf.port, "smtp")], user=USER, password=PASSWORD)
    assert r.state == "ok"
    assert r.starttls_offered is False and r.starttls_ok is None and r.tls is None
    assert r.login == "skipped" and r.login_error
    assert r.smtp is not None and r.smtp.size_limit == 60 * 1024 * 1024  # peers.py's default


# --- mailgw serve -----------------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path, certs: CertFiles) -> Iterator[ServeProcess]:
    """mailgw serve: the default STARTTLS listeners plus implicit-TLS submission and POP3."""
    listeners = (
        *DEFAULT_LISTENERS,
        Listener("smtps", "submission", "implicit"),
        Listener("pop3s", "pop3", "implicit"),
    )
    with ServeProcess(tmp_path / "serve", certs=certs, listeners=listeners) as proc:
        proc.add_user(USER, PASSWORD)
        yield proc
        print(proc.log())


def test_mailgw_serve(serve: ServeProcess, certs: CertFiles) -> None:
    from mailgw.config.schema import LimitsConfig

    targets = [
        Target(LOOPBACK, serve.port("smtp"), "smtp"),
        Target("localhost", serve.port("submission"), "submission"),
        Target(LOOPBACK, serve.port("pop3"), "pop3"),
        Target(LOOPBACK, serve.port("smtps"), "smtps"),
        Target(LOOPBACK, serve.port("pop3s"), "pop3s"),
    ]
    smtp, sub, pop3, smtps, pop3s = probe(
        targets, ca_file=certs.ca_cert, user=USER, password=PASSWORD
    )
    leaf = leaf_of(certs)
    for r in (smtps, pop3s):
        assert r.state == "ok", (r, serve.log())
        assert r.implicit_tls and r.starttls_offered is None and r.capabilities == []
        # in the server's order: SMTP (aiosmtpd) "AUTH LOGIN PLAIN", POP3 "SASL PLAIN"
        expected = ["LOGIN", "PLAIN"] if r.proto == "smtps" else ["PLAIN"]
        assert r.auth_mechanisms == expected, r.capabilities_tls
        assert r.login == "ok", (r.login_error, serve.log())
        assert_cert_is(r, leaf, verified=True)
    assert smtps.smtp is not None and smtps.smtp.size_limit == LimitsConfig().max_message_size
    for r in (smtp, sub, pop3):
        assert r.state == "ok", (r, serve.log())
        assert r.starttls_offered is True and r.starttls_ok is True
        assert r.tls is not None and r.tls.version in ("TLSv1.2", "TLSv1.3")
        assert_cert_is(r, leaf, verified=True)
        assert r.tls.cert is not None and r.tls.cert.hostname_match is True
    for r in (smtp, sub):
        assert r.smtp is not None and r.smtp.ehlo_host == "mx.example.org"
        assert r.smtp.size_limit == LimitsConfig().max_message_size
        assert r.banner is not None and r.banner.startswith("220 ")
    # AUTH only over TLS on an untrusted listener
    assert sub.auth_before_tls == []
    assert sub.auth_mechanisms == ["LOGIN", "PLAIN"], sub.capabilities_tls
    assert "AUTH LOGIN PLAIN" in sub.capabilities_tls
    assert sub.login == "ok", (sub.login_error, serve.log())
    assert pop3.banner is not None and pop3.banner.startswith("+OK")
    assert "STLS" in pop3.capabilities
    assert pop3.login == "ok", (pop3.login_error, serve.log())
    # a wrong password
    sub2, pop3b = probe(targets[1:3], ca_file=certs.ca_cert, user=USER, password="wrong")
    assert sub2.login == "failed" and pop3b.login == "failed"
    assert sub2.state == pop3b.state == "ok"


# --- MX lookups and name resolution against dnsmasq ------------------------------------------


@pytest.fixture
def dns() -> Iterator[DnsmasqServer]:
    try:
        server = DnsmasqServer(
            mx={
                "multi.test": [(20, "mx2.multi.test"), (10, "mx1.multi.test"), (30, "mx3.test")],
                "null.test": [(0, ".")],
            },
            hosts={"mx1.multi.test": ["127.0.0.1"], "plain.test": ["127.0.0.1"]},
            broken=("broken.test",),
        )
    except PeerUnavailable as exc:
        pytest.skip(f"dnsmasq unavailable: {exc}")
    server.start()
    yield server
    server.cleanup()


def test_mx_lookups(dns: DnsmasqServer) -> None:
    async def run() -> None:
        r = dns.resolver()
        assert await mx_hosts("multi.test", resolver=r) == [
            "mx1.multi.test",
            "mx2.multi.test",
            "mx3.test",
        ]
        # no MX: the domain itself (RFC 5321 5.1)
        assert await mx_hosts("plain.test", resolver=r) == ["plain.test"]
        answer = await resolve_mx("plain.test", resolver=r)
        assert answer.implicit and answer.error is None
        # null MX (RFC 7505): no hosts, and why
        assert await mx_hosts("null.test", resolver=r) == []
        answer = await resolve_mx("null.test", resolver=r)
        assert answer.null_mx and answer.error and "RFC 7505" in answer.error
        with pytest.raises(MxError, match="NXDOMAIN"):
            await mx_hosts("missing.test", resolver=r)
        with pytest.raises(MxError, match="temporarily"):
            await mx_hosts("x.broken.test", resolver=dns.resolver(lifetime=0.5))

    asyncio.run(run())


def test_probe_resolves_through_the_given_resolver(
    dns: DnsmasqServer, postfix_factory: Callable[..., PostfixInstance]
) -> None:
    pf = postfix_factory()
    targets = [Target("mx1.multi.test", pf.port, "smtp"), Target("nope.test", pf.port, "smtp")]
    ok, missing = probe(targets, resolver=dns.resolver())
    assert ok.state == "ok" and ok.address == LOOPBACK and "dns" in ok.timings
    assert missing.state == "dns_failed" and missing.address is None and missing.error
