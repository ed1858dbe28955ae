"""Client-side request rate limiting: a token bucket in the style of client-go's QPS/burst.

Every non-watch request takes one token before it is sent. The bucket holds up to ``burst``
tokens and refills at ``qps`` tokens per second, so a quiet client can send ``burst``
requests at once and then ``qps`` per second on average. Waiters are served in arrival
order. The clock and sleep are injectable so tests can run without real time passing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio


class TokenBucket:
    """``qps`` tokens per second, at most ``burst`` banked; ``qps <= 0`` means unlimited."""

    def __init__(
        self,
        *,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()

    @property
    def unlimited(self) -> bool:
        return self._qps <= 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._qps)
        self._stamp = now

    async def acquire(self) -> None:
        """Take a token, waiting until it is due.

        The token is reserved before waiting (the bucket may go into debt), so concurrent
        callers are spaced out in the order they arrived, without a lock.
        """
        if self.unlimited:
            return
        self._refill()
        self._tokens -= 1.0
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._qps)
