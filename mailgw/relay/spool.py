"""The durable outbound spool: one message file plus one JSON metadata file.

Theory of operation
-------------------
Layout (``docs/contracts.md``, "mailgw.relay")::

    <root>/tmp/           staging; never read as queue entries
    <root>/msg/<id>       message bytes exactly as they will be relayed
    <root>/meta/<id>.json metadata; its rename into meta/ commits the enqueue
    <root>/lock/<id>      flock'd while a delivery attempt for <id> runs

* **Enqueue** (the promise behind SMTP's ``250`` after DATA, RFC 5321 section
  6.1 "the receiver-SMTP MUST NOT lose the message", and behind the exit
  status 0 of ``mailgw send``): the message is written to ``tmp/``, fsynced,
  renamed into ``msg/`` and ``msg/`` is fsynced; then the metadata is
  written to ``tmp/``, fsynced, renamed into ``meta/`` and ``meta/`` is
  fsynced.  Only then does :meth:`Spool.enqueue` return.  A crash before the
  metadata rename leaves an orphan in ``msg/`` or ``tmp/`` that no listing
  sees (``entries()`` reads ``meta/`` only) and :meth:`Spool.cleanup` removes.
  Any ``OSError`` (full disk, read-only or unwritable spool) becomes a
  :class:`SpoolError` naming the path and the OS error, after the partial
  files are removed: nothing partial is ever visible.
* **Ids** are 16 upper-case hex digits: microseconds since the epoch shifted
  left 12 bits plus 12 random bits, so they sort by creation time; within
  one process they strictly increase.  The message file is created with
  ``O_EXCL``, so a collision between processes is detected and retried.
* **Metadata updates** (:meth:`Spool.save`) are tmp -> fsync -> rename over
  the old file -> fsync(meta/): readers see the old or the new state.
* **Locking**: :meth:`Spool.attempt_lock` takes a non-blocking ``flock`` on
  ``lock/<id>`` and raises :class:`Busy` when another process (serve's
  runner, a cron ``mailgw queue run``, a ``mailgw queue delete``) holds it,
  so a message is never delivered by two processes at once.  The lock file
  is unlinked while still locked on release; a locker that opened the old
  file checks after ``flock`` that the path still names the same inode and
  starts over otherwise.  Delivery is at least once: a crash after the peer
  accepted a message but before the metadata says "delivered" sends it again.
* **Reading** never crashes on a bad file: ``entries()`` skips (and logs) a
  metadata file that is not valid JSON of the documented shape, or whose
  message file is missing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailgw.errors import MailgwError

if TYPE_CHECKING:
    import logging

ID_RE = re.compile(r"^[0-9A-F]{16}$")
SOURCES = ("smtp", "send", "dsn")
STATES = ("pending", "delivered", "failed")
DIR_MODE = 0o700
FILE_MODE = 0o600
# errno values that mean "try again later" rather than "this spool cannot work"
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR, errno.ENOMEM}
)


class SpoolError(MailgwError):
    """The spool cannot be read or written.  ``errno`` is the OS error, if any."""

    def __init__(self, message: str, *, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_

    @property
    def transient(self) -> bool:
        """True for conditions that may go away (full disk, quota, I/O error)."""
        return self.errno in TRANSIENT_ERRNOS


class QueueEntryNotFound(SpoolError):
    pass


class Busy(SpoolError):
    """Another process holds the delivery lock of this entry."""


def _oserror(action: str, path: Path | str, exc: OSError) -> SpoolError:
    reason = exc.strerror or str(exc)
    return SpoolError(f"cannot {action} spool {path}: {reason}", errno_=exc.errno)


def _log() -> logging.Logger:
    import logging  # only on the (rare) warning path: `mailgw send` starts faster

    return logging.getLogger("mailgw.relay")


# --- metadata ------------------------------------------------------------------


def _opt_float(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: not a number")
    return float(value)


def _float(value: Any, key: str) -> float:
    result = _opt_float(value, key)
    if result is None:
        raise ValueError(f"{key}: missing")
    return result


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: not an integer")
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key}: not a string")
    return value


def _opt_str(value: Any, key: str) -> str | None:
    return None if value is None else _str(value, key)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: not a boolean")
    return value


@dataclass
class RecipientState:
    address: str
    state: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_attempt: float | None = None
    last_reply: str | None = None
    dsn_sent: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "state": self.state,
            "attempts": self.attempts,
            "last_attempt": self.last_attempt,
            "last_reply": self.last_reply,
            "dsn_sent": self.dsn_sent,
        }

    @classmethod
    def from_json(cls, obj: Any) -> RecipientState:
        if not isinstance(obj, dict):
            raise ValueError("recipient: not an object")
        state = _str(obj.get("state", "pending"), "state")
        if state not in STATES:
            raise ValueError(f"state: {state!r} is not one of {', '.join(STATES)}")
        return cls(
            address=_str(obj.get("address"), "address"),
            state=state,
            attempts=_int(obj.get("attempts", 0), "attempts"),
            last_attempt=_opt_float(obj.get("last_attempt"), "last_attempt"),
            last_reply=_opt_str(obj.get("last_reply"), "last_reply"),
            dsn_sent=_bool(obj.get("dsn_sent", False), "dsn_sent"),
        )


@dataclass
class QueueEntry:
    id: str
    created: float
    sender: str  # "" is the null sender
    source: str  # smtp | send | dsn
    size: int
    next_attempt: float
    recipients: list[RecipientState] = field(default_factory=list)
    held: bool = False
    held_reason: str | None = None
    attempts: int = 0
    warned: bool = False

    def pending(self) -> list[RecipientState]:
        return [r for r in self.recipients if r.state == "pending"]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "sender": self.sender,
            "source": self.source,
            "size": self.size,
            "held": self.held,
            "held_reason": self.held_reason,
            "next_attempt": self.next_attempt,
            "attempts": self.attempts,
            "warned": self.warned,
            "recipients": [r.to_json() for r in self.recipients],
        }

    @classmethod
    def from_json(cls, obj: Any) -> QueueEntry:
        """Validate and build; ``ValueError`` names the first bad key."""
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        ident = _str(obj.get("id"), "id")
        if not ID_RE.match(ident):
            raise ValueError(f"id: {ident!r} is not a queue id")
        rcpts = obj.get("recipients")
        if not isinstance(rcpts, list):
            raise ValueError("recipients: not a list")
        return cls(
            id=ident,
            created=_float(obj.get("created"), "created"),
            sender=_str(obj.get("sender"), "sender"),
            source=_str(obj.get("source", "smtp"), "source"),
            size=_int(obj.get("size", 0), "size"),
            next_attempt=_float(obj.get("next_attempt"), "next_attempt"),
            recipients=[RecipientState.from_json(r) for r in rcpts],
            held=_bool(obj.get("held", False), "held"),
            held_reason=_opt_str(obj.get("held_reason"), "held_reason"),
            attempts=_int(obj.get("attempts", 0), "attempts"),
            warned=_bool(obj.get("warned", False), "warned"),
        )


# --- ids -----------------------------------------------------------------------

_id_lock = threading.Lock()
_last_id = 0


def new_id() -> str:
    """A fresh queue id: 16 hex digits, time-ordered, increasing in this process."""
    global _last_id
    with _id_lock:
        value = ((time.time_ns() // 1000) << 12) | (int.from_bytes(os.urandom(2)) & 0xFFF)
        if value <= _last_id:
            value = _last_id + 1
        _last_id = value
    return f"{value:016X}"


def check_id(queue_id: str) -> str:
    """``queue_id`` upper-cased if it is a well-formed id, else ``QueueEntryNotFound``."""
    ident = queue_id.strip().upper()
    if not ID_RE.match(ident):
        raise QueueEntryNotFound(f"no such queue entry: {queue_id!r} (ids are 16 hex digits)")
    return ident


# --- file helpers --------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (O_EXCL), write all of ``data``, fsync.  Removes it on error."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


class Spool:
    """The spool under ``root`` (blocking; callers in asyncio use a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.msg_dir = self.root / "msg"
        self.meta_dir = self.root / "meta"
        self.lock_dir = self.root / "lock"
        self._ready = False

    # -- paths --

    def message_path(self, queue_id: str) -> Path:
        return self.msg_dir / check_id(queue_id)

    def meta_path(self, queue_id: str) -> Path:
        return self.meta_dir / f"{check_id(queue_id)}.json"

    def ensure_dirs(self) -> None:
        """Create the spool directories (mode 0700) if missing; ``SpoolError`` on failure."""
        if self._ready:
            return
        for path in (self.root, self.tmp_dir, self.msg_dir, self.meta_dir, self.lock_dir):
            if path.is_dir():
                continue
            try:
                path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                _fsync_dir(path.parent)
            except OSError as exc:
                raise _oserror("create", path, exc) from None
        self._ready = True

    # -- writing --

    def enqueue(
        self,
        sender: str,
        recipients: list[str] | tuple[str, ...],
        data: bytes,
        *,
        source: str,
        queue_id: str | None = None,
        now: float | None = None,
    ) -> str:
        """Store a message durably and return its id (see the module docstring)."""
        if not recipients:
            raise ValueError("enqueue needs at least one recipient")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")
        self.ensure_dirs()
        created = time.time() if now is None else now
        for _ in range(10):
            ident = check_id(queue_id) if queue_id is not None else new_id()
            tmp_msg = self.tmp_dir / f"{ident}.msg"
            msg = self.msg_dir / ident
            try:
                _write_new(tmp_msg, data)
            except FileExistsError:
                if queue_id is not None:
                    raise SpoolError(f"queue id {ident} is in use") from None
                continue
            except OSError as exc:
                raise _oserror("write to", self.root, exc) from None
            if msg.exists():  # another process picked the same id: try another
                os.unlink(tmp_msg)
                if queue_id is not None:
                    raise SpoolError(f"queue id {ident} is in use")
                continue
            break
        else:  # pragma: no cover - 10 collisions in a row
            raise SpoolError(f"cannot allocate a queue id in {self.root}")
        entry = QueueEntry(
            id=ident,
            created=created,
            sender=sender,
            source=source,
            size=len(data),
            next_attempt=created,
            recipients=[RecipientState(address=r) for r in recipients],
        )
        try:
            os.rename(tmp_msg, msg)
            _fsync_dir(self.msg_dir)
            self._write_meta(entry)
        except OSError as exc:
            for path in (tmp_msg, msg):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise _oserror("write to", self.root, exc) from None
        return ident

    def _write_meta(self, entry: QueueEntry) -> None:
        data = json.dumps(entry.to_json(), separators=(",", ":")).encode()
        tmp = self.tmp_dir / f"{entry.id}.{os.getpid()}.{threading.get_ident()}.json"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _write_new(tmp, data)
        try:
            os.rename(tmp, self.meta_dir / f"{entry.id}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.meta_dir)

    def save(self, entry: QueueEntry) -> None:
        """Replace the metadata of ``entry`` atomically (it must still be queued)."""
        self.ensure_dirs()
        if not self.meta_path(entry.id).exists():
            raise QueueEntryNotFound(f"no such queue entry: {entry.id}")
        try:
            self._write_meta(entry)
        except OSError as exc:
            raise _oserror("write to", self.root, exc) from None

    def remove(self, queue_id: str) -> None:
        """Remove an entry: the metadata first (the commit point), then the message."""
        ident = check_id(queue_id)
        meta = self.meta_path(ident)
        try:
            os.unlink(meta)
        except FileNotFoundError:
            raise QueueEntryNotFound(f"no such queue entry: {ident}") from None
        except OSError as exc:
            raise _oserror("remove from", self.root, exc) from None
        with contextlib.suppress(OSError):
            _fsync_dir(self.meta_dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.msg_dir / ident)

    # -- reading --

    def load(self, queue_id: str) -> QueueEntry:
        ident = check_id(queue_id)
        path = self.meta_dir / f"{ident}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise QueueEntryNotFound(f"no such queue entry: {ident}") from None
        except OSError as exc:
            raise _oserror("read", path, exc) from None
        try:
            entry = QueueEntry.from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpoolError(f"corrupt queue metadata {path}: {exc}") from None
        if entry.id != ident:
            raise SpoolError(f"corrupt queue metadata {path}: id {entry.id} does not match")
        return entry

    def entries(self) -> list[QueueEntry]:
        """Every queued entry, oldest first; unreadable ones are logged and skipped."""
        try:
            names = sorted(os.listdir(self.meta_dir))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _oserror("read", self.meta_dir, exc) from None
        result = []
        for name in names:
            if not name.endswith(".json") or not ID_RE.match(name[:-5]):
                continue
            try:
                entry = self.load(name[:-5])
            except QueueEntryNotFound:
                continue  # removed while we listed
            except SpoolError as exc:
                _log().warning("skipping queue entry: %s", exc)
                continue
            if not (self.msg_dir / entry.id).exists():
                missing = self.msg_dir / entry.id
                _log().warning("skipping queue entry %s: %s is missing", entry.id, missing)
                continue
            result.append(entry)
        return result

    # -- operator actions --

    def hold(self, queue_id: str, reason: str | None = None) -> QueueEntry:
        entry = self.load(queue_id)
        entry.held = True
        entry.held_reason = reason
        self.save(entry)
        return entry

    def release(self, queue_id: str) -> QueueEntry:
        entry = self.load(queue_id)
        entry.held = False
        entry.held_reason = None
        entry.next_attempt = time.time()
        self.save(entry)
        return entry

    def flush(self, queue_id: str | None = None) -> list[str]:
        """Make entries due now (one, or every entry); returns the ids changed.

        Held entries stay held (release them first).  With no id, entries
        whose delivery lock is taken (an attempt is running) are skipped.
        """
        now = time.time()
        if queue_id is not None:
            entry = self.load(queue_id)
            entry.next_attempt = now
            self.save(entry)
            return [entry.id]
        changed = []
        for entry in self.entries():
            if entry.held or entry.next_attempt <= now:
                continue
            try:
                with self.attempt_lock(entry.id):
                    fresh = self.load(entry.id)
                    fresh.next_attempt = now
                    self.save(fresh)
            except (Busy, QueueEntryNotFound):
                continue
            changed.append(entry.id)
        return changed

    def cleanup(self, max_age: float = 3600.0) -> int:
        """Remove staging files and message files without metadata older than ``max_age``."""
        now = time.time()
        removed = 0
        for directory in (self.tmp_dir, self.msg_dir):
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                path = directory / name
                if directory == self.msg_dir and (self.meta_dir / f"{name}.json").exists():
                    continue
                try:
                    if now - path.stat().st_mtime > max_age:
                        path.unlink()
                        removed += 1
                except OSError:
                    continue
        return removed

    # -- locking --

    @contextlib.contextmanager
    def attempt_lock(self, queue_id: str) -> Iterator[None]:
        """Hold the delivery lock of ``queue_id``; ``Busy`` at once if another holder has it."""
        ident = check_id(queue_id)
        self.ensure_dirs()
        path = self.lock_dir / ident
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            except OSError as exc:
                raise _oserror("lock in", self.root, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise Busy(f"queue entry {ident} is being delivered by another process") from None
            except OSError as exc:
                os.close(fd)
                raise _oserror("lock in", self.root, exc) from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder unlinked it before we locked: start over
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)


__all__ = [
    "Busy",
    "QueueEntry",
    "QueueEntryNotFound",
    "RecipientState",
    "Spool",
    "SpoolError",
    "check_id",
    "new_id",
]
