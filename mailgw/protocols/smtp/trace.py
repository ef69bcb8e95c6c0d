"""Trace headers added on final delivery: Return-Path, Delivered-To, Received.

Theory of operation
-------------------
* ``Received:`` (RFC 5321 section 4.4) records each hop::

      Received: from <helo> ([<ip>])
      \\t(using <tls details>)
      \\tby <our host> (mailgw) with <protocol> id <queue id>
      \\tfor <recipient>; <RFC 5322 date>

  ``from`` names what the client said in HELO/EHLO and, in the TCP-info
  comment, its IP as an address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``,
  RFC 5321 section 4.1.3); we do no reverse DNS lookup.  ``with`` is the
  protocol keyword of RFC 3848: SMTP (HELO), ESMTP (EHLO), ESMTPS (+STARTTLS or
  implicit TLS), ESMTPA (+AUTH), ESMTPSA (both); RFC 6531 section 4.3 replaces
  ESMTP with UTF8SMTP for SMTPUTF8 transactions.  ``for`` is only written when
  the transaction has exactly one recipient (RFC 5321 section 4.4 allows it;
  naming every recipient in a shared header would disclose Bcc recipients).
  The date is RFC 5322 section 3.3 local time with numeric zone.
* ``Return-Path:`` (RFC 5321 section 4.4) is added by the final delivery
  agent and holds the reverse-path, ``<>`` for the null sender.
* ``Delivered-To:`` names the recipient address this copy was delivered for
  (one per mailbox copy; Postfix and Dovecot do the same; loop detection).

Values that came from the client are cleaned: control characters (a bare CR
in HELO could start a forged header in a lenient reader) become ``?``.
Headers are folded with CRLF + TAB; the result is UTF-8 (RFC 6532 allows it in
SMTPUTF8 messages; in others the values are ASCII anyway).
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import re
import time

CRLF = "\r\n"
FOLD = "\r\n\t"

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_TOKEN_BAD = re.compile(r"[\x00-\x20\x7f();\\\ud800-\udfff]")


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)


def _token(text: str) -> str:
    """A single header token: no spaces, parentheses or semicolons."""
    return _TOKEN_BAD.sub("?", text) or "unknown"


@functools.lru_cache(maxsize=1024)
def address_literal(ip: str) -> str:
    """``192.0.2.1`` -> ``[192.0.2.1]``; ``2001:db8::1`` -> ``[IPv6:2001:db8::1]``."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return f"[{_token(ip)}]"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return f"[{addr.ipv4_mapped}]"
        return f"[IPv6:{addr.compressed}]"
    return f"[{addr}]"


def with_protocol(*, esmtp: bool, tls: bool, auth: bool, smtputf8: bool = False) -> str:
    """The RFC 3848 / RFC 6531 ``with`` keyword for a transaction."""
    if not esmtp:
        return "SMTP"
    base = "UTF8SMTP" if smtputf8 else "ESMTP"
    suffix = ("S" if tls else "") + ("A" if auth else "")
    return base + suffix


_last_date: tuple[int, str] = (-1, "")


def rfc5322_date(when: float | None = None) -> str:
    """``Tue, 01 Jul 2025 10:00:00 +0200`` (local time, numeric zone).

    The text has whole seconds, so the current time's is computed once per
    second (``formatdate`` with a local zone costs more than the rest of the
    ``Received`` header).
    """
    global _last_date
    if when is not None:
        return email.utils.formatdate(when, localtime=True)
    secs = int(time.time())
    cached = _last_date  # one read: another thread may replace it meanwhile
    if cached[0] != secs:
        cached = _last_date = (secs, email.utils.formatdate(secs, localtime=True))
    return cached[1]


def received_header(
    *,
    helo: str | None,
    peer_ip: str,
    by_host: str,
    protocol: str,
    queue_id: str,
    recipient: str | None = None,
    tls: str | None = None,
    when: float | None = None,
) -> str:
    """The ``Received:`` header line (folded, without the final CRLF)."""
    parts = [f"Received: from {_token(helo or 'unknown')} ({address_literal(peer_ip)})"]
    if tls:
        parts.append(f"(using {_clean(tls).replace('(', '').replace(')', '')})")
    parts.append(f"by {_token(by_host)} (mailgw) with {_token(protocol)} id {_token(queue_id)}")
    date = rfc5322_date(when)
    if recipient is not None:
        parts.append(f"for <{_clean(recipient)}>; {date}")
    else:
        parts[-1] += f"; {date}"
    return FOLD.join(parts)


def trace_headers(return_path: str, delivered_to: str, received: str) -> bytes:
    """``Return-Path``, ``Delivered-To`` and the given ``Received`` line, CRLF-ended."""
    rp = return_path.strip()
    if rp.startswith("<") and rp.endswith(">"):
        rp = rp[1:-1]
    text = (
        f"Return-Path: <{_clean(rp)}>{CRLF}"
        f"Delivered-To: {_clean(delivered_to)}{CRLF}"
        f"{received}{CRLF}"
    )
    return text.encode("utf-8", "replace")
