"""The in-memory event queue every task feeds and the reconcile workers drain.

Keys are ``ObjectKey`` values (kind, namespace, name). As in client-go's workqueue: a key
queued twice is queued once (deduplication); a key being reconciled is never handed to a second
worker, and if it is added meanwhile it is queued again when the first reconcile is done. So
there is never more than one reconcile of an object at a time, and never a lost wake-up.

A worker waiting for a key waits on a ``Wakeup`` of its own; a key queued wakes one waiting
worker, not all of them (a burst's watch events queue keys one at a time, and waking every
idle worker for each cost a task switch per worker per key).
"""

from __future__ import annotations

from collections import deque

import anyio

from shiftd.runtime.keys import ObjectKey
from shiftd.runtime.wakeups import Wakeup


class QueueClosed(Exception):
    """The daemon is stopping: take no more work."""


class WorkQueue:
    def __init__(self) -> None:
        self._queue: deque[ObjectKey] = deque()
        self._dirty: set[ObjectKey] = set()
        self._processing: set[ObjectKey] = set()
        self._waiting: deque[Wakeup] = deque()  # one per worker blocked in get()
        self._idle = anyio.Event()
        self._busy = anyio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being reconciled."""
        return not self._queue and not self._processing

    async def wait_busy(self) -> None:
        """Return once something is queued or being reconciled (or the queue is closed)."""
        await anyio.lowlevel.checkpoint()
        while self.idle and not self._closed:
            if self._busy.is_set():
                self._busy = anyio.Event()
            await self._busy.wait()

    async def wait_idle(self) -> None:
        """Return once nothing is queued or being reconciled (or the queue is closed)."""
        await anyio.lowlevel.checkpoint()
        while not self.idle and not self._closed:
            if self._idle.is_set():
                self._idle = anyio.Event()
            await self._idle.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    def add(self, key: ObjectKey) -> None:
        if self._closed or key in self._dirty:
            return
        self._dirty.add(key)
        self._busy.set()
        if key in self._processing:
            return  # requeued by done()
        self._queue.append(key)
        self._wake_one()

    async def get(self) -> ObjectKey:
        """The next key to reconcile; the caller must call ``done(key)`` afterwards."""
        while True:
            if self._closed:
                raise QueueClosed
            if self._queue:
                key = self._queue.popleft()
                self._dirty.discard(key)
                self._processing.add(key)
                return key
            waiter = Wakeup()
            self._waiting.append(waiter)
            try:
                await waiter.wait()
            except BaseException:
                if waiter.is_set():
                    self._wake_one()  # woken, but cancelled before taking the key: pass it on
                else:
                    self._waiting.remove(waiter)
                raise

    def _wake_one(self) -> None:
        if self._waiting:
            self._waiting.popleft().set()

    def done(self, key: ObjectKey, *, requeue: bool = True) -> None:
        """The reconcile of ``key`` is over; if it was added meanwhile it is queued again,
        unless ``requeue`` is False (the reconcile saw those changes itself)."""
        self._processing.discard(key)
        if not requeue:
            self._dirty.discard(key)
        elif key in self._dirty and not self._closed:
            self._queue.append(key)
            self._wake_one()
        if self.idle:
            self._idle.set()

    def close(self) -> None:
        """Stop handing out work; workers blocked in ``get`` raise ``QueueClosed``."""
        self._closed = True
        while self._waiting:
            self._waiting.popleft().set()
        self._idle.set()
        self._busy.set()
