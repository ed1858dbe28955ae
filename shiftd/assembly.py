"""The composition root: settings in, a running daemon out.

``assemble`` builds every part from the settings and a client — the engine, the caches, the
writer tasks, the traffic routers, the metric providers' settings and the controllers (the
Rollout, AnalysisRun and Flagger Canary controllers, each registered on the engine and
declaring its kinds on the caches) — and nothing else builds parts. ``Daemon`` pairs it with
the lifecycle (``shiftd.runtime.lifecycle``), which decides start order, readiness and the
orderly stop. ``shiftd run`` runs it under its signals and systemd (``shiftd.cli.service``).

With ``mesh`` set in the settings, Istio's kinds live on a second API server: the caches and
the traffic routers then get an ``ApiServers`` that sends each kind's calls to the client of
the server holding it; everything else (writers, Events, Leases) keeps the main client.
"""

from __future__ import annotations

import functools
import logging
import secrets
import socket
from collections.abc import Sequence
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from kubernetes_asyncio.config.config_exception import ConfigException

from shiftd import __version__
from shiftd.config import ConfigError, LeaderElectionSettings, Settings
from shiftd.controllers.analysisrun import SECRET, AnalysisController
from shiftd.controllers.canary import CanaryController
from shiftd.controllers.canary_checks import CanaryChecks
from shiftd.controllers.canary_writes import CanaryWrites
from shiftd.controllers.rollout import RolloutController
from shiftd.controllers.rollout_writes import RolloutWrites
from shiftd.decide.analysis.expr import evaluate_condition
from shiftd.decide.leadership import LeaseTimings
from shiftd.kube.client import KubeClient
from shiftd.kube.events import EventRecorder
from shiftd.kube.resources import ANALYSIS_RUN, DESTINATION_RULE, ROLLOUT, VIRTUAL_SERVICE
from shiftd.kube.servers import ApiServer, ApiServers
from shiftd.model.argo.rollout import RolloutDefaults
from shiftd.providers.base import ProviderSettings
from shiftd.runtime.caches import Caches
from shiftd.runtime.clock import Clock, SystemClock
from shiftd.runtime.engine import Engine
from shiftd.runtime.flagger_telemetry import FlaggerMetrics
from shiftd.runtime.leadership import AlwaysLeader, Elector, LeaderElector
from shiftd.runtime.lifecycle import Lifecycle, Parts, Timings
from shiftd.runtime.sharding import SHARD_LABEL, ShardRing, shard_lease_names
from shiftd.runtime.telemetry import Telemetry
from shiftd.runtime.writers import Writers
from shiftd.traffic.registry import TrafficRouters, known_routers

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


MESH_KINDS = (VIRTUAL_SERVICE, DESTINATION_RULE)  # what a separate mesh cluster holds


