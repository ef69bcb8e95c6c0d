"""dovecot-uidlist and dovecot-keywords, read and written as Dovecot 2.3 does.

dovecot-uidlist (Dovecot's maildir-uidlist.c):

* Version 3 header ``3 V<uidvalidity> N<nextuid> G<mailbox guid hex>`` plus
  other ``<key><value>`` fields, kept as they are.
* One line per message ``<uid> [<key><value> ...] :<key>`` with UIDs strictly
  ascending; ``<key>`` is the file's base name (up to the ``:2,`` info).
* The next UID is max(N, last UID + 1): Dovecot appends new lines without
  touching the header, and so do we; the header is brought up to date
  whenever the file is rewritten (temp, fsync, rename).
* A last line without its newline is a write in progress and is ignored, as
  Dovecot's line reader does.  Version 1 (``1 <uidvalidity> <nextuid>``,
  ``<uid> <key>``) is read too.

dovecot-keywords: lines ``<index> <name>``; index 0 is letter ``a``, up to
25 (``z``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

MAX_KEYWORDS = 26


@dataclass
class UidRecord:
    uid: int
    key: str
    ext: str = ""  # extension fields between the UID and ":", kept verbatim


@dataclass
class UidList:
    uidvalidity: int
    next_uid: int
    guid: str = field(default_factory=lambda: uuid.uuid4().hex)
    header_ext: list[str] = field(default_factory=list)
    records: list[UidRecord] = field(default_factory=list)

    @property
    def last_uid(self) -> int:
        return self.records[-1].uid if self.records else 0

    def effective_next_uid(self) -> int:
        return max(self.next_uid, self.last_uid + 1)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def parse_uidlist(data: bytes) -> UidList | None:
    """Parse a dovecot-uidlist; None when the header is missing or unusable."""
    lines = data.split(b"\n")
    lines.pop()  # text after the last newline is incomplete (or empty)
    if not lines:
        return None
    header = _decode(lines[0]).split()
    if not header or header[0] not in ("1", "3"):
        return None
    version = int(header[0])
    ul = UidList(uidvalidity=0, next_uid=0, guid="")
    if version == 1:
        if len(header) != 3 or not header[1].isdigit() or not header[2].isdigit():
            return None
        ul.uidvalidity, ul.next_uid = int(header[1]), int(header[2])
    else:
        for fieldtext in header[1:]:
            k, v = fieldtext[0], fieldtext[1:]
            if k == "V" and v.isdigit():
                ul.uidvalidity = int(v)
            elif k == "N" and v.isdigit():
                ul.next_uid = int(v)
            elif k == "G":
                ul.guid = v
            else:
                ul.header_ext.append(fieldtext)
    if ul.uidvalidity == 0 or ul.next_uid == 0:
        return None
    if not ul.guid:
        ul.guid = uuid.uuid4().hex
    prev = 0
    for raw in lines[1:]:
        rec = _parse_record(_decode(raw), version)
        if rec is None or rec.uid <= prev:
            continue  # broken or out of order: skip the line, keep the rest
        prev = rec.uid
        ul.records.append(rec)
    return ul


def _parse_record(line: str, version: int) -> UidRecord | None:
    uid_s, sep, rest = line.partition(" ")
    if not sep or not uid_s.isdigit() or int(uid_s) == 0 or int(uid_s) >= 2**32 - 1:
        return None
    if version == 1:
        key = rest.strip()
        ext = ""
    else:
        ext_s, colon, key = rest.partition(":")
        if not colon:
            return None
        ext = " ".join(ext_s.split())
    if not key or "/" in key:
        return None
    return UidRecord(int(uid_s), key, ext)


def format_record(rec: UidRecord) -> str:
    return f"{rec.uid} {rec.ext} :{rec.key}\n" if rec.ext else f"{rec.uid} :{rec.key}\n"


def format_uidlist(ul: UidList) -> bytes:
    fields = [f"V{ul.uidvalidity}", f"N{ul.effective_next_uid()}", f"G{ul.guid}", *ul.header_ext]
    text = "3 " + " ".join(fields) + "\n" + "".join(format_record(r) for r in ul.records)
    return text.encode("utf-8", "surrogateescape")


def format_records(records: list[UidRecord]) -> bytes:
    return "".join(format_record(r) for r in records).encode("utf-8", "surrogateescape")


def parse_keywords(data: bytes) -> dict[int, str]:
    """dovecot-keywords -> {index: name}; malformed lines are skipped."""
    out: dict[int, str] = {}
    for raw in data.split(b"\n"):
        idx_s, sep, name = _decode(raw).partition(" ")
        if sep and idx_s.isdigit() and int(idx_s) < MAX_KEYWORDS and name:
            out[int(idx_s)] = name
    return out


def format_keywords(keywords: dict[int, str]) -> bytes:
    text = "".join(f"{i} {name}\n" for i, name in sorted(keywords.items()))
    return text.encode("utf-8", "surrogateescape")


def keyword_letter(index: int) -> str:
    return chr(ord("a") + index)
