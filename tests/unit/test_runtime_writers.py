"""The writers: a queue and a fixed pool of worker tasks per kind of write."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Awaitable, Callable

import anyio
import pytest

from shiftd.runtime.writers import Writer


async def test_jobs_start_in_the_order_they_were_handed_over_and_at_most_concurrency_run_at_once(
) -> None:
    writer = Writer("traffic", concurrency=2)
    started: list[int] = []
    running = 0
    most = 0
    release = anyio.Event()

    def job(number: int) -> Callable[[], Awaitable[int]]:
        async def work() -> int:
            nonlocal running, most
            started.append(number)
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1
            return number * 10

        return work

    results: list[int] = []

    async def submit(number: int) -> None:
        results.append(await writer.submit(job(number)))

    async with anyio.create_task_group() as group:
        await group.start(writer.run)
        for number in range(5):
            group.start_soon(submit, number)
            await anyio.wait_all_tasks_blocked()
        assert started == [0, 1]  # two workers: the rest wait in the queue, in order
        assert not writer.idle
        release.set()
        while not writer.idle:
            await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    assert started == [0, 1, 2, 3, 4]
    assert most == 2
    assert sorted(results) == [0, 10, 20, 30, 40]


async def test_a_failed_write_is_raised_in_its_submitter_and_the_workers_go_on() -> None:
    writer = Writer("status", concurrency=1)

    async def fail() -> None:
        raise RuntimeError("409 from the server")

    async def succeed() -> str:
        return "written"

    async with anyio.create_task_group() as group:
        await group.start(writer.run)
        with pytest.raises(RuntimeError, match="409 from the server"):
            await writer.submit(fail)
        assert await writer.submit(succeed) == "written"
        assert writer.idle
        group.cancel_scope.cancel()


async def test_a_failed_posted_write_is_logged_and_the_next_posted_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Writer("events", concurrency=1)
    ran: list[str] = []

    async def fail() -> None:
        raise RuntimeError("event rejected")

    async def record() -> None:
        ran.append("second")

    async with anyio.create_task_group() as group:
        await group.start(writer.run)
        with caplog.at_level(logging.ERROR, logger="shiftd.runtime.writers"):
            writer.post(fail)
            writer.post(record)
            while not writer.idle:
                await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    assert ran == ["second"]
    assert "events: a posted write failed" in caplog.text


async def test_a_worker_does_not_keep_its_last_job_alive_while_idle() -> None:
    writer = Writer("traffic", concurrency=1)

    class Written(dict[str, str]):
        pass

    async def write() -> Written:
        return Written(name="vs")

    async with anyio.create_task_group() as group:
        await group.start(writer.run)
        answer = weakref.ref(await writer.submit(write))
        await anyio.wait_all_tasks_blocked()
        gc.collect()
        assert answer() is None  # nothing in the idle worker holds what it wrote
        group.cancel_scope.cancel()
