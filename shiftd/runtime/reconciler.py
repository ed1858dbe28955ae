"""The reconciler: one Rollout key in, its plan computed by the pure core, its writes applied.

``reconcile(key)`` reads only the caches, calls ``plan_rollout`` (or ``plan_invalid_spec``),
hands each write to the writer task that owns it, records the plan's Kubernetes Events and
asks the timers to wake it when the plan says. A write that meets a conflict (409, a failed
JSON-patch ``test``, an object already existing or already gone) means the plan was made from
stale objects: the object is re-read, the key requeued and the plan made again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio

from shiftd.decide.analysis.runs import AnalysisRunView, merge_run_spec
from shiftd.decide.rollout.actions import (
    Action,
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeleteReplicaSet,
    PatchAnalysisRun,
    PatchReplicaSet,
    PatchRolloutStatus,
    PatchService,
    Plan,
    SetTraffic,
)
from shiftd.decide.rollout.analysis import background_key, step_key
from shiftd.decide.rollout.observed import Observed, ReplicaSetView, ServiceView
from shiftd.decide.rollout.plan import plan_invalid_spec, plan_rollout
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import ApiError, Conflict, Invalid, KubeError, NotFound
from shiftd.kube.events import EventRecorder
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    DESTINATION_RULE,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    VIRTUAL_SERVICE,
    ResourceKind,
)
from shiftd.model.argo.rollout import (
    CONTROLLER_INSTANCE_LABEL,
    AnalysisStep,
    InvalidSpecError,
    Rollout,
    RolloutDefaults,
    parse_rollout,
)
from shiftd.runtime.caches import Caches, entry
from shiftd.runtime.clock import Clock
from shiftd.runtime.queue import WorkQueue
from shiftd.runtime.telemetry import Telemetry
from shiftd.runtime.timers import Timers
from shiftd.runtime.writers import Writer
from shiftd.traffic.istio.router import TrafficRouter
from shiftd.traffic.istio.routes import RouteError

logger = logging.getLogger(__name__)

EVENT_DEFER_SECONDS = 10.0
RETRY_BASE_SECONDS = 0.05
RETRY_MAX_SECONDS = 10.0


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


class Reconciler:
    def __init__(
        self,
        *,
        client: KubeClient,
        caches: Caches,
        router: TrafficRouter,
        writers: Writers,
        timers: Timers,
        queue: WorkQueue,
        clock: Clock,
        telemetry: Telemetry,
        recorder: EventRecorder,
        instance_id: str | None,
        defaults: RolloutDefaults,
    ) -> None:
        self._client = client
        self._caches = caches
        self._router = router
        self._writers = writers
        self._timers = timers
        self._queue = queue
        self._clock = clock
        self._telemetry = telemetry
        self._recorder = recorder
        self._instance_id = instance_id
        self._defaults = defaults
        self._failures: dict[str, int] = {}
        # per Rollout: the inputs as our last plan left them, and when that plan wants to be
        # woken; a reconcile seeing the same inputs before then has nothing to do (our own
        # writes' watch events, resyncs)
        self._settled: dict[str, tuple[tuple[str, ...], datetime | None]] = {}
        # per Rollout: the spec parsed at (uid, generation)
        self._parsed: dict[str, tuple[tuple[str, Any], Rollout]] = {}

    def handles(self, obj: dict[str, Any]) -> bool:
        """Argo's --instance-id rule: the label must equal ours (or be absent if we have none)."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return labels.get(CONTROLLER_INSTANCE_LABEL) == self._instance_id

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        obj = self._caches.get(ROLLOUT, namespace, name)
        if obj is None or not self.handles(obj):
            self._forget(key, namespace, name)
            return
        inputs = self._caches.fingerprint(key, obj)
        settled = self._settled.get(key)
        if settled is not None and settled[0] == inputs and (
                settled[1] is None or self._clock.now() < settled[1]):
            return  # the same inputs as after our last plan's writes: a fixed point
        started = time.perf_counter()
        ours: set[str] = set()  # fingerprint lines of the objects this reconcile writes
        before = set(inputs)  # (if planning changes the references, the next look replans)
        try:
            plan, rollout = self._plan(obj)
            await self._apply(obj, rollout, plan, written=ours)
        except (Conflict, Invalid, NotFound, RouteError) as error:
            self._settled.pop(key, None)
            # Planned from stale objects: re-read the Rollout and plan again.
            logger.info("replanning %s after a conflict: %s", key, error,
                        extra={"rollout": key})
            await self._refresh(namespace, name)
            self._retry(key, immediate=self._failures.get(key, 0) < 3)
            return
        except KubeError as error:
            self._settled.pop(key, None)
            self._telemetry.count_reconcile_error(namespace, name)
            logger.warning("reconcile of %s failed: %s", key, error, extra={"rollout": key})
            self._retry(key, immediate=False)
            return
        finally:
            self._telemetry.observe_reconcile(namespace=namespace, name=name,
                                              seconds=time.perf_counter() - started)
        self._failures.pop(key, None)
        if plan.again:
            self._queue.add(key)  # the planner stopped early on purpose
            self._settled.pop(key, None)
        else:
            after = self._caches.fingerprint(key, self._caches.get(ROLLOUT, namespace, name)
                                             or obj)
            if set(after) - before <= ours:
                # nothing changed but what we wrote: planning again would find nothing to do
                self._settled[key] = (after, plan.requeue_at)
            else:
                self._settled.pop(key, None)  # something else moved meanwhile: look again
        self._timers.schedule(key, plan.requeue_at)
        self._observe_metrics(namespace, name, rollout, plan)

    # -- planning -------------------------------------------------------------------------
    def _plan(self, obj: dict[str, Any]) -> tuple[Plan, Rollout | None]:
        now = self._clock.now()
        metadata = obj.get("metadata") or {}
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        try:
            rollout = self._parse(obj)
        except InvalidSpecError as error:
            self._caches.set_references(key, ())
            return plan_invalid_spec(obj, str(error), now=now), None
        refs: list[tuple[ResourceKind, str, str]] = [
            (SERVICE, rollout.namespace, service)
            for service in (rollout.canary.canary_service, rollout.canary.stable_service)
            if service
        ]
        refs.extend(self._router.references(rollout))
        template_refs: list[tuple[ResourceKind, str, str]] = []
        try:
            specs = self._analysis_specs(rollout, obj, refs=template_refs)
        except InvalidSpecError as error:
            # the templates it names are watched even when missing: creating one recovers it
            self._caches.set_references(key, [*refs, *template_refs])
            return plan_invalid_spec(obj, str(error), now=now), None
        self._caches.set_references(key, [*refs, *template_refs])
        observed = Observed(
            replica_sets=tuple(
                ReplicaSetView.from_object(rs, rollout_uid=rollout.uid)
                for rs in self._caches.replica_sets_for(namespace=rollout.namespace,
                                                        uid=rollout.uid)
            ),
            services={
                service: (ServiceView.from_object(found) if found is not None else None)
                for service in (rollout.canary.canary_service, rollout.canary.stable_service)
                if service
                for found in [self._caches.get(SERVICE, rollout.namespace, service)]
            },
            traffic=self._router.observe(rollout) if rollout.canary.traffic_routed else None,
            analysis_runs=tuple(
                AnalysisRunView.from_object(run)
                for run in self._caches.analysis_runs_for(namespace=rollout.namespace,
                                                          uid=rollout.uid)
            ),
            analysis_specs=specs,
        )
        plan = plan_rollout(rollout, observed, now=now,
                            resource_version=metadata.get("resourceVersion"))
        return plan, rollout

    def _parse(self, obj: dict[str, Any]) -> Rollout:
        """``parse_rollout``, with the spec's part reused while the generation is unchanged
        (a spec change always bumps it); status and annotations are always the object's."""
        metadata = obj.get("metadata") or {}
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        version = (str(metadata.get("uid", "")), metadata.get("generation"))
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version and version[1] is not None:
            return dataclasses.replace(cached[1], status=obj.get("status") or {},
                                       annotations=metadata.get("annotations") or {})
        rollout = parse_rollout(obj, self._defaults)
        self._parsed[key] = (version, rollout)
        return rollout

    def _analysis_specs(
        self, rollout: Rollout, obj: dict[str, Any], *,
        refs: list[tuple[ResourceKind, str, str]],
    ) -> dict[str, dict[str, Any]]:
        """The AnalysisRun spec of every analysis block, from the cached templates; every
        template named is added to ``refs`` first, found or not."""
        blocks: list[tuple[str, dict[str, Any], str]] = []
        if rollout.canary.background_analysis:
            blocks.append((background_key(), rollout.canary.background_analysis,
                           "spec.strategy.canary.analysis"))
        for index, step in enumerate(rollout.canary.steps):
            if isinstance(step, AnalysisStep):
                blocks.append((step_key(index), step.raw,
                               f"spec.strategy.canary.steps[{index}].analysis"))
        specs: dict[str, dict[str, Any]] = {}
        for _, block, _ in blocks:
            for ref in block.get("templates") or []:
                name = str(ref.get("templateName", ""))
                if ref.get("clusterScope"):
                    refs.append((CLUSTER_ANALYSIS_TEMPLATE, "", name))
                else:
                    refs.append((ANALYSIS_TEMPLATE, rollout.namespace, name))
        for key, block, path in blocks:
            templates: dict[tuple[str, str], dict[str, Any]] = {}
            for ref in block.get("templates") or []:
                name = str(ref.get("templateName", ""))
                if ref.get("clusterScope"):
                    kind, namespace = CLUSTER_ANALYSIS_TEMPLATE, ""
                else:
                    kind, namespace = ANALYSIS_TEMPLATE, rollout.namespace
                found = self._caches.get(kind, namespace or None, name)
                if found is not None:
                    templates[(kind.kind, name)] = found
            specs[key] = merge_run_spec(block, templates=templates, rollout_obj=obj, path=path)
        return specs

    # -- applying -------------------------------------------------------------------------
    async def _apply(self, obj: dict[str, Any], rollout: Rollout | None, plan: Plan, *,
                     written: set[str]) -> None:
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        for action in plan.actions:
            for kind, result in await self._apply_one(namespace, name, rollout, action):
                written.add(entry(kind, result))
        if plan.events:
            # Recorded (and logged) by the events writer in the background: the reconcile does
            # not wait for them (the recorder never raises and nothing plans from Events).
            events, recorder, queue = plan.events, self._recorder, self._queue
            key = f"{namespace}/{name}"

            async def record() -> None:
                # Events are informational: let the reconciles that move traffic go first (a
                # burst of due steps), but never hold an Event back more than ten seconds.
                with anyio.move_on_after(EVENT_DEFER_SECONDS):
                    await queue.wait_idle()
                for event in events:
                    logger.info("%s", event.message,
                                extra={"rollout": key, "reason": event.reason})
                    await recorder.record(obj, type=event.type, reason=event.reason,
                                          message=event.message)

            self._writers.events.post(record)

    async def _apply_one(self, namespace: str, name: str, rollout: Rollout | None,
                         action: Action) -> list[tuple[ResourceKind, dict[str, Any]]]:
        """Apply one write through the writer that owns it; returns the objects as the API
        answered them (already in the caches)."""
        writers = self._writers
        if isinstance(action, CreateReplicaSet | CreateAnalysisRun):
            kind = REPLICA_SET if isinstance(action, CreateReplicaSet) else ANALYSIS_RUN
            writer = writers.replica_sets if kind is REPLICA_SET else writers.analysis
            return await self._write(writer, kind, lambda: self._client.create(
                kind, namespace, action.body))
        if isinstance(action, PatchReplicaSet | PatchAnalysisRun | PatchService):
            kind, writer = {
                PatchReplicaSet: (REPLICA_SET, writers.replica_sets),
                PatchAnalysisRun: (ANALYSIS_RUN, writers.analysis),
                PatchService: (SERVICE, writers.traffic),
            }[type(action)]
            return await self._write(writer, kind, lambda: self._client.patch(
                kind, namespace, action.name, action.patch, patch_type="merge"))
        if isinstance(action, DeleteReplicaSet | DeleteAnalysisRun):
            kind = REPLICA_SET if isinstance(action, DeleteReplicaSet) else ANALYSIS_RUN
            writer = writers.replica_sets if kind is REPLICA_SET else writers.analysis
            await writer.submit(lambda: self._client.delete(kind, namespace, action.name))
            self._caches.forget(kind, namespace, action.name)
            return []
        if isinstance(action, SetTraffic):
            assert rollout is not None
            router = self._router
            written = await writers.traffic.submit(lambda: router.apply(rollout, action))
            for obj in written:
                self._caches.remember(_kind_of(obj), obj)
            return [(_kind_of(obj), obj) for obj in written]
        assert isinstance(action, PatchRolloutStatus)  # the last kind of action
        body: dict[str, Any] = {"status": action.patch}
        if action.resource_version:
            body["metadata"] = {"resourceVersion": action.resource_version}
        return await self._write(writers.status, ROLLOUT, lambda: self._client.patch(
            ROLLOUT, namespace, name, body, patch_type="merge", subresource="status"))

    async def _write(
        self, writer: Writer, kind: ResourceKind,
        request: Callable[[], Awaitable[dict[str, Any]]],
    ) -> list[tuple[ResourceKind, dict[str, Any]]]:
        """One create or patch on ``writer``; the answer goes into the caches at once."""
        answered: dict[str, Any] = await writer.submit(request)
        self._caches.remember(kind, answered)
        return [(kind, answered)]

    # -- bookkeeping ----------------------------------------------------------------------
    async def _refresh(self, namespace: str, name: str) -> None:
        try:
            fresh = await self._client.get(ROLLOUT, namespace, name)
        except ApiError:
            return
        except KubeError:
            return
        self._caches.remember(ROLLOUT, fresh)

    def _retry(self, key: str, *, immediate: bool) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        if immediate:
            self._queue.add(key)
            return
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(failures, 16))
        self._timers.retry_later(key, delay)

    def _forget(self, key: str, namespace: str, name: str) -> None:
        self._settled.pop(key, None)
        self._parsed.pop(key, None)
        self._timers.forget(key)
        self._caches.drop_rollout(key)
        self._failures.pop(key, None)
        self._telemetry.forget_rollout(namespace, name)

    def _observe_metrics(self, namespace: str, name: str, rollout: Rollout | None,
                         plan: Plan) -> None:
        self._telemetry.observe_rollout(
            namespace=namespace, name=name, phase=plan.phase or "Progressing",
            strategy="Canary", weight=plan.canary_weight,
            desired=rollout.replicas if rollout is not None else 0,
            available=int(plan.status.get("availableReplicas", 0)),
        )


def _kind_of(obj: dict[str, Any]) -> ResourceKind:
    return DESTINATION_RULE if obj.get("kind") == "DestinationRule" else VIRTUAL_SERVICE
