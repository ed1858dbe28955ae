"""The Rollout read models ``get rollout`` and ``list rollouts`` show, built by pure functions.

``rollout_tree`` turns a ``RolloutObjects`` (the Rollout and the ReplicaSets, pods and
AnalysisRuns it owns, as read) into a ``RolloutTree``: the summary (phase as Argo's client
computes it, step, set and actual weight, images with their stable/canary roles, replica
counts) and the revisions, newest first, each with its ReplicaSets (health, role, scale-down
deadline, pods) and AnalysisRuns (phase, measurement counts). Health and pod status follow
the Argo plugin's rules. Times stay timestamps: how to show an age is the renderer's choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.rollout.operator import (
    current_set_weight,
    owned_replica_sets,
    rollout_phase,
    step_progress,
)
from shiftd.model.argo.rollout import (
    DEFAULT_REPLICAS,
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    SCALE_DOWN_DEADLINE_ANNOTATION,
)

__all__ = [
    "AnalysisRunNode",
    "ImageRoles",
    "PodNode",
    "ReplicaSetNode",
    "Replicas",
    "RevisionNode",
    "RolloutObjects",
    "RolloutSummary",
    "RolloutTree",
    "owned_objects",
    "pod_state",
    "replica_set_health",
    "rollout_list",
    "rollout_summary",
    "rollout_tree",
]

Obj = Mapping[str, Any]

# The measurement counts an AnalysisRun's metric results carry, in the plugin's order.
_COUNTS = (("Successful", "successful"), ("Failed", "failed"),
           ("Inconclusive", "inconclusive"), ("Error", "error"))


@dataclass(frozen=True, slots=True)
class RolloutObjects:
    """What ``get rollout`` reads: the Rollout and its own objects, as the API returned them."""

    rollout: Obj
    replica_sets: Sequence[Obj] = ()  # those the Rollout controls
    pods: Sequence[Obj] = ()  # any pods; only those of the ReplicaSets above are shown
    analysis_runs: Sequence[Obj] = ()  # those the Rollout controls
    actual_weight: str = "-"  # what the VirtualService routes to the canary, or why unknown


@dataclass(frozen=True, slots=True)
class ImageRoles:
    image: str
    roles: tuple[str, ...]  # "canary" and/or "stable", sorted; () for neither


@dataclass(frozen=True, slots=True)
class Replicas:
    desired: int
    current: int
    updated: int
    ready: int
    available: int


@dataclass(frozen=True, slots=True)
class RolloutSummary:
    name: str
    namespace: str
    created: datetime | None
    phase: str  # as Argo's client computes it (GetRolloutPhase)
    message: str
    canary: bool  # the strategy is canary (the only one shiftd runs)
    step: str | None  # "<index>/<steps>"; None before the first status or without steps
    set_weight: int | None  # what the current step asks for; None unless canary
    actual_weight: str
    images: tuple[ImageRoles, ...]  # of the ReplicaSets that have pods, by image
    replicas: Replicas


@dataclass(frozen=True, slots=True)
class PodNode:
    name: str
    created: datetime | None
    status: str  # the plugin's: Running, Pending, CrashLoopBackOff, ExitCode:1, ...
    ready: str  # "<ready>/<containers>"
    restarts: int


@dataclass(frozen=True, slots=True)
class ReplicaSetNode:
    name: str
    created: datetime | None
    health: str  # Healthy, Progressing, ReplicaFailure, ScaledDown
    role: str | None  # "stable", "canary" or None
    scale_down_deadline: datetime | None
    pods: tuple[PodNode, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class AnalysisRunNode:
    name: str
    created: datetime | None
    phase: str
    counts: tuple[tuple[str, int], ...]  # (Successful|Failed|Inconclusive|Error, n), n > 0


@dataclass(frozen=True, slots=True)
class RevisionNode:
    revision: int
    replica_sets: tuple[ReplicaSetNode, ...]  # by name
    analysis_runs: tuple[AnalysisRunNode, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class RolloutTree:
    summary: RolloutSummary
    revisions: tuple[RevisionNode, ...]  # newest first


def _metadata(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _created(obj: Obj) -> datetime | None:
    return parse_time(str(_metadata(obj).get("creationTimestamp") or ""))


def _revision(obj: Obj) -> int:
    try:
        return int((_metadata(obj).get("annotations") or {}).get(REVISION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def _pod_hash(rs: Obj) -> str:
    return str((_metadata(rs).get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL, ""))


def _spec_replicas(rs: Obj) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _controlled_by(uids: set[str], obj: Obj, *, controller: bool) -> bool:
    return any((ref.get("controller") or not controller) and str(ref.get("uid")) in uids
               for ref in _metadata(obj).get("ownerReferences") or [])


def owned_objects(rollout: Obj, *, replica_sets: Sequence[Obj], pods: Sequence[Obj],
                  analysis_runs: Sequence[Obj], actual_weight: str) -> RolloutObjects:
    """The Rollout's own objects, picked out of everything read in its namespace."""
    owned = [dict(rs) for rs in owned_replica_sets(rollout, replica_sets)]
    rs_uids = {str(_metadata(rs).get("uid")) for rs in owned}
    rollout_uid = {str(_metadata(rollout).get("uid") or "")}
    return RolloutObjects(
        rollout=rollout, replica_sets=owned,
        pods=[pod for pod in pods if _controlled_by(rs_uids, pod, controller=False)],
        analysis_runs=[run for run in analysis_runs
                       if _controlled_by(rollout_uid, run, controller=True)],
        actual_weight=actual_weight)


