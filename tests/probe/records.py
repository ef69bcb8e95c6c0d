"""Hand-built probe records for the health, render and CLI tests."""

from __future__ import annotations

from typing import Any

from mailgw.probe.model import CertInfo, ProbeReport, ProbeResult, SmtpInfo, TlsInfo


def cert(days: int = 90, **kw: Any) -> CertInfo:
    fields: dict[str, Any] = {
        "subject": "CN=mail.example.org",
        "issuer": "CN=Example CA,O=Example",
        "sans": ["mail.example.org", "127.0.0.1"],
        "serial": "0a1b",
        "not_before": "2024-01-01T00:00:00Z",
        "not_after": "2030-01-01T00:00:00Z",
        "days_left": days,
        "fingerprint_sha256": "AA:BB",
        "self_signed": False,
        "hostname_match": True,
        "chain_verified": True,
    }
    fields.update(kw)
    return CertInfo(**fields)


def tls(days: int = 90, **kw: Any) -> TlsInfo:
    return TlsInfo(
        version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", bits=256, cert=cert(days, **kw)
    )


def result(proto: str = "imap", port: int = 143, host: str = "127.0.0.1", **kw: Any) -> ProbeResult:
    """A healthy result: STARTTLS (or implicit TLS) ok, AUTH PLAIN LOGIN after TLS."""
    implicit = proto in ("smtps", "pop3s", "imaps")
    fields: dict[str, Any] = {
        "target": f"{host}:{port}/{proto}",
        "host": host,
        "port": port,
        "proto": proto,
        "state": "ok",
        "address": host,
        "banner": "* OK ready" if "imap" in proto else "+OK ready",
        "implicit_tls": implicit,
        "starttls_offered": None if implicit else True,
        "starttls_ok": None if implicit else True,
        "tls": tls(),
        "capabilities": ["IMAP4rev1", "STARTTLS", "LOGINDISABLED"],
        "capabilities_tls": ["IMAP4rev1", "AUTH=PLAIN", "AUTH=LOGIN"],
        "auth_mechanisms": ["PLAIN", "LOGIN"],
        "timings": {"connect": 0.001, "banner": 0.002, "tls": 0.01, "total": 0.123},
    }
    if proto in ("smtp", "submission", "smtps"):
        fields["banner"] = "220 mx.example.org ESMTP"
        fields["smtp"] = SmtpInfo(
            size_limit=10240000, pipelining=True, eightbitmime=True, ehlo_host="mx.example.org"
        )
    fields.update(kw)
    return ProbeResult(**fields)


def unreachable(proto: str = "smtp", port: int = 25, state: str = "refused") -> ProbeResult:
    return ProbeResult(
        target=f"127.0.0.1:{port}/{proto}",
        host="127.0.0.1",
        port=port,
        proto=proto,
        state=state,
        error="[Errno 111] Connection refused" if state == "refused" else None,
        timings={"total": 0.002},
    )


def report(*results: ProbeResult) -> ProbeReport:
    return ProbeReport(
        results=list(results), started="2025-01-01T00:00:00Z", deadline=10.0, elapsed=0.2
    )
