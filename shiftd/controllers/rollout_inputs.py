"""What one Rollout reconcile reads: the objects it references, the AnalysisRun specs merged
from the cached templates, and the ``Observed`` value the planner decides from.

Everything here reads the caches only; nothing writes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Protocol

from shiftd.common.podtemplate import without_spec
from shiftd.decide.analysis.runs import AnalysisRunView, merge_run_spec
from shiftd.decide.rollout.analysis import background_key, step_key
from shiftd.decide.rollout.observed import Observed, ReplicaSetView, ServiceView, WorkloadView
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    REPLICA_SET,
    SERVICE,
    ResourceKind,
)
from shiftd.model.argo.rollout import AnalysisStep, Rollout
from shiftd.traffic.base import TrafficRouter

JsonObject = dict[str, Any]
Ref = tuple[ResourceKind, str, str]


class CacheReader(Protocol):
    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> JsonObject | None:
        ...

    def owned(self, kind: ResourceKind, *, namespace: str, uid: str) -> list[JsonObject]: ...

    def orphans(self, kind: ResourceKind, *, namespace: str) -> list[JsonObject]: ...


def service_as_read(obj: JsonObject) -> JsonObject:
    """What a Rollout reads of a Service (``ServiceView``: its metadata and selector): the
    cache keeps only that (the spec's ports, cluster IPs and policies, the status are
    dropped)."""
    spec = obj.get("spec")
    if isinstance(spec, dict):
        obj["spec"] = {"selector": spec["selector"]} if "selector" in spec else {}
    obj.pop("status", None)
    return obj


def replica_set_as_read(obj: JsonObject) -> JsonObject:
    """What a Rollout reads of a ReplicaSet (``ReplicaSetView``): everything but its pod
    template's spec, which the cache keeps as a digest of its semantic form (``templates_equal``
    compares it with the Rollout's template; the labels and annotations stay as they are).
    ``undo`` reads the template it restores from the API server, not from this cache."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("template"), dict):
        spec["template"] = without_spec(spec["template"])
    return obj


def _services(rollout: Rollout) -> list[str]:
    return [name for name in (rollout.canary.canary_service, rollout.canary.stable_service)
            if name]


def _analysis_blocks(rollout: Rollout) -> list[tuple[str, dict[str, Any], str]]:
    """(run key, analysis block, its field path) of the background and step analyses."""
    blocks: list[tuple[str, dict[str, Any], str]] = []
    if rollout.canary.background_analysis:
        blocks.append((background_key(), rollout.canary.background_analysis,
                       "spec.strategy.canary.analysis"))
    for index, step in enumerate(rollout.canary.steps):
        if isinstance(step, AnalysisStep):
            blocks.append((step_key(index), step.raw,
                           f"spec.strategy.canary.steps[{index}].analysis"))
    return blocks


def _template_ref(rollout: Rollout, ref: dict[str, Any]) -> Ref:
    name = str(ref.get("templateName", ""))
    if ref.get("clusterScope"):
        return CLUSTER_ANALYSIS_TEMPLATE, "", name
    return ANALYSIS_TEMPLATE, rollout.namespace, name


def references(rollout: Rollout, router: TrafficRouter) -> list[Ref]:
    """Every object a plan of this Rollout reads besides what it owns: its Services, its
    router's objects and the templates it names (found or not: creating a missing one must
    wake it)."""
    refs: list[Ref] = [(SERVICE, rollout.namespace, name) for name in _services(rollout)]
    refs.extend(router.references(rollout))
    for _, block, _ in _analysis_blocks(rollout):
        refs.extend(_template_ref(rollout, ref) for ref in block.get("templates") or [])
    return refs


def analysis_specs(rollout: Rollout, obj: JsonObject,
                   caches: CacheReader) -> dict[str, dict[str, Any]]:
    """The AnalysisRun spec of every analysis block, from the cached templates (raises
    ``InvalidSpecError`` naming the field when one is missing or does not merge)."""
    specs: dict[str, dict[str, Any]] = {}
    for key, block, path in _analysis_blocks(rollout):
        templates: dict[tuple[str, str], dict[str, Any]] = {}
        for ref in block.get("templates") or []:
            kind, namespace, name = _template_ref(rollout, ref)
            found = caches.get(kind, namespace or None, name)
            if found is not None:
                templates[(kind.kind, name)] = found
        specs[key] = merge_run_spec(block, templates=templates, rollout_obj=obj, path=path)
    return specs


# (rollout uid, its ReplicaSets) -> their views
ViewsOf = Callable[[str, list[JsonObject]], tuple[ReplicaSetView, ...]]


class ReplicaSetViews:
    """The ReplicaSet views each Rollout's last observation built, reused for the very same
    cached objects: the caches replace an object on every change and never change one in
    place, so the same object (for the same Rollout uid) means the same view. A due step's
    ReplicaSets are usually the ones its last reconcile saw. Held per Rollout: its
    ReplicaSets as last seen and their views, until it is observed again or forgotten."""

    def __init__(self) -> None:
        self._seen: dict[Hashable, tuple[str, tuple[JsonObject, ...],
                                         tuple[ReplicaSetView, ...]]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def views(self, rollout: Hashable, rollout_uid: str,
              objects: list[JsonObject]) -> tuple[ReplicaSetView, ...]:
        """The views of ``objects`` for the Rollout ``rollout`` (any hashable key) of uid
        ``rollout_uid``."""
        seen = self._seen.get(rollout)
        # ids of objects the entry keeps alive: no other live object can have one of them
        reusable = {} if seen is None or seen[0] != rollout_uid else {
            id(obj): view for obj, view in zip(seen[1], seen[2], strict=True)}
        views = tuple(reusable.get(id(obj)) or ReplicaSetView.from_object(
            obj, rollout_uid=rollout_uid) for obj in objects)
        self._seen[rollout] = (rollout_uid, tuple(objects), views)
        return views

    def forget(self, rollout: Hashable) -> None:
        self._seen.pop(rollout, None)


def observe(rollout: Rollout, caches: CacheReader, *, router: TrafficRouter,
            specs: dict[str, dict[str, Any]], replica_set_views: ViewsOf,
            workload: JsonObject | None = None) -> Observed:
    """What the planner looks at: the ReplicaSets it owns or may adopt, its Services, what
    its router routes now, its AnalysisRuns and their specs, and the Deployment its
    workloadRef names. ``replica_set_views``: builds (or reuses) the ReplicaSets' views."""
    namespace, uid = rollout.namespace, rollout.uid
    replica_sets = [*caches.owned(REPLICA_SET, namespace=namespace, uid=uid),
                    *caches.orphans(REPLICA_SET, namespace=namespace)]
    return Observed(
        replica_sets=replica_set_views(uid, replica_sets),
        services={
            name: (ServiceView.from_object(found) if found is not None else None)
            for name in _services(rollout)
            for found in [caches.get(SERVICE, namespace, name)]
        },
        traffic=router.observe(rollout) if rollout.canary.traffic_routed else None,
        analysis_runs=tuple(AnalysisRunView.from_object(run) for run in
                            caches.owned(ANALYSIS_RUN, namespace=namespace, uid=uid)),
        analysis_specs=specs,
        workload=(WorkloadView.from_object(workload)
                  if workload is not None and rollout.workload_ref is not None else None),
    )
