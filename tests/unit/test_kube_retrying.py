"""Which failed requests the client sends again, and how long apart: the policy alone (with a
recording sleep), then KubeClient against a tiny server answering a scripted sequence."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from shiftd.kube.client import KubeClient
from shiftd.kube.errors import (
    ApiError,
    CannotConnect,
    Conflict,
    ConnectionFailed,
    KubeError,
    NotFound,
    RequestTimeout,
    ServerError,
    TooManyRequests,
    error_from_response,
)
from shiftd.kube.resources import ROLLOUT
from shiftd.kube.retrying import (
    RetryPolicy,
    retryable_read,
    retryable_write,
    retrying,
    send_retried,
)

FAST = RetryPolicy(attempts=4, base=0.001, cap=0.002)


def throttled(after: float | None) -> TooManyRequests:
    return TooManyRequests(429, "TooManyRequests", "slow down", retry_after=after)


@pytest.mark.parametrize(
    ("error", "read", "write"),
    [
        (ConnectionFailed("reset"), True, False),
        (CannotConnect("refused"), True, True),
        (RequestTimeout("timed out"), True, False),
        (throttled(1), True, True),
        (ServerError(500, "InternalError", ""), True, True),
        (ServerError(503, "ServiceUnavailable", ""), True, True),
        (Conflict(409, "Conflict", ""), False, False),
        (NotFound(404, "NotFound", ""), False, False),
        (ApiError(400, "BadRequest", ""), False, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, KubeError) else str(value),
)
def test_reads_and_writes_are_retried_only_on_the_failures_safe_to_send_again(
    error: KubeError, read: bool, write: bool,
) -> None:
    assert (retryable_read(error), retryable_write(error)) == (read, write)


def test_retry_after_comes_from_the_header_or_else_the_status_details() -> None:
    body = orjson.dumps({"kind": "Status", "code": 429, "reason": "TooManyRequests",
                         "details": {"retryAfterSeconds": 2}})
    from_header = error_from_response(429, body, retry_after="5")
    from_details = error_from_response(429, body)
    from_a_date = error_from_response(503, b"unavailable", retry_after="Wed, 21 Oct 2015")
    assert isinstance(from_header, TooManyRequests) and from_header.retry_after == 5
    assert from_details.retry_after == 2
    assert isinstance(from_a_date, ServerError) and from_a_date.retry_after is None


async def waits_before_success(failures: list[KubeError], policy: RetryPolicy, *,
                               write: bool) -> list[float]:
    """The sleeps between attempts of a call failing with ``failures`` then succeeding."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    remaining = iter(failures)
    async for attempt in retrying(policy, write=write, sleep=sleep):
        with attempt:
            failure = next(remaining, None)
            if failure is not None:
                raise failure
    return slept


async def test_a_retry_after_is_waited_out_even_when_the_back_off_is_shorter() -> None:
    policy = RetryPolicy(attempts=3, base=0.01, cap=0.02, max_retry_after=10)
    assert await waits_before_success([throttled(3), throttled(None)], policy,
                                      write=True) == [3.0, pytest.approx(0.01, abs=0.02)]


async def test_a_retry_after_beyond_the_cap_waits_only_the_cap() -> None:
    policy = RetryPolicy(attempts=2, base=0.01, cap=0.02, max_retry_after=4)
    assert await waits_before_success([throttled(600)], policy, write=True) == [4.0]


async def test_back_off_grows_exponentially_under_its_cap_with_jitter() -> None:
    policy = RetryPolicy(attempts=6, base=1.0, cap=8.0)
    failures: list[KubeError] = [ServerError(500, "InternalError", "")] * 5
    waits = await waits_before_success(failures, policy, write=True)
    assert len(waits) == 5
    assert all(0 <= wait <= bound for wait, bound in zip(waits, [1, 2, 4, 8, 8], strict=True))


async def test_a_policy_of_one_attempt_never_retries() -> None:
    with pytest.raises(ServerError):
        await waits_before_success([ServerError(500, "InternalError", "")],
                                   RetryPolicy(attempts=1), write=False)


