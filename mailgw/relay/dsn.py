"""Delivery status notifications (bounces and delay warnings), RFC 3464.

Theory of operation
-------------------
``build_dsn`` returns the bytes of one DSN message (CRLF line endings, ready
for ``Spool.enqueue("", [sender], data, source="dsn")``):

* RFC 3464 section 2 / RFC 6522: a ``multipart/report`` with
  ``report-type=delivery-status`` and three parts: a human-readable
  ``text/plain`` explanation, the machine-readable ``message/delivery-status``
  and the original message's header section as ``text/rfc822-headers``
  (RFC 3464 section 2: "the third component ... may be the headers only";
  we never return bodies, so a bounce cannot carry the payload of a spam run
  back to a forged sender).
* The delivery-status part (RFC 3464 section 2.2): per-message fields
  ``Reporting-MTA: dns; <hostname>`` (2.2.2), ``X-Mailgw-Queue-ID`` (an
  extension field, 2.2.1 allows ``X-`` fields), ``Arrival-Date`` (2.2.5);
  then, per recipient (2.3), ``Final-Recipient: rfc822; <address>`` (2.3.2),
  ``Action: failed`` or ``delayed`` (2.3.3), ``Status: x.y.z`` (2.3.4, codes
  from RFC 3463: the enhanced code of the last reply when it has one,
  ``5.4.7`` "delivery time expired" when the lifetime ran out, otherwise
  ``5.0.0``/``4.0.0`` from the reply class), ``Remote-MTA: dns; <host>``
  (2.3.5) when known, ``Diagnostic-Code: smtp; <last reply>`` (2.3.6; a
  failure that was no SMTP reply, like "connection refused", is
  ``X-mailgw; <text>``), ``Last-Attempt-Date`` (2.3.7) and, for ``delayed``,
  ``Will-Retry-Until`` (2.3.8).
* The DSN comes from ``MAILER-DAEMON@<hostname>`` and is sent with the null
  reverse-path ``<>`` (RFC 5321 section 4.5.5), carries ``Auto-Submitted:
  auto-replied`` (RFC 3834 section 5), and the runner never bounces a message
  whose sender is null (no bounce for a bounce).

Everything is plain bytes arithmetic: no ``email`` package generator, whose
line folding and re-encoding of the original headers would change them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, Protocol

from mailgw.protocols.smtp.trace import rfc5322_date

CRLF = b"\r\n"
Action = Literal["failed", "delayed"]

EXPIRED = "delivery time expired"
_REPLY = re.compile(r"^([245])\d\d(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class _Recipient(Protocol):
    address: str
    last_attempt: float | None
    last_reply: str | None


class _Entry(Protocol):
    id: str
    created: float
    sender: str


def status_code(reply: str | None, action: Action, *, expired: bool = False) -> str:
    """The RFC 3463 status for a recipient whose last reply was ``reply``."""
    if expired:
        return "5.4.7"
    match = _REPLY.match(reply or "")
    if match is not None:
        if match.group(2) and match.group(2)[0] == match.group(1):
            return match.group(2)
        return f"{match.group(1)}.0.0"
    # not an SMTP reply: DNS, connection or TLS trouble (RFC 3463 X.4.x network/routing)
    return "4.4.1" if action == "delayed" else "5.4.1"


def diagnostic(reply: str) -> str:
    """``smtp; 550 5.1.1 ...`` for SMTP replies, ``X-mailgw; ...`` for other failures."""
    text = " ".join(_CONTROL.sub(" ", reply).split())
    kind = "smtp" if _REPLY.match(text) else "X-mailgw"
    return f"{kind}; {text}"


def original_headers(original: bytes) -> bytes:
    """The header section of ``original`` with CRLF line ends, no blank line."""
    match = _HEADER_END.search(original)
    head = original[: match.start()] if match is not None else original
    lines = head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return CRLF.join(lines) + CRLF


def _human(
    entry: _Entry,
    recipients: Sequence[_Recipient],
    action: Action,
    hostname: str,
    reason: str | None,
    retry_until: float | None,
) -> str:
    lines = [f"This is the mail system at host {hostname}.", ""]
    if action == "failed":
        lines += [
            "I'm sorry to have to inform you that your message could not",
            "be delivered to one or more recipients. It's attached below.",
        ]
        if reason == EXPIRED:
            lines += ["", "The message stayed in the queue too long: delivery time expired."]
    else:
        until = rfc5322_date(retry_until) if retry_until is not None else "later"
        lines += [
            "####################################################################",
            "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
            "####################################################################",
            "",
            "Your message could not be delivered yet. The mail system will keep",
            f"trying until {until}.",
        ]
    lines.append("")
    for rcpt in recipients:
        reply = " ".join(_CONTROL.sub(" ", rcpt.last_reply or reason or "no reply").split())
        lines.append(f"<{rcpt.address}>: {reply}")
    lines += ["", f"Queue ID: {entry.id}", ""]
    return "\r\n".join(lines)


def build_dsn(
    entry: _Entry,
    failed: Iterable[_Recipient],
    original: bytes,
    *,
    reporting_mta: str,
    action: Action,
    reason: str | None = None,
    remote_mta: Mapping[str, str] | None = None,
    retry_until: float | None = None,
    now: float | None = None,
) -> bytes:
    """One RFC 3464 DSN to ``entry.sender`` about the ``failed`` recipients.

    ``reporting_mta`` is our host name; ``action`` failed (a bounce) or
    delayed (a warning); ``reason`` is ``EXPIRED`` when the lifetime ran out;
    ``remote_mta`` maps a recipient address to the host that answered;
    ``retry_until`` is the end of the lifetime (for ``delayed``).
    """
    recipients = list(failed)
    when = time.time() if now is None else now
    boundary = f"{entry.id}.{os.urandom(6).hex()}/{reporting_mta}"
    expired = reason == EXPIRED
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{entry.sender}>",
        f"Subject: {subject}",
        f"Date: {rfc5322_date(when)}",
        f"Message-ID: <{entry.id}.{int(when)}.{os.urandom(4).hex()}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
        "Content-Transfer-Encoding: 8bit",
    ]
    status = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"X-Mailgw-Queue-ID: {entry.id}",
        f"Arrival-Date: {rfc5322_date(entry.created)}",
    ]
    for rcpt in recipients:
        reply = rcpt.last_reply or reason or "no reply"
        status += [
            "",
            f"Final-Recipient: rfc822; {rcpt.address}",
            f"Action: {action}",
            f"Status: {status_code(rcpt.last_reply, action, expired=expired)}",
        ]
        host = (remote_mta or {}).get(rcpt.address)
        if host:
            status.append(f"Remote-MTA: dns; {host}")
        status.append(f"Diagnostic-Code: {diagnostic(reply)}")
        if rcpt.last_attempt:
            status.append(f"Last-Attempt-Date: {rfc5322_date(rcpt.last_attempt)}")
        if action == "delayed" and retry_until is not None:
            status.append(f"Will-Retry-Until: {rfc5322_date(retry_until)}")
    human = _human(entry, recipients, action, reporting_mta, reason, retry_until)
    delim = f"--{boundary}".encode()
    parts = [
        CRLF.join(line.encode("utf-8", "replace") for line in head),
        b"",
        b"This is a MIME-encapsulated message.",
        b"",
        delim,
        b"Content-Description: Notification",
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        human.encode("utf-8", "replace"),
        delim,
        b"Content-Description: Delivery report",
        b"Content-Type: message/delivery-status",
        b"",
        CRLF.join(line.encode("utf-8", "replace") for line in status),
        b"",
        delim,
        b"Content-Description: Undelivered Message Headers",
        b"Content-Type: text/rfc822-headers",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        original_headers(original),
        delim + b"--",
        b"",
    ]
    return CRLF.join(parts)


def build_notice(
    *, hostname: str, postmaster: str, subject: str, text: str, now: float | None = None
) -> bytes:
    """A plain notice to the postmaster (route held, double bounce dropped, ...)."""
    when = time.time() if now is None else now
    body = "\r\n".join(" ".join(_CONTROL.sub(" ", line).split()) for line in text.splitlines())
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{postmaster}>",
        f"Subject: {' '.join(_CONTROL.sub(' ', subject).split())}",
        f"Date: {rfc5322_date(when)}",
        f"Message-ID: <notice.{int(when)}.{os.urandom(4).hex()}@{hostname}>",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode("utf-8", "replace")
