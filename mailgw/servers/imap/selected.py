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

Sequence sets resolve against the view (``resolve``), so a message expunged
by someone else keeps its number until its EXPUNGE was sent; handlers skip or
refuse such messages (RFC 2180 4.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.store import Folder, MessageInfo

RECENT = "\\Recent"


def imap_flags(info: MessageInfo) -> frozenset[str]:
    return info.flags | info.keywords


class BadSequence(Exception):
    """A message sequence number outside the view (tagged BAD)."""


@dataclass(slots=True)
class ViewMessage:
    uid: int
    info: MessageInfo
    flags: frozenset[str]
    expunged: bool = False


@dataclass
class SelectedMailbox:
    folder: Folder
    readonly: bool
    uidvalidity: int
    messages: list[ViewMessage] = field(default_factory=list)
    recent: set[int] = field(default_factory=set)
    reported_exists: int = 0
    reported_recent: int = 0
    pending_flags: dict[int, None] = field(default_factory=dict)
    condstore: bool = False
    by_uid: dict[int, ViewMessage] = field(default_factory=dict)

    @classmethod
    def open(
        cls, folder: Folder, readonly: bool, infos: Sequence[MessageInfo], recent: set[int]
    ) -> SelectedMailbox:
        view = cls(folder, readonly, folder.uidvalidity)
        view.messages = [ViewMessage(i.uid, i, imap_flags(i)) for i in infos]
        view.by_uid = {m.uid: m for m in view.messages}
        view.recent = set(recent)
        view.reported_exists = len(view.messages)
        view.reported_recent = len(view.recent)
        return view

    # --- numbers -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.messages)

    def seq(self, uid: int) -> int:
        m = self.by_uid[uid]
        return self.messages.index(m) + 1

    def flags_of(self, m: ViewMessage) -> list[str]:
        out = sorted(m.flags, key=lambda f: (not f.startswith("\\"), f))
        if m.uid in self.recent:
            out.append(RECENT)
        return out

    def resolve(self, seqset: c.SequenceSet, uid: bool) -> list[tuple[int, ViewMessage]]:
        """(sequence number, message) pairs in ascending order; BadSequence when invalid."""
        if seqset.saved:
            raise BadSequence("Saved search results are not supported")
        msgs = self.messages
        if uid:
            if not msgs:
                return []
            largest = msgs[-1].uid
            return [(i + 1, m) for i, m in enumerate(msgs) if seqset.contains(m.uid, largest)]
        n = len(msgs)
        for r in seqset.ranges:
            for number in (r.first, r.last):
                if (number != c.STAR and number > n) or (number == c.STAR and n == 0):
                    raise BadSequence("Invalid message sequence number")
        return [(i, msgs[i - 1]) for i in seqset.iter(n)]

    # --- changes ---------------------------------------------------------------------

    def apply(self, infos: Sequence[MessageInfo], new_recent: Iterable[int] = ()) -> None:
        """Merge a fresh store listing into the view (see the module docstring)."""
        present: set[int] = set()
        last = self.messages[-1].uid if self.messages else 0
        for info in infos:
            present.add(info.uid)
            m = self.by_uid.get(info.uid)
            if m is None:
                if info.uid > last:
                    m = ViewMessage(info.uid, info, imap_flags(info))
                    self.messages.append(m)
                    self.by_uid[m.uid] = m
                    last = info.uid
                continue
            if m.expunged:
                continue
            m.info = info
            flags = imap_flags(info)
            if flags != m.flags:
                m.flags = flags
                self.pending_flags[m.uid] = None
        for m in self.messages:
            if not m.expunged and m.uid not in present:
                m.expunged = True
        self.recent.update(u for u in new_recent if u in self.by_uid)

    def set_flags(self, m: ViewMessage, info: MessageInfo) -> None:
        """Our own STORE: the client hears it in the STORE reply, not as an update."""
        m.info = info
        m.flags = imap_flags(info)
        self.pending_flags.pop(m.uid, None)

    def has_expunged(self) -> bool:
        return any(m.expunged for m in self.messages)

    def updates(self, allow_expunge: bool, with_uid: bool = False) -> bytes:
        out: list[bytes] = []
        if allow_expunge and self.has_expunged():
            for i in range(len(self.messages) - 1, -1, -1):
                m = self.messages[i]
                if m.expunged:
                    out.append(s.expunge(i + 1))
                    del self.messages[i]
                    del self.by_uid[m.uid]
                    self.recent.discard(m.uid)
                    self.pending_flags.pop(m.uid, None)
                    self.reported_exists -= 1
        if len(self.messages) > self.reported_exists:
            out.append(s.exists(len(self.messages)))
            self.reported_exists = len(self.messages)
            out.append(s.recent(len(self.recent)))
            self.reported_recent = len(self.recent)
        for uid in list(self.pending_flags):
            pending = self.by_uid.get(uid)
            if pending is None or pending.expunged:
                continue
            m = pending
            items: list[tuple[str | s.Raw, s.Value]] = []
            if with_uid or self.condstore:
                items.append(("UID", uid))
            items.append(("FLAGS", [s.Atom(f) for f in self.flags_of(m)]))
            out.append(s.fetch(self.seq(uid), items))
        self.pending_flags.clear()
        return b"".join(out)
