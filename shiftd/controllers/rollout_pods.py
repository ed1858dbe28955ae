"""A Rollout's pods, read and written on demand: listed by the Rollout's selector at the
moment a plan needs them (a ``restartAt`` restart, canary/stable metadata switched in place),
evicted through the Eviction API, and relabelled with merge patches.

There is no pod informer: a cluster's pods outnumber its Rollouts many times over, and only a
Rollout that is restarting or changing a role needs its pods, for one reconcile. A LIST by
label selector in the Rollout's namespace costs one request and no memory afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shiftd.decide.rollout.observed import PodView
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import ApiError, NotFound
from shiftd.kube.resources import POD
from shiftd.model.argo.rollout import Rollout

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
TOO_MANY_REQUESTS = 429  # an eviction a PodDisruptionBudget does not allow now

_OPERATORS = {"In": "in", "NotIn": "notin"}


def selector_query(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object as a ``labelSelector`` query (the apiserver's grammar)."""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels")
                                                         or {}).items())]
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key", ""), expression.get("operator", "")
        if operator in _OPERATORS:
            values = ",".join(sorted(str(v) for v in expression.get("values") or ()))
            parts.append(f"{key} {_OPERATORS[operator]} ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def owner_of(pod: JsonObject) -> str:
    """The name of the ReplicaSet controlling a pod ("" if none)."""
    return next((str(ref.get("name", "")) for ref in
                 (pod.get("metadata") or {}).get("ownerReferences") or ()
                 if ref.get("controller") and ref.get("kind") == "ReplicaSet"), "")


def pod_changes(pod: JsonObject, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a metadata merge patch (``{"labels": {k: v or None}, ...}``) that would
    change this pod; ``{}`` when it already carries it."""
    metadata = pod.get("metadata") or {}
    changes: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        present = metadata.get(key) or {}
        wanted = {name: value for name, value in (patch.get(key) or {}).items()
                  if (value is None and name in present)
                  or (value is not None and present.get(name) != value)}
        if wanted:
            changes[key] = wanted
    return changes


class RolloutPods:
    """Pod reads and writes for one Rollout reconcile, straight to the API server."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def _list(self, rollout: Rollout) -> list[JsonObject]:
        items, _ = await self._client.list(POD, rollout.namespace,
                                           label_selector=selector_query(rollout.selector))
        return items

    async def views(self, rollout: Rollout, *, now: datetime) -> tuple[PodView, ...]:
        """The Rollout's pods as the restart planner sees them."""
        views = (PodView.from_object(pod, min_ready_seconds=rollout.min_ready_seconds, now=now)
                 for pod in await self._list(rollout))
        return tuple(view for view in views if view is not None)

    async def evict(self, namespace: str, names: tuple[str, ...]) -> list[str]:
        """Evict the pods in order; returns those evicted (a pod already gone counts). A
        disruption budget's refusal (429) stops the batch: the rest wait for a later pass."""
        evicted: list[str] = []
        for name in names:
            try:
                await self._client.evict(namespace, name)
            except NotFound:
                pass
            except ApiError as error:
                if error.status != TOO_MANY_REQUESTS:
                    raise
                logger.info("eviction of pod %s/%s refused for now: %s", namespace, name,
                            error.message)
                break
            logger.info("evicted pod %s/%s (restartAt)", namespace, name)
            evicted.append(name)
        return evicted

    async def relabel(self, rollout: Rollout, *, replica_set: str,
                      patch: Mapping[str, Any]) -> list[JsonObject]:
        """Merge ``patch`` into the metadata of each pod ``replica_set`` controls, where it
        changes something (only those keys: other labels and annotations are left alone, and
        no pod restarts). Returns the pods as patched."""
        patched: list[JsonObject] = []
        for pod in await self._list(rollout):
            changes = pod_changes(pod, patch)
            if owner_of(pod) != replica_set or not changes:
                continue
            name = str(pod["metadata"]["name"])
            try:
                patched.append(await self._client.patch(
                    POD, rollout.namespace, name, {"metadata": changes}, patch_type="merge"))
            except NotFound:
                continue  # gone meanwhile: its replacement comes from the patched template
        return patched
