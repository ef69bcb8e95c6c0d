"""Reading the few header fields the migration needs (RFC 5322).

``message_date``: for sources without an INTERNALDATE (POP3, mbox) the date of
the last ``Received:`` field (RFC 5321 4.4: the date after the final ``;``),
else ``Date:`` (RFC 5322 3.6.1), else None.  ``message_id``: the ``Message-ID``
field (RFC 5322 3.6.4), unfolded and stripped, or None.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime

_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$")


def header_fields(head: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded value) pairs of the header block in ``head``."""
    fields: list[tuple[str, str]] = []
    name: str | None = None
    value = b""
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t") and name is not None:
            value += b" " + line.strip()
            continue
        if name is not None:
            fields.append((name, value.decode("utf-8", "replace").strip()))
            name = None
        m = _FIELD.match(line)
        if m:
            name = m.group(1).decode("ascii").lower()
            value = m.group(2).strip()
    if name is not None:
        fields.append((name, value.decode("utf-8", "replace").strip()))
    return fields


def _parse_date(text: str) -> datetime | None:
    try:
        dt = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return dt


def message_date(head: bytes) -> datetime | None:
    fields = header_fields(head)
    received = [v for n, v in fields if n == "received"]
    if received:
        last = received[-1]
        if ";" in last:
            dt = _parse_date(last.rsplit(";", 1)[1])
            if dt is not None:
                return dt
    for n, v in fields:
        if n == "date":
            dt = _parse_date(v)
            if dt is not None:
                return dt
    return None


def message_id(head: bytes) -> str | None:
    for n, v in header_fields(head):
        if n == "message-id":
            v = v.strip()
            return v or None
    return None


__all__ = ["header_fields", "message_date", "message_id"]
