"""Applying a Rollout's plan: each write handed to the writer task that owns it, in the
plan's order, its answer put into the caches at once (write-through), and the plan's Events
added to a backlog (folded per Rollout) that the events writer drains in the background,
after the reconciles that route traffic.

A traffic write goes to the Rollout's router, which says what it wrote, so nothing here knows
which mesh objects a router touches. Pod writes (``EvictPods``, and a ``PatchReplicaSet``'s
``pod_metadata`` merged onto the ReplicaSet's existing pods, before and after its own patch)
go through ``RolloutPods`` on the ReplicaSet writer; pods are not cached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shiftd.controllers.rollout_pods import RolloutPods
from shiftd.decide.rollout.actions import (
    Action,
    AnnotateRollout,
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeleteReplicaSet,
    EventSpec,
    EvictPods,
    PatchAnalysisRun,
    PatchReplicaSet,
    PatchRolloutStatus,
    PatchService,
    Plan,
    ScaleDeployment,
    SetTraffic,
)
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import KubeError
from shiftd.kube.events import EventBacklog, EventRecorder, PlannedEvent
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    DEPLOYMENT,
    POD,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    ResourceKind,
)
from shiftd.model.argo.rollout import Rollout
from shiftd.runtime.caches import Caches
from shiftd.runtime.writers import Writer, Writers
from shiftd.traffic.base import Written
from shiftd.traffic.registry import TrafficRouters

logger = logging.getLogger(__name__)

EVENT_DEFER_SECONDS = 10.0
EVENT_CONCURRENCY = 4  # Events written at once (each Rollout's in the order planned)
JsonObject = dict[str, Any]


class RolloutWrites:
    def __init__(self, *, client: KubeClient, caches: Caches, writers: Writers,
                 routers: TrafficRouters, recorder: EventRecorder,
                 wait_idle: Callable[[], Awaitable[None]]) -> None:
        self._client = client
        self._caches = caches
        self._writers = writers
        self._routers = routers
        self._events = EventBacklog(recorder, concurrency=EVENT_CONCURRENCY,
                                    may_start=wait_idle, max_delay=EVENT_DEFER_SECONDS,
                                    log=_log_event)
        self._pods = RolloutPods(client)

    async def apply(self, obj: JsonObject, rollout: Rollout | None,
                    plan: Plan) -> list[Written]:
        """Apply the plan's writes in order; returns every object written (already cached)."""
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        written: list[Written] = []
        for action in plan.actions:
            written.extend(await self._apply_one(namespace, name, rollout, action))
        if plan.events:
            self._post_events(obj, plan.events, key=f"{namespace}/{name}")
        return written

    def _post_events(self, obj: JsonObject, events: tuple[EventSpec, ...], *,
                     key: str) -> None:
        """Recorded (and logged) by the events writer in the background: the reconcile does
        not wait for them (the recorder never raises and nothing plans from Events). Events
        are informational: the backlog lets the reconciles that move traffic go first (a
        burst of due steps), but never holds an Event back more than ten seconds."""
        self._events.add(key, obj, [PlannedEvent(event.type, event.reason, event.message)
                                    for event in events])
        # An idle writer runs no drain (one asked for in an earlier term was dropped).
        if not self._events.scheduled or self._writers.events.idle:
            self._events.scheduled = True
            self._writers.events.post(self._events.drain)

    async def _apply_one(self, namespace: str, name: str, rollout: Rollout | None,
                         action: Action) -> list[Written]:
        """Apply one write through the writer that owns it; returns the objects as the API
        answered them (already in the caches)."""
        writers, client = self._writers, self._client
        if isinstance(action, CreateReplicaSet | CreateAnalysisRun):
            kind, writer = self._owned_kind(action)
            return await self._write(writer, kind, lambda: client.create(
                kind, namespace, action.body))
        if isinstance(action, PatchReplicaSet) and action.pod_metadata and rollout is not None:
            return await self._patch_with_pods(namespace, rollout, action)
        if isinstance(action, PatchReplicaSet | PatchAnalysisRun | PatchService):
            kind, writer = self._owned_kind(action)
            return await self._write(writer, kind, lambda: client.patch(
                kind, namespace, action.name, action.patch, patch_type="merge"))
        if isinstance(action, EvictPods):
            await writers.replica_sets.submit(lambda: self._pods.evict(namespace, action.names))
            return []
        if isinstance(action, DeleteReplicaSet | DeleteAnalysisRun):
            kind, writer = self._owned_kind(action)
            await writer.submit(lambda: client.delete(kind, namespace, action.name))
            self._caches.forget(kind, namespace, action.name)
            return []
        if isinstance(action, ScaleDeployment):
            body: JsonObject = {"spec": {"replicas": action.replicas}}
            if action.resource_version:  # planned from this version: a 409 replans
                body["metadata"] = {"resourceVersion": action.resource_version}
            return await self._write(writers.replica_sets, DEPLOYMENT, lambda: client.patch(
                DEPLOYMENT, namespace, action.name, body, patch_type="merge"))
        if isinstance(action, AnnotateRollout):
            return await self._write(writers.status, ROLLOUT, lambda: client.patch(
                ROLLOUT, namespace, name, {"metadata": {"annotations": action.annotations}},
                patch_type="merge"))
        if isinstance(action, SetTraffic):
            assert rollout is not None
            router = self._routers.for_rollout(rollout)
            routed: list[Written] = await writers.traffic.submit(
                lambda: router.apply(rollout, action))
            for kind, obj in routed:
                self._caches.remember(kind, obj)
            return routed
        assert isinstance(action, PatchRolloutStatus)  # the last kind of action
        status: JsonObject = {"status": action.patch}
        if action.resource_version:
            status["metadata"] = {"resourceVersion": action.resource_version}
        return await self._write(writers.status, ROLLOUT, lambda: client.patch(
            ROLLOUT, namespace, name, status, patch_type="merge", subresource="status"))

    async def _patch_with_pods(self, namespace: str, rollout: Rollout,
                               action: PatchReplicaSet) -> list[Written]:
        """A ReplicaSet's patch with its existing pods' metadata (canary/stable metadata
        switched in place). The pods are patched before the ReplicaSet, so a daemon killed in
        between finds the ReplicaSet unpatched and does both again, and once more after it,
        for a pod its controller made from the old template meanwhile."""
        metadata = action.pod_metadata or {}

        async def relabel() -> list[JsonObject]:
            pods: list[JsonObject] = await self._writers.replica_sets.submit(
                lambda: self._pods.relabel(rollout, replica_set=action.name, patch=metadata))
            return pods

        before = await relabel()
        written = await self._write(self._writers.replica_sets, REPLICA_SET, lambda: (
            self._client.patch(REPLICA_SET, namespace, action.name, action.patch,
                               patch_type="merge")))
        after = await relabel()
        return [*written, *((POD, pod) for pod in [*before, *after])]

    def _owned_kind(self, action: Action) -> tuple[ResourceKind, Writer]:
        if isinstance(action, CreateReplicaSet | PatchReplicaSet | DeleteReplicaSet):
            return REPLICA_SET, self._writers.replica_sets
        if isinstance(action, PatchService):
            return SERVICE, self._writers.traffic
        return ANALYSIS_RUN, self._writers.analysis

    async def _write(self, writer: Writer, kind: ResourceKind,
                     request: Callable[[], Awaitable[JsonObject]]) -> list[Written]:
        """One create or patch on ``writer``; the answer goes into the caches at once. An
        AnalysisRun's also wakes the analysis controller, and a Deployment's the Rollouts
        whose workloadRef names it (its new generation is theirs to record), as their watch
        events would: those events, arriving after, change nothing in the cache."""
        answered: JsonObject = await writer.submit(request)
        self._caches.remember(kind, answered, notify=kind is ANALYSIS_RUN or kind is DEPLOYMENT)
        return [(kind, answered)]

    async def refresh(self, namespace: str, name: str) -> None:
        """Re-read a Rollout after a conflict, so the retry plans from its newest copy."""
        try:
            fresh = await self._client.get(ROLLOUT, namespace, name)
        except KubeError:
            return
        self._caches.remember(ROLLOUT, fresh)


def _log_event(key: str, event: PlannedEvent) -> None:
    logger.info("%s", event.message, extra={"rollout": key, "reason": event.reason})
