"""Finishing a canary plan: full promotion, and the status every plan ends with.

``promote_when_done`` makes the current revision stable once every step is done and its
ReplicaSet serves at full scale. ``finish_status`` fills in what Argo's status carries besides
the steps: replica totals, the Progressing / Available / Paused / Healthy / Completed
conditions, the phase and its message. ``plan_invalid_spec`` is the whole plan for a Rollout
that cannot be acted on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from shiftd.decide.rollout.actions import Action, EventSpec, PatchRolloutStatus, Plan
from shiftd.decide.rollout.decision import Decision, Draft, copy_json
from shiftd.decide.rollout.progress import TIMED_OUT_REASON, progressing, timed_out_message
from shiftd.decide.rollout.replicas import resolve_fenceposts
from shiftd.decide.rollout.status import (
    AVAILABLE,
    COMPLETED,
    HEALTHY,
    INVALID_SPEC,
    PAUSED,
    PROGRESSING,
    ROLLOUT_ABORTED_REASON,
    calculate_phase,
    format_time,
    merge_patch_diff,
    remove_condition,
    selector_string,
    set_condition,
)
from shiftd.decide.rollout.steps import abort_detail

Conditions = list[dict[str, Any]]


def promote_when_done(draft: Draft, decision: Decision) -> Decision:
    """Past the last step with the new ReplicaSet fully available: it becomes stable."""
    rollout, status = draft.rollout, draft.status
    new_rs = decision.revisions.new_rs
    if (decision.fully_promoted or decision.aborted
            or decision.index < len(rollout.canary.steps) or new_rs is None
            or new_rs.spec_replicas != rollout.replicas or new_rs.available < rollout.replicas
            or (rollout.paused and not status.get("promoteFull"))):
        return decision
    pod_hash = decision.revisions.pod_hash
    status["stableRS"] = pod_hash
    status["promoteFull"] = False
    status.pop("pauseConditions", None)
    status["controllerPause"] = False
    draft.event("RolloutCompleted",
                f"Promoted: revision {decision.revisions.revision} ({pod_hash}) is now stable")
    return replace(decision, revisions=decision.revisions.promoted(draft.observed.replica_sets))


def finish_status(draft: Draft, decision: Decision) -> None:
    """Replica totals, conditions and phase, as Argo's status carries them."""
    rollout, status = draft.rollout, draft.status
    _record_totals(draft, decision)
    now = draft.now_text
    conditions = remove_condition(list(status.get("conditions") or []), INVALID_SPEC)
    paused = rollout.paused or bool(status.get("pauseConditions"))
    conditions = _progressing(draft, decision, conditions=conditions, paused=paused)
    _, unavailable = resolve_fenceposts(max_surge=rollout.canary.max_surge,
                                        max_unavailable=rollout.canary.max_unavailable,
                                        replicas=rollout.replicas)
    has_minimum = status["availableReplicas"] >= rollout.replicas - unavailable
    conditions = set_condition(
        conditions, type_=AVAILABLE, status=has_minimum, reason="AvailableReason",
        message="Rollout has minimum availability" if has_minimum
        else "Rollout does not have minimum availability", now=now)
    conditions = set_condition(
        conditions, type_=PAUSED, status=paused,
        reason="RolloutPaused" if paused else "RolloutResumed",
        message="Rollout is paused" if paused else "Rollout is resumed", now=now)
    status["conditions"] = conditions
    _record_phase(draft, decision, conditions=conditions)


def _record_totals(draft: Draft, decision: Decision) -> None:
    rollout, status = draft.rollout, draft.status
    replica_sets = draft.observed.replica_sets
    new_rs = decision.revisions.new_rs
    status["observedGeneration"] = str(rollout.generation)
    status["replicas"] = sum(rs.replicas for rs in replica_sets)
    status["HPAReplicas"] = status["replicas"]
    status["updatedReplicas"] = new_rs.replicas if new_rs is not None else 0
    status["readyReplicas"] = sum(rs.ready for rs in replica_sets)
    status["availableReplicas"] = sum(rs.available for rs in replica_sets)
    status["selector"] = selector_string(rollout.selector)
    if not rollout.canary.steps:
        status.pop("currentStepIndex", None)
    if not status.get("canary"):
        status["canary"] = {}


