"""Which failed requests the client sends again, and how long it waits before each try.

Reads (get, list) are idempotent: retried when no answer came (the connection failed or
timed out), on 429 and on a 5xx. Writes are retried only when the server certainly did not
act on them, or said to try again: no connection could be made, 429, or a 5xx (a write
the server applied and then failed to answer for is guarded by its resourceVersion, or is a
merge patch that applies twice to the same result). A write whose answer was lost
mid-flight or timed out is not sent again blindly, and a 409 Conflict never is: the
controller re-reads and plans again (see ``controllers``).

The wait is exponential with full jitter (``wait_random_exponential``), but never less than
the server's ``Retry-After`` (capped). Each attempt takes its own token from the client's
QPS bucket, so retries cannot push the request rate past the configured ``qps``.

``retrying`` is that loop as tenacity runs it; ``send_retried`` is the same loop (the same
predicate, number of attempts and waits) for the client's requests, written out so that a
request that succeeds at once (nearly all) costs no tenacity machinery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from shiftd.kube.errors import (
    CannotConnect,
    ServerError,
    TooManyRequests,
    TransportError,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all (1: none again); waits of ``base`` seconds doubling up to
    ``cap``, jittered; a ``Retry-After`` honoured up to ``max_retry_after`` seconds."""

    attempts: int = 4
    base: float = 0.1
    cap: float = 5.0
    max_retry_after: float = 10.0


def retryable_read(error: BaseException) -> bool:
    """Whether a failed read may be sent again."""
    return isinstance(error, TransportError | TooManyRequests | ServerError)


def retryable_write(error: BaseException) -> bool:
    """Whether a failed write may be sent again (it was certainly not applied, or the server
    asked for it): never a 409, a lost answer or a timeout."""
    return isinstance(error, CannotConnect | TooManyRequests | ServerError)


def _retry_after(error: BaseException | None) -> float:
    if isinstance(error, TooManyRequests | ServerError) and error.retry_after is not None:
        return error.retry_after
    return 0.0


class _WaitHonouringRetryAfter:
    """Full-jitter exponential back-off, lengthened to the server's ``Retry-After``."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._jitter = wait_random_exponential(multiplier=policy.base, max=policy.cap)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = min(_retry_after(error), self._policy.max_retry_after)
        return max(asked, float(self._jitter(retry_state)))


def retrying(policy: RetryPolicy, *, write: bool,
             sleep: Callable[[float], Awaitable[None]] = anyio.sleep) -> AsyncRetrying:
    """The tenacity loop for one request: ``async for attempt in retrying(...)``."""
    return AsyncRetrying(
        retry=retry_if_exception(retryable_write if write else retryable_read),
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=_WaitHonouringRetryAfter(policy),
        sleep=sleep,
        reraise=True,
    )


async def send_retried(request: Callable[[], Awaitable[T]], policy: RetryPolicy, *,
                       write: bool,
                       sleep: Callable[[float], Awaitable[None]] = anyio.sleep) -> T:
    """``await request()``, sent again exactly as ``retrying`` would: a failure the policy
    does not retry, or the last attempt's, is raised as it is; before each new attempt the
    wait of that attempt's number (tenacity's state is only built once an attempt failed)."""
    retryable = retryable_write if write else retryable_read
    attempts = max(1, policy.attempts)
    state: RetryCallState | None = None
    wait: _WaitHonouringRetryAfter | None = None
    while True:
        try:
            return await request()
        except Exception as error:
            if not retryable(error):
                raise
            if state is None or wait is None:
                state = RetryCallState(retrying(policy, write=write, sleep=sleep), None, (), {})
                wait = _WaitHonouringRetryAfter(policy)
            if state.attempt_number >= attempts:
                raise
            state.set_exception((type(error), error, error.__traceback__))
            await sleep(wait(state))
            state.attempt_number += 1


__all__ = ["RetryPolicy", "retryable_read", "retryable_write", "retrying", "send_retried"]
