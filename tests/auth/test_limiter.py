"""AuthLimiter: growth, reset, expiry, bounded table, /64 grouping; fake clock and sleep."""

from __future__ import annotations

import asyncio

import pytest

from mailgw.auth.limiter import AuthLimiter, limiter_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)


def make(clock: FakeClock, sleep: FakeSleep, **kw: int) -> AuthLimiter:
    return AuthLimiter(1.0, 30.0, 900, clock, sleep=sleep, **kw)


def test_delay_grows_and_caps() -> None:
    clock, sleep = FakeClock(), FakeSleep()
    lim = make(clock, sleep)

    async def go() -> None:
        for _ in range(8):
            await lim.failed("192.0.2.1")

    asyncio.run(go())
    assert sleep.calls == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert lim.failures("192.0.2.1") == 8


def test_huge_counts_do_not_overflow() -> None:
    lim = AuthLimiter(1.0, 30.0, 900)
    assert lim.delay_for(5000) == 30.0
    assert lim.delay_for(0) == 0.0


def test_other_ip_not_delayed() -> None:
    clock, sleep = FakeClock(), FakeSleep()
    lim = make(clock, sleep)

    async def go() -> None:
        for _ in range(5):
            await lim.failed("192.0.2.1")
        await lim.failed("192.0.2.2")

    asyncio.run(go())
    assert sleep.calls[-1] == 1.0
    assert lim.failures("192.0.2.2") == 1


def test_success_resets() -> None:
    clock, sleep = FakeClock(), FakeSleep()
    lim = make(clock, sleep)

    async def go() -> None:
        await lim.failed("192.0.2.1")
        await lim.failed("192.0.2.1")
        lim.succeeded("192.0.2.1")
        await lim.failed("192.0.2.1")

    asyncio.run(go())
    assert sleep.calls == [1.0, 2.0, 1.0]


def test_entries_expire_after_window() -> None:
    clock, sleep = FakeClock(), FakeSleep()
    lim = make(clock, sleep)

    async def go() -> None:
        await lim.failed("192.0.2.1")
        await lim.failed("192.0.2.1")
        clock.now += 899
        await lim.failed("192.0.2.1")  # within the window of the last failure
        clock.now += 900
        await lim.failed("192.0.2.1")

    asyncio.run(go())
    assert sleep.calls == [1.0, 2.0, 4.0, 1.0]
    clock.now += 900
    assert lim.failures("192.0.2.1") == 0
    assert len(lim) == 0


def test_table_is_bounded_oldest_evicted() -> None:
    clock, sleep = FakeClock(), FakeSleep()
    lim = make(clock, sleep, max_entries=3)
    for i in range(1, 6):
        clock.now += 1
        lim.record_failure(f"192.0.2.{i}")
    assert len(lim) == 3
    assert lim.failures("192.0.2.1") == 0
    assert lim.failures("192.0.2.2") == 0
    assert lim.failures("192.0.2.5") == 1


def test_ipv6_grouped_by_64() -> None:
    assert limiter_key("2001:db8:1:2::1") == limiter_key("2001:db8:1:2:ffff::9")
    assert limiter_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert limiter_key("2001:db8:1:3::1") != limiter_key("2001:db8:1:2::1")
    assert limiter_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert limiter_key("fe80::1%eth0") == "fe80::/64"
    assert limiter_key("192.0.2.1") != limiter_key("192.0.2.2")
    assert limiter_key("unix:/run/sock") == "unix:/run/sock"
    clock, sleep = FakeClock(), FakeSleep()
    lim = make(clock, sleep)
    lim.record_failure("2001:db8::1")
    assert lim.record_failure("2001:db8::2") == 2.0


def test_sleeping_client_does_not_block_others() -> None:
    """With the real asyncio.sleep, a delayed session yields to the others."""
    lim = AuthLimiter(3600.0, 3600.0, 900)
    order: list[str] = []

    async def go() -> None:
        slow = asyncio.create_task(lim.failed("192.0.2.1"))
        await asyncio.sleep(0)
        order.append("other ran")
        assert not slow.done()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow

    asyncio.run(go())
    assert order == ["other ran"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        AuthLimiter(1.0, 30.0, 0)
