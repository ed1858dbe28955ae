"""The writes a reconcile asks for, as immutable values.

``plan_rollout`` returns these in the order they must be applied; the runtime hands each to
the task that owns that kind of write. Every action is idempotent: applying it to an object
already in the desired state changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shiftd.decide.traffic import ManagedRoute


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A Kubernetes Event to record on the Rollout once the plan's writes succeeded."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass(frozen=True, slots=True)
class CreateReplicaSet:
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True, slots=True)
class PatchReplicaSet:
    """A JSON merge patch on a ReplicaSet (scale, annotations, adoption, template metadata).

    ``pod_metadata``, when set, is a merge patch for the ``metadata`` of every pod the
    ReplicaSet owns, applied with the ReplicaSet's own patch (canary/stable metadata switched
    in place, without restarting pods)."""

    name: str
    patch: dict[str, Any]
    pod_metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeleteReplicaSet:
    name: str


@dataclass(frozen=True, slots=True)
class PatchService:
    """A JSON merge patch on a Service: only the selector key and annotation shiftd owns."""

    name: str
    patch: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScaleDeployment:
    """Set ``spec.replicas`` of the Deployment a ``workloadRef`` names (its ``scaleDown``),
    guarded by the resourceVersion it was planned from."""

    name: str
    replicas: int
    resource_version: str | None


@dataclass(frozen=True, slots=True)
class AnnotateRollout:
    """A JSON merge patch on the Rollout's own annotations (None removes one): Argo's
    ``rollout.argoproj.io/workload-generation``. Not guarded by a resourceVersion (it follows
    the status patch, which changes it); setting one annotation is idempotent."""

    annotations: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class SetTraffic:
    """Route ``canary_weight`` to the canary and the rest to the stable, in every route; with
    ``trafficRouting.managedRoutes``, the managed routes become exactly ``managed_routes``
    (in that order, above the user's routes; none: every managed route removed)."""

    canary_weight: int
    canary_hash: str
    stable_hash: str
    managed_routes: tuple[ManagedRoute, ...] = ()

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight


@dataclass(frozen=True, slots=True)
class PatchRolloutStatus:
    """A JSON merge patch on ``/status``, guarded by the resourceVersion it was planned from."""

    patch: dict[str, Any]
    resource_version: str | None


@dataclass(frozen=True, slots=True)
class CreateAnalysisRun:
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True, slots=True)
class PatchAnalysisRun:
    """A JSON merge patch on an AnalysisRun (``spec.terminate``)."""

    name: str
    patch: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteAnalysisRun:
    name: str


@dataclass(frozen=True, slots=True)
class EvictPods:
    """Evict these pods (the Eviction API, so disruption budgets hold) for ``restartAt``; a
    pod already gone counts as evicted, one refused (429) is left for a later pass."""

    names: tuple[str, ...]


Action = (
    CreateReplicaSet | PatchReplicaSet | DeleteReplicaSet | PatchService | SetTraffic
    | PatchRolloutStatus | CreateAnalysisRun | PatchAnalysisRun | DeleteAnalysisRun | EvictPods
    | ScaleDeployment | AnnotateRollout
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one reconcile decided: writes in order, events, and when to look again."""

    actions: tuple[Action, ...]
    events: tuple[EventSpec, ...]
    requeue_at: datetime | None
    status: dict[str, Any] = field(compare=False)  # the status after the plan is applied
    # The planner stopped early on purpose (one weight move per reconcile): once these writes
    # are done, plan again at once. Otherwise a plan is a fixed point: planning again on the
    # state it writes finds nothing to do until something else changes.
    again: bool = False

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", ""))

    @property
    def canary_weight(self) -> int:
        weights = (self.status.get("canary") or {}).get("weights") or {}
        return int((weights.get("canary") or {}).get("weight", 0))
