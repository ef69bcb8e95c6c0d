"""Probe result records: the one output contract of ``mailgw probe``.

``ProbeReport.to_json()`` is the documented JSON document (schema version 1,
keys stable; new keys may be added, none removed or renamed).  Times are
seconds (float), dates ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Proto = Literal["smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps"]

#: standard port of each protocol name; implicit TLS for smtps, pop3s, imaps
STANDARD_PORTS: dict[str, int] = {
    "smtp": 25,
    "submission": 587,
    "smtps": 465,
    "pop3": 110,
    "pop3s": 995,
    "imap": 143,
    "imaps": 993,
}
IMPLICIT_TLS = frozenset({"smtps", "pop3s", "imaps"})

#: ProbeResult.state values
State = Literal[
    "ok",  # greeted, capabilities read, everything asked for worked
    "refused",  # TCP connection refused
    "timeout",  # no connection, or no (complete) answer before the deadline
    "closed",  # the server closed the connection (before or after the banner)
    "garbage",  # the server answered something that is not the protocol
    "rejected",  # the server refused service: SMTP 421/554 banner, POP3 -ERR, IMAP BYE
    "tls_failed",  # TLS handshake (implicit or after STARTTLS) failed
    "dns_failed",  # the host name did not resolve
    "error",  # anything else (details in ``error``)
]


@dataclass
class CertInfo:
    subject: str | None = None  # RFC 4514 string, e.g. "CN=mail.example.com,O=Example"
    issuer: str | None = None
    sans: list[str] = field(default_factory=list)  # DNS names and IP addresses
    serial: str | None = None  # hex
    not_before: str | None = None  # ISO 8601 UTC
    not_after: str | None = None
    days_left: int | None = None  # whole days to not_after (negative: expired)
    fingerprint_sha256: str | None = None  # hex, colon-separated
    self_signed: bool | None = None
    hostname_match: bool | None = None  # the probed host name against SANs (RFC 6125)
    chain_verified: bool | None = None  # against the system store or --ca-file
    verify_error: str | None = None  # why chain verification failed


@dataclass
class TlsInfo:
    version: str | None = None  # "TLSv1.3"
    cipher: str | None = None  # "TLS_AES_256_GCM_SHA384"
    bits: int | None = None
    cert: CertInfo | None = None


@dataclass
class SmtpInfo:
    """EHLO extensions (RFC 5321 4.1.1.1) after TLS where TLS worked, else before."""

    size_limit: int | None = None  # SIZE (RFC 1870); 0 = no fixed limit
    pipelining: bool = False  # RFC 2920
    eightbitmime: bool = False  # RFC 6152
    smtputf8: bool = False  # RFC 6531
    chunking: bool = False  # RFC 3030
    ehlo_host: str | None = None  # the name in the 250 EHLO greeting


@dataclass
class ProbeResult:
    target: str  # "host:port/proto"
    host: str
    port: int
    proto: str  # a key of STANDARD_PORTS
    state: str = "error"  # a State value
    error: str | None = None
    address: str | None = None  # the IP address connected to
    banner: str | None = None  # first line of the greeting (or all lines joined by "\n")
    tarpit: bool = False  # the greeting took longer than the tarpit threshold
    implicit_tls: bool = False
    starttls_offered: bool | None = None  # None: not applicable (implicit TLS) or unknown
    starttls_ok: bool | None = None
    tls: TlsInfo | None = None
    capabilities: list[str] = field(default_factory=list)  # before TLS (plain session)
    capabilities_tls: list[str] = field(default_factory=list)  # after TLS
    auth_mechanisms: list[str] = field(default_factory=list)  # after TLS where possible
    auth_before_tls: list[str] = field(default_factory=list)  # mechanisms offered in plaintext
    login: str | None = None  # None (not asked), "ok", "failed", "skipped" (no secure way)
    login_error: str | None = None
    smtp: SmtpInfo | None = None
    # phase -> seconds: "dns", "connect", "banner", "capabilities", "tls", "capabilities_tls",
    # "login", "total"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.state not in ("refused", "timeout", "dns_failed") and self.address is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProbeReport:
    results: list[ProbeResult]
    started: str  # ISO 8601 UTC
    deadline: float  # seconds given
    elapsed: float  # wall time of the whole run
    mx: dict[str, list[str]] = field(default_factory=dict)  # --mx domain -> hosts in order

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "started": self.started,
            "deadline": self.deadline,
            "elapsed": round(self.elapsed, 3),
            "mx": self.mx,
            "results": [r.to_json() for r in self.results],
        }


__all__ = [
    "IMPLICIT_TLS",
    "STANDARD_PORTS",
    "CertInfo",
    "ProbeReport",
    "ProbeResult",
    "Proto",
    "SmtpInfo",
    "State",
    "TlsInfo",
]