# --- the client against a scripted server -----------------------------------------------------


@asynccontextmanager
async def scripted(*answers: tuple[int, dict[str, str]]) -> AsyncIterator[
        tuple[KubeClient, list[tuple[str, int]]]]:
    """A client of a server answering each request with the next (status, headers); 200 with
    the object once the script is used up."""
    script = iter(answers)

    async def respond(request: web.Request) -> web.Response:
        status, headers = next(script, (200, {}))
        body = {"kind": "Status", "code": status, "reason": "Scripted"} if status >= 400 else {
            "metadata": {"name": "web"}}
        return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                            content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", respond)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    requests: list[tuple[str, int]] = []
    try:
        async with KubeClient(Configuration(host=f"http://{host}:{port}"), retry_policy=FAST,
                              on_request=lambda verb, code: requests.append((verb, code))
                              ) as client:
            yield client, requests
    finally:
        await runner.cleanup()


async def test_a_write_answered_429_then_500_then_503_succeeds_on_its_fourth_try() -> None:
    async with scripted((429, {"Retry-After": "0"}), (500, {}), (503, {})) as (client, sent):
        await client.patch(ROLLOUT, "shop", "web", {}, patch_type="merge")
    assert sent == [("patch", 429), ("patch", 500), ("patch", 503), ("patch", 200)]


async def test_a_conflict_is_raised_at_once_for_the_controller_to_replan() -> None:
    async with scripted((409, {})) as (client, sent):
        with pytest.raises(Conflict):
            await client.replace(ROLLOUT, "shop", "web", {"metadata": {"name": "web"}})
    assert sent == [("update", 409)]


async def test_a_read_answered_503_then_429_is_retried_until_it_succeeds() -> None:
    async with scripted((503, {}), (429, {"Retry-After": "0"})) as (client, sent):
        assert (await client.get(ROLLOUT, "shop", "web"))["metadata"]["name"] == "web"
    assert sent == [("get", 503), ("get", 429), ("get", 200)]


async def test_a_write_failing_more_often_than_its_attempts_raises_the_last_error() -> None:
    async with scripted(*[(500, {})] * 5) as (client, sent):
        with pytest.raises(ServerError):
            await client.create(ROLLOUT, "shop", {"metadata": {"name": "web"}})
    assert sent == [("create", 500)] * FAST.attempts


@pytest.mark.parametrize("write", [True, False], ids=["write", "read"])
@pytest.mark.parametrize("failures", [
    [],
    [ServerError(500, "InternalError", "")] * 2,
    [throttled(0.5), CannotConnect("refused"), ServerError(503, "ServiceUnavailable", "")],
    [ServerError(500, "InternalError", "")] * 6,
    [Conflict(409, "Conflict", "")],
    [ConnectionFailed("reset"), throttled(None)],
], ids=["success", "two-500s", "mixed", "too-many", "conflict", "reset-then-429"])
async def test_the_clients_retry_loop_sends_and_waits_exactly_as_tenacitys_loop(
    failures: list[KubeError], write: bool,
) -> None:
    policy = RetryPolicy(attempts=4, base=0.5, cap=3.0, max_retry_after=10)

    async def run(loop: str) -> tuple[list[float], int, str]:
        """The waits, the attempts made and the outcome, with jitter from a fixed seed."""
        random.seed(1234)
        slept: list[float] = []
        attempts = 0

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        async def request() -> str:
            nonlocal attempts
            attempts += 1
            if attempts <= len(failures):
                raise failures[attempts - 1]
            return "answer"

        try:
            if loop == "tenacity":
                async for attempt in retrying(policy, write=write, sleep=sleep):
                    with attempt:
                        outcome = await request()
            else:
                outcome = await send_retried(request, policy, write=write, sleep=sleep)
        except KubeError as error:
            outcome = f"raised {error!r} {id(error)}"
        return slept, attempts, outcome

    assert await run("send_retried") == await run("tenacity")