def replica_set_health(rs: Obj) -> str:
    """The plugin's ``getReplicaSetHealth``."""
    status = rs.get("status") or {}
    generation = int(_metadata(rs).get("generation") or 0)
    if generation > int(status.get("observedGeneration") or 0):
        return "Progressing"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return "ReplicaFailure"
    if int(status.get("availableReplicas") or 0) < _spec_replicas(rs):
        return "Progressing"
    if _spec_replicas(rs) == 0:
        return "ScaledDown"
    return "Healthy"


def _container_reason(container: Obj) -> str | None:
    state = container.get("state") or {}
    waiting, terminated = state.get("waiting"), state.get("terminated")
    if waiting and waiting.get("reason"):
        return str(waiting["reason"])
    if terminated and terminated.get("reason"):
        return str(terminated["reason"])
    if terminated:
        signal = terminated.get("signal")
        return f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
    return None


def pod_state(pod: Obj) -> tuple[str, str, int]:
    """``(status, "ready/total", restarts)`` as the plugin's ``newPodInfo`` computes them (init
    containers aside). A pod whose kubelet reports no container statuses counts its Ready
    condition for every container."""
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    ready = restarts = 0
    statuses = status.get("containerStatuses")
    if statuses is None:
        pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
        ready = len(containers) if pod_ready else 0
    else:
        for container in reversed(statuses):
            restarts += int(container.get("restartCount") or 0)
            container_reason = _container_reason(container)
            if container_reason is not None:
                reason = container_reason
            elif container.get("ready") and (container.get("state") or {}).get("running") \
                    is not None:
                ready += 1
    if _metadata(pod).get("deletionTimestamp"):
        reason = "Terminating"
    return reason, f"{ready}/{len(containers)}", restarts


def _role(pod_hash: str, status: Obj) -> str | None:
    if pod_hash and pod_hash == status.get("stableRS"):
        return "stable"
    if pod_hash and pod_hash == status.get("currentPodHash"):
        return "canary"
    return None


