"""The ReplicaSet writes of a canary plan: create, adopt, scale, and delete old history.

Scale-ups and scale-downs are returned apart, so the plan can scale up before traffic moves
and scale down after it. A scale-down that traffic may still reach waits for a deadline
(``scaleDownDelaySeconds``, ``abortScaleDownDelaySeconds``) recorded on the ReplicaSet itself,
so a restarted daemon keeps it. While a human paused the Rollout (or an inconclusive analysis
waits for one) nothing is scaled, as Argo halts progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shiftd.decide.rollout.actions import (
    Action,
    CreateReplicaSet,
    DeleteReplicaSet,
    PatchReplicaSet,
)
from shiftd.decide.rollout.analysis import INCONCLUSIVE_PAUSE_REASON
from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.metadata import for_new_replica_set, inject
from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.replicas import resolve_fenceposts
from shiftd.decide.rollout.revisions import Revisions, new_replica_set_body, owner_reference
from shiftd.decide.rollout.status import format_time
from shiftd.decide.rollout.targets import replica_targets
from shiftd.model.argo.rollout import REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION, Rollout


@dataclass
class ScaleWrites:
    """ReplicaSet writes, by when they may happen relative to moving traffic."""

    ups: list[Action] = field(default_factory=list)  # before traffic moves
    downs: list[Action] = field(default_factory=list)  # after traffic moved away


def scale_new_and_stable(draft: Draft, decision: Decision) -> ScaleWrites:
    """Create or scale the new ReplicaSet and scale the stable one to this step's counts."""
    writes = ScaleWrites()
    canary_count, stable_count = _desired_counts(draft, decision)
    _write_new(draft, decision, canary_count=canary_count, writes=writes)
    new_rs, stable_rs = decision.revisions.new_rs, decision.revisions.stable_rs
    if stable_rs is not None and stable_rs is not new_rs:
        stable_patch: dict[str, Any] = {}
        if SCALE_DOWN_DEADLINE_ANNOTATION in stable_rs.annotations:
            stable_patch["annotations"] = {SCALE_DOWN_DEADLINE_ANNOTATION: None}
        _scale(draft, stable_rs, target=stable_count, patch=stable_patch, role="stable",
               into=writes)
    return writes


def _desired_counts(draft: Draft, decision: Decision) -> tuple[int, int]:
    """(canary, stable) replicas; after the last step a routed canary gets full scale."""
    rollout = draft.rollout
    if decision.fully_promoted and rollout.canary.traffic_routed:
        return rollout.replicas, rollout.replicas
    routed_now = decision.current_weight if draft.observed.traffic is not None else None
    targets = replica_targets(rollout, decision.revisions, index=decision.index,
                              aborted=decision.aborted, current_weight=routed_now)
    if rollout.canary.dynamic_stable_scale and decision.weight_moved:
        # the stable follows the weight routed now: once this move is written, size again
        draft.again = True
    return targets.canary_replicas, targets.stable_replicas


def _write_new(
    draft: Draft, decision: Decision, *, canary_count: int, writes: ScaleWrites
) -> None:
    rollout, revisions = draft.rollout, decision.revisions
    new_rs, revision = revisions.new_rs, revisions.revision
    if new_rs is None:
        canary_count = 0 if halted(draft) else canary_count
        body = new_replica_set_body(rollout, pod_hash=revisions.pod_hash, revision=revision,
                                    replicas=canary_count)
        inject(body, for_new_replica_set(rollout, revisions))
        writes.ups.append(CreateReplicaSet(body=body))
        draft.event("ScalingReplicaSet",
                    f"Created ReplicaSet {body['metadata']['name']} (revision {revision}) "
                    f"with {canary_count} replicas")
        return
    patch: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    if not new_rs.owned:
        patch["ownerReferences"] = [*new_rs.owner_references, owner_reference(rollout)]
    if new_rs.revision != revision:
        annotations[REVISION_ANNOTATION] = str(revision)
    target = canary_count
    if _delays_abort_scale_down(draft, decision):
        target = _abort_scale_down(draft, decision, new_rs, annotations=annotations)
    elif SCALE_DOWN_DEADLINE_ANNOTATION in new_rs.annotations:
        annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = None
    if annotations:
        patch["annotations"] = annotations
    role = "stable" if decision.fully_promoted else "canary"
    _scale(draft, new_rs, target=target, patch=patch, role=role, into=writes)


