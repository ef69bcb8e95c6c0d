"""The selected-mailbox view of one IMAP session.

Theory of operation
-------------------
A session that has SELECTed or EXAMINEd a folder keeps a *view*: the list of
messages the client knows, in sequence-number order (RFC 3501 2.3.1.2), each
with its UID and the flags last reported.  The view changes only when the
client may be told:

* ``apply(infos)`` takes a fresh listing from the store (our own changes and
  other sessions' or processes': SMTP delivery, POP3 UPDATE, Dovecot).
  Vanished messages are only *marked* expunged, new ones appended, flag
  changes queued.  Sequence numbers stay as the client knows them.
* ``updates(allow_expunge)`` renders what is queued: ``EXPUNGE`` responses
  (RFC 3501 7.4.1), then ``EXISTS``/``RECENT`` (7.3.1, 7.3.2), then unsolicited
  ``FETCH (FLAGS)`` (7.4.2).  EXPUNGE is held back while answering FETCH,
  STORE or SEARCH (7.4.1: "An EXPUNGE response MUST NOT be sent ... while
  responding to a FETCH, STORE, or SEARCH command"); the UID forms may get it.
  EXPUNGEs are sent highest sequence number first, so none renumbers another.
* ``\\Recent`` (RFC 3501 2.3.2): a message is recent in at most one session:
  the one whose ``Folder.claim_recent()`` moved it from ``new/`` to ``cur/``
  (read-write sessions only, as Dovecot does).

Memory (hundreds of idle sessions on one big INBOX): the message list is a
:class:`Snapshot`, immutable and shared by every view of the same folder in
this process (a weak per-folder cache; a new listing equal to the cached one
reuses it).  A view holds only its sequence -> UID map (an ``array('I')``,
itself shared with the snapshot while they agree), the snapshot, and small
per-session dicts: flags of its own STOREs not yet in a snapshot, messages
expunged but not yet reported, pending flag updates, ``\\Recent`` UIDs.  A
snapshot records which UIDs changed against its predecessor, so applying the
next snapshot costs O(changes), not O(messages).

Sequence sets resolve against the view (``resolve``, by bisection), so a
message expunged by someone else keeps its number until its EXPUNGE was sent;
handlers skip or refuse such messages (RFC 2180 4.1).
"""

from __future__ import annotations

import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.store import Folder, MessageInfo

RECENT = "\\Recent"


def imap_flags(info: MessageInfo) -> frozenset[str]:
    return info.flags | info.keywords


def _same_flags(a: MessageInfo, b: MessageInfo) -> bool:
    return a.flags == b.flags and a.keywords == b.keywords


class BadSequence(Exception):
    """A message sequence number outside the view (tagged BAD)."""


class Snapshot:
    """One listing of a folder (UID order), shared by every view that has it."""

    __slots__ = ("__weakref__", "base", "changed", "has_new", "infos", "uids")

    def __init__(self, infos: list[MessageInfo], base: Snapshot | None = None) -> None:
        self.infos = infos
        self.uids = array("I", [i.uid for i in infos])
        self.has_new = any(i.path.parent.name == "new" for i in infos)  # not \\Recent-claimed yet
        # the snapshot this one follows, and the UIDs of ``base`` that changed or vanished
        self.base: weakref.ref[Snapshot] | None = None
        self.changed: frozenset[int] = frozenset()
        if base is not None:
            self.base = weakref.ref(base)
            self.changed = frozenset(_changed(base, self))

    def index(self, uid: int) -> int:
        """Position of ``uid``, or -1."""
        uids = self.uids
        i = bisect_left(uids, uid)
        return i if i < len(uids) and uids[i] == uid else -1

    def info(self, uid: int) -> MessageInfo | None:
        i = self.index(uid)
        return self.infos[i] if i >= 0 else None


def _changed(old: Snapshot, new: Snapshot) -> Iterator[int]:
    """UIDs of ``old`` that are gone or different in ``new`` (a merge walk)."""
    j, n = 0, len(new.infos)
    for a in old.infos:
        while j < n and new.infos[j].uid < a.uid:
            j += 1
        if j >= n or new.infos[j].uid != a.uid or (new.infos[j] is not a and new.infos[j] != a):
            yield a.uid


# folder path -> the newest snapshot some view holds (per process)
_SNAPSHOTS: weakref.WeakValueDictionary[Path, Snapshot] = weakref.WeakValueDictionary()


def snapshot_for(folder: Folder, infos: list[MessageInfo]) -> Snapshot:
    """The shared snapshot equal to ``infos`` (a new one when the folder changed)."""
    old = _SNAPSHOTS.get(folder.path)
    if old is not None and (old.infos is infos or old.infos == infos):
        return old
    snap = Snapshot(infos, old)
    _SNAPSHOTS[folder.path] = snap
    return snap


class ViewMessage:
    """One message of a view as a handler sees it (made on demand by ``resolve``)."""

    __slots__ = ("expunged", "info", "uid")

    def __init__(self, uid: int, info: MessageInfo, expunged: bool = False) -> None:
        self.uid = uid
        self.info = info
        self.expunged = expunged

    @property
    def flags(self) -> frozenset[str]:
        return imap_flags(self.info)


