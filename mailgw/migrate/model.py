"""The records endpoints and the engine exchange (see docs/contracts.md, mailgw.migrate).

Folder names travel as tuples of Unicode parts (``("INBOX",)``,
``("Projects", "2024")``, ``("Données",)``): no separator, no namespace prefix,
no modified UTF-7.  Each endpoint decodes and encodes its own names.
Flags travel in IMAP spelling: system flags ``\\Seen \\Answered \\Flagged
\\Deleted \\Draft`` and keywords (``$Forwarded``, ``Work``); never ``\\Recent``.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mailgw.migrate.body import MessageBody

FolderName = tuple[str, ...]
INBOX: FolderName = ("INBOX",)
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


@dataclass(frozen=True)
class TlsOptions:
    """How an endpoint uses TLS.

    ``insecure``: do not verify the certificate or host name.  ``ca_file``: trust
    these CAs instead of the system store.  ``allow_plaintext``: log in without
    TLS when a plain ``imap://``/``pop3://`` server offers no STARTTLS (always
    allowed to a loopback address).
    """

    insecure: bool = False
    ca_file: Path | None = None
    allow_plaintext: bool = False


@functools.lru_cache(maxsize=8)
def client_context(tls: TlsOptions) -> ssl.SSLContext:
    """The client ``SSLContext`` for ``tls``, made once per process and shared by every
    connection (loading the system CA store costs tens of milliseconds each time)."""
    ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(frozen=True)
class FolderInfo:
    name: FolderName
    # RFC 6154: "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", ...
    special_use: str | None = None
    selectable: bool = True


@dataclass(frozen=True)
class MessageMeta:
    """What a source knows of a message before fetching it.

    ``key``: stable within the folder (and, for IMAP, the UIDVALIDITY): IMAP UID as
    decimal text, POP3 UIDL, Maildir base name (before ``:2,``), mbox
    ``<sha256>:<n>`` (n-th message with that hash in the file).
    ``size``: the canonical (CRLF) size where known (RFC822.SIZE, POP3 LIST), else
    the stored size; only for filters and progress.  ``internaldate``: tz-aware,
    None when only the fetched headers can tell (POP3, mbox).
    """

    key: str
    size: int
    flags: frozenset[str] = frozenset()
    internaldate: datetime | None = None


@dataclass
class FolderSnapshot:
    uidvalidity: int  # 0 where the source has none (POP3, mbox)
    messages: list[MessageMeta]


@dataclass
class FetchedMessage:
    """A fetched message.  ``meta.internaldate`` is filled in (derived from the
    headers for POP3 and mbox, see :func:`mailgw.migrate.headers.message_date`;
    None only when nothing tells a date).  The consumer closes ``body``."""

    meta: MessageMeta
    body: MessageBody


@dataclass(frozen=True)
class DestFolderState:
    """A destination folder after ``open_folder``.

    ``uidvalidity``/``uidnext``: IMAP values; Maildir: dovecot-uidlist's; mbox: 1 and
    count + 1 (ids are 1-based positions).  ``permanent_flags``: None means any flag
    and keyword is kept; otherwise the set kept, with ``"\\*"`` meaning new keywords
    are allowed (RFC 3501 7.1 PERMANENTFLAGS).  ``append_limit``: RFC 7889, None if
    unknown.
    """

    uidvalidity: int
    uidnext: int
    count: int
    permanent_flags: frozenset[str] | None = None
    append_limit: int | None = None


@dataclass(frozen=True)
class DestMessage:
    """A destination message as listed for matching: id (UID or mbox position),
    canonical size, Message-ID (angle brackets kept, None if absent) and flags."""

    uid: int
    size: int
    message_id: str | None
    flags: frozenset[str] = frozenset()


@dataclass
class AppendItem:
    body: MessageBody
    flags: frozenset[str]
    internaldate: datetime | None


@dataclass(frozen=True)
class AppendResult:
    """Per item: ok with the new id (None when the destination cannot tell:
    no UIDPLUS), or not ok with the server's reason."""

    ok: bool
    uid: int | None = None
    error: str | None = None


@dataclass
class MigrateOptions:
    """What the user asked for (filled by the CLI, read by the engine)."""

    include: list[str] = field(default_factory=list)  # regexes on the source name joined with "/"
    exclude: list[str] = field(default_factory=list)
    # "Old/Name" -> "New/Name" ("/"-joined)
    folder_map: dict[str, str] = field(default_factory=dict)
    dst_folder: str | None = None  # POP3 (single-folder) sources land here; default INBOX
    since: datetime | None = None  # INTERNALDATE >= since
    before: datetime | None = None  # INTERNALDATE < before
    min_size: int | None = None
    max_size: int | None = None
    dry_run: bool = False
    delete_source: bool = False
    verify: bool = False
    jobs: int = 1  # parallel connection pairs (folders spread over them)
    batch_messages: int = 50  # per FETCH / MULTIAPPEND
    batch_bytes: int = 16 << 20


class FolderProgress(Protocol):
    def advance(self, messages: int, nbytes: int) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """Progress display; the engine calls ``folder(...)`` when it starts copying a
    folder (``messages``/``nbytes``: what it plans to copy) and ``advance`` per
    message handled (copied, skipped or failed), ``close`` at the end."""

    def folder(self, account: str, folder: str, messages: int, nbytes: int) -> FolderProgress: ...


class _NullFolderProgress:
    def advance(self, messages: int, nbytes: int) -> None:
        return None

    def close(self) -> None:
        return None


class NullProgress:
    """No display (not a TTY, ``--quiet``, tests)."""

    def folder(self, account: str, folder: str, messages: int, nbytes: int) -> FolderProgress:
        return _NullFolderProgress()


__all__ = [
    "INBOX",
    "SYSTEM_FLAGS",
    "AppendItem",
    "AppendResult",
    "DestFolderState",
    "DestMessage",
    "FetchedMessage",
    "FolderInfo",
    "FolderName",
    "FolderProgress",
    "FolderSnapshot",
    "MessageMeta",
    "MigrateOptions",
    "NullProgress",
    "Progress",
    "TlsOptions",
    "client_context",
]
