"""Self-signed server certificates for the TLS listeners.

Theory of operation
-------------------
``make_self_signed`` builds an EC P-256 key and an X.509 v3 certificate whose
subjectAltName lists every host given (DNS names and IP addresses: clients
match SAN, not CN, RFC 6125 section 6.4.4), with basicConstraints CA:FALSE,
keyUsage digitalSignature and extendedKeyUsage serverAuth (RFC 5280 sections
4.2.1.9, 4.2.1.3, 4.2.1.12).  The default lifetime, 825 days, is the longest
that Apple clients accept for a server certificate.

``write_self_signed`` writes ``key.pem`` (mode 0600) and ``cert.pem`` (0644)
atomically (tmp -> fsync -> rename -> fsync(dir)) and refuses to overwrite
unless ``force``.  ``ensure_self_signed`` is what ``mailgw serve`` calls on
first start: it keeps an existing pair and makes one otherwise.
``fingerprint`` gives the SHA-256 of the DER certificate in colon hex, as
``openssl x509 -fingerprint -sha256`` prints it, for users to compare.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailgw.errors import MailgwError, UsageError
from mailgw.fsutil import atomic_write

DEFAULT_DAYS = 825
CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"


class CertError(MailgwError):
    """A certificate could not be made, written or read."""


def _san(host: str) -> x509.GeneralName:
    text = host.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    name = text.rstrip(".").lower()
    labels = name.split(".")
    ok = 0 < len(name) <= 253 and all(
        0 < len(label) <= 63
        and label.replace("-", "").replace("_", "").isalnum()
        and label.isascii()
        and not label.startswith("-")
        for label in (labels[1:] if labels[0] == "*" else labels)
    )
    if not ok:
        raise UsageError(f"not a host name or IP address: {host!r}")
    return x509.DNSName(name)


def make_self_signed(hosts: Sequence[str], days: int = DEFAULT_DAYS) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)`` for a new self-signed server certificate."""
    if not hosts:
        raise UsageError("give at least one host name (--host)")
    if days < 1:
        raise UsageError("--days must be at least 1")
    names: list[x509.GeneralName] = []
    for host in hosts:
        san = _san(host)
        if san not in names:
            names.append(san)
    first = names[0]
    common_name = str(first.value)[:64]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailgw self-signed"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def write_self_signed(
    out_dir: Path, hosts: Sequence[str], days: int = DEFAULT_DAYS, force: bool = False
) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` into ``out_dir``; returns ``(cert, key)``."""
    out_dir = Path(out_dir)
    cert_path, key_path = out_dir / CERT_NAME, out_dir / KEY_NAME
    if not force:
        existing = [str(p) for p in (cert_path, key_path) if p.exists()]
        if existing:
            verb = "exists" if len(existing) == 1 else "exist"
            raise UsageError(f"{' and '.join(existing)} {verb}; use --force to replace")
    cert_pem, key_pem = make_self_signed(hosts, days)
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(key_path, key_pem, 0o600)  # key first: a cert never lacks its key
        atomic_write(cert_path, cert_pem, 0o644)
    except OSError as exc:
        raise CertError(
            f"cannot write the certificate in {out_dir}: {exc.strerror or exc}"
        ) from None
    return cert_path, key_path


def ensure_self_signed(directory: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    """Keep an existing ``cert.pem``/``key.pem`` pair in ``directory``, else make one."""
    directory = Path(directory)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    return write_self_signed(directory, hosts, DEFAULT_DAYS, force=True)


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate (DER) as ``AB:CD:...``, like ``openssl x509 -fingerprint``."""
    try:
        data = Path(cert_path).read_bytes()
    except OSError as exc:
        raise CertError(f"cannot read {cert_path}: {exc.strerror or exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CertError(f"{cert_path}: not a PEM certificate") from None
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


__all__ = [
    "DEFAULT_DAYS",
    "CertError",
    "ensure_self_signed",
    "fingerprint",
    "make_self_signed",
    "write_self_signed",
]
