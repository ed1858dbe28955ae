"""What the canary steps ask for at a step: the weight, the canary's size, the replica counts.

``replica_targets`` applies the replica math (``replicas.py``) to a Rollout's revisions at one
step; ``at_desired_counts`` says whether the cluster has reached those counts, which is what
lets a ``setWeight`` or ``setCanaryScale`` step complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.replicas import (
    RSCounts,
    basic_canary_counts,
    traffic_routed_counts,
    traffic_weight_to_replicas,
)
from shiftd.decide.rollout.revisions import Revisions
from shiftd.model.argo.rollout import MAX_WEIGHT, Rollout, SetCanaryScaleStep, SetWeightStep, Step


def weight_at(steps: tuple[Step, ...], index: int) -> int:
    """Argo's GetCurrentSetWeight: the last setWeight at or before ``index``; 100 past the end."""
    if index >= len(steps):
        return MAX_WEIGHT
    for step in reversed(steps[: index + 1]):
        if isinstance(step, SetWeightStep):
            return step.weight
    return 0


def canary_scale_at(steps: tuple[Step, ...], index: int, *, replicas: int) -> int | None:
    """An explicit canary size from the last setCanaryScale at or before ``index``, if any."""
    if index >= len(steps):
        return None
    for step in reversed(steps[: index + 1]):
        if isinstance(step, SetCanaryScaleStep):
            if step.match_traffic_weight:
                return None
            if step.replicas is not None:
                return step.replicas
            if step.weight is not None:
                return traffic_weight_to_replicas(replicas, step.weight)
    return None


@dataclass(frozen=True, slots=True)
class Targets:
    canary_replicas: int
    stable_replicas: int
    weight: int  # the canary weight the current step asks for


def _counts(rs: ReplicaSetView | None) -> RSCounts | None:
    return None if rs is None else RSCounts(rs.name, rs.spec_replicas, rs.available)


def replica_targets(
    rollout: Rollout, revisions: Revisions, *, index: int, aborted: bool
) -> Targets:
    """The replica counts for step ``index`` (or for rolling back, when ``aborted``)."""
    canary = rollout.canary
    replicas = rollout.replicas
    weight = 0 if aborted else weight_at(canary.steps, index)
    new_rs = revisions.new_rs
    if canary.traffic_routed:
        scale = None if aborted else canary_scale_at(canary.steps, index, replicas=replicas)
        canary_count, stable_count = traffic_routed_counts(
            replicas=replicas, weight=weight, canary_scale_replicas=scale
        )
        if aborted and new_rs is not None:
            canary_count = new_rs.spec_replicas  # kept until the abort scale-down deadline
        return Targets(canary_count, stable_count, weight)
    canary_count, stable_count = basic_canary_counts(
        replicas=replicas, weight=weight, max_surge=canary.max_surge,
        max_unavailable=canary.max_unavailable, new_rs=_counts(new_rs),
        stable_rs=_counts(revisions.stable_rs),
        older=tuple(c for rs in revisions.older if (c := _counts(rs))),
    )
    return Targets(canary_count, stable_count, weight)


def at_desired_counts(rollout: Rollout, revisions: Revisions, *, targets: Targets) -> bool:
    """Argo's AtDesiredReplicaCountsForCanary, judged against what the cluster reports: the
    canary has exactly its pods available, the stable has its pods created and, without a
    traffic router, no older revision still serves."""
    new_rs, stable_rs = revisions.new_rs, revisions.stable_rs
    # As Argo: a step never completes before the new ReplicaSet exists, even at 0 replicas.
    canary_ok = (
        new_rs is not None and new_rs.spec_replicas == targets.canary_replicas
        and new_rs.available >= targets.canary_replicas
    )
    stable_ok = stable_rs is None or (stable_rs.spec_replicas == targets.stable_replicas
                                      and stable_rs.replicas >= targets.stable_replicas)
    older_ok = rollout.canary.traffic_routed or sum(rs.available for rs in revisions.older) == 0
    return canary_ok and stable_ok and older_ok
