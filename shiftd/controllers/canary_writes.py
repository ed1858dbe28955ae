"""Applying a Canary's step: owned objects put, the target scaled, the status merged, the
finalizer changed, Events recorded — in that order, each answer put into the caches at once
(write-through), so the next reconcile plans from what was just written.

Writes that replace an object carry the resourceVersion it was read at, and the status and
finalizer patches carry the Canary's: a conflict means the step was decided from stale
objects, and the controller re-reads and decides again.
"""

from __future__ import annotations

from typing import Any

from shiftd.decide.flagger.actions import Put, ScaleTarget, Step
from shiftd.kube.client import KubeClient
from shiftd.kube.events import EventRecorder
from shiftd.kube.resources import (
    CANARY,
    DEPLOYMENT,
    DESTINATION_RULE,
    HORIZONTAL_POD_AUTOSCALER,
    SERVICE,
    VIRTUAL_SERVICE,
    ResourceKind,
)
from shiftd.kube.servers import ApiServers
from shiftd.model.flagger.canary import FINALIZER, Canary
from shiftd.runtime.caches import Caches

JsonObject = dict[str, Any]
KINDS: dict[str, ResourceKind] = {kind.kind: kind for kind in (
    DEPLOYMENT, SERVICE, VIRTUAL_SERVICE, DESTINATION_RULE, HORIZONTAL_POD_AUTOSCALER)}
EVENT_REASON = "Synced"  # Flagger gives every Event this reason


class CanaryWrites:
    """Carries out a Canary plan's writes (VirtualServices and DestinationRules on the API
    server that holds the mesh kinds)."""

    def __init__(self, *, client: KubeClient | ApiServers, caches: Caches,
                 recorder: EventRecorder) -> None:
        self._client = client
        self._caches = caches
        self._recorder = recorder

    async def apply(self, obj: JsonObject, canary: Canary, step: Step) -> None:
        for action in step.actions:
            if isinstance(action, Put):
                await self._put(canary, action)
            elif isinstance(action, ScaleTarget):
                await self._scale(canary, action.replicas)
        current = obj
        if step.status is not None:
            current = await self._patch_canary(current, {"status": step.status},
                                               subresource="status")
        if step.finalizer is not None:
            finalizers = [f for f in (current.get("metadata") or {}).get("finalizers") or []
                          if f != FINALIZER]
            if step.finalizer == "add":
                finalizers.append(FINALIZER)
            current = await self._patch_canary(current, {"metadata": {"finalizers": finalizers}})
        for event in step.events:
            await self._recorder.record(current, type="Warning" if event.warning else "Normal",
                                        reason=EVENT_REASON, message=event.message)

    async def _put(self, canary: Canary, action: Put) -> None:
        kind = KINDS[action.kind]
        version = (action.body.get("metadata") or {}).get("resourceVersion")
        if version:
            written = await self._client.replace(kind, canary.namespace, action.name,
                                                 action.body)
        else:
            written = await self._client.create(kind, canary.namespace, action.body)
        self._caches.remember(kind, written)

    async def _scale(self, canary: Canary, replicas: int) -> None:
        written = await self._client.patch(DEPLOYMENT, canary.namespace,
                                           canary.spec.target_ref.name,
                                           {"spec": {"replicas": replicas}}, patch_type="merge")
        self._caches.remember(DEPLOYMENT, written)

    async def _patch_canary(self, obj: JsonObject, patch: JsonObject, *,
                            subresource: str | None = None) -> JsonObject:
        meta = obj.get("metadata") or {}
        guarded = {**patch, "metadata": {**patch.get("metadata", {}),
                                         "resourceVersion": meta.get("resourceVersion")}}
        written = await self._client.patch(CANARY, meta.get("namespace"), meta["name"], guarded,
                                           patch_type="merge", subresource=subresource)
        self._caches.remember(CANARY, written)
        return written
