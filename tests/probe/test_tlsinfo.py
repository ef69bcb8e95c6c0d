"""Certificate details, RFC 6125 host name matching and chain verification, over real
in-memory TLS handshakes (ssl.MemoryBIO) with trustme and cryptography-built certificates."""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailgw.probe.tlsinfo import _dns_match, hostname_matches, inspect_tls, probe_context

NOW = dt.datetime.now(dt.UTC)


def handshake(cert_pem: bytes, key_pem: bytes, tmp_path: Path) -> ssl.SSLObject:
    """A completed TLS handshake between a server with this chain and the probe's context."""
    certfile, keyfile = tmp_path / "chain.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert_pem)
    keyfile.write_bytes(key_pem)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certfile, keyfile)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = probe_context().wrap_bio(c_in, c_out, server_hostname="mail.example.com")
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(20):
        done = 0
        for side in (client, server):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done == 2:
            return client
    raise AssertionError("handshake did not finish")


def issued(ca: trustme.CA, *names: str, **kw: Any) -> tuple[bytes, bytes]:
    leaf = ca.issue_cert(*names, **kw)
    return b"".join(b.bytes() for b in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


def ca_file(ca: trustme.CA, tmp_path: Path, name: str = "ca.pem") -> Path:
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return path


def self_signed(cn: str, sans: list[str] | None) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0xABCDEF)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30, hours=1))
    )
    if sans is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA(organization_name="probe test CA")


def test_details_of_a_ca_issued_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com", "127.0.0.1", common_name="mail.example.com")
    conn = handshake(chain, key, tmp_path)
    info = inspect_tls(conn, "mail.example.com", ca_file=ca_file(ca, tmp_path))
    assert info.version == conn.version() and info.version in ("TLSv1.2", "TLSv1.3")
    cipher = conn.cipher()
    assert cipher is not None
    assert info.cipher == cipher[0] and info.bits and info.bits >= 128
    cert = info.cert
    assert cert is not None
    assert cert.subject is not None and "CN=mail.example.com" in cert.subject
    assert cert.issuer is not None and "O=probe test CA" in cert.issuer
    assert cert.sans == ["mail.example.com", "127.0.0.1"]
    der = conn.getpeercert(binary_form=True)
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    assert cert.serial == format(leaf.serial_number, "x")
    assert cert.fingerprint_sha256 == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert cert.not_after == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cert.days_left == (leaf.not_valid_after_utc - NOW).days
    assert cert.self_signed is False
    assert cert.hostname_match is True
    assert cert.chain_verified is True and cert.verify_error is None


def test_ip_address_san(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com", "127.0.0.1")
    conn = handshake(chain, key, tmp_path)
    assert inspect_tls(conn, "127.0.0.1").cert.hostname_match is True  # type: ignore[union-attr]
    assert inspect_tls(conn, "127.0.0.2").cert.hostname_match is False  # type: ignore[union-attr]
    assert inspect_tls(conn, "other.example").cert.hostname_match is False  # type: ignore[union-attr]


def test_wrong_host_still_verifies_the_chain(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com")
    conn = handshake(chain, key, tmp_path)
    cert = inspect_tls(conn, "other.example", ca_file=ca_file(ca, tmp_path)).cert
    assert cert is not None
    assert cert.hostname_match is False
    assert cert.chain_verified is True


def test_wildcard(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "*.wild.example")
    conn = handshake(chain, key, tmp_path)
    leaf = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True) or b"")
    assert hostname_matches(leaf, "mx.wild.example")
    assert hostname_matches(leaf, "MX.Wild.Example.")
    assert not hostname_matches(leaf, "a.mx.wild.example")
    assert not hostname_matches(leaf, "wild.example")
    cert = inspect_tls(conn, "mx.wild.example", ca_file=ca_file(ca, tmp_path)).cert
    assert cert is not None and cert.hostname_match and cert.chain_verified


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("mail.example.com", "MAIL.example.COM", True),
        ("mail.example.com.", "mail.example.com", True),
        ("*.example.com", "mail.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.com", "example.com", False),  # at least two labels after the wildcard
        ("m*.example.com", "mail.example.com", False),  # partial wildcards: not accepted
        ("mail.*.com", "mail.example.com", False),
        ("*.example.com", "xn--bcher-kva.example.com", False),  # no wildcard for A-labels
        ("", "example.com", False),
    ],
)
def test_dns_match_table(pattern: str, host: str, expected: bool) -> None:
    assert _dns_match(pattern, host) is expected


