"""Trace headers (mailgw.protocols.smtp.trace) and reply constants."""

from __future__ import annotations

import email.utils
import re
import types

import pytest

from mailgw.protocols.smtp import replies
from mailgw.protocols.smtp.trace import (
    address_literal,
    received_header,
    rfc5322_date,
    trace_headers,
    with_protocol,
)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"esmtp": False, "tls": False, "auth": False}, "SMTP"),
        ({"esmtp": False, "tls": True, "auth": True}, "SMTP"),
        ({"esmtp": True, "tls": False, "auth": False}, "ESMTP"),
        ({"esmtp": True, "tls": True, "auth": False}, "ESMTPS"),
        ({"esmtp": True, "tls": False, "auth": True}, "ESMTPA"),
        ({"esmtp": True, "tls": True, "auth": True}, "ESMTPSA"),
        ({"esmtp": True, "tls": True, "auth": True, "smtputf8": True}, "UTF8SMTPSA"),
        ({"esmtp": True, "tls": False, "auth": False, "smtputf8": True}, "UTF8SMTP"),
    ],
)
def test_with_protocol(kw: dict[str, bool], expected: str) -> None:
    assert with_protocol(**kw) == expected


@pytest.mark.parametrize(
    ("ip", "literal"),
    [
        ("192.0.2.1", "[192.0.2.1]"),
        ("2001:db8::1", "[IPv6:2001:db8::1]"),
        ("::ffff:192.0.2.7", "[192.0.2.7]"),
        ("fe80::1%eth0", "[IPv6:fe80::1]"),
        ("not an ip", "[not?an?ip]"),
    ],
)
def test_address_literal(ip: str, literal: str) -> None:
    assert address_literal(ip) == literal


def test_received_header_shape() -> None:
    h = received_header(
        helo="client.example",
        peer_ip="192.0.2.1",
        by_host="mx.example.org",
        protocol="ESMTPS",
        queue_id="ABC123",
        recipient="alice@example.org",
        tls="TLSv1.3 with cipher TLS_AES_256_GCM_SHA384",
        when=0.0,
    )
    lines = h.split("\r\n\t")
    assert lines[0] == "Received: from client.example ([192.0.2.1])"
    assert lines[1] == "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)"
    assert lines[2] == "by mx.example.org (mailgw) with ESMTPS id ABC123"
    assert lines[3].startswith("for <alice@example.org>; ")
    date = lines[3].split("; ", 1)[1]
    assert email.utils.parsedate_to_datetime(date).timestamp() == 0.0
    assert all(len(line) <= 78 for line in lines)
    assert "\n" not in h.replace("\r\n\t", "")


def test_received_header_without_for_and_hostile_helo() -> None:
    h = received_header(
        helo="evil\rInjected: yes (x);",
        peer_ip="::1",
        by_host="mx",
        protocol="SMTP",
        queue_id="1",
    )
    assert "\r" not in h.replace("\r\n\t", "")
    assert h.startswith("Received: from evil?Injected:?yes??x?? ([IPv6:::1])")
    assert " for " not in h
    assert re.search(r"id 1; \w{3}, \d{2} \w{3} \d{4} ", h)


def test_trace_headers() -> None:
    out = trace_headers("<>", "alice@example.org", "Received: from x ([127.0.0.1])")
    assert out == (
        b"Return-Path: <>\r\nDelivered-To: alice@example.org\r\nReceived: from x ([127.0.0.1])\r\n"
    )
    out = trace_headers("bob@example.net", "j\u00f6rg@example.org", "Received: x")
    assert out.startswith(b"Return-Path: <bob@example.net>\r\n")
    assert "jörg".encode() in out


def test_reply_constants_have_codes() -> None:
    for name in dir(replies):
        if not name.startswith("R") or not name[1:4].isdigit():
            continue
        text = getattr(replies, name)
        assert text[:3] == name[1:4], name
    assert replies.R550_NO_SUCH_USER.format(addr="x@y").startswith("550 5.1.1 <x@y>")
    assert replies.R451_NO_RELAY_QUEUE.startswith("451 4.3.2 ")
    assert replies.R550_RELAY_DENIED.startswith("550 5.7.1 ")
    assert replies.R554_BARE_LF.startswith("554 5.6.11 ")
    assert "bare CR or LF" in replies.R554_BARE_LF


def test_rfc5322_date_follows_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import mailgw.protocols.smtp.trace as trace

    now = [1_751_356_800.25]
    monkeypatch.setattr(trace, "time", types.SimpleNamespace(time=lambda: now[0]))
    first = rfc5322_date()
    assert first == email.utils.formatdate(1_751_356_800, localtime=True)
    now[0] += 0.5  # same second: same text
    assert rfc5322_date() == first
    now[0] += 1.0  # next second: new text
    assert rfc5322_date() == email.utils.formatdate(1_751_356_801, localtime=True)
    assert rfc5322_date() != first
    assert rfc5322_date(86_400.0) == email.utils.formatdate(86_400.0, localtime=True)