def assemble(settings: Settings, *, client: KubeClient, clock: Clock,
             telemetry: Telemetry, mesh_client: KubeClient | None = None) -> Parts:
    """Build every part of the daemon from the settings; ``mesh_client`` (when Istio's
    objects live on another cluster) serves VirtualServices and DestinationRules."""
    servers = ApiServers(
        ApiServer("main", client),
        [] if mesh_client is None else [(ApiServer("mesh", mesh_client), MESH_KINDS)],
        answering=telemetry.answers)
    # One cluster: the client itself, as before; with a mesh cluster, each kind's own client.
    by_kind: KubeClient | ApiServers = client if mesh_client is None else servers
    elector, ring = _coordination(settings, client=client, clock=clock, telemetry=telemetry)
    engine = Engine(clock=clock,
                    on_error=lambda key: telemetry.count_reconcile_error(key.namespace,
                                                                         key.name),
                    owns=ring.owns if ring is not None else lambda shard_key: True)
    telemetry.report_queue_depth(lambda: engine.depth)
    caches = Caches(by_kind, namespaces=list(settings.namespaces) or None,
                    enqueue=engine.enqueue, on_restart=telemetry.count_watch_restart,
                    serves=by_kind.serves)
    if mesh_client is None:  # a written object is parsed once (answer or watch event)
        client.reuse_cached_answers(caches.holding, remember=caches.remember_answer)
    writers = Writers(concurrency=settings.workers)
    routers = TrafficRouters(known_routers(reader=caches, writer=by_kind))
    rollouts = RolloutController(
        client=client, caches=caches, routers=routers, clock=clock, telemetry=telemetry,
        writes=RolloutWrites(client=client, caches=caches, writers=writers, routers=routers,
                             recorder=EventRecorder(client),
                             # Events wait for the Rollout queue to idle, so a burst of due
                             # steps moves traffic first.
                             wait_idle=engine.idle_waiter(ROLLOUT.kind)),
        instance_id=settings.instance_id, workers=settings.workers,
        defaults=RolloutDefaults(
            scale_down_delay_seconds=settings.defaults.scale_down_delay_seconds,
            abort_scale_down_delay_seconds=settings.defaults.abort_scale_down_delay_seconds,
            progress_deadline_seconds=settings.defaults.progress_deadline_seconds,
        ),
    )
    analysis = AnalysisController(
        client=client, read=caches.get, clock=clock, telemetry=telemetry,
        evaluate=evaluate_condition,
        provider_settings=ProviderSettings(
            prometheus_default_address=settings.analysis.prometheus_address,
            timeout_seconds=settings.analysis.provider_timeout,
        ),
        concurrency=settings.analysis.concurrency,
        measurement_timeout=settings.analysis.measurement_timeout,
        ours=rollouts.controls_run,
        remember=lambda run: caches.remember(ANALYSIS_RUN, run, notify=True),
    )
    canaries = _canary_controller(settings, client=client, by_kind=by_kind, caches=caches,
                                  clock=clock, telemetry=telemetry)
    for controller in (rollouts, analysis, canaries):
        controller.register(caches)
        engine.register(controller)
    return Parts(telemetry=telemetry, writers=writers, engine=engine, caches=caches,
                 elector=elector, ring=ring,
                 background=(functools.partial(servers.probe, main_kind=ROLLOUT),))


def _canary_controller(settings: Settings, *, client: KubeClient,
                       by_kind: KubeClient | ApiServers, caches: Caches, clock: Clock,
                       telemetry: Telemetry) -> CanaryController:
    """Flagger's Canaries (its kinds are watched once the API server serves them); their
    VirtualServices and DestinationRules are written where the mesh kinds live."""
    flagger_metrics = FlaggerMetrics(telemetry.registry)
    return CanaryController(
        caches=caches, clock=clock, workers=settings.workers, metrics=flagger_metrics,
        writes=CanaryWrites(client=by_kind, caches=caches,
                            recorder=EventRecorder(client, component="flagger")),
        checks=CanaryChecks(caches=caches, metrics=flagger_metrics,
                            prometheus_address=settings.analysis.prometheus_address,
                            read_secret=lambda namespace, name: client.get(
                                SECRET, namespace, name)),
    )


def _coordination(settings: Settings, *, client: KubeClient, clock: Clock,
                  telemetry: Telemetry) -> tuple[Elector, ShardRing | None]:
    """Who may write: everyone (no election), the Lease holder, or each shard its keys."""
    election, sharding = settings.leader_election, settings.sharding
    if sharding.replicas > 1:
        names = shard_lease_names(sharding.lease_prefix, sharding.replicas)
        elector = _lease_elector(election, client=client, clock=clock, telemetry=telemetry,
                                 names=names, labels={SHARD_LABEL: "true"})
        ring = ShardRing(client=client, namespace=elector.namespace, names=names, clock=clock,
                         join_delay=election.retry_period, recheck=election.retry_period,
                         held=lambda: elector.held)
        return elector, ring
    if not election.enabled:
        telemetry.set_leader(True)
        return AlwaysLeader(), None
    return _lease_elector(election, client=client, clock=clock, telemetry=telemetry,
                          names=[election.lease_name], labels={}), None


