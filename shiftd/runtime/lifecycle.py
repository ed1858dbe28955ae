"""The daemon's lifecycle: what starts in which order, when it is ready, how it stops.

One task group at the root. ``run`` starts, in order: the HTTP endpoints (/metrics,
/healthz, /readyz), the writer tasks, the engine's timers, the caches (returning once every
required kind has listed), then the resync task, the idle-time GC freeze and the engine's
workers; only then is the daemon ready. ``stop()`` (SIGTERM/SIGINT in ``serve_forever``)
closes the engine's queues, so no new reconcile starts; reconciles in flight get the grace
period to finish their writes, then everything is cancelled. What runs is built elsewhere
(``shiftd.assembly``); this module only orders it.
"""

from __future__ import annotations

import functools
import gc
import logging
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from shiftd.runtime.caches import Caches
from shiftd.runtime.engine import Engine
from shiftd.runtime.telemetry import Telemetry
from shiftd.runtime.writers import Writers

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Parts:
    """What the composition root built, as the lifecycle runs it."""

    telemetry: Telemetry
    writers: Writers
    engine: Engine
    caches: Caches


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
            for writer in parts.writers.all():
                await root.start(writer.run)
            await root.start(engine.run_timers)
            await root.start(parts.caches.run)
            root.start_soon(engine.resync_every, timings.resync_period)
            root.start_soon(self._freeze_when_idle, engine)
            root.start_soon(engine.run_workers)
            # Everything loaded so far (caches, modules) lives for the whole run: keep it out
            # of the collector's generations, so a full collection never scans it mid-step.
            gc.freeze()
            parts.telemetry.set_ready(True)
            logger.info("caches synced; reconciling", extra={"port": self.port})
            task_status.started()
            await self._stopping.wait()
            parts.telemetry.set_ready(False)
            with anyio.move_on_after(timings.shutdown_grace_period, shield=True):
                await engine.drained()
            root.cancel_scope.cancel()

    @staticmethod
    async def _freeze_when_idle(engine: Engine) -> None:
        """Each time the queues go idle, move what the caches hold now into the collector's
        permanent generation (a constant-time splice), so a full collection never has to scan
        it in the middle of a burst of due steps. Cached objects are plain JSON (no reference
        cycles), so reference counting still frees them when they are replaced."""
        while not engine.closed:
            await engine.wait_idle()
            gc.freeze()
            await engine.wait_busy()
