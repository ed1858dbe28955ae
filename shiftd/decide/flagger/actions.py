"""The writes a Canary's step asks for, as values; the controller applies them in order.

``Put`` makes an owned object exactly so (created when missing, else replaced under the
observed resourceVersion); ``ScaleTarget`` sets the target Deployment's replicas; ``Step``
bundles a reconcile's writes with the status fields to merge into ``canaries/status``, the
Events (Flagger's messages, reason ``Synced``), when to look again, whether metric checks
must be measured first, and the Canary's finalizer to add or remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Put:
    kind: str  # Deployment, Service, VirtualService or DestinationRule
    body: JsonObject

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True, slots=True)
class ScaleTarget:
    replicas: int


@dataclass(frozen=True, slots=True)
class CanaryEvent:
    message: str
    warning: bool = False


Action = Put | ScaleTarget
CheckKind = Literal["pre-rollout", "analysis", "confirm-rollout", "confirm-traffic-increase",
                    "confirm-promotion", "rollback"]


@dataclass(frozen=True, slots=True)
class Step:
    actions: tuple[Action, ...] = ()
    status: JsonObject | None = None  # merged into status; None writes nothing
    events: tuple[CanaryEvent, ...] = ()
    requeue_at: datetime | None = None
    again: bool = False  # look again at once (a phase written that the same tick continues)
    # what to measure before deciding again with its verdict: the pre-rollout webhooks when
    # the analysis starts, the rollout webhooks and the metrics at every later interval, or
    # the webhooks of one gate (confirm-rollout, confirm-traffic-increase,
    # confirm-promotion, rollback)
    needs_checks: CheckKind | None = None
    finalizer: Literal["add", "remove"] | None = None
