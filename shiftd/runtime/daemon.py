"""The daemon: one task group at the root, its tasks, and an orderly stop.

Tasks under the root group:

* the HTTP endpoints (/metrics, /healthz, /readyz),
* the watch task (``Caches``: one informer per kind, feeding the queue),
* the writer tasks (ReplicaSet scaling; traffic: Istio and Services; Rollout status;
  AnalysisRuns; Kubernetes Events, written in the background one at a time),
* the timers task (pause ends, scale-down deadlines, error backoff),
* the analysis-polling task (``AnalysisController``: measurements on schedule),
* the resync task (every Rollout, every ``resyncPeriod``, a safety net),
* ``workers`` reconcile workers draining the event queue.

``stop()`` (SIGTERM/SIGINT in ``serve_forever``) closes the queue, so no new reconcile
starts; reconciles in flight get ``shutdownGracePeriod`` to finish their writes, then
everything is cancelled.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.config import Settings
from shiftd.decide.analysis.expr import evaluate_condition
from shiftd.kube.client import KubeClient
from shiftd.kube.events import EventRecorder
from shiftd.kube.resources import ANALYSIS_RUN, ROLLOUT, ResourceKind
from shiftd.model.argo.rollout import RolloutDefaults
from shiftd.providers.base import ProviderSettings
from shiftd.runtime.analysis import AnalysisController
from shiftd.runtime.caches import Caches
from shiftd.runtime.clock import Clock, SystemClock
from shiftd.runtime.queue import QueueClosed, WorkQueue
from shiftd.runtime.reconciler import Reconciler, Writers
from shiftd.runtime.telemetry import Telemetry
from shiftd.runtime.timers import Timers
from shiftd.traffic.istio.router import IstioRouter

logger = logging.getLogger(__name__)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        client: KubeClient | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.telemetry = telemetry or Telemetry()
        self._client = client
        self.queue = WorkQueue()
        self.port = 0
        self._stopping = anyio.Event()
        self._workers_done = anyio.Event()
        self._other_queues: list[WorkQueue] = []
        self._writers: Writers | None = None

    @property
    def quiet(self) -> bool:
        """Nothing to reconcile and no write in flight or waiting (Events included)."""
        writers = self._writers.all() if self._writers is not None else ()
        return self.queue.idle and all(writer.idle for writer in writers)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop taking work; in-flight reconciles get the grace period to finish."""
        if not self._stopping.is_set():
            logger.info("stopping: no new reconciles, %.0fs for those in flight",
                        self.settings.shutdown_grace_period)
            self._stopping.set()
            self.queue.close()
            for queue in self._other_queues:
                queue.close()

    async def _make_client(self) -> KubeClient:
        kube = self.settings.kubernetes
        return await KubeClient.from_settings(
            kubeconfig=str(kube.kubeconfig) if kube.kubeconfig else None,
            context=kube.context, in_cluster=kube.in_cluster, qps=kube.qps, burst=kube.burst,
            on_request=self.telemetry.count_request,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        owns_client = self._client is None
        client = self._client or await self._make_client()
        try:
            await self._run(client, task_status=task_status)
        finally:
            if owns_client:
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _run(self, client: KubeClient, *, task_status: TaskStatus[None]) -> None:
        settings = self.settings
        def read(kind: ResourceKind, namespace: str, name: str) -> dict[str, Any] | None:
            return caches.get(kind, namespace, name)

        analysis = AnalysisController(
            client=client, read=read, clock=self.clock, telemetry=self.telemetry,
            evaluate=evaluate_condition,
            provider_settings=ProviderSettings(
                prometheus_default_address=settings.analysis.prometheus_address,
                timeout_seconds=settings.analysis.provider_timeout,
            ),
            concurrency=settings.analysis.concurrency,
            measurement_timeout=settings.analysis.measurement_timeout,
            ours=lambda run: self._owned_by_us(run, caches, reconciler),
            remember=lambda run: caches.remember(ANALYSIS_RUN, run),
        )
        self._other_queues.append(analysis.queue)
        caches = Caches(
            client, namespaces=list(settings.namespaces) or None, enqueue=self._enqueue,
            on_restart=self.telemetry.count_watch_restart, on_analysis_run=analysis.enqueue,
        )
        writers = self._writers = Writers(concurrency=settings.workers)
        timers = Timers(clock=self.clock, queue=self.queue)
        reconciler = Reconciler(
            client=client, caches=caches, router=IstioRouter(reader=caches, writer=client),
            writers=writers, timers=timers, queue=self.queue, clock=self.clock,
            telemetry=self.telemetry, recorder=EventRecorder(client),
            instance_id=settings.instance_id,
            defaults=RolloutDefaults(
                scale_down_delay_seconds=settings.defaults.scale_down_delay_seconds,
                abort_scale_down_delay_seconds=settings.defaults.abort_scale_down_delay_seconds,
            ),
        )
        async with anyio.create_task_group() as root:
            self.port = await root.start(
                functools.partial(self.telemetry.serve, address=settings.listen.address,
                                  port=settings.listen.port))
            for writer in writers.all():
                await root.start(writer.run)
            await root.start(timers.run)
            await root.start(analysis.run)
            await root.start(caches.run)
            root.start_soon(self._resync, caches)
            root.start_soon(self._freeze_when_idle)
            root.start_soon(self._work, reconciler)
            # Everything loaded so far (caches, modules) lives for the whole run: keep it out
            # of the collector's generations, so a full collection never scans it mid-step.
            gc.freeze()
            self.telemetry.set_ready(True)
            logger.info("caches synced; reconciling", extra={"port": self.port})
            task_status.started()
            await self._stopping.wait()
            self.telemetry.set_ready(False)
            with anyio.move_on_after(settings.shutdown_grace_period, shield=True):
                await self._workers_done.wait()
            root.cancel_scope.cancel()

    @staticmethod
    def _owned_by_us(run: dict[str, Any], caches: Caches, reconciler: Reconciler) -> bool:
        """An AnalysisRun is ours when the Rollout controlling it is one we handle."""
        metadata = run.get("metadata") or {}
        for ref in metadata.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "Rollout":
                owner = caches.get(ROLLOUT, str(metadata.get("namespace")), str(ref["name"]))
                return owner is not None and reconciler.handles(owner)
        return False

    def _enqueue(self, key: str) -> None:
        self.queue.add(key)
        self.telemetry.set_queue_depth(len(self.queue))

    async def _freeze_when_idle(self) -> None:
        """Each time the queue goes idle, move what the caches hold now into the collector's
        permanent generation (a constant-time splice), so a full collection never has to scan
        it in the middle of a burst of due steps. Cached objects are plain JSON (no reference
        cycles), so reference counting still frees them when they are replaced."""
        while not self.queue.closed:
            await self.queue.wait_idle()
            gc.freeze()
            await self.queue.wait_busy()

    async def _resync(self, caches: Caches) -> None:
        period = self.settings.resync_period
        while True:
            await anyio.sleep(period)
            for key in caches.rollout_keys():
                self._enqueue(key)

    async def _work(self, reconciler: Reconciler) -> None:
        try:
            async with anyio.create_task_group() as workers:
                for _ in range(self.settings.workers):
                    workers.start_soon(self._worker, reconciler)
        finally:
            self._workers_done.set()

    async def _worker(self, reconciler: Reconciler) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueClosed:
                return
            self.telemetry.set_queue_depth(len(self.queue))
            try:
                await reconciler.reconcile(key)
            except Exception:  # one Rollout's bug must not stop the others
                logger.exception("reconcile of %s crashed", key, extra={"rollout": key})
                namespace, _, name = key.partition("/")
                self.telemetry.count_reconcile_error(namespace, name)
            finally:
                self.queue.done(key)


async def serve_forever(settings: Settings, *, clock: Clock | None = None) -> int:
    """``shiftd run``: run until SIGTERM/SIGINT, then stop in order; a second signal exits
    at once. Returns the process exit code."""
    daemon = Daemon(settings, clock=clock)
    async with anyio.create_task_group() as group:

        async def run_then_stop_listening() -> None:
            try:
                await daemon.run()
            finally:
                group.cancel_scope.cancel()

        group.start_soon(run_then_stop_listening)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if daemon.stopping:
                    logger.warning("second signal: exiting at once")
                    os._exit(128 + signum)
                logger.info("received %s", signal.Signals(signum).name)
                daemon.stop()
    return 0
