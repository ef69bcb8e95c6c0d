"""RFC 3464 DSNs: structure, fields, status codes, headers only of the original."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from mailgw.relay.dsn import EXPIRED, build_dsn, build_notice, diagnostic, status_code

ORIGINAL = (
    b"Received: from a by b; Tue, 1 Jul 2025 10:00:00 +0000\r\n"
    b"From: Bob <bob@office.example>\r\nTo: x@remote.example\r\nSubject: Quarterly\r\n"
    b"Message-ID: <orig@office.example>\r\n\r\nSECRET BODY\r\n"
)


@dataclass
class Entry:
    id: str = "0123456789ABCDEF"
    created: float = 1_700_000_000.0
    sender: str = "bob@office.example"


@dataclass
class Rcpt:
    address: str
    last_reply: str | None
    last_attempt: float | None = 1_700_000_100.0


def parse(data: bytes) -> Any:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def status_groups(msg: Any) -> list[dict[str, str]]:
    part = msg.get_payload()[1]
    assert part.get_content_type() == "message/delivery-status"
    return [dict(block.items()) for block in part.get_payload()]


def test_failed_dsn_structure() -> None:
    data = build_dsn(
        Entry(),
        [Rcpt("x@remote.example", "550 5.1.1 <x@remote.example>: unknown user")],
        ORIGINAL,
        reporting_mta="mail.office.example",
        action="failed",
        remote_mta={"x@remote.example": "mx.remote.example"},
    )
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    msg = parse(data)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mail.office.example>"
    assert msg["To"].addresses[0].addr_spec == "bob@office.example"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"].endswith("@mail.office.example>")
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    human, _, headers = msg.get_payload()
    assert human.get_content_type() == "text/plain"
    assert "<x@remote.example>: 550 5.1.1" in human.get_content()
    per_message, per_rcpt = status_groups(msg)
    assert per_message["Reporting-MTA"] == "dns; mail.office.example"
    assert per_message["X-Mailgw-Queue-ID"] == "0123456789ABCDEF"
    assert "Arrival-Date" in per_message
    assert per_rcpt["Final-Recipient"] == "rfc822; x@remote.example"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.remote.example"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 <x@remote.example>: unknown user"
    assert "Last-Attempt-Date" in per_rcpt
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"Message-ID: <orig@office.example>\r\n" in data
    assert b"SECRET BODY" not in data


def test_several_recipients_and_expiry() -> None:
    data = build_dsn(
        Entry(),
        [Rcpt("a@r.example", "451 4.4.1 connection refused"), Rcpt("b@r.example", None)],
        ORIGINAL,
        reporting_mta="mta.example",
        action="failed",
        reason=EXPIRED,
    )
    _, a, b = status_groups(parse(data))
    assert a["Status"] == b["Status"] == "5.4.7"
    assert a["Diagnostic-Code"] == "smtp; 451 4.4.1 connection refused"
    assert b["Diagnostic-Code"] == f"X-mailgw; {EXPIRED}"
    assert b"delivery time expired" in data


def test_delay_warning() -> None:
    data = build_dsn(
        Entry(),
        [Rcpt("a@r.example", "421 4.3.2 busy")],
        ORIGINAL,
        reporting_mta="mta.example",
        action="delayed",
        retry_until=1_700_432_000.0,
    )
    msg = parse(data)
    assert msg["Subject"].startswith("Delayed Mail")
    _, a = status_groups(msg)
    assert (a["Action"], a["Status"]) == ("delayed", "4.3.2")
    assert "Will-Retry-Until" in a
    assert "WARNING ONLY" in msg.get_payload()[0].get_content()


def test_header_injection_from_replies_is_neutralised() -> None:
    data = build_dsn(
        Entry(),
        [Rcpt("a@r.example", "550 bad\r\nX-Injected: yes")],
        ORIGINAL,
        reporting_mta="mta.example",
        action="failed",
    )
    assert b"\r\nX-Injected" not in data


def test_bare_lf_original_headers_become_crlf() -> None:
    data = build_dsn(
        Entry(),
        [Rcpt("a@r.example", "550 no")],
        b"Subject: x\nFrom: y\n\nbody\n",
        reporting_mta="m.example",
        action="failed",
    )
    assert b"Subject: x\r\nFrom: y\r\n" in data and b"body" not in data


@pytest.mark.parametrize(
    ("reply", "action", "expected"),
    [
        ("550 5.1.1 unknown", "failed", "5.1.1"),
        ("550 unknown", "failed", "5.0.0"),
        ("550 4.1.1 mismatched class", "failed", "5.0.0"),
        ("452-4.2.2 mailbox full", "delayed", "4.2.2"),
        ("connection refused", "failed", "5.4.1"),
        ("connection refused", "delayed", "4.4.1"),
        (None, "failed", "5.4.1"),
    ],
)
def test_status_code(reply: str | None, action: str, expected: str) -> None:
    assert status_code(reply, action) == expected  # type: ignore[arg-type]


def test_diagnostic_types() -> None:
    assert diagnostic("550 5.1.1 no") == "smtp; 550 5.1.1 no"
    assert diagnostic("Connection refused") == "X-mailgw; Connection refused"


def test_notice() -> None:
    data = build_notice(
        hostname="m.example",
        postmaster="pm@m.example",
        subject="route held\r\nBcc: x",
        text="line one\nline two",
    )
    msg = parse(data)
    assert msg["To"].addresses[0].addr_spec == "pm@m.example" and msg["Bcc"] is None
    assert msg.get_content().replace("\r\n", "\n") == "line one\nline two\n"
