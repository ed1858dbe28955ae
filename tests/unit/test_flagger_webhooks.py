"""Flagger's webhooks against a real local HTTP server: payload, timeout, retries, verdicts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shiftd.providers.flagger_webhooks import (
    HOOK_TYPES,
    call_webhook,
    event_payload,
    hook_timeout_seconds,
    retry_delay_seconds,
    webhook_payload,
)
from tests.support.loadtester import loadtester
from tests.support.prometheus import free_port, serve

Answer = Callable[[int], Awaitable[web.Response]]


@dataclass
class Hook:
    """A webhook receiver answering each request with ``answer(attempt)``."""

    answer: Answer
    bodies: list[Any] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        self.content_types.append(request.headers.get("Content-Type", ""))
        return await self.answer(len(self.bodies))


@asynccontextmanager
async def receiver(answer: Answer) -> AsyncIterator[tuple[Hook, str, aiohttp.ClientSession]]:
    hook = Hook(answer)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    async with serve(app) as url, aiohttp.ClientSession() as session:
        yield hook, f"{url}/hook", session


def answers(*statuses: int, headers: dict[str, str] | None = None) -> Answer:
    """Answer the n-th request with the n-th status (the last one repeats)."""
    async def answer(attempt: int) -> web.Response:
        status = statuses[min(attempt, len(statuses)) - 1]
        return web.Response(status=status, text=f"answer {attempt}", headers=headers)
    return answer


class Waits:
    """Records the backoff waits instead of sleeping them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


PAYLOAD = webhook_payload(name="podinfo", namespace="test", phase="Progressing",
                          hook_type="rollout", metadata={"cmd": "hey"}, checksum="abc")


def test_the_payload_has_flaggers_fields_and_no_others() -> None:
    assert PAYLOAD == {"name": "podinfo", "namespace": "test", "phase": "Progressing",
                       "checksum": "abc", "metadata": {"cmd": "hey"}}


def test_metadata_is_left_out_when_empty_as_flaggers_omitempty() -> None:
    payload = webhook_payload(name="a", namespace="b", phase="Succeeded",
                              hook_type="post-rollout", metadata=None, checksum="c")
    assert payload == {"name": "a", "namespace": "b", "phase": "Succeeded", "checksum": "c"}


@pytest.mark.parametrize(("hook_type", "phase"), [
    ("pre-rollout", "Progressing"), ("rollout", "Progressing"), ("", "Progressing"),
    ("confirm-traffic-increase", "Progressing"), ("confirm-promotion", "Progressing"),
    ("confirm-rollout", "Waiting"), ("post-rollout", "Waiting"), ("rollback", "Waiting"),
    ("event", "Waiting"),
])
def test_gating_and_analysis_hooks_are_told_progressing_whatever_the_phase(
        hook_type: str, phase: str) -> None:
    payload = webhook_payload(name="a", namespace="b", phase="Waiting", hook_type=hook_type,
                              metadata=None, checksum="c")
    assert payload["phase"] == phase
    assert hook_type in (*HOOK_TYPES, "")


def test_an_event_payload_carries_the_event_and_keeps_flaggers_keys_first() -> None:
    payload = event_payload(name="a", namespace="b", phase="Progressing", checksum="c",
                            metadata={"eventType": "mine", "team": "x"},
                            message="Advance a.b canary weight 10", event_type="Normal",
                            timestamp_ms=1700000000123)
    assert payload["metadata"] == {"eventMessage": "Advance a.b canary weight 10",
                                   "eventType": "Normal", "timestamp": "1700000000123",
                                   "team": "x"}


@pytest.mark.parametrize(("timeout", "seconds"), [
    (None, 10.0), ("", 10.0), ("5", 10.0), ("30s", 30.0), ("1m", 60.0), ("500ms", 0.5)])
def test_each_attempt_times_out_after_the_hooks_timeout_or_ten_seconds(
        timeout: str | None, seconds: float) -> None:
    assert hook_timeout_seconds({"timeout": timeout}) == seconds


@pytest.mark.parametrize(("attempt", "status", "retry_after", "seconds"), [
    (0, 500, None, 1.0), (1, 500, None, 2.0), (3, None, None, 8.0), (10, 500, None, 30.0),
    (0, 429, "5", 5.0), (0, 503, "7", 7.0), (0, 503, "3600", 30.0), (2, 500, "5", 4.0),
    (0, 429, "soon", 1.0),
])
def test_retries_back_off_as_retryablehttp(
        attempt: int, status: int | None, retry_after: str | None, seconds: float) -> None:
    assert retry_delay_seconds(attempt, status=status, retry_after=retry_after) == seconds


async def test_a_hook_receives_the_payload_as_json() -> None:
    async with receiver(answers(200)) as (hook, url, session):
        result = await call_webhook(session, {"name": "load-test", "url": url}, PAYLOAD)
    assert result.ok and result.status == 200 and result.attempts == 1
    assert hook.bodies == [PAYLOAD]
    assert hook.content_types[0].startswith("application/json")


