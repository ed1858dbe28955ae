"""What the canary steps ask for at a step: the weight, the canary's size, the replica counts.

``replica_targets`` applies the replica math (``replicas.py``) to a Rollout's revisions at one
step; ``at_desired_counts`` says whether the cluster has reached those counts, which is what
lets a ``setWeight`` or ``setCanaryScale`` step complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.replicas import (
    RoutedScale,
    RSCounts,
    basic_canary_counts,
    dynamic_abort_weight,
    traffic_routed_counts,
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


def canary_scale_at(steps: tuple[Step, ...], index: int) -> SetCanaryScaleStep | None:
    """Argo's ``UseSetCanaryScale``: the last setCanaryScale at or before ``index``, unless it
    (or none) says matchTrafficWeight."""
    if index >= len(steps):
        return None
    for step in reversed(steps[: index + 1]):
        if isinstance(step, SetCanaryScaleStep):
            return None if step.match_traffic_weight else step
    return None


@dataclass(frozen=True, slots=True)
class Targets:
    canary_replicas: int
    stable_replicas: int
    weight: int  # the canary weight the current step asks for


def _counts(rs: ReplicaSetView | None) -> RSCounts | None:
    return None if rs is None else RSCounts(rs.name, rs.spec_replicas, rs.available)


def canary_replicas_or_weight(
    rollout: Rollout, revisions: Revisions, *, index: int, aborted: bool
) -> tuple[int | None, int]:
    """Argo's ``GetCanaryReplicasOrWeight``: an explicit canary size, or the canary weight.

    Fully promoted (or past the last step, as ``promote --full`` leaves it) the weight is 100.
    ``setCanaryScale`` counts only with a router, and on an abort only when
    ``abortScaleDownDelaySeconds: 0`` asks to leave the canary up. On an abort the weight is 0,
    or under ``dynamicStableScale`` steps back down as the stable regains its pods.
    """
    canary = rollout.canary
    if revisions.fully_promoted or index >= len(canary.steps):
        return None, MAX_WEIGHT
    scale = canary_scale_at(canary.steps, index) if canary.traffic_routed and (
        not aborted or canary.keeps_canary_on_abort) else None
    if scale is not None and scale.replicas is not None:
        return scale.replicas, 0
    if scale is not None and scale.weight is not None:
        return None, scale.weight
    if not aborted:
        return None, weight_at(canary.steps, index)
    new_rs, stable_rs = _counts(revisions.new_rs), _counts(revisions.stable_rs)
    if canary.dynamic_stable_scale and new_rs is not None and stable_rs is not None:
        step_weights = tuple(s.weight for s in canary.steps if isinstance(s, SetWeightStep))
        return None, dynamic_abort_weight(
            replicas=rollout.replicas, step_weights=step_weights, new=new_rs, stable=stable_rs,
            explicit_abort_delay=canary.abort_delay_explicit
            and canary.abort_scale_down_delay_seconds > 0)
    return None, 0


def replica_targets(
    rollout: Rollout, revisions: Revisions, *, index: int, aborted: bool,
    current_weight: int | None = None,
) -> Targets:
    """The replica counts for step ``index`` (or for rolling back, when ``aborted``);
    ``current_weight`` is the canary weight the router routes now (None: no router)."""
    canary = rollout.canary
    replicas = rollout.replicas
    canary_replicas, weight = canary_replicas_or_weight(rollout, revisions, index=index,
                                                        aborted=aborted)
    if canary.traffic_routed:
        canary_count, stable_count = traffic_routed_counts(RoutedScale(
            replicas=replicas, weight=weight, canary_replicas=canary_replicas,
            min_pods=canary.min_pods_per_replica_set,
            dynamic_stable_scale=canary.dynamic_stable_scale,
            current_weights=None if current_weight is None
            else (current_weight, MAX_WEIGHT - current_weight),
            aborted=aborted))
        return Targets(canary_count, stable_count, weight)
    new_rs = _counts(revisions.new_rs)
    if new_rs is None and revisions.fully_promoted:
        # a first (or only) revision is created at the size the fences allow at once
        new_rs = RSCounts("", 0, 0)
    canary_count, stable_count = basic_canary_counts(
        replicas=replicas, weight=weight, max_surge=canary.max_surge,
        max_unavailable=canary.max_unavailable, new_rs=new_rs,
        stable_rs=_counts(revisions.stable_rs),
        older=tuple(c for rs in revisions.older if (c := _counts(rs))),
    )
    return Targets(canary_count, stable_count, weight)


def at_desired_counts(rollout: Rollout, revisions: Revisions, *, targets: Targets) -> bool:
    """Argo's AtDesiredReplicaCountsForCanary, judged against what the cluster reports: the
    canary has exactly its pods, all available; the stable exactly its pods created (not
    waited for under dynamicStableScale); without a traffic router, no older revision serves."""
    new_rs, stable_rs = revisions.new_rs, revisions.stable_rs
    # As Argo: a step never completes before the new ReplicaSet exists, even at 0 replicas.
    canary_ok = new_rs is not None and (
        new_rs.spec_replicas == targets.canary_replicas == new_rs.available)
    stable_ok = stable_rs is None or (
        rollout.canary.traffic_routed and rollout.canary.dynamic_stable_scale) or (
        stable_rs.spec_replicas == targets.stable_replicas == stable_rs.replicas)
    older_ok = rollout.canary.traffic_routed or sum(rs.available for rs in revisions.older) == 0
    return canary_ok and stable_ok and older_ok
