"""The daemon's own Prometheus metrics and its /metrics, /healthz and /readyz endpoints.

One :class:`Telemetry` is created at start-up and passed to whoever updates it (reconciler,
informers, Kubernetes client); it holds its own ``CollectorRegistry``, so nothing here is
global and tests can create as many as they like. The runtime starts the HTTP server with
``await task_group.start(telemetry.serve, ...)`` and marks readiness with
``telemetry.set_ready(True)`` once its caches are synced. Each API server's client reports
its requests through ``request_hook(server)``: a request that got no HTTP answer marks that
server unreachable until one does, and /readyz then names it (``main``, or ``mesh`` when
Istio's objects live on a separate cluster).

Metric names follow Argo Rollouts where it has one (``rollout_info``,
``rollout_info_replicas_*``, ``rollout_reconcile``, ``rollout_reconcile_error``,
``controller_clientset_k8s_request_total``) so that existing dashboards keep working; the
rest carry a ``shiftd_`` prefix. One difference: the Python client exposes every counter with a
``_total`` suffix, so Argo's ``rollout_reconcile_error`` reads ``rollout_reconcile_error_total``
here.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
from aiohttp import web
from anyio.abc import TaskStatus
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shiftd import __version__
from shiftd.runtime.labelled_metrics import LabelledGauge, LabelledHistogram

__all__ = ["Telemetry"]

log = logging.getLogger(__name__)

# Reconcile durations are mostly milliseconds; the upper buckets catch slow API servers.
_RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry:
    """Metrics registry, readiness flag and event-loop heartbeat of one daemon.

    ``clock`` (monotonic seconds) is injectable so that tests can make the heartbeat stale
    without sleeping. /healthz fails when the heartbeat task has not run for ``stale_after``
    seconds: the event loop is blocked or starved.
    """

    def __init__(
        self,
        *,
        version: str = __version__,
        clock: Callable[[], float] = time.monotonic,
        heartbeat_interval: float = 1.0,
        stale_after: float = 10.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._heartbeat_interval = heartbeat_interval
        self._stale_after = stale_after
        self._last_heartbeat = clock()
        self._ready = False
        self._leader = False
        self._unreachable: dict[str, None] = {}  # API servers whose last request got no answer
        # (namespace, name) -> the (phase, strategy) labels currently exported for it, so that
        # a phase change replaces the rollout_info series instead of adding a second one.
        self._info_labels: dict[tuple[str, str], tuple[str, str]] = {}

        self._rollout_metrics()
        self._daemon_metrics(version)
        self._analysis_metrics()
        self._analysis_labels: dict[tuple[str, str], tuple[str, dict[str, tuple[str, str]]]] = {}

    # -- the metrics ---------------------------------------------------------------------

    def _rollout_metrics(self) -> None:
        """Argo Rollouts' names, so existing dashboards keep working. Each has a series per
        Rollout, so they are compact collectors (``shiftd.runtime.labelled_metrics``)."""
        registry = self.registry
        self.rollout_info = LabelledGauge(
            "rollout_info",
            "Information about a Rollout; always 1.",
            labelnames=["namespace", "name", "phase", "strategy"],
            registry=registry,
        )
        self.replicas_desired = LabelledGauge(
            "rollout_info_replicas_desired",
            "Desired replicas of a Rollout (spec.replicas).",
            labelnames=["namespace", "name"],
            registry=registry,
        )
        self.replicas_available = LabelledGauge(
            "rollout_info_replicas_available",
            "Available replicas of a Rollout, stable and canary together.",
            labelnames=["namespace", "name"],
            registry=registry,
        )
        self.canary_weight = LabelledGauge(
            "shiftd_rollout_canary_weight",
            "Percentage of traffic currently routed to the canary.",
            labelnames=["namespace", "name"],
            registry=registry,
        )
        self.reconcile_duration = LabelledHistogram(
            "rollout_reconcile",
            "Time taken by one reconcile of a Rollout, in seconds.",
            labelnames=["namespace", "name"],
            buckets=_RECONCILE_BUCKETS,
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "rollout_reconcile_error",
            "Reconciles of a Rollout that failed with an error.",
            ["namespace", "name"],
            registry=registry,
        )

    def _daemon_metrics(self, version: str) -> None:
        registry = self.registry
        self.leader = Gauge(
            "shiftd_leader", "1 while this daemon leads (writes), 0 while it stands by.",
            registry=registry)
        self.api_server_up = Gauge(
            "shiftd_api_server_up",
            "1 while the API server answered the daemon's last request, by server (main, mesh).",
            ["server"], registry=registry)
        self.k8s_requests = Counter(
            "controller_clientset_k8s_request",
            "Requests made to the Kubernetes API server, by verb and HTTP status code.",
            ["verb", "status_code"],
            registry=registry,
        )
        self.event_queue_depth = Gauge(
            "shiftd_event_queue_depth",
            "Rollout keys waiting in the event queue.",
            registry=registry,
        )
        self.watch_restarts = Counter(
            "shiftd_watch_restarts",
            "Watches that ended and were restarted (timeouts, dropped connections, 410 Gone).",
            ["kind"],
            registry=registry,
        )
        self.build_info = Gauge(
            "shiftd_build_info",
            "shiftd build information; always 1.",
            ["version", "python"],
            registry=registry,
        )
        self.build_info.labels(version=version, python=platform.python_version()).set(1)

    def _analysis_metrics(self) -> None:
        registry = self.registry
        self.analysis_run_info = Gauge(
            "analysis_run_info", "Information about an AnalysisRun; always 1.",
            ["namespace", "name", "phase"], registry=registry,
        )
        self.analysis_run_metric_phase = Gauge(
            "analysis_run_metric_phase",
            "The phase of each metric of an AnalysisRun; 1 for the current phase.",
            ["namespace", "name", "metric", "type", "phase"], registry=registry,
        )
        self.measurement_duration = Histogram(
            "shiftd_analysis_measurement_duration_seconds",
            "Time to take one measurement, provider call and judgement included.",
            ["provider"], registry=registry,
        )
        self.provider_errors = Counter(
            "shiftd_analysis_provider_errors",
            "Measurements that ended in a provider error or timeout.",
            ["provider"], registry=registry,
        )

    # -- updates ---------------------------------------------------------------------------

    def observe_rollout(
        self,
        *,
        namespace: str,
        name: str,
        phase: str,
        strategy: str,
        weight: float,
        desired: int,
        available: int,
    ) -> None:
        """Record the current state of one Rollout (after each reconcile)."""
        key = (namespace, name)
        labels = (phase, strategy)
        previous = self._info_labels.get(key)
        if previous is not None and previous != labels:
            self.rollout_info.remove(namespace, name, *previous)
        self._info_labels[key] = labels
        self.rollout_info.set(namespace, name, phase, strategy, value=1)
        self.replicas_desired.set(namespace, name, value=desired)
        self.replicas_available.set(namespace, name, value=available)
        self.canary_weight.set(namespace, name, value=weight)

    def forget_rollout(self, namespace: str, name: str) -> None:
        """Drop every series of a Rollout that was deleted or is no longer ours."""
        previous = self._info_labels.pop((namespace, name), None)
        if previous is not None:
            self.rollout_info.remove(namespace, name, *previous)
        for metric in (
            self.replicas_desired,
            self.replicas_available,
            self.canary_weight,
            self.reconcile_duration,
            self.reconcile_errors,
        ):
            metric.remove(namespace, name)

    def observe_analysis_run(self, *, namespace: str, name: str, phase: str,
                             metrics: dict[str, tuple[str, str]]) -> None:
        """One AnalysisRun's phase and its metrics' (type, phase); older series replaced."""
        self.forget_analysis_run(namespace, name)
        self._analysis_labels[(namespace, name)] = (phase, dict(metrics))
        self.analysis_run_info.labels(namespace, name, phase).set(1)
        for metric, (kind, metric_phase) in metrics.items():
            self.analysis_run_metric_phase.labels(namespace, name, metric, kind,
                                                  metric_phase).set(1)

    def forget_analysis_run(self, namespace: str, name: str) -> None:
        previous = self._analysis_labels.pop((namespace, name), None)
        if previous is None:
            return
        phase, metrics = previous
        self.analysis_run_info.remove(namespace, name, phase)
        for metric, (kind, metric_phase) in metrics.items():
            self.analysis_run_metric_phase.remove(namespace, name, metric, kind, metric_phase)

    def observe_measurement(self, provider: str, seconds: float) -> None:
        self.measurement_duration.labels(provider).observe(seconds)

    def count_provider_error(self, provider: str) -> None:
        self.provider_errors.labels(provider).inc()

    def observe_reconcile(self, *, namespace: str, name: str, seconds: float) -> None:
        self.reconcile_duration.observe(namespace, name, value=seconds)

    def count_reconcile_error(self, namespace: str, name: str) -> None:
        self.reconcile_errors.labels(namespace, name).inc()

    @contextmanager
    def time_reconcile(self, namespace: str, name: str) -> Iterator[None]:
        """Observe the duration of the block; count an error if it raises ``Exception``.

        Cancellation is not an error: the reconcile is simply redone later.
        """
        started = self._clock()
        try:
            yield
        except Exception:
            self.count_reconcile_error(namespace, name)
            raise
        finally:
            self.observe_reconcile(namespace=namespace, name=name, seconds=self._clock() - started)

    def count_request(self, verb: str, status_code: int) -> None:
        """Count one API request; fits ``KubeClient``'s ``on_request`` callback."""
        self.k8s_requests.labels(verb, str(status_code)).inc()

    def request_hook(self, server: str) -> Callable[[str, int], None]:
        """``KubeClient``'s ``on_request`` for the API server named ``server``: counts the
        request and tracks whether the server answers (status 0: no HTTP answer came)."""
        up = self.api_server_up.labels(server)
        up.set(1)

        def on_request(verb: str, status_code: int) -> None:
            self.count_request(verb, status_code)
            if status_code == 0:
                if server not in self._unreachable:
                    log.warning("the %s API server is unreachable", server)
                self._unreachable[server] = None
                up.set(0)
            elif server in self._unreachable:
                del self._unreachable[server]
                log.info("the %s API server answers again", server)
                up.set(1)

        return on_request

    def answers(self, server: str) -> bool:
        """Whether the API server ``server`` answered the last request sent to it."""
        return server not in self._unreachable

    @property
    def unreachable(self) -> list[str]:
        """The API servers whose last request got no answer, in the order they went."""
        return list(self._unreachable)

    def report_queue_depth(self, depth: Callable[[], int]) -> None:
        """``shiftd_event_queue_depth`` is ``depth()`` when scraped (read then, not pushed at
        every enqueue: a burst of due steps queues thousands of keys)."""
        self.event_queue_depth.set_function(depth)

    def count_watch_restart(self, kind: str) -> None:
        self.watch_restarts.labels(kind).inc()

    # -- health ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    def set_leader(self, leader: bool) -> None:
        """This daemon holds the leader lease (or runs without leader election)."""
        self._leader = leader
        self.leader.set(1 if leader else 0)

    def set_ready(self, ready: bool) -> None:
        """Mark the daemon ready (caches synced, reconciling) or not ready."""
        self._ready = ready

    @property
    def alive(self) -> bool:
        """True while the heartbeat task keeps running."""
        return self._clock() - self._last_heartbeat <= self._stale_after

    def metrics_text(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return bytes(generate_latest(self.registry))

    # -- HTTP --------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/healthz", self._handle_healthz)
        app.router.add_get("/readyz", self._handle_readyz)
        return app

    async def serve(
        self,
        *,
        address: str,
        port: int,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the endpoints on ``address:port`` and beat the heartbeat until cancelled.

        Reports the bound port through ``task_status`` (so ``port=0`` is usable in tests).
        """
        runner = web.AppRunner(
            self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, address, port)
            await site.start()
            bound_port = int(runner.addresses[0][1])
            log.info(
                "serving /metrics /healthz /readyz", extra={"address": f"{address}:{bound_port}"}
            )
            task_status.started(bound_port)
            while True:
                self._last_heartbeat = self._clock()
                await anyio.sleep(self._heartbeat_interval)
        finally:
            with anyio.move_on_after(5, shield=True):
                await runner.cleanup()

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics_text(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _handle_healthz(self, request: web.Request) -> web.Response:
        if self.alive:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="event loop heartbeat is stale\n")

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        if self._unreachable:
            names = " and ".join(self._unreachable)
            servers = "server is" if len(self._unreachable) == 1 else "servers are"
            return web.Response(status=503,
                                text=f"not ready: the {names} API {servers} unreachable\n")
        if self._ready:
            role = "leader" if self._leader else "standby"
            return web.Response(text=f"ready: {role}\n")
        return web.Response(status=503, text="not ready\n")