@pytest.mark.parametrize(("status", "ok"), [(200, True), (201, True), (202, True),
                                             (203, False), (204, False), (302, False),
                                             (403, False), (404, False)])
async def test_a_status_above_202_fails_the_check_with_the_body_as_the_error(
        status: int, ok: bool) -> None:
    async with receiver(answers(status)) as (hook, url, session):
        result = await call_webhook(session, {"url": url, "retries": 3}, PAYLOAD)
    assert (result.ok, result.status, result.attempts) == (ok, status, 1)
    # Flagger's error is the body, even an empty one (a 204 has none).
    assert result.error == ("" if ok or status == 204 else "answer 1")
    assert len(hook.bodies) == 1


async def test_server_errors_are_retried_with_backoff_until_one_succeeds() -> None:
    waits = Waits()
    async with receiver(answers(500, 503, 200)) as (hook, url, session):
        result = await call_webhook(session, {"url": url, "retries": 2}, PAYLOAD, sleep=waits)
    assert (result.ok, result.attempts) == (True, 3)
    assert waits.seconds == [1.0, 2.0]
    assert hook.bodies == [PAYLOAD] * 3


async def test_when_retries_run_out_the_error_is_retryablehttps() -> None:
    waits = Waits()
    async with receiver(answers(429, headers={"Retry-After": "4"})) as (hook, url, session):
        result = await call_webhook(session, {"url": url, "retries": 1}, PAYLOAD, sleep=waits)
    assert (result.ok, result.status, result.attempts) == (False, 429, 2)
    assert result.error == f"POST {url} giving up after 2 attempt(s)"
    assert waits.seconds == [4.0] and len(hook.bodies) == 2


async def test_without_retries_a_server_error_gives_up_after_one_attempt() -> None:
    async with receiver(answers(500)) as (hook, url, session):
        result = await call_webhook(session, {"url": url}, PAYLOAD)
    assert (result.ok, result.attempts) == (False, 1)
    assert result.error == f"POST {url} giving up after 1 attempt(s)"
    assert len(hook.bodies) == 1


async def test_not_implemented_is_not_retried() -> None:
    async with receiver(answers(501)) as (hook, url, session):
        result = await call_webhook(session, {"url": url, "retries": 5}, PAYLOAD)
    assert (result.ok, result.status, result.attempts) == (False, 501, 1)
    assert len(hook.bodies) == 1


async def test_a_hook_slower_than_its_timeout_fails_and_is_retried() -> None:
    released = asyncio.Event()

    async def hang(attempt: int) -> web.Response:
        await released.wait()
        return web.Response(status=200)

    waits = Waits()
    async with receiver(hang) as (hook, url, session):
        try:
            result = await call_webhook(session, {"url": url, "timeout": "50ms", "retries": 1},
                                        PAYLOAD, sleep=waits)
        finally:
            released.set()
    assert (result.ok, result.status, result.attempts) == (False, None, 2)
    assert "giving up after 2 attempt(s)" in result.error and "timeout" in result.error
    assert len(hook.bodies) == 2 and waits.seconds == [1.0]


async def test_an_unreachable_hook_fails_after_its_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    async with aiohttp.ClientSession() as session:
        result = await call_webhook(session, {"url": url, "retries": 1}, PAYLOAD,
                                    sleep=Waits())
    assert (result.ok, result.status, result.attempts) == (False, None, 2)
    assert result.error.startswith(f"POST {url} giving up after 2 attempt(s): Post")


@pytest.mark.parametrize(("hook", "error"), [
    ({"url": "http://127.0.0.1:1/", "timeout": "soon"}, "soon"),
    ({"name": "no-url"}, "webhook has no url"),
    ({"url": "http://127.0.0.1:1/", "retries": "3"}, "retries must be a non-negative integer"),
])
async def test_a_hook_flagger_cannot_call_is_a_failed_check(
        hook: dict[str, Any], error: str) -> None:
    async with aiohttp.ClientSession() as session:
        result = await call_webhook(session, hook, PAYLOAD)
    assert (result.ok, result.attempts) == (False, 0)
    assert error in result.error


async def test_the_load_test_hook_queues_its_command_on_the_loadtester() -> None:
    hook: dict[str, Any] = {"name": "load-test", "type": "rollout", "timeout": "5s",
            "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}}
    payload = webhook_payload(name="podinfo", namespace="test", phase="Progressing",
                              hook_type=hook["type"], metadata=hook["metadata"], checksum="x")
    async with loadtester() as tester, aiohttp.ClientSession() as session:
        result = await call_webhook(session, {**hook, "url": f"{tester.url}/"}, payload)
        refused = await call_webhook(
            session, {"url": f"{tester.url}/"},
            webhook_payload(name="podinfo", namespace="test", phase="Progressing",
                            hook_type="rollout", metadata=None, checksum="x"))
    assert result.ok
    [task] = tester.tasks
    assert (task.canary, task.type, task.cmd) == (
        "podinfo.test", "cmd", "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/")
    assert (refused.ok, refused.status, refused.error) == (
        False, 400, "metadata not found in payload")