class SelectedMailbox:
    __slots__ = (
        "condstore",
        "folder",
        "gone",
        "pending_flags",
        "readonly",
        "recent",
        "reported_exists",
        "snap",
        "stored",
        "uids",
        "uidvalidity",
    )

    def __init__(self, folder: Folder, readonly: bool, uidvalidity: int, snap: Snapshot) -> None:
        self.folder = folder
        self.readonly = readonly
        self.uidvalidity = uidvalidity
        self.snap = snap
        self.uids = snap.uids  # sequence number - 1 -> UID; replaced, never mutated
        self.recent: set[int] = set()
        self.reported_exists = len(snap.uids)
        self.pending_flags: dict[int, None] = {}
        self.condstore = False
        self.stored: dict[int, MessageInfo] = {}  # our STOREs not yet in ``snap``
        self.gone: dict[int, MessageInfo] = {}  # expunged, EXPUNGE not sent yet

    @classmethod
    def open(
        cls, folder: Folder, readonly: bool, infos: Sequence[MessageInfo], recent: set[int]
    ) -> SelectedMailbox:
        view = cls(folder, readonly, folder.uidvalidity, snapshot_for(folder, list(infos)))
        view.recent = set(recent)
        return view

    # --- numbers -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.uids)

    def _pos(self, uid: int) -> int:
        """Index of ``uid`` in the view, or -1."""
        uids = self.uids
        i = bisect_left(uids, uid)
        return i if i < len(uids) and uids[i] == uid else -1

    def seq(self, uid: int) -> int:
        i = self._pos(uid)
        if i < 0:
            raise KeyError(uid)
        return i + 1

    def _message(self, uid: int) -> ViewMessage:
        info = self.stored.get(uid) or self.snap.info(uid)
        if info is None:
            return ViewMessage(uid, self.gone[uid], True)
        return ViewMessage(uid, info, uid in self.gone)

    def messages(self) -> Iterator[tuple[int, ViewMessage]]:
        """Every (sequence number, message) of the view, ascending."""
        for i, uid in enumerate(self.uids, 1):
            yield i, self._message(uid)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def flags_of(self, m: ViewMessage) -> list[str]:
        out = sorted(m.flags, key=lambda f: (not f.startswith("\\"), f))
        if m.uid in self.recent:
            out.append(RECENT)
        return out

    def resolve(self, seqset: c.SequenceSet, uid: bool) -> list[tuple[int, ViewMessage]]:
        """(sequence number, message) pairs in ascending order; BadSequence when invalid."""
        if seqset.saved:
            raise BadSequence("Saved search results are not supported")
        uids = self.uids
        if uid:
            if not uids:
                return []
            largest = uids[-1]
            positions: set[int] = set()
            for r in seqset.ranges:
                low, high = r.resolve(largest)
                positions.update(range(bisect_left(uids, low), bisect_right(uids, high)))
            return [(i + 1, self._message(uids[i])) for i in sorted(positions)]
        n = len(uids)
        for r in seqset.ranges:
            for number in (r.first, r.last):
                if (number != c.STAR and number > n) or (number == c.STAR and n == 0):
                    raise BadSequence("Invalid message sequence number")
        return [(i, self._message(uids[i - 1])) for i in seqset.iter(n)]

    # --- changes ---------------------------------------------------------------------

    def apply(self, infos: list[MessageInfo], new_recent: Iterable[int] = ()) -> None:
        """Merge a fresh store listing into the view (see the module docstring)."""
        old = self.snap
        new = snapshot_for(self.folder, infos)
        if new is not old or self.stored:
            candidates: Iterable[int]
            if new is old:
                candidates = list(self.stored)
            elif new.base is not None and new.base() is old:
                candidates = new.changed | self.stored.keys()
            else:
                candidates = self.uids
            for uid in candidates:
                if uid in self.gone or self._pos(uid) < 0:
                    continue  # expunged stays expunged until reported
                before = self.stored.get(uid) or old.info(uid)
                after = new.info(uid)
                if after is None:
                    if before is not None:
                        self.gone[uid] = before
                elif before is None or not _same_flags(before, after):
                    self.pending_flags[uid] = None
            self.stored.clear()
            self.snap = new
            last = self.last_uid
            start = bisect_right(new.uids, last)
            if start < len(new.uids):
                self.uids = self.uids + new.uids[start:]
            if self.uids is not new.uids and self.uids == new.uids:
                self.uids = new.uids  # share again
        for u in new_recent:
            if self._pos(u) >= 0:
                self.recent.add(u)

    def set_flags(self, m: ViewMessage, info: MessageInfo) -> None:
        """Our own STORE: the client hears it in the STORE reply, not as an update."""
        m.info = info
        self.stored[m.uid] = info
        self.pending_flags.pop(m.uid, None)

    def has_expunged(self) -> bool:
        return bool(self.gone)

    def updates(self, allow_expunge: bool, with_uid: bool = False) -> bytes:
        out: list[bytes] = []
        if allow_expunge and self.gone:
            gone = self.gone
            for i in sorted((self._pos(u) for u in gone), reverse=True):
                out.append(s.expunge(i + 1))
            self.uids = array("I", [u for u in self.uids if u not in gone])
            if self.uids == self.snap.uids:
                self.uids = self.snap.uids
            for uid in gone:
                self.recent.discard(uid)
                self.pending_flags.pop(uid, None)
                self.stored.pop(uid, None)
            self.reported_exists -= len(gone)
            self.gone = {}
        if len(self.uids) > self.reported_exists:
            out.append(s.exists(len(self.uids)))
            self.reported_exists = len(self.uids)
            out.append(s.recent(len(self.recent)))
        for uid in list(self.pending_flags):
            if uid in self.gone or self._pos(uid) < 0:
                continue
            m = self._message(uid)
            items: list[tuple[str | s.Raw, s.Value]] = []
            if with_uid or self.condstore:
                items.append(("UID", uid))
            items.append(("FLAGS", [s.Atom(f) for f in self.flags_of(m)]))
            out.append(s.fetch(self.seq(uid), items))
        self.pending_flags.clear()
        return b"".join(out)