def _images(status: Obj, replica_sets: Sequence[Obj]) -> tuple[ImageRoles, ...]:
    """Images of the ReplicaSets that have pods, tagged stable/canary, sorted by image."""
    roles: dict[str, set[str]] = {}
    for rs in replica_sets:
        if not (_spec_replicas(rs) or int((rs.get("status") or {}).get("replicas") or 0)):
            continue
        role = _role(_pod_hash(rs), status)
        pod_spec = (((rs.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for container in pod_spec.get("containers") or []:
            tags = roles.setdefault(str(container.get("image", "")), set())
            if role is not None:
                tags.add(role)
    return tuple(ImageRoles(image, tuple(sorted(tags))) for image, tags in sorted(roles.items()))


def rollout_summary(rollout: Obj, *, replica_sets: Sequence[Obj] = (),
                    actual_weight: str = "-") -> RolloutSummary:
    """The summary of one Rollout (``replica_sets`` give its images)."""
    metadata, spec = _metadata(rollout), rollout.get("spec") or {}
    status = rollout.get("status") or {}
    canary = (spec.get("strategy") or {}).get("canary") is not None
    phase, message = rollout_phase(rollout)
    return RolloutSummary(
        name=str(metadata.get("name", "")), namespace=str(metadata.get("namespace", "")),
        created=_created(rollout), phase=phase, message=message, canary=canary,
        step=step_progress(rollout) if canary else None,
        set_weight=current_set_weight(rollout) if canary else None,
        actual_weight=actual_weight, images=_images(status, replica_sets),
        replicas=Replicas(
            desired=_count(spec.get("replicas"), DEFAULT_REPLICAS),
            current=_count(status.get("replicas")),
            updated=_count(status.get("updatedReplicas")),
            ready=_count(status.get("readyReplicas")),
            available=_count(status.get("availableReplicas"))))


def _count(value: Any, default: int = 0) -> int:
    return default if value is None else int(value)


def rollout_list(rollouts: Sequence[Obj]) -> tuple[RolloutSummary, ...]:
    """``list rollouts``: one summary per Rollout, by namespace and name."""
    summaries = (rollout_summary(rollout) for rollout in rollouts)
    return tuple(sorted(summaries, key=lambda summary: (summary.namespace, summary.name)))


def _pod_node(pod: Obj) -> PodNode:
    status, ready, restarts = pod_state(pod)
    return PodNode(name=str(_metadata(pod).get("name", "")), created=_created(pod),
                   status=status, ready=ready, restarts=restarts)


def _replica_set_node(rs: Obj, *, status: Obj, pods: Sequence[Obj]) -> ReplicaSetNode:
    deadline = (_metadata(rs).get("annotations") or {}).get(SCALE_DOWN_DEADLINE_ANNOTATION)
    ordered = sorted(pods, key=lambda pod: (str(_metadata(pod).get("creationTimestamp") or ""),
                                            str(_metadata(pod).get("name"))))
    return ReplicaSetNode(
        name=str(_metadata(rs).get("name", "")), created=_created(rs),
        health=replica_set_health(rs), role=_role(_pod_hash(rs), status),
        scale_down_deadline=parse_time(str(deadline)) if deadline else None,
        pods=tuple(_pod_node(pod) for pod in ordered))


def _analysis_run_node(run: Obj) -> AnalysisRunNode:
    status = run.get("status") or {}
    counts = dict.fromkeys((key for key, _ in _COUNTS), 0)
    for result in status.get("metricResults") or []:
        for key, attribute in _COUNTS:
            counts[key] += int(result.get(attribute) or 0)
    return AnalysisRunNode(name=str(_metadata(run).get("name", "")), created=_created(run),
                           phase=str(status.get("phase") or "Pending"),
                           counts=tuple((key, n) for key, n in counts.items() if n))


def _pods_by_owner(objects: RolloutObjects) -> dict[str, list[Obj]]:
    """Each pod under the first of its owners that is one of the ReplicaSets."""
    uids = {str(_metadata(rs).get("uid")) for rs in objects.replica_sets}
    pods_of: dict[str, list[Obj]] = {}
    for pod in objects.pods:
        owner = next((str(ref.get("uid")) for ref in _metadata(pod).get("ownerReferences") or []
                      if str(ref.get("uid")) in uids), None)
        if owner is not None:
            pods_of.setdefault(owner, []).append(pod)
    return pods_of


def rollout_tree(objects: RolloutObjects) -> RolloutTree:
    """The whole ``get rollout`` model: the summary and the revisions, newest first."""
    status = objects.rollout.get("status") or {}
    by_revision: dict[int, tuple[list[Obj], list[Obj]]] = {}
    for rs in objects.replica_sets:
        by_revision.setdefault(_revision(rs), ([], []))[0].append(rs)
    for run in objects.analysis_runs:
        by_revision.setdefault(_revision(run), ([], []))[1].append(run)
    pods_of = _pods_by_owner(objects)
    revisions = []
    for revision in sorted(by_revision, reverse=True):
        replica_sets, runs = by_revision[revision]
        revisions.append(RevisionNode(
            revision=revision,
            replica_sets=tuple(
                _replica_set_node(rs, status=status,
                                  pods=pods_of.get(str(_metadata(rs).get("uid")), []))
                for rs in sorted(replica_sets, key=lambda rs: str(_metadata(rs)["name"]))),
            analysis_runs=tuple(_analysis_run_node(run) for run in sorted(
                runs, key=lambda run: (str(_metadata(run).get("creationTimestamp") or ""),
                                       str(_metadata(run)["name"]))))))
    summary = rollout_summary(objects.rollout, replica_sets=objects.replica_sets,
                              actual_weight=objects.actual_weight)
    return RolloutTree(summary=summary, revisions=tuple(revisions))
