"""Per-address authentication-failure limiter, shared by SMTP, POP3 and IMAP.

Theory of operation
-------------------
Each failed login from an address makes that client wait before it gets its
answer: ``min(base_delay * 2**(n-1), max_delay)`` seconds for its n-th failure.
The wait is an ``asyncio.sleep`` in the failing session only, so other clients
(and other sessions from the same address) are not slowed.  A success resets
the address; an address with no failure for ``window`` seconds is forgotten.

* IPv4 addresses count one by one; IPv6 addresses are grouped by /64 (one
  subscriber usually gets a whole /64); IPv4-mapped IPv6 counts as IPv4.
  Anything that is not an IP address (a Unix socket) counts as itself.
* Memory is bounded: at most ``max_entries`` addresses are tracked; the least
  recently failing ones are evicted first.  The table is ordered by last
  failure, so expiry is a walk from the front.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_MAX_EXPONENT = 62  # 2**62 * base is already past any sane max_delay


def limiter_key(ip: str) -> str:
    """The bucket an address counts in: itself for IPv4, its /64 for IPv6."""
    text = ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # zone id: fe80::1%eth0
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


@dataclass
class _Failures:
    count: int
    last: float


class AuthLimiter:
    """Growing per-address delay after failed logins."""

    def __init__(
        self,
        base_delay: float,
        max_delay: float,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = 10000,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if base_delay < 0 or max_delay < 0 or window <= 0 or max_entries < 1:
            raise ValueError("AuthLimiter: delays must be >= 0, window and max_entries > 0")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self._sleep = sleep
        self._table: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def failures(self, ip: str) -> int:
        """Failures counted for ``ip``'s bucket within the window."""
        self._expire(self._clock())
        entry = self._table.get(limiter_key(ip))
        return 0 if entry is None else entry.count

    def delay_for(self, count: int) -> float:
        """The delay after the ``count``-th failure."""
        if count <= 0:
            return 0.0
        return float(min(self.base_delay * 2 ** min(count - 1, _MAX_EXPONENT), self.max_delay))

    def record_failure(self, ip: str) -> float:
        """Count a failure and return the delay it earns (without sleeping)."""
        now = self._clock()
        self._expire(now)
        key = limiter_key(ip)
        entry = self._table.pop(key, None)
        count = 1 if entry is None else entry.count + 1
        self._table[key] = _Failures(count, now)  # re-inserted at the end: newest
        while len(self._table) > self.max_entries:
            self._table.popitem(last=False)
        return self.delay_for(count)

    async def failed(self, ip: str) -> None:
        """Count a failure from ``ip`` and sleep the delay it earns."""
        delay = self.record_failure(ip)
        if delay > 0:
            await self._sleep(delay)

    def succeeded(self, ip: str) -> None:
        """A successful login from ``ip``: forget its failures."""
        self._table.pop(limiter_key(ip), None)

    def _expire(self, now: float) -> None:
        while self._table:
            key, entry = next(iter(self._table.items()))
            if now - entry.last < self.window:
                break
            del self._table[key]


__all__ = ["AuthLimiter", "limiter_key"]
