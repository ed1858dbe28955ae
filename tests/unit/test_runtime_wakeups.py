"""Wakeup: the one-shot handoff of the queue and the writers, under anyio's cancellation."""

from __future__ import annotations

import anyio

from shiftd.runtime.wakeups import Wakeup


async def test_a_waiter_resumes_once_set() -> None:
    wakeup = Wakeup()
    woken: list[bool] = []

    async def wait() -> None:
        await wakeup.wait()
        woken.append(True)

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert not woken and not wakeup.is_set()
        wakeup.set()
    assert woken == [True] and wakeup.is_set()


async def test_a_cancelled_waiter_leaves_it_settable_and_set() -> None:
    wakeup = Wakeup()
    with anyio.move_on_after(0) as scope:
        await wakeup.wait()
    assert scope.cancelled_caught
    wakeup.set()  # the future was cancelled with its waiter: no InvalidStateError
    assert wakeup.is_set()  # so a waiter cancelled after being woken can pass it on


async def test_waiting_on_a_set_wakeup_returns_at_once() -> None:
    wakeup = Wakeup()
    wakeup.set()
    wakeup.set()
    with anyio.fail_after(1):
        await wakeup.wait()
