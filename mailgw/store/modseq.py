"""CONDSTORE mod-sequences (RFC 7162) in a per-folder sidecar, ``mailgw-modseq``.

Dovecot keeps MODSEQ in its index files, which mailgw does not write.  We
keep ours in a small append-only log next to ``dovecot-uidlist``; Dovecot
ignores unknown files in a Maildir (checked against a private Dovecot: no
log line, and the file survives Dovecot's syncs).

Format (text, one record a line, ``\\n`` terminated)::

    mailgw-modseq 1 V<uidvalidity> H<highestmodseq>     header (first line)
    <uid> <modseq> :<letters>                            message state
    <uid> <modseq> -                                     message expunged
    H <modseq>                                           HIGHESTMODSEQ bump

``<letters>`` are the Maildir info letters (``FRSa``) the message had at that
mod-sequence.  The last line for a UID wins; HIGHESTMODSEQ is the largest
value in the file (RFC 7162 3.1.2: it never goes down).  A line without its
newline is a write in progress and is ignored.

Theory of operation:

* Writers hold ``flock(LOCK_EX)`` on the file, catch up with what other
  processes appended, append their lines and fsync before unlocking.  Each
  change (one STORE, one delivery batch, one expunge) takes one new
  mod-sequence (RFC 7162 3.1.3: every STORE gets a distinct value; messages
  changed by one operation may share it).
* Because the letters are recorded, a resync notices flag changes, new
  messages and expunges made by other programs (Dovecot, a POP3 QUIT in
  another process) and gives them new mod-sequences too.
* When dead lines outnumber live ones (and there are more than
  :data:`COMPACT_MIN`), the file is rewritten (temp, fsync, rename) with the
  header carrying HIGHESTMODSEQ.  A UIDVALIDITY different from the folder's
  starts a new log above the old HIGHESTMODSEQ.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from mailgw.store.fsutil import FILE_MODE, atomic_write, fsync_dir, write_all

MODSEQ_FILE = "mailgw-modseq"
MAGIC = "mailgw-modseq"
COMPACT_MIN = 1000


class ModseqLog:
    """One folder's mod-sequence log.  Not thread-safe: callers hold the folder lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.highest = 0
        self.uidvalidity = 0
        self.entries: dict[int, tuple[int, str]] = {}  # uid -> (modseq, letters)
        self._ino: int | None = None
        self._offset = 0
        self._lines = 0

    # --- reading ----------------------------------------------------------------

    def _reset(self) -> None:
        self.highest = 0
        self.uidvalidity = 0
        self.entries = {}
        self._ino = None
        self._offset = 0
        self._lines = 0

    def _apply(self, line: str) -> None:
        parts = line.split(" ")
        if parts[0] == MAGIC:
            for f in parts[2:]:
                if f[:1] == "V" and f[1:].isdigit():
                    self.uidvalidity = int(f[1:])
                elif f[:1] == "H" and f[1:].isdigit():
                    self.highest = max(self.highest, int(f[1:]))
            return
        self._lines += 1
        if len(parts) == 2 and parts[0] == "H" and parts[1].isdigit():
            self.highest = max(self.highest, int(parts[1]))
            return
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return
        uid, modseq = int(parts[0]), int(parts[1])
        self.highest = max(self.highest, modseq)
        if parts[2] == "-":
            self.entries.pop(uid, None)
        elif parts[2].startswith(":"):
            self.entries[uid] = (modseq, parts[2][1:])

    def refresh(self) -> None:
        """Catch up with the file: read what was appended, or all of it if replaced."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if self._ino is not None:
                keep = self.highest
                self._reset()
                self.highest = keep
            return
        try:
            self._read_from(fd)
        finally:
            os.close(fd)

    def _read_from(self, fd: int) -> None:
        st = os.fstat(fd)
        if st.st_ino != self._ino or st.st_size < self._offset:
            keep = self.highest
            self._reset()
            self.highest = keep  # never go down, even if the file was replaced
            self._ino = st.st_ino
        if st.st_size == self._offset:
            return
        data = os.pread(fd, st.st_size - self._offset, self._offset)
        end = data.rfind(b"\n")
        if end < 0:
            return
        for raw in data[:end].split(b"\n"):
            if raw:
                self._apply(raw.decode("ascii", "replace"))
        self._offset += end + 1

    # --- writing ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """An fd of the current file, flock-ed, caught up; creates the file if needed."""
        while True:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    cur = os.stat(self.path)
                except FileNotFoundError:
                    cur = None
                if cur is None or cur.st_ino != os.fstat(fd).st_ino:
                    continue  # replaced by a compaction meanwhile: lock the new one
                if created:
                    fsync_dir(self.path.parent)
                self._read_from(fd)
                yield fd
                return
            finally:
                os.close(fd)  # also releases the flock

    def _header(self) -> str:
        return f"{MAGIC} 1 V{self.uidvalidity} H{self.highest}\n"

    def record(
        self, uidvalidity: int, changes: Mapping[int, str | None], *, bump: bool = False
    ) -> int:
        """Give every UID in ``changes`` (uid -> letters, None = expunged) one new modseq.

        With ``bump`` the HIGHESTMODSEQ grows even without changes.  Returns
        the new HIGHESTMODSEQ (unchanged when there was nothing to do).
        """
        if not changes and not bump:
            return self.highest
        with self._locked() as fd:
            lines: list[str] = []
            if self.uidvalidity != uidvalidity:
                self.uidvalidity = uidvalidity
                if os.fstat(fd).st_size:  # a log for another UIDVALIDITY: start over
                    self.entries = {}
                    self._rewrite()
                    return self.record(uidvalidity, changes, bump=bump)
                lines.append(self._header())
            modseq = max(self.highest, 1) + 1  # 1 is what an empty folder reports
            changed = False
            for uid in sorted(changes):
                letters = changes[uid]
                if letters is None:
                    if uid in self.entries:
                        lines.append(f"{uid} {modseq} -\n")
                        del self.entries[uid]
                        changed = True
                else:
                    lines.append(f"{uid} {modseq} :{letters}\n")
                    self.entries[uid] = (modseq, letters)
                    changed = True
            if not changed:
                lines.append(f"H {modseq}\n")
            self.highest = modseq
            data = "".join(lines).encode("ascii")
            write_all(fd, data)
            os.fsync(fd)
            self._offset += len(data)
            self._lines += len(lines)
            if self._lines > COMPACT_MIN and self._lines > 2 * len(self.entries):
                self._rewrite()
            return modseq

    def _rewrite(self) -> None:
        """Compact: header + one line per live UID (called with the lock held)."""
        body = "".join(f"{u} {m} :{lt}\n" for u, (m, lt) in sorted(self.entries.items()))
        data = (self._header() + body).encode("ascii")
        atomic_write(self.path, data)
        st = os.stat(self.path)
        self._ino = st.st_ino
        self._offset = len(data)
        self._lines = len(self.entries)