def _progressing(
    draft: Draft, decision: Decision, *, conditions: Conditions, paused: bool
) -> Conditions:
    status, now = draft.status, draft.now_text
    new_rs = decision.revisions.new_rs
    rs_name = (new_rs.name if new_rs is not None
               else f"{draft.rollout.name}-{status['currentPodHash']}")
    if decision.aborted:
        detail = abort_detail(status)
        return set_condition(
            conditions, type_=PROGRESSING, status=False, reason=ROLLOUT_ABORTED_REASON,
            message=f"Rollout aborted update to revision {decision.revisions.revision}"
            + (f": {detail}" if detail else ""), now=now)
    if paused:
        return set_condition(conditions, type_=PROGRESSING, status="Unknown",
                             reason="RolloutPaused", message="Rollout is paused", now=now)
    if decision.fully_promoted:
        return set_condition(
            conditions, type_=PROGRESSING, status=True, reason="NewReplicaSetAvailable",
            message=f'RolloutCompleted: ReplicaSet "{rs_name}" has successfully progressed.',
            now=now)
    conditions = progressing(draft, decision, conditions=conditions, rs_name=rs_name)
    if draft.rollout.progress_deadline_abort and any(
            c.get("type") == PROGRESSING and c.get("reason") == TIMED_OUT_REASON
            for c in conditions):
        return _abort_on_deadline(draft, decision, conditions=conditions, rs_name=rs_name)
    return conditions


def _abort_on_deadline(draft: Draft, decision: Decision, *, conditions: Conditions,
                       rs_name: str) -> Conditions:
    """``progressDeadlineAbort``: the timed-out update is aborted (the next pass rolls back)."""
    status = draft.status
    status["abort"] = True
    status["abortedAt"] = draft.now_text
    draft.again = True
    message = (f"Rollout aborted update to revision {decision.revisions.revision}: "
               f"{timed_out_message(rs_name)}")
    draft.event(ROLLOUT_ABORTED_REASON, message, warning=True)
    return set_condition(conditions, type_=PROGRESSING, status=False,
                         reason=ROLLOUT_ABORTED_REASON, message=message, now=draft.now_text)


def _record_phase(draft: Draft, decision: Decision, *, conditions: Conditions) -> None:
    status, now = draft.status, draft.now_text
    phase, message = calculate_phase(draft.rollout, status)
    healthy = phase == "Healthy"
    conditions = set_condition(
        conditions, type_=HEALTHY, status=healthy, reason="RolloutHealthy",
        message="Rollout is healthy" if healthy else "Rollout is not healthy", now=now)
    completed = healthy and decision.fully_promoted
    conditions = set_condition(
        conditions, type_=COMPLETED, status=completed, reason="RolloutCompleted",
        message=(f"Rollout completed update to revision {decision.revisions.revision} "
                 f"({status['currentPodHash']}): Rollout is Completed") if completed
        else "Rollout not completed", now=now)
    status["conditions"] = conditions
    status["phase"] = phase
    if message:
        status["message"] = message
    else:
        status.pop("message", None)


def plan_invalid_spec(rollout_obj: dict[str, Any], message: str, *, now: datetime) -> Plan:
    """InvalidSpec condition and phase Degraded; nothing else is touched."""
    old = rollout_obj.get("status") or {}
    status = copy_json(old)
    status["conditions"] = set_condition(
        list(status.get("conditions") or []), type_=INVALID_SPEC, status=True,
        reason=INVALID_SPEC, message=message, now=format_time(now),
    )
    status["phase"] = "Degraded"
    status["message"] = f"{INVALID_SPEC}: {message}"
    generation = (rollout_obj.get("metadata") or {}).get("generation")
    if generation is not None:
        status["observedGeneration"] = str(generation)
    patch = merge_patch_diff(old, status)
    actions: tuple[Action, ...] = ()
    events: tuple[EventSpec, ...] = ()
    if patch:
        version = (rollout_obj.get("metadata") or {}).get("resourceVersion")
        actions = (PatchRolloutStatus(patch=patch, resource_version=version),)
        was_invalid = any(c.get("type") == INVALID_SPEC and c.get("message") == message
                          for c in old.get("conditions") or [])
        if not was_invalid:
            events = (EventSpec(INVALID_SPEC, message, "Warning"),)
    return Plan(actions=actions, events=events, requeue_at=None, status=status, again=False)
