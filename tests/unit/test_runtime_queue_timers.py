"""The event queue's guarantees and the timers driven by a manual clock."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import anyio
import pytest

from shiftd.runtime.clock import ManualClock
from shiftd.runtime.keys import ObjectKey
from shiftd.runtime.queue import QueueClosed, WorkQueue
from shiftd.runtime.timers import Timers


def rollout(name: str) -> ObjectKey:
    return ObjectKey("Rollout", "ns", name)



async def test_a_key_added_twice_is_handed_out_once() -> None:
    queue = WorkQueue()
    queue.add(rollout("a"))
    queue.add(rollout("a"))
    queue.add(rollout("b"))
    assert len(queue) == 2
    assert await queue.get() == rollout("a")
    assert await queue.get() == rollout("b")


async def test_a_key_in_progress_is_not_handed_to_a_second_worker() -> None:
    queue = WorkQueue()
    queue.add(rollout("a"))
    key = await queue.get()
    queue.add(rollout("a"))  # changed again while being reconciled
    assert len(queue) == 0
    with anyio.move_on_after(0.05) as scope:
        await queue.get()
    assert scope.cancelled_caught
    queue.done(key)
    assert await queue.get() == rollout("a")  # not lost: handed out again after done()


async def test_done_without_requeue_drops_an_add_made_while_in_progress() -> None:
    queue = WorkQueue()
    queue.add(rollout("a"))
    key = await queue.get()
    queue.add(rollout("a"))
    queue.done(key, requeue=False)
    assert len(queue) == 0 and queue.idle
    queue.add(rollout("a"))  # a later add is not lost
    assert await queue.get() == rollout("a")


async def test_closing_stops_handing_out_work() -> None:
    queue = WorkQueue()
    queue.add(rollout("a"))
    queue.close()
    with pytest.raises(QueueClosed):
        await queue.get()


async def test_a_waiting_worker_wakes_when_work_arrives() -> None:
    queue = WorkQueue()
    received: list[ObjectKey] = []

    async def worker() -> None:
        received.append(await queue.get())

    async with anyio.create_task_group() as group:
        group.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        queue.add(rollout("late"))
    assert received == [rollout("late")]


async def test_each_key_queued_wakes_one_waiting_worker_and_reaches_one_only() -> None:
    queue = WorkQueue()
    received: list[ObjectKey] = []
    stopped: list[str] = []

    async def worker() -> None:
        try:
            received.append(await queue.get())
        except QueueClosed:
            stopped.append("closed")

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        queue.add(rollout("a"))
        queue.add(rollout("b"))
        await anyio.wait_all_tasks_blocked()
        assert sorted(key.name for key in received) == ["a", "b"]
        assert stopped == []  # the third still waits
        queue.close()
    assert stopped == ["closed"]


async def test_a_worker_cancelled_after_its_wake_up_passes_the_key_on() -> None:
    queue = WorkQueue()
    received: list[ObjectKey] = []
    cancelled = anyio.CancelScope()

    async def worker() -> None:
        with contextlib.suppress(QueueClosed):
            received.append(await queue.get())

    async def first_worker() -> None:
        with cancelled:
            await worker()

    async with anyio.create_task_group() as group:
        group.start_soon(first_worker)  # waits first: the one the next key wakes
        await anyio.wait_all_tasks_blocked()
        group.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        queue.add(rollout("a"))
        cancelled.cancel()  # before the woken worker has run
        await anyio.wait_all_tasks_blocked()
        assert received == [rollout("a")]  # taken by one of them: no lost wake-up
        queue.close()  # the worker that did not take it


async def test_timers_fire_when_the_clock_reaches_them_and_not_before() -> None:
    clock = ManualClock()
    queue = WorkQueue()
    timers = Timers(clock=clock, enqueue=queue.add)
    async with anyio.create_task_group() as group:
        await group.start(timers.run)
        timers.schedule(rollout("later"), clock.now() + timedelta(seconds=20))
        timers.schedule(rollout("sooner"), clock.now() + timedelta(seconds=5))
        await anyio.wait_all_tasks_blocked()
        assert len(queue) == 0
        clock.advance(5)
        with anyio.fail_after(2):
            assert await queue.get() == rollout("sooner")
        assert len(queue) == 0
        clock.advance(15)
        with anyio.fail_after(2):
            assert await queue.get() == rollout("later")
        group.cancel_scope.cancel()


async def test_a_newer_request_replaces_the_older_one() -> None:
    clock = ManualClock()
    queue = WorkQueue()
    timers = Timers(clock=clock, enqueue=queue.add)
    async with anyio.create_task_group() as group:
        await group.start(timers.run)
        timers.schedule(rollout("a"), clock.now() + timedelta(seconds=5))
        timers.schedule(rollout("a"), clock.now() + timedelta(seconds=30))
        clock.advance(10)
        await anyio.wait_all_tasks_blocked()
        assert len(queue) == 0
        clock.advance(20)
        with anyio.fail_after(2):
            assert await queue.get() == rollout("a")
        group.cancel_scope.cancel()


async def test_waiting_for_idle_returns_once_the_last_key_is_done() -> None:
    queue = WorkQueue()
    await queue.wait_idle()  # idle from the start
    queue.add(rollout("a"))
    finished: list[ObjectKey] = []

    async def waiter() -> None:
        await queue.wait_idle()
        finished.append("idle")

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        key = await queue.get()
        await anyio.wait_all_tasks_blocked()
        assert finished == []
        queue.done(key)
    assert finished == ["idle"]


async def test_waiting_for_work_returns_once_a_key_is_added() -> None:
    queue = WorkQueue()
    woke: list[ObjectKey] = []

    async def waiter() -> None:
        await queue.wait_busy()
        woke.append("busy")

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        queue.add(rollout("a"))
    assert woke == ["busy"]
