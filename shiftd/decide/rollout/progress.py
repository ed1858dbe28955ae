"""The progress deadline: an update that makes no progress for ``progressDeadlineSeconds`` is
Degraded with reason ``ProgressDeadlineExceeded``, and with ``progressDeadlineAbort`` aborted,
as Argo Rollouts reports it (``RolloutProgressing`` / ``RolloutTimedOut`` in its conditions).

Progress is measured against the status the pass started from; the clock is the Progressing
condition's ``lastUpdateTime``, refreshed on every progress. Waiting on a pause, an analysis or
an older ReplicaSet's scale-down delay does not count against the deadline.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.rollout.status import (
    PAUSED,
    PROGRESSING,
    ROLLOUT_ABORTED_REASON,
    set_condition,
)
from shiftd.model.argo.rollout import (
    SCALE_DOWN_DEADLINE_ANNOTATION,
    AnalysisStep,
    PauseStep,
    Rollout,
)

TIMED_OUT_REASON = "ProgressDeadlineExceeded"
UPDATED_REASON = "ReplicaSetUpdated"

Conditions = list[dict[str, Any]]


def timed_out_message(rs_name: str) -> str:
    return f'ReplicaSet "{rs_name}" has timed out progressing.'


def made_progress(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Argo's ``RolloutProgressing`` for a canary: pods updated, old pods gone, pods ready or
    available, a new stable, another step or other steps since ``old``."""
    def count(status: dict[str, Any], key: str) -> int:
        return int(status.get(key) or 0)

    step_moved = (old.get("currentStepIndex") is not None
                  and new.get("currentStepIndex") is not None
                  and old.get("currentStepIndex") != new.get("currentStepIndex"))
    return (count(new, "updatedReplicas") != count(old, "updatedReplicas")
            or count(new, "replicas") - count(new, "updatedReplicas")
            < count(old, "replicas") - count(old, "updatedReplicas")
            or count(new, "readyReplicas") > count(old, "readyReplicas")
            or count(new, "availableReplicas") > count(old, "availableReplicas")
            or new.get("stableRS") != old.get("stableRS")
            or step_moved
            or new.get("currentStepHash") != old.get("currentStepHash"))


def deadline_of(rollout: Rollout, conditions: Conditions) -> datetime | None:
    """When the Progressing condition times out; None when it cannot (none, aborted, paused)."""
    condition = next((c for c in conditions if c.get("type") == PROGRESSING), None)
    if condition is None or condition.get("reason") in (ROLLOUT_ABORTED_REASON, "RolloutPaused"):
        return None
    since = parse_time(str(condition.get("lastUpdateTime", "")))
    if since is None:
        return None
    return since + timedelta(seconds=rollout.progress_deadline_seconds)


def timed_out(rollout: Rollout, conditions: Conditions, *, now: datetime) -> bool:
    """Argo's ``RolloutTimedOut``: strictly past the deadline, or already reported so."""
    condition = next((c for c in conditions if c.get("type") == PROGRESSING), None)
    if condition is not None and condition.get("reason") == TIMED_OUT_REASON:
        return True
    deadline = deadline_of(rollout, conditions)
    return deadline is not None and deadline < now


def exempt(draft: Draft, decision: Decision, *, conditions: Conditions) -> bool:
    """Argo's ``isIndefiniteStep`` or ``isWaitingForReplicaSetScaleDown``: nothing to blame."""
    steps = draft.rollout.canary.steps
    if decision.index < len(steps) and isinstance(steps[decision.index],
                                                  PauseStep | AnalysisStep):
        return True
    if any(c.get("type") == PAUSED and c.get("status") == "True" for c in conditions):
        return True
    return any(SCALE_DOWN_DEADLINE_ANNOTATION in rs.annotations
               for rs in decision.revisions.older)


def progressing(draft: Draft, decision: Decision, *, conditions: Conditions,
                rs_name: str) -> Conditions:
    """The Progressing condition of an update under way (not paused, aborted nor promoted):
    refreshed on progress, ProgressDeadlineExceeded once the deadline passed without any (and
    so it stays until progress is made)."""
    now = draft.now_text
    current = next((c for c in conditions if c.get("type") == PROGRESSING), None)
    message = f'ReplicaSet "{rs_name}" is progressing.'
    waiting = exempt(draft, decision, conditions=conditions)
    if current is None or made_progress(draft.rollout.status, draft.status):
        transition = now
        if current is not None and current.get("status") == "True":
            transition = current.get("lastTransitionTime", now)
        refreshed = {"type": PROGRESSING, "status": "True", "reason": UPDATED_REASON,
                     "message": message, "lastTransitionTime": transition,
                     "lastUpdateTime": now}
        conditions = ([refreshed if c is current else c for c in conditions]
                      if current is not None else [*conditions, refreshed])
    elif current.get("reason") == TIMED_OUT_REASON:
        return conditions
    elif not waiting and timed_out(draft.rollout, conditions, now=draft.now):
        return set_condition(conditions, type_=PROGRESSING, status=False,
                             reason=TIMED_OUT_REASON, message=timed_out_message(rs_name),
                             now=now)
    else:
        conditions = set_condition(conditions, type_=PROGRESSING, status=True,
                                   reason=UPDATED_REASON, message=message, now=now)
    deadline = deadline_of(draft.rollout, conditions)
    if not waiting and deadline is not None:
        draft.wake_at(deadline + timedelta(seconds=1))  # "timed out" is strictly after it
    return conditions
