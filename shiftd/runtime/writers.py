"""Writer tasks: each kind of write is owned by one long-running task.

The reconciler hands a write to the task that owns it (ReplicaSet scaling; traffic: Services,
VirtualServices and DestinationRules; Rollout status; AnalysisRuns; Events) and awaits its
result (Events excepted: they are posted and not awaited), so writes of one
reconcile keep their order while each writer bounds its own concurrency and reports its own
failures. A write's exception is raised in the reconcile that asked for it; a write handed
over with ``post`` (nobody waits for it) has its exception logged instead.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.runtime.wakeups import Wakeup

logger = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class _Job:
    work: Callable[[], Awaitable[Any]]
    done: Wakeup | None = None  # set when the job ends; None for a posted job
    result: Any = None
    error: BaseException | None = None


class Writer:
    """A queue of writes and ``concurrency`` worker tasks taking them in order.

    The workers are started once (in ``run``) and live as long as it: a write costs no task
    of its own, only a place in the queue (a deque) and, when awaited, a ``Wakeup``. An idle
    worker waits on a ``Wakeup`` of its own, and a queued job wakes one idle worker (not all of
    them); while the workers are busy, queueing a job wakes nobody.
    """

    def __init__(self, name: str, *, concurrency: int) -> None:
        self.name = name
        self._concurrency = max(1, concurrency)
        self._ran = False
        self._open()

    def _open(self) -> None:
        """A fresh queue: a writer runs again when its daemon leads again, and what was
        handed to it in an earlier term (whose submitters were cancelled) is dropped."""
        self._jobs: deque[_Job] = deque()
        self._idle_workers: deque[Wakeup] = deque()
        self._pending = 0  # jobs handed over and not yet finished

    @property
    def idle(self) -> bool:
        return self._pending == 0

    async def submit(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``work`` in this writer's task and return its result (or raise its error)."""
        done = Wakeup()
        job = _Job(work, done=done)
        self._queue(job)
        await done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def post(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Queue ``work`` without waiting for it; jobs start in the order they were posted."""
        self._queue(_Job(work))

    def _queue(self, job: _Job) -> None:
        self._pending += 1
        self._jobs.append(job)
        if self._idle_workers:
            self._idle_workers.popleft().set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if self._ran:
            self._open()
        self._ran = True
        jobs = self._jobs
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self._concurrency):
                    group.start_soon(self._work, jobs)
                task_status.started()
        finally:
            jobs.clear()  # a term's leftovers: their submitters were cancelled with it

    async def _work(self, jobs: deque[_Job]) -> None:
        """One worker: takes the oldest queued job whenever it is free."""
        while True:
            if not jobs:
                woken = Wakeup()
                self._idle_workers.append(woken)
                await woken.wait()
                continue
            # no local keeps the last job (and what it wrote) alive while idle
            await self._perform(jobs.popleft())

    async def _perform(self, job: _Job) -> None:
        try:
            job.result = await job.work()
        except Exception as error:  # handed to the reconcile that submitted the job
            job.error = error
            if job.done is None:
                logger.exception("%s: a posted write failed", self.name)
        finally:
            self._pending -= 1
            if job.done is not None:
                job.done.set()


class Writers:
    """The writer tasks, by the kind of write they own."""

    def __init__(self, *, concurrency: int) -> None:
        self.replica_sets = Writer("replicasets", concurrency=concurrency)
        self.traffic = Writer("traffic", concurrency=concurrency)
        self.status = Writer("status", concurrency=concurrency)
        self.analysis = Writer("analysisruns", concurrency=concurrency)
        # One at a time, like client-go's event broadcaster: Events are written in the order
        # they were planned, and a burst of them never holds up the writes that route traffic.
        self.events = Writer("events", concurrency=1)

    def all(self) -> tuple[Writer, ...]:
        return (self.replica_sets, self.traffic, self.status, self.analysis, self.events)

    @property
    def idle(self) -> bool:
        return all(writer.idle for writer in self.all())
