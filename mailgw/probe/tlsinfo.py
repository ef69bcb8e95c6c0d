"""What a TLS session shows: protocol version, cipher and the peer's certificate.

Theory of operation
-------------------
The probe handshakes with a non-verifying context (:func:`probe_context`:
``CERT_NONE``, old protocol versions and ciphers allowed), so it always gets
to see the certificate, even an expired or self-signed one.  Verification is
then done separately by :func:`inspect_tls`:

* The chain the server sent (``get_unverified_chain``: public in Python 3.13,
  private in 3.10-3.12; the leaf alone where neither exists) is verified with
  ``cryptography.x509.verification`` against the system trust store or
  ``ca_file``, at the current time (RFC 5280 path validation, as browsers do
  it).  The name handed to the verifier is one of the certificate's own SANs,
  so that ``chain_verified`` says only whether the chain is trusted; the
  probed name is judged separately by ``hostname_match``.
* ``hostname_match`` follows RFC 6125: only subjectAltName entries count when
  there are any (section 6.4.4: the subject CN only when there are no DNS
  SANs); DNS names compare case-insensitively (6.4.1); a wildcard is allowed
  only as the whole left-most label and matches exactly one label (6.4.3),
  never for IDNA A-labels; an IP address matches only an iPAddress SAN
  (RFC 5280 4.2.1.6).

Certificates are parsed with ``cryptography``: subject and issuer as RFC 4514
strings, SANs (DNS names and IP addresses), serial (hex), validity (ISO 8601
UTC), whole days left, SHA-256 fingerprint, self-signed (issuer == subject and
the signature checks with the certificate's own key).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import ssl
import warnings
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mailgw.probe.model import CertInfo, TlsInfo


def probe_context() -> ssl.SSLContext:
    """A client context that accepts any certificate and old protocol versions."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSv1 is deprecated: exactly what a probe must see
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ssl.SSLError, ValueError):
            pass
    return ctx


# --- host name matching (RFC 6125) -------------------------------------------------------


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _dns_match(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    host = host.rstrip(".").lower()
    if not pattern or not host:
        return False
    if "*" not in pattern:
        return pattern == host
    p_labels = pattern.split(".")
    h_labels = host.split(".")
    # RFC 6125 6.4.3: the wildcard only as the complete left-most label, at least two
    # labels after it, one label matched, and never inside an A-label
    if p_labels[0] != "*" or "*" in ".".join(p_labels[1:]) or len(p_labels) < 3:
        return False
    if len(h_labels) != len(p_labels) or h_labels[0].startswith("xn--"):
        return False
    return bool(h_labels[0]) and h_labels[1:] == p_labels[1:]


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """True when ``host`` (a DNS name or an IP address) is one the certificate names."""
    dns_names: list[str] = []
    ips: list[Any] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = san.get_values_for_type(x509.DNSName)
        ips = san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        pass
    address = _ip(host)
    if address is not None:
        return any(address == ip for ip in ips)
    if not dns_names:
        # RFC 6125 6.4.4: fall back to the CN only when there is no DNS-ID at all
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        dns_names = [str(cn.value) for cn in cns]
    return any(_dns_match(name, host) for name in dns_names)


# --- certificate details -------------------------------------------------------------------


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # signature, algorithm or key type mismatch: not self-signed
        return False
    return True


def cert_info(der: bytes, *, now: dt.datetime | None = None) -> tuple[CertInfo, x509.Certificate]:
    """Parse a DER certificate into :class:`CertInfo` (no hostname or chain fields)."""
    cert = x509.load_der_x509_certificate(der)
    now = now or dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    fingerprint = cert.fingerprint(hashes.SHA256()).hex().upper()
    info = CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=_sans(cert),
        serial=format(cert.serial_number, "x"),
        not_before=_iso(cert.not_valid_before_utc),
        not_after=_iso(not_after),
        days_left=(not_after - now) // dt.timedelta(days=1),
        fingerprint_sha256=":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)),
        self_signed=_self_signed(cert),
    )
    return info, cert


