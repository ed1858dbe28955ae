"""The timers task: wakes keys when a pause ends, a deadline passes or a measurement is due.

Each reconcile tells the timers when it next wants to run (its ``Outcome.requeue_at``); the
task sleeps on the injected clock until the earliest one and hands those keys to ``enqueue``
(the engine, which routes each key to the queue of its kind's controller). One
pending wake-up per key: a newer plan replaces the older request. Retries after errors use
real-time backoff instead, so a stopped test clock never stalls error recovery.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from datetime import datetime

import anyio
from anyio.abc import TaskStatus

from shiftd.runtime.clock import Clock
from shiftd.runtime.keys import ObjectKey

logger = logging.getLogger(__name__)


class Timers:
    def __init__(self, *, clock: Clock, enqueue: Callable[[ObjectKey], None]) -> None:
        self._clock = clock
        self._enqueue = enqueue
        self._heap: list[tuple[datetime, int, ObjectKey]] = []
        self._due: dict[ObjectKey, datetime] = {}
        self._order = itertools.count()
        self._changed = anyio.Event()
        self._retry_group: anyio.abc.TaskGroup | None = None

    def schedule(self, key: ObjectKey, when: datetime | None) -> None:
        """Wake ``key`` at ``when`` (replacing any earlier request); ``None`` cancels."""
        if when is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._order), key))
        self._changed.set()

    def retry_later(self, key: ObjectKey, delay: float) -> None:
        """Requeue ``key`` after ``delay`` real seconds (error backoff)."""
        if self._retry_group is not None:
            self._retry_group.start_soon(self._requeue_after, key, delay)

    def forget(self, key: ObjectKey) -> None:
        self._due.pop(key, None)

    def pending(self, key: ObjectKey) -> datetime | None:
        return self._due.get(key)

    async def _requeue_after(self, key: ObjectKey, delay: float) -> None:
        await anyio.sleep(delay)
        self._enqueue(key)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as group:
            self._retry_group = group
            task_status.started()
            while True:
                self._fire_due()
                self._changed = anyio.Event()
                if not self._heap:
                    await self._changed.wait()
                    continue
                when = self._heap[0][0]
                async with anyio.create_task_group() as race:
                    race.start_soon(self._sleep_then_cancel, when, race.cancel_scope)
                    race.start_soon(self._wait_changed_then_cancel, race.cancel_scope)

    async def _sleep_then_cancel(self, when: datetime, scope: anyio.CancelScope) -> None:
        await self._clock.sleep_until(when)
        scope.cancel()

    async def _wait_changed_then_cancel(self, scope: anyio.CancelScope) -> None:
        await self._changed.wait()
        scope.cancel()

    def _fire_due(self) -> None:
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:
                del self._due[key]
                self._enqueue(key)
