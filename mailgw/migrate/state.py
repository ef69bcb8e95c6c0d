"""The migration state file: what was copied from where to where (SQLite).

Theory of operation.  One file per source/destination pair (``meta`` holds the
two displays; a file made for another pair is refused).  One row per source
message and destination folder, keyed by (source folder, source UIDVALIDITY,
source key, destination folder) -- the key is the IMAP UID (RFC 3501 2.3.1.1:
unique only together with UIDVALIDITY), the POP3 UIDL (RFC 1939 7) or the file
name.  A row carries the content hash and size, the source flags as last
synced, the destination folder's UIDVALIDITY and the message's destination id.

``status`` is ``pending`` from just before the APPEND (RFC 3501 6.3.11, RFC 3502)
to just after it, then ``done``.  Pending rows are committed (WAL, and
``synchronous=FULL``: the commit is on disk when it returns) BEFORE the append
is sent, so a run killed at any moment leaves either no row (nothing was sent),
a ``pending`` row (the message may or may not be at the destination: the next
run matches by content), or a ``done`` row.

All methods block (SQLite); the engine calls them through ``asyncio.to_thread``.
A lock makes the object safe to share between threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailgw.errors import UsageError
from mailgw.migrate.model import FolderName

SCHEMA_VERSION = 1
PENDING = "pending"
DONE = "done"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    src_folder      TEXT    NOT NULL,
    src_uidvalidity INTEGER NOT NULL,
    src_key         TEXT    NOT NULL,
    dst_folder      TEXT    NOT NULL,
    sha256          TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    flags           TEXT    NOT NULL,
    internaldate    REAL,
    dst_uidvalidity INTEGER NOT NULL,
    dst_uid         INTEGER,
    dst_uidnext     INTEGER,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'done')),
    PRIMARY KEY (src_folder, src_uidvalidity, src_key, dst_folder)
);
CREATE INDEX IF NOT EXISTS messages_dst ON messages (dst_folder, dst_uidvalidity, status);
"""

_COLUMNS = (
    "src_folder, src_uidvalidity, src_key, dst_folder, sha256, size, flags, internaldate, "
    "dst_uidvalidity, dst_uid, dst_uidnext, status"
)


def encode_folder(name: FolderName) -> str:
    return json.dumps(list(name), ensure_ascii=False)


def decode_folder(text: str) -> FolderName:
    return tuple(json.loads(text))


