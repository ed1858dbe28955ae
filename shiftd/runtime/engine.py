"""The engine: one queue per controller, their workers, the timers and the resync.

Controllers register on the engine; each declares the kind whose keys it reconciles and how
many workers it wants. Every key is an ``ObjectKey`` (kind, namespace, name) and is routed to
the queue of the controller registered for its kind, so a Rollout and a Canary of the same
name never share a queue slot. The queues deduplicate and never hand one key to two workers
at once; a reconcile returns an ``Outcome`` that the engine turns into a timer, an immediate
requeue or a real-time retry. Adding a controller is registering it: nothing here knows what
a Rollout or an AnalysisRun is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from shiftd.runtime.clock import Clock
from shiftd.runtime.keys import ObjectKey
from shiftd.runtime.queue import QueueClosed, WorkQueue
from shiftd.runtime.timers import Timers

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 0.05
RETRY_MAX_SECONDS = 10.0
IMMEDIATE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one reconcile asks of the engine.

    ``requeue_at`` wakes the key then (on the injected clock; ``None`` cancels a pending
    wake-up); ``again`` requeues it at once; ``failed`` counts a failure: the key is retried
    at once for the first few (a conflict needs only a fresh look) and then after a real-time
    exponential backoff, so a stopped test clock never stalls recovery.

    ``settled`` says the inputs are now exactly as this reconcile left them (the only changes
    seen meanwhile were its own writes): a wake-up that came while it ran (those writes'
    watch events) is dropped instead of reconciling again to find the same fixed point. It
    must be decided with no await between the decision and the return."""

    requeue_at: datetime | None = None
    again: bool = False
    failed: bool = False
    retry_now: bool = False
    settled: bool = False


DONE = Outcome()


class Controller(Protocol):
    """A controller as the engine sees it."""

    @property
    def kind(self) -> str:
        """The Kubernetes kind whose keys this controller reconciles."""
        ...

    @property
    def workers(self) -> int: ...

    async def reconcile(self, key: ObjectKey) -> Outcome: ...

    def resync_keys(self) -> Iterable[ObjectKey]:
        """Keys to look at again every resync period (a safety net for missed events)."""
        ...

    def shard_of(self, key: ObjectKey) -> str:
        """The text a key is sharded by (its Rollout's ``namespace/name``), so an object and
        everything it owns belong to one shard."""
        ...


class Engine:
    def __init__(self, *, clock: Clock,
                 on_error: Callable[[ObjectKey], None] = lambda key: None,
                 owns: Callable[[str], bool] = lambda shard_key: True) -> None:
        self.timers = Timers(clock=clock, enqueue=self.enqueue)
        self._controllers: dict[str, Controller] = {}
        self._queues: dict[str, WorkQueue] = {}
        self._failures: dict[ObjectKey, int] = {}
        self._on_error = on_error
        self._owns = owns  # whether this daemon's shard owns a key now (always, unsharded)

    def register(self, controller: Controller) -> None:
        if controller.kind in self._controllers:
            raise ValueError(f"a controller for {controller.kind} is already registered")
        self._controllers[controller.kind] = controller
        self._queues[controller.kind] = WorkQueue()

    def idle_waiter(self, kind: str) -> Callable[[], Awaitable[None]]:
        """A wait for the queue of ``kind``'s controller to go idle (registered or not yet)."""

        async def wait_idle() -> None:
            await self._queues[kind].wait_idle()

        return wait_idle

    # -- feeding --------------------------------------------------------------------------
    def enqueue(self, key: ObjectKey) -> None:
        """Queue ``key`` for the controller of its kind (ignored when there is none)."""
        queue = self._queues.get(key.kind)
        if queue is not None:
            queue.add(key)

    @property
    def depth(self) -> int:
        """Keys queued and not yet handed to a worker, over every controller's queue."""
        return sum(len(queue) for queue in self._queues.values())

    @property
    def idle(self) -> bool:
        return all(queue.idle for queue in self._queues.values())

    async def wait_idle(self) -> None:
        """Return once every queue is idle (or closed)."""
        for queue in self._queues.values():
            await queue.wait_idle()
        while not self.idle and not self.closed:
            for queue in self._queues.values():
                await queue.wait_idle()

    async def wait_busy(self) -> None:
        """Return once some queue has work (or the queues are closed)."""
        if not self._queues:
            await anyio.sleep_forever()
        async with anyio.create_task_group() as race:
            for queue in self._queues.values():
                race.start_soon(_wait_then_cancel, queue.wait_busy, race.cancel_scope)

    @property
    def closed(self) -> bool:
        return any(queue.closed for queue in self._queues.values())

    def close(self) -> None:
        """Stop handing out work; workers finish what they hold and return."""
        for queue in self._queues.values():
            queue.close()

    # -- running --------------------------------------------------------------------------
    async def run_timers(self, *,
                         task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self.timers.run(task_status=task_status)

    async def run_workers(self) -> None:
        """Reconcile until the queues are closed (every worker returns after its key)."""
        async with anyio.create_task_group() as workers:
            for controller in self._controllers.values():
                for _ in range(max(1, controller.workers)):
                    workers.start_soon(self._work, controller)

    def resync(self) -> None:
        """Queue every key the controllers want looked at again (also on taking over)."""
        for controller in self._controllers.values():
            for key in controller.resync_keys():
                self.enqueue(key)

    async def resync_every(self, period: float) -> None:
        while True:
            await anyio.sleep(period)
            self.resync()

    async def _work(self, controller: Controller) -> None:
        queue = self._queues[controller.kind]
        while True:
            try:
                key = await queue.get()
            except QueueClosed:
                return
            if not self._owns(controller.shard_of(key)):
                queue.done(key)  # another shard's: its owner reconciles it
                continue
            settled = False
            try:
                outcome = await controller.reconcile(key)
                settled = outcome.settled
            except Exception:  # one object's bug must not stop the others
                logger.exception("reconcile of %s crashed", key, extra={"key": str(key)})
                self._on_error(key)
                outcome = Outcome(failed=True)
            finally:
                queue.done(key, requeue=not settled)
            self._follow(key, outcome)

    def _follow(self, key: ObjectKey, outcome: Outcome) -> None:
        if outcome.failed:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            if outcome.retry_now and failures <= IMMEDIATE_RETRIES:
                self.enqueue(key)
            else:
                delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(failures, 16))
                self.timers.retry_later(key, delay)
            return
        self._failures.pop(key, None)
        if outcome.again:
            self.enqueue(key)
        self.timers.schedule(key, outcome.requeue_at)

    def forget(self, key: ObjectKey) -> None:
        """Drop what the engine holds for a key that is gone."""
        self._failures.pop(key, None)
        self.timers.forget(key)


async def _wait_then_cancel(wait: Callable[[], Awaitable[None]],
                            scope: anyio.CancelScope) -> None:
    await wait()
    scope.cancel()