def _delays_abort_scale_down(draft: Draft, decision: Decision) -> bool:
    """Argo's ``shouldDelayScaleDownOnAbort``: a routed canary being aborted keeps its pods for
    ``abortScaleDownDelaySeconds`` (0 written out: indefinitely, at its counted size); under
    ``dynamicStableScale`` only when that delay was written out."""
    canary = draft.rollout.canary
    if not decision.aborted or not canary.traffic_routed or decision.revisions.stable_rs is None:
        return False
    if canary.keeps_canary_on_abort:
        return False
    return not canary.dynamic_stable_scale or canary.abort_delay_explicit


def _abort_scale_down(
    draft: Draft, decision: Decision, new_rs: ReplicaSetView, *, annotations: dict[str, Any]
) -> int:
    """The aborted canary's size: kept until its deadline, which is only set once the stable
    can serve every request (the deadline scales the canary to zero whatever the traffic)."""
    stable_rs = decision.revisions.stable_rs
    assert stable_rs is not None
    if new_rs.scale_down_deadline is None:
        if new_rs.spec_replicas == 0:
            return 0  # already down: no delay to wait out
        if stable_rs.available < draft.rollout.replicas:
            return new_rs.spec_replicas  # left up until the deadline can be set
    return _delayed_scale_down(
        draft, new_rs, delay_seconds=draft.rollout.canary.abort_scale_down_delay_seconds,
        annotations=annotations)


def scale_down_older(draft: Draft, decision: Decision, *, selected: set[str]) -> list[Action]:
    """Scale down the ReplicaSets that are neither new nor stable.

    ``selected`` are the pod-template hashes the Services select once this plan's writes are
    done; with a router, a ReplicaSet still selected keeps its pods until it is switched away.
    """
    if draft.rollout.canary.traffic_routed:
        return _scale_down_older_routed(draft, decision, selected=selected)
    return _scale_down_older_basic(draft, decision.revisions)


def _scale_down_older_routed(
    draft: Draft, decision: Decision, *, selected: set[str]
) -> list[Action]:
    """Older revisions behind a router: a previous stable waits out ``scaleDownDelaySeconds``
    (at most ``scaleDownDelayRevisionLimit`` of them, newest first, as Argo); an intermediate
    revision that never got traffic goes at once."""
    canary = draft.rollout.canary
    limit = canary.scale_down_delay_revision_limit
    writes = ScaleWrites()
    delayed = 0
    for rs in sorted(decision.revisions.older, key=lambda item: item.revision, reverse=True):
        if rs.pod_hash in selected or rs.spec_replicas == 0:
            continue  # still selected by a Service: wait until it is switched away
        older_patch: dict[str, Any] = {}
        annotations: dict[str, Any] = {}
        if decision.fully_promoted and canary.dynamic_stable_scale:
            target = 0  # as Argo: under dynamicStableScale no delay, its traffic already left
        elif decision.fully_promoted or SCALE_DOWN_DEADLINE_ANNOTATION in rs.annotations:
            delayed += 1
            if limit is not None and delayed > limit:
                target = 0  # beyond scaleDownDelayRevisionLimit: no delay
                if SCALE_DOWN_DEADLINE_ANNOTATION in rs.annotations:
                    annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = None
            else:
                target = _delayed_scale_down(draft, rs,
                                             delay_seconds=canary.scale_down_delay_seconds,
                                             annotations=annotations)
        else:
            target = 0  # an intermediate revision that never got traffic
        if annotations:
            older_patch["annotations"] = annotations
        _scale(draft, rs, target=target, patch=older_patch, role="old", into=writes, down=True)
    return writes.downs


