"""Retry schedule: exponential from retry_min, capped at retry_max, +-20% jitter."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailgw.relay.backoff import retry_delay


def fixed(value: float):  # type: ignore[no-untyped-def]
    return lambda low, high: min(max(value, low), high)


def test_doubles_from_retry_min() -> None:
    delays = [retry_delay(n, 300, 4 * 3600, fixed(1.0)) for n in range(1, 8)]
    assert delays == [300, 600, 1200, 2400, 4800, 9600, 14400]


def test_cap_is_never_exceeded_and_still_jittered() -> None:
    assert retry_delay(30, 300, 3600, fixed(1.2)) == 3600
    assert retry_delay(30, 300, 3600, fixed(0.8)) == 0.8 * 3600


def test_jitter_bounds() -> None:
    assert retry_delay(1, 300, 3600, fixed(0.0)) == 0.8 * 300
    assert retry_delay(1, 300, 3600, fixed(9.0)) == 1.2 * 300


@given(st.integers(min_value=0, max_value=10_000))
def test_random_delays_stay_in_bounds(attempts: int) -> None:
    delay = retry_delay(attempts, 300, 14400)
    expected = min(300 * 2.0 ** min(max(attempts, 1) - 1, 60), 14400)
    assert 0.8 * min(expected, 14400) <= delay <= 14400
    if expected * 1.2 <= 14400:
        assert delay <= expected * 1.2
