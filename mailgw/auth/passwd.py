"""The user database: a Dovecot passwd-file.

Theory of operation
-------------------
Format (Dovecot "passwd-file" driver): one user per line,
``user:password:uid:gid:gecos:home:shell:extra_fields``; ``password`` is
``{SCHEME}hash`` (see ``hashing.py``).  mailgw writes ``alice:{ARGON2ID}...::::::``
(every field after the password empty) so Dovecot can serve the same file.

* Lines that are empty, start with ``#`` (comments) or start with ``:`` (no
  user name, which Dovecot skips) are kept verbatim.  So are entries whose user
  name is not a mailgw user name (upper case, ``user@domain``, ...): they
  belong to someone else; mailgw neither lists nor authenticates them.
* An entry is only ever changed in its password field; uid, gid, gecos, home,
  shell and extra fields are preserved byte for byte.
* A line that is not an entry (no ``:``, NUL, not UTF-8) or a user listed
  twice is an ``AuthError`` naming ``file:line``.  The line itself is never
  quoted: it may hold a hash.
* Writes re-read the file under an ``flock`` on ``<file>.lock`` (CLI and
  server may run at once), then rewrite it atomically: tmp file (mode 0600) ->
  write -> fsync -> rename -> fsync(dir).  A missing file or directory is
  created (directory mode 0700).
* ``reload()`` re-reads only when the file's mtime, size or inode changed, so
  the server can call it before every login to see ``mailgw user`` changes.

Every method is blocking (argon2 takes tens of milliseconds); asyncio callers
run ``verify`` in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailgw.auth.hashing import dummy_verify, hash_password, split_scheme, verify_password
from mailgw.errors import AuthError, InvalidUserName, UserExists, UserNotFound
from mailgw.fsutil import atomic_write

USERNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


def validate_username(name: str) -> str:
    """Return the canonical (lower-case) user name or raise ``InvalidUserName``."""
    canonical = name.lower()
    if not USERNAME_RE.match(canonical):
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise InvalidUserName(
            f"invalid user name {shown!r}: use 1-64 of a-z 0-9 . _ -, "
            "starting and ending with a letter or digit"
        )
    return canonical


@dataclass
class _Entry:
    """One passwd-file line; ``user is None`` for lines kept verbatim."""

    raw: str
    user: str | None = None
    password: str = ""
    rest: str | None = None  # everything after the password's ':' (None: no such ':')

    def render(self) -> str:
        if self.user is None:
            return self.raw
        line = f"{self.user}:{self.password}"
        return line if self.rest is None else f"{line}:{self.rest}"


def _parse(path: Path, data: bytes) -> list[_Entry]:
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    for lineno, raw_bytes in enumerate(data.split(b"\n"), start=1):
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError(f"{path}:{lineno}: line is not valid UTF-8") from None
        if "\0" in raw:
            raise AuthError(f"{path}:{lineno}: line contains a NUL byte")
        if raw == "" or raw.startswith(("#", ":")) or raw.strip() == "":
            entries.append(_Entry(raw))
            continue
        if ":" not in raw:
            raise AuthError(
                f"{path}:{lineno}: not a passwd-file entry (user:{{SCHEME}}hash:...): missing ':'"
            )
        user, _, after = raw.partition(":")
        password, sep, rest = after.partition(":")
        if not USERNAME_RE.match(user):
            entries.append(_Entry(raw))  # someone else's entry: keep, ignore
            continue
        if user in seen:
            raise AuthError(
                f"{path}:{lineno}: user {user!r} is already listed on line {seen[user]}"
            )
        seen[user] = lineno
        entries.append(_Entry(raw, user=user, password=password, rest=rest if sep else None))
    # data ending in "\n" gives one empty trailing piece: not a line
    if entries and entries[-1].user is None and entries[-1].raw == "" and data.endswith(b"\n"):
        entries.pop()
    if data == b"":
        return []
    return entries


class UserDB:
    """A Dovecot passwd-file of mailgw users."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._entries: list[_Entry] = []
        self._users: dict[str, _Entry] = {}
        self._stamp: tuple[int, int, int] | None = None

    # --- reading -----------------------------------------------------------

    def reload(self) -> None:
        """Re-read the file if it changed since the last read (mtime/size/inode)."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._set([], None)
                return
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self._stamp:
                return
            self._read()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            self._set([], None)
            return
        except OSError as exc:
            raise AuthError(f"{self.path}: cannot read: {exc.strerror}") from None
        self._set(_parse(self.path, data), (st.st_mtime_ns, st.st_size, st.st_ino))

    def _set(self, entries: list[_Entry], stamp: tuple[int, int, int] | None) -> None:
        self._entries = entries
        self._users = {e.user: e for e in entries if e.user is not None}
        self._stamp = stamp

    def users(self) -> list[str]:
        """The mailgw user names, sorted."""
        self.reload()
        return sorted(self._users)

    def exists(self, user: str) -> bool:
        self.reload()
        return user.lower() in self._users

    def scheme(self, user: str) -> str | None:
        """The password scheme of ``user`` (``"ARGON2ID"``...), None without a password."""
        self.reload()
        entry = self._users.get(user.lower())
        if entry is None:
            raise UserNotFound(f"no such user: {user}")
        return split_scheme(entry.password)[0] if entry.password else None

    def verify(self, user: str, password: str) -> bool:
        """True if ``password`` is ``user``'s.  Unknown users cost a dummy verify."""
        self.reload()
        entry = self._users.get(user.lower()) if USERNAME_RE.match(user.lower()) else None
        if entry is None or not entry.password:
            return dummy_verify(password)
        return verify_password(entry.password, password)

    # --- writing -----------------------------------------------------------

    def add(self, user: str, password: str) -> None:
        user = validate_username(user)
        hashed = hash_password(password)
        with self._modify():
            if user in self._users:
                raise UserExists(f"user {user} already exists")
            entry = _Entry("", user=user, password=hashed, rest=":::::")
            self._entries.append(entry)

    def set_password(self, user: str, password: str) -> None:
        user = validate_username(user)
        hashed = hash_password(password)
        with self._modify():
            entry = self._users.get(user)
            if entry is None:
                raise UserNotFound(f"no such user: {user}")
            entry.password = hashed

    def delete(self, user: str) -> None:
        user = validate_username(user)
        with self._modify():
            entry = self._users.get(user)
            if entry is None:
                raise UserNotFound(f"no such user: {user}")
            self._entries.remove(entry)

    @contextlib.contextmanager
    def _modify(self) -> Iterator[None]:
        """Lock, re-read, let the caller edit ``_entries``, write atomically."""
        with self._lock:
            self._make_dir()
            lock_path = self.path.with_name(self.path.name + ".lock")
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._read()
                yield
                self._write()
                self._read()
            except BaseException:
                self._stamp = None  # our copy may be edited: force a re-read
                raise
            finally:
                os.close(fd)

    def _make_dir(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _write(self) -> None:
        text = "".join(e.render() + "\n" for e in self._entries)
        atomic_write(self.path, text.encode("utf-8"), 0o600)


__all__ = ["USERNAME_RE", "UserDB", "validate_username"]
