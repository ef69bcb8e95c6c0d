"""Retry schedule of the relay queue: exponential backoff with jitter.

Theory of operation
-------------------
After the n-th failed attempt (n >= 1) the next one is due after
``retry_min * 2 ** (n - 1)`` seconds, times a random factor in [0.8, 1.2]
(+-20% jitter, so that messages queued together during an outage do not all
hit the smarthost at the same second when it is back).  The interval is capped
at ``retry_max``: above it the delay is ``retry_max`` times a factor in
[0.8, 1.0], so it never exceeds the cap and is still spread out.  RFC 5321
section 4.5.4.1 asks for at least 30 minutes between retries of one
destination "in general"; the default first retry of 5 minutes is what
Postfix does too (``minimal_backoff_time``), and the cap of 4 hours is
Postfix's ``maximal_backoff_time`` times one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

JITTER = 0.2


def retry_delay(
    attempts: int,
    retry_min: float,
    retry_max: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds until the next attempt after ``attempts`` failed ones."""
    n = max(1, attempts)
    # 2 ** 60 is far beyond any cap; avoid float overflow for absurd attempt counts
    base = retry_min * 2.0 ** min(n - 1, 60)
    delay = base * rand(1.0 - JITTER, 1.0 + JITTER)
    if delay > retry_max:
        delay = retry_max * rand(1.0 - JITTER, 1.0)
    return delay
