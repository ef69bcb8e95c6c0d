"""Helpers of the ``mailgw migrate`` interoperability tests (and ``bench/migrate.py``).

Theory of operation
-------------------
*Corpus.*  :func:`build_corpus` makes a deterministic, deliberately awkward set
of messages (:class:`CorpusMessage`): nested and non-ASCII folder names (one
with ``&``, which modified UTF-7 escapes, RFC 3501 5.1.3), an empty folder, a
SPECIAL-USE ``\\Sent`` folder (RFC 6154), raw 8-bit and RFC 2047 encoded
headers, messages without Message-ID, two messages with one Message-ID and
different bodies, two byte-identical messages in one folder, every system flag
and some keywords (RFC 3501 2.3.2), INTERNALDATEs before 2000 in several time
zones and a multi-MiB base64 attachment.  Every line ends in CRLF, so the
bytes appended are the canonical bytes the migration hashes.

*Seeding.*  :func:`seed_imap` creates the folders (every level, in order) and
APPENDs each message with its flags and INTERNALDATE (RFC 3501 6.3.11) through
imapclient, which encodes folder names in modified UTF-7.

*Reading back.*  :func:`dump_account` reads an IMAP account completely:
``LIST "" "*"`` (special-use attributes as the server lists them), then per
selectable folder ``EXAMINE`` and ``UID FETCH (BODY.PEEK[] FLAGS INTERNALDATE)``
in batches: the SHA-256 of each message's canonical CRLF bytes, its flags
without ``\\Recent`` and its INTERNALDATE as a UTC instant (servers keep the
instant, not always the zone: Maildir stores it as the file's mtime).

*Comparing.*  :func:`compare_accounts` maps each source folder to a destination
folder (explicit map, else the destination folder with the same special use,
else the same name parts), compares the two multisets of (hash, flags, date)
and returns readable difference lines (empty: identical).  A message copied
twice shows as an extra one.  Destination folders nothing maps to must be
empty (servers create their own empty ``Trash``/``Drafts``...).

*Running the CLI.*  :func:`migrate_argv` / :func:`run_migrate` /
:func:`start_migrate` run ``python -m mailgw migrate SOURCE DEST`` with the
passwords in 0600 files (``--src-password-file``/``--dst-password-file``,
never argv) and ``--report-json``; :class:`MigrateRun` carries the exit code,
output and the parsed report.

*Killing mid-run.*  :class:`PausableProxy` forwards a TCP port; ``pause()``
freezes every connection, so a test can stop the copier at a known point
(after N messages reached the destination, see :func:`maildir_count`) and
SIGKILL it while it waits for the server.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from tests.e2e_util import subprocess_env

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent.parent
FolderName = tuple[str, ...]
INBOX: FolderName = ("INBOX",)
SENT: FolderName = ("Sent",)
SENT_ELSEWHERE = "Sent Messages"  # the destination's \Sent folder in the tests
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
KEYWORDS = ("$Forwarded", "$MDNSent", "Work", "Project_X")
FETCH_BATCH = 40
CLI_TIMEOUT = 600.0

# every folder of the test corpus, parents before children; no part holds "." or "/"
# (one Dovecot uses each as its separator)
FOLDERS: tuple[FolderName, ...] = (
    INBOX,
    SENT,
    ("Projects",),
    ("Projects", "2024"),
    ("Projects", "2024", "Q1"),
    ("Données",),
    ("Архив",),
    ("Архив", "2019"),
    ("Listes & Co",),
    ("Empty",),
)


def special_use_conf(folder: str, use: str = "\\Sent", *, create: bool = False) -> str:
    """Dovecot ``extra_conf`` declaring ``folder`` special-use (merged into ``namespace inbox``)."""
    auto = "  auto = create\n" if create else ""
    return f'namespace inbox {{\n mailbox "{folder}" {{\n  special_use = \\{use}\n{auto} }}\n}}\n'


# --- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusMessage:
    folder: FolderName
    data: bytes  # CRLF line ends
    flags: tuple[str, ...]
    date: datetime  # INTERNALDATE, tz-aware
    label: str  # what the case is about (shown in diffs)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _crlf(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _message(
    n: int,
    subject: str | bytes,
    body: str | bytes,
    date: datetime,
    *,
    message_id: str | None = "",
    extra: Sequence[str | bytes] = (),
    content_type: str = "text/plain; charset=us-ascii",
    cte: str = "7bit",
) -> bytes:
    """A message; ``message_id=""`` makes one up, None leaves the header out."""
    subj = subject if isinstance(subject, bytes) else subject.encode()
    lines: list[bytes] = [
        f"From: Sender {n} <sender{n}@remote.test>".encode(),
        b"To: Alice <alice@example.org>",
        b"Subject: " + subj,
        f"Date: {email.utils.format_datetime(date)}".encode(),
    ]
    if message_id == "":
        message_id = f"<corpus-{n}@remote.test>"
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}".encode())
    lines += [x if isinstance(x, bytes) else x.encode() for x in extra]
    lines += [
        b"MIME-Version: 1.0",
        f"Content-Type: {content_type}".encode(),
        f"Content-Transfer-Encoding: {cte}".encode(),
    ]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return head + _crlf(body)


def _attachment(n: int, date: datetime, rng: random.Random, size: int) -> bytes:
    payload = base64.b64encode(rng.randbytes(size))
    b64 = b"\r\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    boundary = f"=-=corpus-{n}=-="
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"See the attachment ({size} bytes).\r\n"
        f'--{boundary}\r\nContent-Type: application/octet-stream; name="blob{n}.bin"\r\n'
        f'Content-Disposition: attachment; filename="blob{n}.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    body += b64 + f"\r\n--{boundary}--\r\n".encode()
    return _message(
        n,
        f"attachment of {size // 1024} KiB",
        body,
        date,
        content_type=f'multipart/mixed; boundary="{boundary}"',
    )


def _date(rng: random.Random) -> datetime:
    """A whole-second instant between 1994 and 2024 in one of several zones."""
    tz = timezone(timedelta(minutes=rng.choice((-480, -300, 0, 60, 120, 330, 600))))
    base = datetime(1994, 1, 1, tzinfo=UTC)
    return (base + timedelta(seconds=rng.randrange(30 * 365 * 86400))).astimezone(tz)


def build_corpus(*, big_bytes: int = 5 << 20, seed: int = 5) -> list[CorpusMessage]:
    """The varied test corpus (about 60 messages, one of ``big_bytes`` of attachment)."""
    rng = random.Random(seed)
    out: list[CorpusMessage] = []
    n = 0

    def add(
        folder: FolderName, data: bytes, flags: Iterable[str], date: datetime, label: str
    ) -> None:
        out.append(CorpusMessage(folder, data, tuple(flags), date, label))

    pre2000 = [
        datetime(1996, 2, 29, 13, 37, 0, tzinfo=timezone(timedelta(hours=-8))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=1))),
        datetime(1971, 6, 15, 8, 0, 0, tzinfo=UTC),
        datetime(1998, 7, 4, 12, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ]
    # plain messages spread over the folders, each system flag alone and all together
    flag_sets: list[tuple[str, ...]] = [
        (),
        ("\\Seen",),
        ("\\Answered", "\\Seen"),
        ("\\Flagged",),
        ("\\Deleted", "\\Seen"),
        ("\\Draft",),
        (*SYSTEM_FLAGS,),
        ("\\Seen", "$Forwarded"),
        ("Work", "Project_X"),
        ("\\Flagged", "$MDNSent", "Work"),
    ]
    spread = [f for f in FOLDERS if f != ("Empty",)]
    for i in range(36):
        n += 1
        folder = spread[i % len(spread)]
        date = pre2000[i] if i < len(pre2000) else _date(rng)
        text = "".join(f"line {k} of message {n}: {rng.randbytes(12).hex()}\n" for k in range(i))
        add(
            folder,
            _message(n, f"plain message {n}", text or "short\n", date),
            flag_sets[i % len(flag_sets)],
            date,
            "plain",
        )
    # raw 8-bit header and body (RFC 6532 style), and RFC 2047 encoded words
    n += 1
    d = _date(rng)
    add(
        INBOX,
        _message(
            n,
            "Grüße aus Köln – ☃".encode(),
            "Ünïcödé body, 8bit.\n",
            d,
            extra=["X-Note: naïve café".encode()],
            content_type="text/plain; charset=utf-8",
            cte="8bit",
        ),
        ("\\Seen",),
        d,
        "8-bit headers",
    )
    n += 1
    d = _date(rng)
    add(
        ("Données",),
        _message(
            n,
            "=?UTF-8?B?w4ljaMOpYW5jZSBkZSBsYSBmYWN0dXJl?=",
            "Le corps en latin-1: caf\xe9\n".encode("latin-1"),
            d,
            extra=["Cc: =?ISO-8859-1?Q?Andr=E9_Pirard?= <andre@remote.test>"],
            content_type="text/plain; charset=iso-8859-1",
            cte="8bit",
        ),
        ("\\Answered",),
        d,
        "encoded headers, latin-1 body",
    )
    # long folded header, empty body
    n += 1
    d = _date(rng)
    folded = "X-Long: " + "\r\n\t".join(f"part{k}-{'x' * 60}" for k in range(8))
    add(INBOX, _message(n, "folded header", "", d, extra=[folded]), (), d, "folded, empty body")
    # no Message-ID (three of them, one pre-2000)
    for folder, d in ((INBOX, _date(rng)), (SENT, pre2000[1]), (("Архив", "2019"), _date(rng))):
        n += 1
        add(
            folder,
            _message(n, f"no message-id {n}", f"body {n}\n", d, message_id=None),
            ("\\Seen",),
            d,
            "no Message-ID",
        )
    # one Message-ID, two different bodies (same folder)
    for k in range(2):
        n += 1
        d = _date(rng)
        add(
            ("Projects",),
            _message(n, "same id", f"version {k} of the text\n", d, message_id="<dup@remote.test>"),
            ("\\Seen",) if k else (),
            d,
            f"duplicate Message-ID #{k}",
        )
    # two byte-identical messages in one folder (a multiset: both must arrive)
    n += 1
    d = _date(rng)
    twin = _message(n, "identical twins", "the very same bytes\n", d)
    for k in range(2):
        add(INBOX, twin, ("\\Flagged",), d, f"identical twin #{k}")
    # the same message in two folders
    n += 1
    d = _date(rng)
    both = _message(n, "in two folders", "copied around\n", d)
    add(("Projects", "2024"), both, (), d, "same in two folders")
    add(("Listes & Co",), both, ("\\Seen",), d, "same in two folders")
    # a Received header whose date differs from Date: (sources without INTERNALDATE use it)
    n += 1
    d = _date(rng)
    recv = d + timedelta(hours=3, minutes=7)
    received = (
        "Received: from relay.remote.test (relay.remote.test [192.0.2.1])\r\n"
        f"\tby mx.example.org with ESMTP id ABC{n}; {email.utils.format_datetime(recv)}"
    )
    add(INBOX, _message(n, "with Received", "relayed\n", d, extra=[received]), (), recv, "Received")
    # attachments: small ones and one big one
    for folder, size in ((INBOX, 40_000), (SENT, 300_000), (("Projects", "2024", "Q1"), 1 << 20)):
        n += 1
        d = _date(rng)
        add(folder, _attachment(n, d, rng, size), ("\\Seen",), d, f"attachment {size}")
    if big_bytes > 0:
        n += 1
        d = pre2000[3]
        add(
            ("Архив", "2019"),
            _attachment(n, d, rng, big_bytes),
            ("\\Seen", "Work"),
            d,
            f"big attachment {big_bytes}",
        )
    return out


def corpus_folders(corpus: Iterable[CorpusMessage]) -> list[FolderName]:
    """FOLDERS plus any other folder the corpus uses (parents before children)."""
    names = list(FOLDERS)
    for m in corpus:
        for k in range(1, len(m.folder) + 1):
            if m.folder[:k] not in names:
                names.append(m.folder[:k])
    return names


# --- IMAP access --------------------------------------------------------------------------------


def imap_connect(port: int, user: str, password: str, host: str = LOOPBACK) -> IMAPClient:
    client = IMAPClient(host, port=port, ssl=False, timeout=120)
    client.normalise_times = False  # tz-aware INTERNALDATEs
    client.login(user, password)
    return client


def wire_name(folder: FolderName, separator: str) -> str:
    return separator.join(folder)


def seed_imap(
    port: int,
    user: str,
    password: str,
    corpus: Sequence[CorpusMessage],
    *,
    folders: Iterable[FolderName] | None = None,
) -> None:
    """Create the folders (all levels) and APPEND every message with flags and date."""
    client = imap_connect(port, user, password)
    try:
        sep = client.namespace().personal[0][1] or "/"
        existing = {name for _, _, name in client.list_folders()}
        for folder in folders if folders is not None else corpus_folders(corpus):
            name = wire_name(folder, sep)
            if folder != INBOX and name not in existing:
                client.create_folder(name)
                existing.add(name)
        for m in corpus:
            client.append(wire_name(m.folder, sep), m.data, flags=m.flags, msg_time=m.date)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


# --- reading an account back ------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    sha256: str
    size: int
    flags: frozenset[str]
    internaldate: datetime  # UTC
    subject: str
    uid: int = 0

    def key(self, flags: bool, dates: bool) -> tuple[object, ...]:
        return (
            self.sha256,
            tuple(sorted(self.flags)) if flags else (),
            self.internaldate if dates else None,
        )


@dataclass
class FolderDump:
    name: FolderName
    special_use: str | None
    uidvalidity: int
    messages: list[Msg] = field(default_factory=list)


Account = dict[FolderName, FolderDump]
SPECIAL_USES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")


def _canonical(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _subject(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line[:8].lower() == b"subject:":
            return line[8:].strip().decode("utf-8", "replace")[:50]
    return "(no subject)"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def dump_account(port: int, user: str, password: str, host: str = LOOPBACK) -> Account:
    """Every selectable folder of an IMAP account with every message (see module doc)."""
    client = imap_connect(port, user, password, host)
    account: Account = {}
    try:
        for flags, delim, name in client.list_folders():
            attrs = {_text(f) for f in flags}
            if {"\\Noselect", "\\NonExistent"} & {a.title() for a in attrs}:
                continue
            sep = _text(delim) if delim else "/"
            parts = tuple(name.split(sep)) if sep else (name,)
            if parts[0].upper() == "INBOX" and len(parts) == 1:
                parts = INBOX
            use = next((a for a in attrs if a in SPECIAL_USES), None)
            info = client.select_folder(name, readonly=True)
            dump = FolderDump(parts, use, int(info.get(b"UIDVALIDITY", 0)))
            uids = sorted(client.search("ALL"))
            for i in range(0, len(uids), FETCH_BATCH):
                got = client.fetch(
                    uids[i : i + FETCH_BATCH], ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]
                )
                for uid in sorted(got):
                    item = got[uid]
                    body = _canonical(item[b"BODY[]"])
                    fl = frozenset(_text(f) for f in item[b"FLAGS"]) - {"\\Recent"}
                    date = item[b"INTERNALDATE"]
                    if date.tzinfo is None:  # a server without a zone: take it as local
                        date = date.astimezone()
                    dump.messages.append(
                        Msg(
                            hashlib.sha256(body).hexdigest(),
                            len(body),
                            fl,
                            date.astimezone(UTC),
                            _subject(body),
                            uid,
                        )
                    )
            client.unselect_folder() if client.has_capability("UNSELECT") else client.close_folder()
            account[parts] = dump
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    return account


def corpus_account(corpus: Sequence[CorpusMessage], special: Mapping[FolderName, str]) -> Account:
    """What :func:`dump_account` should read from an account seeded with ``corpus``."""
    account: Account = {f: FolderDump(f, special.get(f), 0) for f in corpus_folders(corpus)}
    for m in corpus:
        account[m.folder].messages.append(
            Msg(m.sha256, len(m.data), frozenset(m.flags), m.date.astimezone(UTC), _subject(m.data))
        )
    return account


def folder_mapping(
    src: Account, dst: Account, explicit: Mapping[FolderName, FolderName] | None = None
) -> dict[FolderName, FolderName]:
    """Source folder -> destination folder: explicit, else same special use, else same name."""
    by_use = {d.special_use: name for name, d in dst.items() if d.special_use}
    out: dict[FolderName, FolderName] = {}
    for name, folder in src.items():
        if explicit and name in explicit:
            out[name] = explicit[name]
        elif folder.special_use and folder.special_use in by_use:
            out[name] = by_use[folder.special_use]
        else:
            out[name] = name
    return out


def _fmt(folder: FolderName) -> str:
    return "/".join(folder)


def compare_accounts(
    src: Account,
    dst: Account,
    *,
    flags: bool = True,
    dates: bool = True,
    folder_map: Mapping[FolderName, FolderName] | None = None,
    only: Iterable[FolderName] | None = None,
) -> list[str]:
    """Readable differences between two accounts (empty list: the same)."""
    mapping = folder_mapping(src, dst, folder_map)
    wanted = set(only) if only is not None else set(src)
    diffs: list[str] = []
    for name in sorted(wanted):
        target = mapping.get(name, name)
        if name not in src:
            diffs.append(f"{_fmt(name)}: not in the source")
            continue
        if target not in dst:
            diffs.append(
                f"{_fmt(name)} -> {_fmt(target)}: folder missing at the destination "
                f"({len(src[name].messages)} messages)"
            )
            continue
        a = Counter(m.key(flags, dates) for m in src[name].messages)
        b = Counter(m.key(flags, dates) for m in dst[target].messages)
        labels = {m.sha256: m.subject for m in src[name].messages + dst[target].messages}
        for key, count in sorted((a - b).items(), key=str):
            diffs.append(
                f"{_fmt(name)} -> {_fmt(target)}: missing x{count} {_describe(key, labels)}"
            )
        for key, count in sorted((b - a).items(), key=str):
            diffs.append(f"{_fmt(name)} -> {_fmt(target)}: extra x{count} {_describe(key, labels)}")
    if only is None:
        targets = set(mapping.values())
        for name, folder in sorted(dst.items()):
            if name not in targets and folder.messages:
                diffs.append(
                    f"{_fmt(name)}: destination folder nothing maps to has "
                    f"{len(folder.messages)} messages"
                )
    return diffs


def _describe(key: tuple[object, ...], labels: Mapping[str, str]) -> str:
    sha, fl, date = key
    text = f"{labels.get(str(sha), '?')!r} sha256={str(sha)[:12]}"
    if fl:
        text += f" flags={' '.join(fl)}"  # type: ignore[arg-type]
    if date is not None:
        text += f" date={date}"
    return text


def assert_same(src: Account, dst: Account, **kwargs: Any) -> None:
    diffs = compare_accounts(src, dst, **kwargs)
    assert not diffs, f"{len(diffs)} difference(s):\n" + "\n".join(diffs[:80])


def message_count(account: Account) -> int:
    return sum(len(f.messages) for f in account.values())


def maildir_count(root: Path) -> int:
    """Messages in a Maildir++ tree (``cur``/``new`` of the root and every ``.Folder``)."""
    total = 0
    if not root.is_dir():
        return 0
    dirs = [root] + [
        Path(e.path) for e in os.scandir(root) if e.name.startswith(".") and e.is_dir()
    ]
    for d in dirs:
        for sub in ("cur", "new"):
            with contextlib.suppress(FileNotFoundError):
                total += sum(1 for _ in os.scandir(d / sub))
    return total


# --- the CLI ----------------------------------------------------------------------------------


@dataclass
class MigrateRun:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None
    seconds: float

    def totals(self) -> dict[str, int]:
        assert self.report is not None, f"no JSON report\n{self.output()}"
        return dict(self.report["totals"])

    def output(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.rc}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


def _password_file(workdir: Path, name: str, password: str) -> Path:
    path = workdir / name
    path.write_text(password)
    path.chmod(0o600)
    return path


def migrate_argv(
    source: str,
    dest: str,
    workdir: Path,
    *,
    src_password: str | None = None,
    dst_password: str | None = None,
    state: Path | None = None,
    report: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``python -m mailgw migrate ...`` (password files written into ``workdir``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "mailgw", "migrate", source, dest]
    if src_password is not None:
        argv += ["--src-password-file", str(_password_file(workdir, "src.pw", src_password))]
    if dst_password is not None:
        argv += ["--dst-password-file", str(_password_file(workdir, "dst.pw", dst_password))]
    if state is not None:
        argv += ["--state", str(state)]
    if report is not None:
        argv += ["--report-json", str(report)]
    return argv + list(extra)


def migrate_env(workdir: Path) -> dict[str, str]:
    return subprocess_env({"XDG_STATE_HOME": str(workdir / "xdg-state")})


def start_migrate(argv: Sequence[str], workdir: Path) -> subprocess.Popen[bytes]:
    """The CLI in the background (output into ``workdir``), for SIGKILL tests."""
    out = open(workdir / "bg.stdout", "ab")  # noqa: SIM115 - the child owns it
    err = open(workdir / "bg.stderr", "ab")  # noqa: SIM115
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=migrate_env(workdir),
            cwd=REPO,
        )
    finally:
        out.close()
        err.close()


def run_migrate(
    source: str,
    dest: str,
    workdir: Path,
    *,
    src_password: str | None = None,
    dst_password: str | None = None,
    state: Path | None = None,
    extra: Sequence[str] = (),
    timeout: float = CLI_TIMEOUT,
) -> MigrateRun:
    """Run the CLI to completion with ``--report-json``; the report parsed (None if absent)."""
    report = workdir / f"report-{time.monotonic_ns()}.json"
    argv = migrate_argv(
        source,
        dest,
        workdir,
        src_password=src_password,
        dst_password=dst_password,
        state=state,
        report=report,
        extra=extra,
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=migrate_env(workdir),
        cwd=REPO,
        timeout=timeout,
    )
    seconds = time.perf_counter() - t0
    doc = json.loads(report.read_text()) if report.exists() and report.stat().st_size else None
    return MigrateRun(argv, proc.returncode, proc.stdout, proc.stderr, doc, seconds)


# --- a TCP proxy that can freeze --------------------------------------------------------------


class PausableProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target``; ``pause()`` stops all traffic."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._server = socket.create_server((LOOPBACK, 0))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((LOOPBACK, self.target), timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.2)
        try:
            while not self._stop.is_set():
                if not self._open.is_set():
                    self._open.wait(0.2)
                    continue
                try:
                    data = src.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    break
                while not self._open.is_set() and not self._stop.is_set():
                    self._open.wait(0.2)  # paused with data in hand: hold it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        self._open.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> PausableProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "FOLDERS",
    "INBOX",
    "KEYWORDS",
    "SENT",
    "SENT_ELSEWHERE",
    "SYSTEM_FLAGS",
    "Account",
    "CorpusMessage",
    "FolderDump",
    "MigrateRun",
    "Msg",
    "PausableProxy",
    "assert_same",
    "build_corpus",
    "compare_accounts",
    "corpus_account",
    "corpus_folders",
    "dump_account",
    "folder_mapping",
    "imap_connect",
    "maildir_count",
    "message_count",
    "migrate_argv",
    "run_migrate",
    "seed_imap",
    "special_use_conf",
    "start_migrate",
    "wire_name",
]