def test_other_ca_is_not_verified(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com")
    conn = handshake(chain, key, tmp_path)
    other = trustme.CA(organization_name="someone else")
    cert = inspect_tls(conn, "mail.example.com", ca_file=ca_file(other, tmp_path, "o.pem")).cert
    assert cert is not None
    assert cert.chain_verified is False
    assert cert.verify_error
    assert cert.hostname_match is True


def test_system_store_does_not_trust_a_test_ca(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com")
    cert = inspect_tls(handshake(chain, key, tmp_path), "mail.example.com").cert
    assert cert is not None and cert.chain_verified is False and cert.verify_error


def test_intermediate_ca_chain(ca: trustme.CA, tmp_path: Path) -> None:
    child = ca.create_child_ca()
    chain, key = issued(child, "mail.example.com")
    conn = handshake(chain, key, tmp_path)
    cert = inspect_tls(conn, "mail.example.com", ca_file=ca_file(ca, tmp_path)).cert
    assert cert is not None
    assert cert.chain_verified is True, cert.verify_error
    assert cert.issuer != cert.subject


def test_about_to_expire(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com", not_after=NOW + dt.timedelta(days=3, hours=12))
    cert = inspect_tls(
        handshake(chain, key, tmp_path), "mail.example.com", ca_file=ca_file(ca, tmp_path)
    ).cert
    assert cert is not None
    assert cert.days_left == 3
    assert cert.chain_verified is True


def test_expired(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(
        ca,
        "mail.example.com",
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW - dt.timedelta(days=2, hours=1),
    )
    cert = inspect_tls(
        handshake(chain, key, tmp_path), "mail.example.com", ca_file=ca_file(ca, tmp_path)
    ).cert
    assert cert is not None
    assert cert.days_left == -3  # whole days, rounded down: 2 days 1 hour ago
    assert cert.chain_verified is False
    assert cert.verify_error


def test_self_signed(tmp_path: Path) -> None:
    chain, key = self_signed("self.example", ["self.example"])
    cert = inspect_tls(handshake(chain, key, tmp_path), "self.example").cert
    assert cert is not None
    assert cert.self_signed is True
    assert cert.subject == cert.issuer == "CN=self.example"
    assert cert.serial == "abcdef"
    assert cert.days_left == 30
    assert cert.hostname_match is True
    assert cert.chain_verified is False and cert.verify_error


def test_common_name_only_when_no_san(tmp_path: Path) -> None:
    chain, key = self_signed("cn-only.example", None)
    cert = inspect_tls(handshake(chain, key, tmp_path), "cn-only.example").cert
    assert cert is not None and cert.sans == []
    assert cert.hostname_match is True
    # a SAN list that does not name the host: the CN is not consulted (RFC 6125 6.4.4)
    chain, key = self_signed("cn.example", ["other.example"])
    cert = inspect_tls(handshake(chain, key, tmp_path), "cn.example").cert
    assert cert is not None and cert.hostname_match is False


def test_unreadable_ca_file(ca: trustme.CA, tmp_path: Path) -> None:
    chain, key = issued(ca, "mail.example.com")
    conn = handshake(chain, key, tmp_path)
    cert = inspect_tls(conn, "mail.example.com", ca_file=tmp_path / "missing.pem").cert
    assert cert is not None and cert.chain_verified is False
    assert "missing.pem" in (cert.verify_error or "")