def _lease_elector(settings: LeaderElectionSettings, *, client: KubeClient, clock: Clock,
                   telemetry: Telemetry, names: list[str],
                   labels: dict[str, str]) -> LeaderElector:
    return LeaderElector(
        client=client, clock=clock, on_change=telemetry.set_leader, names=names,
        labels=labels, namespace=settings.lease_namespace or _own_namespace(),
        identity=settings.identity or f"{socket.gethostname()}_{secrets.token_hex(4)}",
        timings=LeaseTimings(lease_duration=settings.lease_duration,
                             renew_deadline=settings.renew_deadline,
                             retry_period=settings.retry_period))


def _own_namespace() -> str:
    """The pod's namespace when running in a cluster, else ``default``."""
    try:
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


class Daemon:
    """The daemon: parts built by ``assemble``, run by the lifecycle."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        client: KubeClient | None = None,
        mesh_client: KubeClient | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.telemetry = telemetry or Telemetry()
        self._client = client
        self._mesh_client = mesh_client
        self.parts: Parts | None = None
        self._lifecycle = Lifecycle(Timings(
            listen_address=settings.listen.address, listen_port=settings.listen.port,
            resync_period=settings.resync_period,
            shutdown_grace_period=settings.shutdown_grace_period))

    @property
    def port(self) -> int:
        return self._lifecycle.port

    @property
    def quiet(self) -> bool:
        """Nothing to reconcile and no write in flight or waiting (Events included)."""
        return self._lifecycle.quiet

    @property
    def stopping(self) -> bool:
        return self._lifecycle.stopping

    def stop(self) -> None:
        self._lifecycle.stop()

    async def set_namespaces(self, namespaces: Sequence[str]) -> None:
        """Watch these namespaces from now on (empty: all), without a restart."""
        if self.parts is not None:
            await self.parts.caches.set_namespaces(list(namespaces) or None)

    async def _make_client(self) -> KubeClient:
        kube = self.settings.kubernetes
        return await KubeClient.from_settings(
            kubeconfig=str(kube.kubeconfig) if kube.kubeconfig else None,
            context=kube.context, in_cluster=kube.in_cluster, qps=kube.qps, burst=kube.burst,
            on_request=self.telemetry.request_hook("main"), user_agent=self._user_agent(),
            request_timeout=kube.request_timeout,
        )

    async def _make_mesh_client(self) -> KubeClient | None:
        """The mesh cluster's client, when Istio's objects live on a separate cluster (same
        rate limit as the main one: the daemon sends it only Istio's reads and writes)."""
        mesh, kube = self.settings.mesh, self.settings.kubernetes
        if not mesh.enabled:
            return None
        try:
            return await KubeClient.from_settings(
                kubeconfig=str(mesh.kubeconfig) if mesh.kubeconfig else None,
                context=mesh.context, in_cluster=False, qps=kube.qps, burst=kube.burst,
                on_request=self.telemetry.request_hook("mesh"), user_agent=self._user_agent(),
                request_timeout=kube.request_timeout,
            )
        except (ConfigException, OSError, ValueError) as error:
            key = "mesh.kubeconfig" if mesh.kubeconfig else "mesh.context"
            raise ConfigError(f"{key}: cannot load the mesh cluster's kubeconfig: "
                              f"{' '.join(str(error).split())}") from None

    def _user_agent(self) -> str:
        """``shiftd/<version>``, with the replica's identity when it has one configured, so
        API server audit logs tell replicas apart."""
        identity = self.settings.leader_election.identity
        return f"shiftd/{__version__}" + (f" ({identity})" if identity else "")

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        owned: list[KubeClient] = []  # the clients made here, closed here
        try:
            client = self._client or await self._make_client()
            if self._client is None:
                owned.append(client)
            mesh_client = self._mesh_client or await self._make_mesh_client()
            if self._mesh_client is None and mesh_client is not None:
                owned.append(mesh_client)
            self.parts = assemble(self.settings, client=client, clock=self.clock,
                                  telemetry=self.telemetry, mesh_client=mesh_client)
            await self._lifecycle.run(self.parts, task_status=task_status)
        finally:
            with anyio.CancelScope(shield=True):
                for made in owned:
                    await made.close()
