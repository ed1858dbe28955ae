"""The QPS/burst token bucket, on a fake clock whose sleeps advance time instantly."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from shiftd.kube.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def bucket(clock: FakeClock, *, qps: float, burst: int) -> TokenBucket:
    return TokenBucket(qps=qps, burst=burst, clock=clock, sleep=clock.sleep)


async def test_a_full_bucket_lets_a_burst_through_without_waiting() -> None:
    clock = FakeClock()
    limiter = bucket(clock, qps=10, burst=5)
    for _ in range(5):
        await limiter.acquire()
    assert clock.sleeps == []


async def test_after_the_burst_requests_are_spaced_at_the_qps() -> None:
    clock = FakeClock()
    limiter = bucket(clock, qps=10, burst=2)
    for _ in range(5):
        await limiter.acquire()
    assert clock.sleeps == [0.1, 0.1, 0.1]
    assert clock.now == pytest.approx(100.3)


async def test_an_idle_bucket_refills_only_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = bucket(clock, qps=10, burst=3)
    for _ in range(3):
        await limiter.acquire()
    clock.now += 60  # idle for a minute: 600 tokens' worth, but the bucket holds 3
    for _ in range(4):
        await limiter.acquire()
    assert clock.sleeps == [0.1]


async def test_zero_qps_means_no_limit() -> None:
    clock = FakeClock()
    limiter = bucket(clock, qps=0, burst=1)
    for _ in range(100):
        await limiter.acquire()
    assert clock.sleeps == []


def test_a_burst_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(qps=1, burst=0)


async def test_concurrent_callers_are_spaced_out_in_arrival_order() -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        await anyio.lowlevel.checkpoint()

    # Time stands still while all three ask: each reserves its slot before it waits.
    limiter = TokenBucket(qps=10, burst=1, clock=lambda: 100.0, sleep=record)
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(limiter.acquire)
    assert sorted(sleeps) == [0.1, 0.2]