def _encode_flags(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


@dataclass(frozen=True)
class StateRow:
    src_folder: FolderName
    src_uidvalidity: int
    src_key: str
    dst_folder: FolderName
    sha256: str
    size: int
    flags: frozenset[str]  # source flags as last synced
    internaldate: float | None  # POSIX time, for filters on sources without one
    dst_uidvalidity: int
    dst_uid: int | None  # None while pending (or when it could not be resolved)
    dst_uidnext: int | None  # the destination's UIDNEXT before the append (pending)
    status: str  # PENDING or DONE

    def _values(self) -> tuple[object, ...]:
        return (
            encode_folder(self.src_folder),
            self.src_uidvalidity,
            self.src_key,
            encode_folder(self.dst_folder),
            self.sha256,
            self.size,
            _encode_flags(self.flags),
            self.internaldate,
            self.dst_uidvalidity,
            self.dst_uid,
            self.dst_uidnext,
            self.status,
        )

    @classmethod
    def _from_db(cls, r: tuple[object, ...]) -> StateRow:
        flags = str(r[6])
        return cls(
            src_folder=decode_folder(str(r[0])),
            src_uidvalidity=int(r[1]),  # type: ignore[call-overload]
            src_key=str(r[2]),
            dst_folder=decode_folder(str(r[3])),
            sha256=str(r[4]),
            size=int(r[5]),  # type: ignore[call-overload]
            flags=frozenset(flags.split()) if flags else frozenset(),
            internaldate=None if r[7] is None else float(r[7]),  # type: ignore[arg-type]
            dst_uidvalidity=int(r[8]),  # type: ignore[call-overload]
            dst_uid=None if r[9] is None else int(r[9]),  # type: ignore[call-overload]
            dst_uidnext=None if r[10] is None else int(r[10]),  # type: ignore[call-overload]
            status=str(r[11]),
        )


def _mkdirs_private(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0700 (XDG base dir spec)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)


class StateDB:
    """The state file.  ``readonly=True`` (``--dry-run``) never writes: a missing
    file reads as empty and nothing is created."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly and not self.path.exists():
            self._db = sqlite3.connect(":memory:", check_same_thread=False)
            self._db.executescript(_SCHEMA)
            return
        try:
            if readonly:
                uri = f"file:{self.path}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                _mkdirs_private(self.path.parent)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                self._db = sqlite3.connect(self.path, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit (the pending rows above all) is durable when it returns
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as e:
            raise UsageError(f"{self.path}: not a usable migration state file ({e})") from e

    def _check_version(self) -> None:
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            if not self.readonly:
                with self._db:
                    self._db.execute(
                        "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                    )
            return
        if int(row[0]) > SCHEMA_VERSION:
            raise UsageError(
                f"{self.path}: state file schema {row[0]} is newer than this mailgw"
                f" ({SCHEMA_VERSION})"
            )

    @staticmethod
    def default_path(src_display: str, dst_display: str) -> Path:
        """``$XDG_STATE_HOME/mailgw/migrate/<sha256(src + dst)[:16]>.sqlite``."""
        base = os.environ.get("XDG_STATE_HOME") or ""
        root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local/state"
        digest = hashlib.sha256((src_display + dst_display).encode("utf-8")).hexdigest()[:16]
        directory = root / "mailgw" / "migrate"
        _mkdirs_private(directory)
        return directory / f"{digest}.sqlite"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- the pair -------------------------------------------------------------

    def bind(self, source: str, destination: str, *, record: bool = True) -> None:
        """Record the pair on first use (unless ``record`` is false: a dry run);
        refuse (``UsageError``) a file made for another pair."""
        with self._lock:
            rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if "source" in rows or "destination" in rows:
                if rows.get("source") != source or rows.get("destination") != destination:
                    raise UsageError(
                        f"{self.path}: this state file is for {rows.get('source')} ->"
                        f" {rows.get('destination')}, not {source} -> {destination}"
                    )
                return
            if self.readonly or not record:
                return
            with self._db:
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("source", source), ("destination", destination)],
                )

    def meta(self) -> dict[str, str]:
        with self._lock:
            return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    # -- queries --------------------------------------------------------------

    def rows(self, src_folder: FolderName, dst_folder: FolderName) -> list[StateRow]:
        """Every row of this folder pair (all UIDVALIDITYs, both statuses)."""
        with self._lock:
            cur = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE src_folder = ? AND dst_folder = ?",
                (encode_folder(src_folder), encode_folder(dst_folder)),
            )
            return [StateRow._from_db(r) for r in cur.fetchall()]

    def claimed(self, dst_folder: FolderName, dst_uidvalidity: int) -> set[int]:
        """Destination ids that ``done`` rows (of any source folder) account for."""
        with self._lock:
            cur = self._db.execute(
                "SELECT dst_uid FROM messages WHERE dst_folder = ? AND dst_uidvalidity = ?"
                " AND status = 'done' AND dst_uid IS NOT NULL",
                (encode_folder(dst_folder), dst_uidvalidity),
            )
            return {int(r[0]) for r in cur.fetchall()}

    def done_totals(self, src_folder: FolderName, dst_folder: FolderName) -> tuple[int, int, int]:
        """(done rows, their bytes, pending rows) of this folder pair."""
        with self._lock:
            row = self._db.execute(
                "SELECT coalesce(sum(status = 'done'), 0),"
                " coalesce(sum(CASE WHEN status = 'done' THEN size ELSE 0 END), 0),"
                " coalesce(sum(status = 'pending'), 0)"
                " FROM messages WHERE src_folder = ? AND dst_folder = ?",
                (encode_folder(src_folder), encode_folder(dst_folder)),
            ).fetchone()
            return int(row[0]), int(row[1]), int(row[2])

    @staticmethod
    def _token_key(src_folder: FolderName, dst_folder: FolderName) -> str:
        return f"token\t{encode_folder(src_folder)}\t{encode_folder(dst_folder)}"

    def folder_token(self, src_folder: FolderName, dst_folder: FolderName) -> str | None:
        """The source's change token saved after the last clean run of this pair."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM meta WHERE key = ?", (self._token_key(src_folder, dst_folder),)
            ).fetchone()
            return None if row is None else str(row[0])

    def set_folder_token(
        self, src_folder: FolderName, dst_folder: FolderName, token: str | None
    ) -> None:
        key = self._token_key(src_folder, dst_folder)
        if token is None:
            self._write("DELETE FROM meta WHERE key = ?", [(key,)])
        else:
            self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(key, token)])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM messages").fetchone()[0])

    # -- writes (each call is one transaction) ---------------------------------

    def _write(self, sql: str, params: Sequence[tuple[object, ...]]) -> None:
        if self.readonly:
            raise RuntimeError("state file opened read-only")
        if not params:
            return
        with self._lock, self._db:
            self._db.executemany(sql, params)

    def put(self, rows: Sequence[StateRow]) -> None:
        """Insert or replace these rows and commit (durable when it returns)."""
        self._write(
            f"INSERT OR REPLACE INTO messages ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [r._values() for r in rows],
        )

    def remove(self, rows: Sequence[StateRow]) -> None:
        """Delete these rows (by key) and commit."""
        self._write(
            "DELETE FROM messages WHERE src_folder = ? AND src_uidvalidity = ? AND src_key = ?"
            " AND dst_folder = ?",
            [
                (
                    encode_folder(r.src_folder),
                    r.src_uidvalidity,
                    r.src_key,
                    encode_folder(r.dst_folder),
                )
                for r in rows
            ],
        )


__all__ = [
    "DONE",
    "PENDING",
    "SCHEMA_VERSION",
    "StateDB",
    "StateRow",
    "decode_folder",
    "encode_folder",
]