# --- chain verification ----------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _trust_store(ca_file: str | None) -> tuple[x509.Certificate, ...]:
    """Trust anchors from ``ca_file`` or the system store (PEM bundle and/or directory)."""
    paths: list[Path] = []
    if ca_file is not None:
        paths.append(Path(ca_file))
    else:
        defaults = ssl.get_default_verify_paths()
        for candidate in (defaults.cafile, defaults.openssl_cafile):
            if candidate and Path(candidate).is_file():
                paths.append(Path(candidate))
                break
        else:
            for directory in (defaults.capath, defaults.openssl_capath):
                if directory and Path(directory).is_dir():
                    paths += sorted(Path(directory).glob("*.pem"))
                    break
    found: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            if ca_file is not None:
                raise
            continue
        try:
            with warnings.catch_warnings():  # old roots with odd serial numbers
                warnings.simplefilter("ignore")
                found += x509.load_pem_x509_certificates(data)
        except ValueError:
            if ca_file is not None:
                raise
    return tuple(found)


def _verifier_subject(cert: x509.Certificate, host: str, matched: bool) -> Any:
    from cryptography.x509 import verification

    names: list[Any] = []
    if matched:
        address = _ip(host)
        names.append(
            verification.IPAddress(address)
            if address is not None
            else verification.DNSName(host.rstrip(".").lower())
        )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [
            verification.DNSName(n)
            for n in san.get_values_for_type(x509.DNSName)
            if not n.startswith("*")
        ]
        names += [verification.IPAddress(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        names += [
            verification.DNSName("x" + n[1:])
            for n in san.get_values_for_type(x509.DNSName)
            if n.startswith("*.")
        ]
    except x509.ExtensionNotFound:
        pass
    return names[0] if names else None


def verify_chain(
    chain: list[x509.Certificate],
    host: str,
    *,
    matched: bool,
    ca_file: Path | None = None,
    now: dt.datetime | None = None,
) -> tuple[bool, str | None]:
    """(verified, why not) for the chain the server sent (leaf first)."""
    try:
        from cryptography.x509 import verification
    except ImportError:  # cryptography < 42
        return False, "chain verification needs cryptography >= 42"
    try:
        anchors = _trust_store(str(ca_file) if ca_file is not None else None)
    except (OSError, ValueError) as exc:
        return False, f"cannot load CA file {ca_file}: {exc}"
    if not anchors:
        return False, f"no trusted CA certificates in {ca_file or 'the system store'}"
    leaf = chain[0]
    subject = _verifier_subject(leaf, host, matched)
    if subject is None:
        return False, "the certificate names no host (no subjectAltName)"
    builder = verification.PolicyBuilder().store(verification.Store(list(anchors)))
    builder = builder.time(now or dt.datetime.now(dt.UTC))
    # path validation (signatures, validity, CA basic constraints, name constraints) with
    # the Web PKI rules for CAs, but any end-entity extensions: private CAs (and mail
    # servers) often mark subjectAltName or extendedKeyUsage critical, which the Web PKI
    # profile rejects although RFC 5280 allows it
    ee_policy = verification.ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
    )
    builder = builder.extension_policies(
        ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
    )
    try:
        builder.build_server_verifier(subject).verify(leaf, chain[1:])
    except verification.VerificationError as exc:
        return False, str(exc)
    except Exception as exc:  # an unusual certificate the verifier cannot handle
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


# --- the whole session --------------------------------------------------------------------


def peer_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """The DER certificates the server sent, leaf first (at least the leaf if any)."""
    public = getattr(ssl_object, "get_unverified_chain", None)  # Python >= 3.13
    if public is not None:
        return [bytes(c) for c in public()]
    private = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if private is not None:
        try:
            chain = private() or []
            return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
        except (ssl.SSLError, AttributeError, ValueError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def inspect_tls(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, host: str, *, ca_file: Path | None = None
) -> TlsInfo:
    """Version, cipher and certificate details of an established TLS session."""
    cipher = ssl_object.cipher()
    info = TlsInfo(
        version=ssl_object.version(),
        cipher=cipher[0] if cipher else None,
        bits=cipher[2] if cipher else None,
    )
    ders = peer_chain(ssl_object)
    if not ders:
        info.cert = CertInfo(chain_verified=False, verify_error="the server sent no certificate")
        return info
    cert_details, leaf = cert_info(ders[0])
    chain = [leaf]
    for der in ders[1:]:
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    cert_details.hostname_match = hostname_matches(leaf, host)
    verified, why = verify_chain(chain, host, matched=cert_details.hostname_match, ca_file=ca_file)
    cert_details.chain_verified = verified
    cert_details.verify_error = why
    info.cert = cert_details
    return info


__all__ = [
    "cert_info",
    "hostname_matches",
    "inspect_tls",
    "peer_chain",
    "probe_context",
    "verify_chain",
]
