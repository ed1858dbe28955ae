"""Read-only views of the cluster state one reconcile of a Rollout looks at.

The runtime builds these from its caches; the planner takes them as plain values, so every
decision can be tested from a table without a cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shiftd.decide.analysis.runs import AnalysisRunView
from shiftd.decide.traffic import TrafficObservation
from shiftd.model.argo.rollout import (
    EPHEMERAL_METADATA_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    SCALE_DOWN_DEADLINE_ANNOTATION,
    PodMetadata,
)


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class ReplicaSetView:
    name: str
    pod_hash: str  # the rollouts-pod-template-hash label; "" when missing
    revision: int
    spec_replicas: int
    replicas: int  # pods that exist (status.replicas)
    ready: int
    available: int
    template: dict[str, Any] = field(compare=False)
    owned: bool = True  # controlled by this Rollout (an orphan may be adopted)
    owner_references: tuple[dict[str, Any], ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def scale_down_deadline(self) -> datetime | None:
        text = self.annotations.get(SCALE_DOWN_DEADLINE_ANNOTATION)
        return parse_time(text) if text else None

    @property
    def injected_metadata(self) -> PodMetadata | None:
        """Argo's ``ParseExistingPodMetadata``: the canary/stable metadata shiftd injected into
        this ReplicaSet's template (an unreadable record counts as none, as in Argo)."""
        text = self.annotations.get(EPHEMERAL_METADATA_ANNOTATION)
        try:
            raw = orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(raw, dict):
            return None
        return PodMetadata(labels=_strings(raw.get("labels")),
                           annotations=_strings(raw.get("annotations")))

    @property
    def own_template(self) -> dict[str, Any]:
        """The pod template less the injected metadata: what a Rollout's template is compared
        with (and what ``undo`` copies back)."""
        injected = self.injected_metadata
        if injected is None:
            return self.template
        result = copy.deepcopy(self.template)
        metadata = result.get("metadata") or {}
        for key in ("labels", "annotations"):
            values = metadata.get(key)
            if isinstance(values, dict):
                for name in getattr(injected, key):
                    values.pop(name, None)
        return result

    @classmethod
    def from_object(cls, obj: dict[str, Any], *, rollout_uid: str) -> ReplicaSetView:
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        references = tuple(metadata.get("ownerReferences") or ())
        owned = any(ref.get("uid") == rollout_uid and ref.get("controller") for ref in references)
        annotations = metadata.get("annotations") or {}
        try:
            revision = int(annotations.get(REVISION_ANNOTATION, "0"))
        except ValueError:
            revision = 0
        spec_replicas = spec.get("replicas")
        return cls(
            name=metadata["name"],
            pod_hash=(metadata.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL, ""),
            revision=revision,
            spec_replicas=1 if spec_replicas is None else int(spec_replicas),
            replicas=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            template=spec.get("template") or {},
            owned=owned,
            owner_references=references,
            annotations=annotations,
        )


@dataclass(frozen=True, slots=True)
class PodView:
    """What a ``restartAt`` restart needs to know of one pod."""

    name: str
    owner: str  # the ReplicaSet controlling it ("" if none)
    created: datetime
    available: bool  # Ready for at least minReadySeconds (Kubernetes' IsPodAvailable)
    deleting: bool  # has a deletionTimestamp

    @classmethod
    def from_object(cls, obj: dict[str, Any], *, min_ready_seconds: int,
                    now: datetime) -> PodView | None:
        """None for a pod without a readable creationTimestamp."""
        metadata = obj.get("metadata") or {}
        created = parse_time(str(metadata.get("creationTimestamp", "")))
        if created is None:
            return None
        owner = next((ref.get("name", "") for ref in metadata.get("ownerReferences") or ()
                      if ref.get("controller") and ref.get("kind") == "ReplicaSet"), "")
        ready = next((c for c in (obj.get("status") or {}).get("conditions") or ()
                      if c.get("type") == "Ready"), None)
        since = parse_time(str((ready or {}).get("lastTransitionTime", "")))
        available = bool(ready and ready.get("status") == "True") and (
            min_ready_seconds == 0 or (since is not None
                                       and since.timestamp() + min_ready_seconds
                                       <= now.timestamp()))
        return cls(name=metadata.get("name", ""), owner=owner, created=created,
                   available=available, deleting=bool(metadata.get("deletionTimestamp")))


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str
    selector: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> ServiceView:
        metadata = obj.get("metadata") or {}
        return cls(
            name=metadata["name"],
            selector=(obj.get("spec") or {}).get("selector") or {},
            annotations=metadata.get("annotations") or {},
        )


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """The Deployment a Rollout's ``workloadRef`` names, as far as scaling it down goes."""

    name: str
    spec_replicas: int
    resource_version: str | None = None

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> WorkloadView:
        metadata = obj.get("metadata") or {}
        replicas = (obj.get("spec") or {}).get("replicas")
        version = metadata.get("resourceVersion")
        return cls(name=str(metadata.get("name", "")),
                   spec_replicas=1 if replicas is None else int(replicas),
                   resource_version=str(version) if version else None)


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything one reconcile of one Rollout sees besides the Rollout itself."""

    replica_sets: tuple[ReplicaSetView, ...]
    services: Mapping[str, ServiceView | None]  # by name; None: not found
    traffic: TrafficObservation | None  # None: basic canary, no traffic router
    # The Rollout's AnalysisRuns, and the run specs its analysis blocks resolve to ("background",
    # "step-<index>"), built by the runtime from the templates in its caches.
    analysis_runs: tuple[AnalysisRunView, ...] = ()
    analysis_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The Rollout's pods, for a restartAt restart; None: the runtime does not list pods.
    pods: tuple[PodView, ...] | None = None
    # The Deployment spec.workloadRef names; None without one (or when it is not found).
    workload: WorkloadView | None = None
