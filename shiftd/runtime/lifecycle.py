"""The daemon's lifecycle: what starts in which order, when it is ready, how it stops.

One task group at the root. ``run`` starts, in order: the HTTP endpoints (/metrics,
/healthz, /readyz), the engine's timers, the caches (returning once every required kind has
listed) and the elector's campaign; then the daemon is ready, as leader or standby, and the
idle-time GC freeze runs. Each time the elector wins, a term starts in a task group of its
own: the writer tasks, the engine's workers and the resync, after a resync of every key (the
standby's caches are warm; this catches up on what it did not reconcile). When the lease is
lost the term's group is cancelled, so nothing is written after that. ``stop()``
(SIGTERM/SIGINT in ``shiftd.cli.service``) closes the engine's queues, so no new reconcile starts;
reconciles in flight get the grace period to finish their writes, the lease is released and
everything is cancelled. What runs is built elsewhere (``shiftd.assembly``); this module only
orders it.
"""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.runtime.caches import Caches
from shiftd.runtime.engine import Engine
from shiftd.runtime.heap import heap_trimmer
from shiftd.runtime.leadership import Elector
from shiftd.runtime.sharding import ShardRing
from shiftd.runtime.telemetry import Telemetry
from shiftd.runtime.writers import Writers

logger = logging.getLogger(__name__)

# generation-1 collections between two full ones (CPython's default is 10)
FULL_COLLECTION_THRESHOLD = 1000


@dataclass(frozen=True, slots=True)
class Parts:
    """What the composition root built, as the lifecycle runs it."""

    telemetry: Telemetry
    writers: Writers
    engine: Engine
    caches: Caches
    elector: Elector
    ring: ShardRing | None = None  # sharded: which keys this daemon's shard owns
    # Tasks that run for the whole life of the daemon, beside the caches (API server probes).
    background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = ()


@dataclass(frozen=True, slots=True)
class Timings:
    listen_address: str
    listen_port: int
    resync_period: float
    shutdown_grace_period: float


class Lifecycle:
    def __init__(self, timings: Timings) -> None:
        self._timings = timings
        self._stopping = anyio.Event()
        self._parts: Parts | None = None
        self._drained = anyio.Event()
        self.port = 0

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def quiet(self) -> bool:
        """Nothing to reconcile and no write in flight or waiting (Events included)."""
        parts = self._parts
        return parts is None or (parts.engine.idle and parts.writers.idle)

    def stop(self) -> None:
        """Stop taking work; in-flight reconciles get the grace period to finish."""
        if not self._stopping.is_set():
            logger.info("stopping: no new reconciles, %.0fs for those in flight",
                        self._timings.shutdown_grace_period)
            self._stopping.set()
            if self._parts is not None:
                self._parts.engine.close()

    async def run(self, parts: Parts, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._parts = parts
        timings, engine = self._timings, parts.engine
        if self.stopping:
            engine.close()
        async with anyio.create_task_group() as root:
            self.port = await root.start(functools.partial(
                parts.telemetry.serve, address=timings.listen_address,
                port=timings.listen_port))
            await root.start(engine.run_timers)
            await root.start(parts.caches.run)
            await root.start(parts.elector.run)
            if parts.ring is not None:
                await root.start(functools.partial(parts.ring.run, on_change=engine.resync))
            root.start_soon(self._freeze_when_idle, engine, parts.caches)
            for task in parts.background:
                root.start_soon(task)
            root.start_soon(self._lead, parts)
            # Everything loaded so far (caches, modules) lives for the whole run: keep it out
            # of the collector's generations, so a full collection never scans it mid-step.
            gc.freeze()
            parts.telemetry.set_ready(True)
            logger.info("caches synced", extra={"port": self.port})
            task_status.started()
            await self._stopping.wait()
            parts.telemetry.set_ready(False)
            with anyio.move_on_after(timings.shutdown_grace_period, shield=True):
                await self._drained.wait()
            with anyio.move_on_after(timings.shutdown_grace_period, shield=True):
                await parts.elector.release()
            root.cancel_scope.cancel()

    async def _lead(self, parts: Parts) -> None:
        """Terms of leadership, until the queues close."""
        engine = parts.engine
        try:
            while not engine.closed:
                await parts.elector.wait_elected()
                if engine.closed:
                    break
                await self._term(parts)
        finally:
            self._drained.set()

    async def _term(self, parts: Parts) -> None:
        """Writers, workers and resync while this daemon leads; all cancelled when the lease
        is lost, and ended (after in-flight reconciles) when the queues close."""
        engine, elector = parts.engine, parts.elector
        async with anyio.create_task_group() as term:

            async def end_when_lost() -> None:
                await elector.wait_lost()
                logger.warning("lost the lease: writing stops now")
                term.cancel_scope.cancel()

            for writer in parts.writers.all():
                await term.start(writer.run)
            term.start_soon(end_when_lost)
            term.start_soon(engine.resync_every, self._timings.resync_period)
            logger.info("reconciling")
            engine.resync()
            await engine.run_workers()
            term.cancel_scope.cancel()

    @staticmethod
    async def _freeze_when_idle(engine: Engine, caches: Caches) -> None:
        """Each time the queues go idle, move what the caches hold now into the collector's
        permanent generation (a constant-time splice), so a full collection never has to scan
        it in the middle of a burst of due steps. Cached objects are plain JSON (no reference
        cycles), so reference counting still frees them when they are replaced."""
        # Full collections wait for the idle moment too: a burst of due steps replaces most
        # cached objects, and a full collection in its middle would scan them all (hundreds of
        # ms at 10,000 Rollouts). The threshold only bounds how long a never-idle daemon
        # goes without one.
        # The young threshold stays CPython's 700: a step's survivors (new cached copies,
        # planned Events, ~60 containers per Rollout) all pass through generation 1, whose
        # collection scans ten young periods' worth; at 5,000 that was 128,702 objects and a
        # 133 ms pause at 10,000 Rollouts (BENCHMARKS.md, issue 13, seventh pass).
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)
        trim_heap = heap_trimmer()
        while not engine.closed:
            await engine.wait_idle()
            caches.release_unshared()  # the parts only the burst's replaced objects used
            gc.collect()  # the cycles left by the burst, before they are frozen for good
            gc.freeze()
            # what the burst freed goes back to the system (glibc keeps it otherwise)
            trim_heap()
            await engine.wait_busy()
