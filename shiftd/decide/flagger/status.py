"""Canary status as Flagger writes it: phases, the Promoted condition, the fields each kind
of status write touches (Flagger's SyncStatus, SetStatusPhase, SetStatusWeight, ...).

Every write stamps ``lastTransitionTime`` (Flagger does, on each of these calls), which the
state machine also uses as the start of the current analysis interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shiftd.model.flagger.canary import Canary

JsonObject = dict[str, Any]

INITIALIZING = "Initializing"
INITIALIZED = "Initialized"
WAITING = "Waiting"
PROGRESSING = "Progressing"
WAITING_PROMOTION = "WaitingPromotion"
PROMOTING = "Promoting"
FINALISING = "Finalising"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINATING = "Terminating"
TERMINATED = "Terminated"

ACTIVE = (INITIALIZING, PROGRESSING, WAITING, PROMOTING, FINALISING, WAITING_PROMOTION)

# phase -> (condition status, message) of the Promoted condition (Flagger's MakeStatusConditions)
_PROMOTED = {
    INITIALIZING: ("Unknown", "New {kind} detected, starting initialization."),
    INITIALIZED: ("True", "{kind} initialization completed."),
    WAITING: ("Unknown", "Waiting for approval."),
    WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
    PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
    PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
    FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
    FAILED: ("False", "Canary analysis failed, {kind} scaled to zero."),
}
_DEFAULT = ("Unknown", "New {kind} detected, starting initialization.")


def timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _conditions(canary: Canary, phase: str, now: datetime) -> list[JsonObject] | None:
    """The Promoted condition for ``phase`` (None: unchanged, as Flagger leaves it when its
    status and reason are the same). A phase without its own message (Terminating) gets
    Flagger's default one."""
    kind = canary.spec.target_ref.kind
    status, message = _PROMOTED.get(phase, _DEFAULT)
    message = message.format(kind=kind)
    old = next((c for c in canary.status.get("conditions") or []
                if c.get("type") == "Promoted"), None)
    if old is not None and old.get("status") == status and old.get("reason") == phase:
        return None
    since = timestamp(now)
    if old is not None and old.get("status") == status:
        since = str(old.get("lastTransitionTime") or since)
    return [{"type": "Promoted", "status": status, "reason": phase, "message": message,
             "lastUpdateTime": timestamp(now), "lastTransitionTime": since}]


def with_phase(canary: Canary, phase: str, now: datetime) -> JsonObject:
    """SetStatusPhase: the phase and its condition; outside Progressing/Waiting the weight
    and iterations go back to 0 (WaitingPromotion: iterations one short of the analysis');
    Initialized and Succeeded record the promoted spec."""
    fields: JsonObject = {"phase": phase, "lastTransitionTime": timestamp(now)}
    conditions = _conditions(canary, phase, now)
    if conditions is not None:
        fields["conditions"] = conditions
    if phase not in (PROGRESSING, WAITING):
        fields.update(canaryWeight=0, iterations=0)
    if phase == WAITING_PROMOTION:
        fields["iterations"] = canary.spec.analysis.iterations - 1
    if phase in (INITIALIZED, SUCCEEDED):
        fields["lastPromotedSpec"] = canary.status.get("lastAppliedSpec", "")
    return fields


def synced(canary: Canary, *, phase: str, applied: str, now: datetime,
           canary_weight: int = 0) -> JsonObject:
    """SyncStatus: a phase with counters reset and the target's hash recorded."""
    fields = with_phase(canary, phase, now)
    fields.update(canaryWeight=canary_weight, failedChecks=0, iterations=0,
                  lastAppliedSpec=applied)
    if phase == INITIALIZED:
        fields["lastPromotedSpec"] = applied
    return fields


def counters(now: datetime, **values: int) -> JsonObject:
    """SetStatusWeight / SetStatusIterations / SetStatusFailedChecks."""
    return {**values, "lastTransitionTime": timestamp(now)}
