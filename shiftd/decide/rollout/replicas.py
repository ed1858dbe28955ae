"""Replica counts for the canary and stable ReplicaSets.

Two regimes, as in Argo Rollouts (``utils/replicaset/canary.go``):

* traffic-routed canary: the mesh splits traffic, so the canary gets
  ``ceil(weight * replicas / 100)`` pods (or what ``setCanaryScale`` says, at least
  ``minPodsPerReplicaSet``) and the stable keeps ``spec.replicas``, or under
  ``dynamicStableScale`` the pods its traffic needs (and an abort steps back down through the
  setWeight steps as the stable regains them);
* basic canary (no traffic router): pod counts *are* the split, so the counts approximate the
  weight, moving within ``maxSurge`` / ``maxUnavailable`` of ``spec.replicas``.

All functions are pure; ReplicaSets are described by ``RSCounts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shiftd.model.argo.rollout import MAX_WEIGHT, resolve_int_or_percent


@dataclass(frozen=True, slots=True)
class RSCounts:
    """What the scaler needs to know of one ReplicaSet."""

    name: str
    spec_replicas: int
    available: int = 0


def traffic_weight_to_replicas(replicas: int, weight: int) -> int:
    """Argo's ``trafficWeightToReplicas``: rounds up, so any weight above 0 gets a pod."""
    return math.ceil(weight * replicas / MAX_WEIGHT)


