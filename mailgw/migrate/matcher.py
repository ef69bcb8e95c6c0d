"""Finding source messages among a destination folder's messages, by content.

Theory of operation.  A message's identity is the SHA-256 of its canonical
CRLF bytes (``body.py``).  The destination lists ids, sizes and Message-IDs
(RFC 5322 3.6.4) cheaply (``Destination.index``); only messages of the same
size -- and the same Message-ID when both have one -- are fetched and hashed,
once each (cached per id).  A destination id is *claimed* by at most one
source message (the state's ``done`` rows claim theirs), so two equal source
messages need two destination copies: matching is a multiset operation.

Used for: matching mode (a destination that may hold copies the state does
not know of), resolving ids after an append without APPENDUID (RFC 4315
3: ids >= the UIDNEXT before the append, RFC 3501 2.3.1.1), and verification
(re-read and compare the hash).  Flag rules (RFC 3501 2.3.2, 7.1): ``\\Recent``
is never set; a destination's PERMANENTFLAGS limit what is kept, ``\\*``
allowing any keyword.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from mailgw.migrate.body import MessageBody
from mailgw.migrate.endpoints.base import Destination
from mailgw.migrate.model import DestMessage, FolderName


def source_flags(flags: frozenset[str]) -> frozenset[str]:
    """The flags worth copying (all but ``\\Recent``)."""
    return frozenset(f for f in flags if f.lower() != "\\recent")


def usable_flags(
    flags: frozenset[str], permanent: frozenset[str] | None
) -> tuple[frozenset[str], list[str]]:
    """(flags the destination keeps, flags it refuses); ``\\Recent`` is never set."""
    clean = set(source_flags(flags))
    if permanent is None:
        return frozenset(clean), []
    allowed = {p.lower() for p in permanent}
    any_keyword = "\\*" in allowed
    kept = {f for f in clean if f.lower() in allowed or (any_keyword and not f.startswith("\\"))}
    return frozenset(kept), sorted(clean - kept)


def same_flags(a: frozenset[str], b: frozenset[str]) -> bool:
    """Flag sets compare case-insensitively (RFC 3501 2.3.2)."""
    return {f.lower() for f in a} == {f.lower() for f in b}


def norm_message_id(mid: str | None) -> str | None:
    return "".join(mid.split()).lower() if mid else None


async def close_iter(it: AsyncIterator[object]) -> None:
    """Close an async generator early (``aclose``) so its connection state is sane."""
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


class DestinationMatcher:
    """Content lookups in one destination folder over one connection."""

    def __init__(self, dst: Destination, folder: FolderName, batch: int) -> None:
        self.dst = dst
        self.folder = folder
        self.batch = max(1, batch)
        self.claimed: set[int] = set()
        self._by_size: dict[int, list[DestMessage]] | None = None
        self._hashes: dict[int, str] = {}

    async def hashes(self, uids: Sequence[int], *, fresh: bool = False) -> dict[int, str]:
        """id -> sha256 of these destination messages ("" for a missing one)."""
        if fresh:
            self._hashes.clear()
        need = [u for u in uids if u not in self._hashes]
        for i in range(0, len(need), self.batch):
            chunk = need[i : i + self.batch]
            it = self.dst.fetch_bodies(self.folder, chunk)
            try:
                async for uid, body in it:
                    self._hashes[uid] = body.sha256
                    body.close()
            finally:
                await close_iter(it)
            for u in chunk:
                self._hashes.setdefault(u, "")
        return {u: self._hashes[u] for u in uids}

    async def match(self, body: MessageBody, mid: str | None) -> DestMessage | None:
        """An unclaimed destination message with these bytes (not claimed here)."""
        if self._by_size is None:
            self._by_size = {}
            for d in await self.dst.index(self.folder, 1):
                self._by_size.setdefault(d.size, []).append(d)
        want = norm_message_id(mid)
        cands = [
            d
            for d in self._by_size.get(body.size, [])
            if d.uid not in self.claimed
            and (want is None or d.message_id is None or norm_message_id(d.message_id) == want)
        ]
        if not cands:
            return None
        hashes = await self.hashes([d.uid for d in cands])
        for d in cands:
            if hashes.get(d.uid) == body.sha256:
                return d
        return None

    async def resolve(
        self, wanted: Sequence[tuple[str, int]], floor: int
    ) -> tuple[list[int | None], int]:
        """Ids of just-appended messages ((sha256, size) each, in append order)
        among unclaimed ids >= ``floor``; claims them.  Returns the ids (None
        where not found) and the new floor."""
        listed = await self.dst.index(self.folder, floor)
        sizes = {size for _, size in wanted}
        cands = sorted(
            (d for d in listed if d.uid not in self.claimed and d.size in sizes),
            key=lambda d: d.uid,
        )
        hashes = await self.hashes([d.uid for d in cands])
        out: list[int | None] = []
        for sha, _ in wanted:
            found = next(
                (d.uid for d in cands if d.uid not in self.claimed and hashes.get(d.uid) == sha),
                None,
            )
            if found is not None:
                self.claimed.add(found)
            out.append(found)
        if listed:
            floor = max(floor, max(d.uid for d in listed) + 1)
        return out, floor


__all__ = [
    "DestinationMatcher",
    "close_iter",
    "norm_message_id",
    "same_flags",
    "source_flags",
    "usable_flags",
]