def _scale_down_older_basic(draft: Draft, revisions: Revisions) -> list[Action]:
    """Without a router, older pods go only as far as availability allows (maxUnavailable)."""
    rollout, canary = draft.rollout, draft.rollout.canary
    _, unavailable = resolve_fenceposts(max_surge=canary.max_surge,
                                        max_unavailable=canary.max_unavailable,
                                        replicas=rollout.replicas)
    unique = {rs.name: rs for rs in (revisions.new_rs, revisions.stable_rs, *revisions.older)
              if rs is not None}
    budget = sum(rs.available for rs in unique.values()) - (rollout.replicas - unavailable)
    writes = ScaleWrites()
    for rs in sorted(revisions.older, key=lambda item: item.revision):
        if rs.spec_replicas == 0 or budget <= 0:
            continue
        target = max(0, rs.spec_replicas - budget)
        budget -= rs.spec_replicas - target
        _scale(draft, rs, target=target, patch={}, role="old", into=writes, down=True)
    return writes.downs


def history_deletions(rollout: Rollout, revisions: Revisions) -> list[Action]:
    """Delete idle old ReplicaSets beyond ``revisionHistoryLimit``, oldest first."""
    idle = sorted((rs for rs in revisions.older
                   if rs.owned and rs.spec_replicas == 0 and rs.replicas == 0
                   and rs is not revisions.new_rs and rs is not revisions.stable_rs),
                  key=lambda rs: rs.revision)
    surplus = len(idle) - rollout.revision_history_limit
    return [DeleteReplicaSet(name=rs.name) for rs in idle[:max(0, surplus)]]


def halted(draft: Draft) -> bool:
    """Argo's ``haltProgress``: while a human paused the Rollout (``spec.paused``) or an
    inconclusive analysis waits for one, no ReplicaSet is scaled (a new one is created empty)."""
    return draft.rollout.paused or any(
        condition.get("reason") == INCONCLUSIVE_PAUSE_REASON
        for condition in draft.status.get("pauseConditions") or [])


def _delayed_scale_down(
    draft: Draft, rs: ReplicaSetView, *, delay_seconds: int, annotations: dict[str, Any]
) -> int:
    """Keep ``rs`` up until its scale-down deadline (recorded on it, so restarts keep it)."""
    deadline = rs.scale_down_deadline
    if deadline is None:
        if delay_seconds <= 0:
            return 0
        deadline = draft.now + timedelta(seconds=delay_seconds)
        annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = format_time(deadline)
    if draft.now >= deadline:
        annotations[SCALE_DOWN_DEADLINE_ANNOTATION] = None
        return 0
    draft.wake_at(deadline)
    return rs.spec_replicas


def _scale(
    draft: Draft, rs: ReplicaSetView, *, target: int, patch: dict[str, Any], role: str,
    into: ScaleWrites, down: bool = False,
) -> None:
    """Patch ``rs`` to ``target`` replicas (and ``patch``'s metadata), if anything changes;
    the write goes with the scale-downs when it shrinks ``rs`` (or ``down`` says so)."""
    if halted(draft):
        target = rs.spec_replicas
    body: dict[str, Any] = {}
    metadata = {key: value for key, value in patch.items()
                if key in ("annotations", "ownerReferences")}
    if metadata:
        body["metadata"] = metadata
    if target != rs.spec_replicas:
        body["spec"] = {"replicas": target}
        direction = "up" if target > rs.spec_replicas else "down"
        draft.event("ScalingReplicaSet",
                    f"Scaled {direction} {role} ReplicaSet {rs.name} (revision {rs.revision}) "
                    f"from {rs.spec_replicas} to {target}")
    if body:
        (into.downs if down or target < rs.spec_replicas else into.ups).append(
            PatchReplicaSet(name=rs.name, patch=body))