def resolve_fenceposts(
    *, max_surge: int | str, max_unavailable: int | str, replicas: int
) -> tuple[int, int]:
    """Absolute (surge, unavailable); both zero after rounding becomes unavailable = 1."""
    surge = resolve_int_or_percent(max_surge, replicas, round_up=True)
    unavailable = resolve_int_or_percent(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _floor_ceiling_tied(weight: int, total: int) -> bool:
    fraction = math.modf(total * (weight / MAX_WEIGHT))[0]
    return fraction == 0.5


def _weight_delta(weight: int, canary: int, total: int) -> float:
    return abs(canary * MAX_WEIGHT / total - weight)


def approximate_weighted_counts(*, replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """The (canary, stable) counts closest to ``weight``, summing to replicas or replicas + 1.

    With a weight strictly between 0 and 100 and two or more pods, neither side gets zero.
    Ties between the floor and the ceiling go to the larger canary.
    """
    if replicas == 0:
        return 0, 0
    ceil_count = math.ceil(replicas * weight / MAX_WEIGHT)
    floor_count = math.floor(replicas * weight / MAX_WEIGHT)
    zero_allowed = weight in (0, MAX_WEIGHT) or (replicas == 1 and max_surge == 0)
    options: list[tuple[int, int]] = []
    if ceil_count < replicas or zero_allowed:
        options.append((ceil_count, replicas))
    if not _floor_ceiling_tied(weight, replicas) and (floor_count != 0 or zero_allowed):
        options.append((floor_count, replicas))
    if max_surge > 0:
        options.append((ceil_count, replicas + 1))
        if not _floor_ceiling_tied(weight, replicas + 1) and (floor_count != 0 or zero_allowed):
            options.append((floor_count, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    for option in options[1:]:
        if _weight_delta(weight, *option) < _weight_delta(weight, *best):
            best = option
    return best[0], best[1] - best[0]


def _replicas_for_scale_down(rs: RSCounts | None, *, ignore_availability: bool) -> int:
    if rs is None:
        return 0
    if rs.spec_replicas < rs.available or ignore_availability:
        return rs.spec_replicas
    return rs.available


def _adjust_within_limits(
    *,
    drain: RSCounts | None,
    adjust: RSCounts | None,
    drain_count: int,
    adjust_count: int,
    max_allowed: int,
    min_available: int,
) -> tuple[int, int]:
    """Keep the pair within maxSurge, then give back availability lost to maxUnavailable."""
    over_limit = max(0, adjust_count + drain_count - max_allowed)
    total_available = min(drain.available, drain_count) if drain is not None else 0
    if adjust is not None:
        adjust_count -= over_limit
        total_available += min(adjust.available, adjust_count)
        extra_available = max(0, adjust.available - adjust_count)
        still_needed = max(0, min_available - total_available)
        adjust_count += min(extra_available, still_needed)
        over_limit = max(0, adjust_count + drain_count - max_allowed)
        drain_count -= over_limit
    return drain_count, adjust_count


def basic_canary_counts(
    *,
    replicas: int,
    weight: int,
    max_surge: int | str,
    max_unavailable: int | str,
    new_rs: RSCounts | None,
    stable_rs: RSCounts | None,
    older: tuple[RSCounts, ...] = (),
) -> tuple[int, int]:
    """Argo's ``CalculateReplicaCountsForBasicCanary``: the (canary, stable) replicas to set now.

    Scale-ups come first (stable before canary) within ``replicas + maxSurge``; then, once no
    older ReplicaSet has pods, scale-downs within ``replicas - maxUnavailable`` available.
    """
    surge, unavailable = resolve_fenceposts(
        max_surge=max_surge, max_unavailable=max_unavailable, replicas=replicas
    )
    desired_new, desired_stable = approximate_weighted_counts(
        replicas=replicas, weight=weight, max_surge=surge
    )
    scale_stable = stable_rs is not None and (new_rs is None or new_rs.name != stable_rs.name)
    if not scale_stable:
        desired_new, desired_stable = replicas, 0
    new_count, stable_count = _scale_up(
        new_rs=new_rs, stable_rs=stable_rs if scale_stable else None, older=older,
        desired=(desired_new, desired_stable), max_allowed=replicas + surge,
    )
    if sum(rs.spec_replicas for rs in older) > 0:
        return new_count, stable_count
    return _scale_down(
        new_rs=new_rs, stable_rs=stable_rs, scale_stable=scale_stable,
        counts=(new_count, stable_count), desired=(desired_new, desired_stable),
        max_allowed=replicas + surge, min_available=replicas - unavailable,
    )


def _scale_up(
    *,
    new_rs: RSCounts | None,
    stable_rs: RSCounts | None,
    older: tuple[RSCounts, ...],
    desired: tuple[int, int],
    max_allowed: int,
) -> tuple[int, int]:
    """Grow the stable, then the canary, toward ``desired`` within ``max_allowed`` pods.

    ``stable_rs`` is None when the stable is not scaled separately (it is the new one)."""
    desired_new, desired_stable = desired
    new_count = new_rs.spec_replicas if new_rs is not None else 0
    stable_count = stable_rs.spec_replicas if stable_rs is not None else 0
    total = sum(rs.spec_replicas for rs in older) + new_count + stable_count
    scale_up = max_allowed - total
    if stable_rs is not None and stable_rs.spec_replicas < desired_stable and scale_up > 0:
        if stable_rs.spec_replicas + scale_up < desired_stable:
            stable_count = stable_rs.spec_replicas + scale_up
            scale_up = 0
        else:
            stable_count = desired_stable
            scale_up -= desired_stable - stable_rs.spec_replicas
    if new_rs is not None and new_rs.spec_replicas < desired_new and scale_up > 0:
        new_count = min(new_rs.spec_replicas + scale_up, desired_new)
    return new_count, stable_count


def _scale_down(
    *,
    new_rs: RSCounts | None,
    stable_rs: RSCounts | None,
    scale_stable: bool,
    counts: tuple[int, int],
    desired: tuple[int, int],
    max_allowed: int,
    min_available: int,
) -> tuple[int, int]:
    """Shrink the side moving away from its share, keeping ``min_available`` pods serving."""
    new_count, stable_count = counts
    desired_new, desired_stable = desired
    increasing = new_rs is None or desired_new >= new_rs.spec_replicas
    to_scale_down = _replicas_for_scale_down(new_rs, ignore_availability=not increasing) + \
        _replicas_for_scale_down(stable_rs, ignore_availability=increasing)
    if to_scale_down <= min_available:
        return new_count, stable_count
    scale_down = to_scale_down - min_available
    if not increasing:
        if new_rs is not None and new_rs.spec_replicas > desired_new:
            new_count = max(desired_new, new_rs.spec_replicas - scale_down)
        new_count, stable_count = _adjust_within_limits(
            drain=new_rs, adjust=stable_rs, drain_count=new_count, adjust_count=stable_count,
            max_allowed=max_allowed, min_available=min_available,
        )
    elif scale_stable:
        if stable_rs is not None and stable_rs.spec_replicas > desired_stable:
            stable_count = max(desired_stable, stable_rs.spec_replicas - scale_down)
        stable_count, new_count = _adjust_within_limits(
            drain=stable_rs, adjust=new_rs, drain_count=stable_count, adjust_count=new_count,
            max_allowed=max_allowed, min_available=min_available,
        )
    return new_count, stable_count


def with_min_pods(count: int, *, minimum: int | None, replicas: int) -> int:
    """Argo's ``CheckMinPodsPerReplicaSet``: a ReplicaSet that has pods has at least
    ``minimum`` of them, never more than ``replicas`` (so it cannot loop); zero stays zero."""
    if count == 0 or minimum is None:
        return count
    return max(count, min(minimum, replicas))


@dataclass(frozen=True, slots=True)
class RoutedScale:
    """What the traffic-routed replica math needs besides the ReplicaSets.

    ``weight`` and ``canary_replicas`` are what the current step asks for (Argo's
    ``GetCanaryReplicasOrWeight``): an explicit ``setCanaryScale.replicas`` wins over the weight.
    ``current_weights`` are the (canary, stable) weights the router routes now; None when unknown.
    """

    replicas: int
    weight: int
    canary_replicas: int | None = None
    min_pods: int | None = None
    dynamic_stable_scale: bool = False
    current_weights: tuple[int, int] | None = None
    aborted: bool = False


def traffic_routed_counts(scale: RoutedScale) -> tuple[int, int]:
    """Argo's ``CalculateReplicaCountsForTrafficRoutedCanary``: the (canary, stable) replicas.

    Without ``dynamicStableScale`` the stable keeps ``replicas``. With it, the stable is sized
    for the larger of the stable weight wanted and the stable weight routed now (so it shrinks
    only after traffic left it, and grows before traffic returns); on abort the canary likewise
    keeps the pods the traffic it still gets needs.
    """
    replicas = scale.replicas
    if scale.canary_replicas is not None:
        canary = scale.canary_replicas
    else:
        canary = with_min_pods(traffic_weight_to_replicas(replicas, scale.weight),
                               minimum=scale.min_pods, replicas=replicas)
    if not scale.dynamic_stable_scale:
        return canary, replicas
    stable = traffic_weight_to_replicas(replicas, MAX_WEIGHT - scale.weight)
    if scale.current_weights is not None:
        current_canary, current_stable = scale.current_weights
        stable = max(stable, traffic_weight_to_replicas(replicas, current_stable))
        if scale.aborted:
            canary = max(canary, traffic_weight_to_replicas(replicas, current_canary))
    return (with_min_pods(canary, minimum=scale.min_pods, replicas=replicas),
            with_min_pods(stable, minimum=scale.min_pods, replicas=replicas))


def dynamic_abort_weight(
    *, replicas: int, step_weights: tuple[int, ...], new: RSCounts, stable: RSCounts,
    explicit_abort_delay: bool,
) -> int:
    """Argo's ``GetDesiredCanaryWeight`` on an abort under ``dynamicStableScale``: the canary
    steps back down through the setWeight steps, in reverse, as the stable regains pods.

    The weight is the largest step weight whose pods are fewer than the canary still needs:
    ``replicas`` less the stable's available pods, or (without an explicit abort delay, which
    would otherwise deadlock the drain) the canary's available pods if more.
    """
    expected_canary = replicas - stable.available
    canary_pods = expected_canary if explicit_abort_delay else max(expected_canary,
                                                                   new.available)
    for weight in reversed(step_weights):
        if traffic_weight_to_replicas(replicas, weight) < canary_pods:
            return weight
    return 0


def abort_traffic_weight(
    *, replicas: int, desired_weight: int, stable_available: int, current_weight: int | None
) -> int:
    """Argo's ``calculateDesiredWeightOnAbortOrStableRollback`` under ``dynamicStableScale``:
    the canary weight to route while aborting, never more than the stable can take yet.

    ``desired_weight`` is ``dynamic_abort_weight``; ``current_weight`` the canary weight routed
    now (None: nothing recorded).
    """
    if replicas == 0:
        return 0
    expected = max(0, MAX_WEIGHT - MAX_WEIGHT * stable_available // replicas)
    if current_weight is None:
        return max(expected, desired_weight)
    if desired_weight <= 0:
        return min(expected, current_weight)  # never back up while stable pods flap
    if MAX_WEIGHT * stable_available // replicas < MAX_WEIGHT - desired_weight:
        return current_weight  # the stable is still scaling up
    return min(desired_weight, current_weight)
