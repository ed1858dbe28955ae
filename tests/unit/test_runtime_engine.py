"""The engine: keys carry their kind, each controller gets its own queue and workers, and a
reconcile's ``Outcome`` becomes a timer, an immediate requeue or a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import anyio.lowlevel

from shiftd.runtime.clock import ManualClock
from shiftd.runtime.engine import DONE, Engine, Outcome
from shiftd.runtime.keys import ObjectKey


class Recording:
    """A controller that records what it reconciles and answers scripted outcomes; a key
    named ``hold`` blocks until released."""

    def __init__(self, kind: str, outcomes: dict[str, list[Outcome]] | None = None) -> None:
        self.kind = kind
        self.workers = 2
        self.seen: list[ObjectKey] = []
        self.release = anyio.Event()
        self._outcomes = outcomes or {}

    async def reconcile(self, key: ObjectKey) -> Outcome:
        self.seen.append(key)
        if key.name == "hold":
            await self.release.wait()
        scripted = self._outcomes.get(key.name) or []
        return scripted.pop(0) if scripted else DONE

    def resync_keys(self) -> Iterable[ObjectKey]:
        return ()

    def shard_of(self, key: ObjectKey) -> str:
        return key.path


@asynccontextmanager
async def running(engine: Engine) -> AsyncIterator[None]:
    async with anyio.create_task_group() as group:
        await group.start(engine.run_timers)
        group.start_soon(engine.run_workers)
        yield
        engine.close()
        group.cancel_scope.cancel()


async def settle() -> None:
    for _ in range(50):
        await anyio.lowlevel.checkpoint()


async def test_a_rollout_and_a_canary_of_one_name_are_reconciled_independently() -> None:
    engine = Engine(clock=ManualClock())
    rollouts, canaries = Recording("Rollout"), Recording("Canary")
    engine.register(rollouts)
    engine.register(canaries)
    async with running(engine):
        engine.enqueue(ObjectKey("Rollout", "shop", "hold"))
        engine.enqueue(ObjectKey("Canary", "shop", "hold"))
        await settle()
        # both are in progress at once: neither key waits for the other
        assert rollouts.seen == [ObjectKey("Rollout", "shop", "hold")]
        assert canaries.seen == [ObjectKey("Canary", "shop", "hold")]
        engine.enqueue(ObjectKey("Rollout", "shop", "hold"))  # changed while in progress
        rollouts.release.set()
        await settle()
        assert rollouts.seen == [ObjectKey("Rollout", "shop", "hold")] * 2
        assert canaries.seen == [ObjectKey("Canary", "shop", "hold")]
        canaries.release.set()
        await settle()
        assert engine.idle


async def test_a_key_of_a_kind_no_controller_registered_is_ignored() -> None:
    engine = Engine(clock=ManualClock())
    rollouts = Recording("Rollout")
    engine.register(rollouts)
    async with running(engine):
        engine.enqueue(ObjectKey("Canary", "shop", "a"))
        await settle()
        assert rollouts.seen == [] and engine.idle


async def test_outcomes_wake_the_key_at_its_time_or_at_once() -> None:
    clock = ManualClock()
    later = clock.now() + timedelta(seconds=30)
    engine = Engine(clock=clock)
    rollouts = Recording("Rollout", {"a": [Outcome(requeue_at=later)],
                                     "b": [Outcome(again=True)]})
    engine.register(rollouts)
    a, b = ObjectKey("Rollout", "shop", "a"), ObjectKey("Rollout", "shop", "b")
    async with running(engine):
        engine.enqueue(a)
        engine.enqueue(b)
        await settle()
        assert sorted(rollouts.seen) == [a, b, b]  # b asked to be looked at again at once
        clock.advance(29)
        await settle()
        assert rollouts.seen.count(a) == 1
        clock.advance(1)
        await settle()
        assert rollouts.seen.count(a) == 2


async def test_a_failure_is_retried_at_once_then_a_crash_does_not_stop_the_worker() -> None:
    errors: list[ObjectKey] = []
    engine = Engine(clock=ManualClock(), on_error=errors.append)

    class Crashing(Recording):
        async def reconcile(self, key: ObjectKey) -> Outcome:
            self.seen.append(key)
            if key.name == "crash":
                raise RuntimeError("a bug in one object's reconcile")
            return Outcome(failed=True, retry_now=True) if len(self.seen) < 3 else DONE

    rollouts = Crashing("Rollout")
    engine.register(rollouts)
    async with running(engine):
        engine.enqueue(ObjectKey("Rollout", "shop", "conflict"))
        await settle()
        assert rollouts.seen == [ObjectKey("Rollout", "shop", "conflict")] * 3
        engine.enqueue(ObjectKey("Rollout", "shop", "crash"))
        engine.enqueue(ObjectKey("Rollout", "shop", "fine"))
        await settle()
        assert errors == [ObjectKey("Rollout", "shop", "crash")]
        assert rollouts.seen[-2:] == [ObjectKey("Rollout", "shop", "crash"),
                                      ObjectKey("Rollout", "shop", "fine")]


async def test_keys_another_shard_owns_are_not_reconciled() -> None:
    engine = Engine(clock=ManualClock(), owns=lambda shard_key: shard_key != "shop/theirs")
    rollouts = Recording("Rollout")
    engine.register(rollouts)
    async with running(engine):
        engine.enqueue(ObjectKey("Rollout", "shop", "theirs"))
        engine.enqueue(ObjectKey("Rollout", "shop", "ours"))
        await settle()
        assert rollouts.seen == [ObjectKey("Rollout", "shop", "ours")]
        assert engine.idle


async def test_a_wake_up_during_a_reconcile_that_settled_is_dropped_and_later_ones_are_not(
) -> None:
    engine = Engine(clock=ManualClock())
    settled = Outcome(settled=True)
    rollouts = Recording("Rollout", outcomes={"hold": [settled, settled]})
    engine.register(rollouts)
    key = ObjectKey("Rollout", "shop", "hold")
    async with running(engine):
        engine.enqueue(key)
        await settle()
        engine.enqueue(key)  # its own write's watch event, while it runs
        rollouts.release.set()
        await settle()
        assert rollouts.seen == [key]  # it saw that change itself: not reconciled again
        assert engine.idle
        engine.enqueue(key)  # a change after it ended
        await settle()
        assert rollouts.seen == [key, key]
