"""Services and traffic for a canary plan: which pods each Service selects, what weight the
canary may safely get, and the ``SetTraffic`` write that routes it.

Traffic is only raised onto pods that are available and selected: the canary Service moves
onto the new pods once enough of them serve, and the weight follows once it has. A router that
routes by subsets (``TrafficObservation.routes_by_subset``) also has its subsets moved. The
weights are recorded in ``status.canary.weights``, as Argo records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiftd.decide.rollout.actions import Action, PatchService, SetTraffic
from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.replicas import traffic_weight_to_replicas
from shiftd.model.argo.rollout import MANAGED_BY_ANNOTATION, MAX_WEIGHT, POD_TEMPLATE_HASH_LABEL


@dataclass(frozen=True, slots=True)
class RoutingWrites:
    services: tuple[Action, ...]
    traffic: tuple[Action, ...]  # empty without a router, or when nothing moves
    lowering: bool  # the canary weight goes down: traffic moves before the Services
    selected: frozenset[str]  # pod-template hashes the Services select after these writes


def route(draft: Draft, decision: Decision) -> RoutingWrites:
    """Point the Services and the router at the revisions this decision wants served."""
    revisions = decision.revisions
    leaving = decision.leaving_canary
    canary_hash = revisions.stable_hash if leaving else revisions.pod_hash
    canary_rs = revisions.stable_rs if leaving else revisions.new_rs
    desired_weight = 0 if leaving else decision.planned_weight
    lowering = desired_weight < decision.current_weight
    services, canary_selector = _service_actions(
        draft, stable_hash=revisions.stable_hash, canary_target_hash=canary_hash,
        canary_target_rs=canary_rs, weight_after=min(desired_weight, decision.current_weight),
    )
    traffic: tuple[Action, ...] = ()
    if draft.rollout.canary.traffic_routed:
        safe_weight = desired_weight
        if not lowering and canary_selector != canary_hash:
            safe_weight = decision.current_weight  # never raise onto pods the Service skips
        traffic = _traffic(draft, decision, canary_hash=canary_hash, weight=safe_weight)
        _record_weights(draft, canary_weight=safe_weight, canary_hash=canary_hash,
                        stable_hash=revisions.stable_hash)
    # The canary Service may have been held on older pods; both stay selected.
    selected = {revisions.stable_hash, canary_hash}
    if canary_selector is not None:
        selected.add(canary_selector)
    return RoutingWrites(services=tuple(services), traffic=traffic, lowering=lowering,
                         selected=frozenset(selected))


def _traffic(
    draft: Draft, decision: Decision, *, canary_hash: str, weight: int
) -> tuple[Action, ...]:
    """The ``SetTraffic`` write, if the weight or (for a subset router) a subset must move."""
    stable_hash = decision.revisions.stable_hash
    observation = draft.observed.traffic
    subsets_differ = observation is not None and observation.routes_by_subset and (
        observation.canary_subset_hash != canary_hash
        or observation.stable_subset_hash != stable_hash
    )
    if weight == decision.current_weight and not subsets_differ:
        return ()
    if weight != decision.current_weight:
        draft.event("TrafficWeightUpdated", f"Set weight to {weight}")
    return (SetTraffic(canary_weight=weight, canary_hash=canary_hash, stable_hash=stable_hash),)


def _service_actions(
    draft: Draft,
    *,
    stable_hash: str,
    canary_target_hash: str,
    canary_target_rs: ReplicaSetView | None,
    weight_after: int,
) -> tuple[list[Action], str | None]:
    """Point the stable and canary Services at their ReplicaSets' pods.

    The canary Service is only moved onto pods that are available, unless no traffic will
    reach it. Returns the actions and the hash the canary Service selects afterwards.
    """
    rollout = draft.rollout
    actions: list[Action] = []
    canary_selector: str | None = canary_target_hash
    for name, target, is_canary in (
        (rollout.canary.stable_service, stable_hash, False),
        (rollout.canary.canary_service, canary_target_hash, True),
    ):
        service = draft.observed.services.get(name) if name else None
        if not name or service is None:
            continue
        current = service.selector.get(POD_TEMPLATE_HASH_LABEL)
        if is_canary and current != target:
            available = canary_target_rs.available if canary_target_rs is not None else 0
            if weight_after > 0 and available < max(
                1, traffic_weight_to_replicas(rollout.replicas, weight_after)
            ):
                canary_selector = current
                continue
        patch: dict[str, Any] = {}
        if current != target:
            patch["spec"] = {"selector": {POD_TEMPLATE_HASH_LABEL: target}}
        if service.annotations.get(MANAGED_BY_ANNOTATION) != rollout.name:
            patch["metadata"] = {"annotations": {MANAGED_BY_ANNOTATION: rollout.name}}
        if patch:
            actions.append(PatchService(name=name, patch=patch))
        if is_canary:
            canary_selector = target
    if not rollout.canary.canary_service:
        canary_selector = canary_target_hash
    return actions, canary_selector


def _record_weights(draft: Draft, *, canary_weight: int, canary_hash: str,
                    stable_hash: str) -> None:
    canary_status = draft.status.setdefault("canary", {})
    canary_entry: dict[str, Any] = {"podTemplateHash": canary_hash, "weight": canary_weight}
    stable_entry: dict[str, Any] = {"podTemplateHash": stable_hash,
                                    "weight": MAX_WEIGHT - canary_weight}
    if draft.rollout.canary.canary_service:
        canary_entry["serviceName"] = draft.rollout.canary.canary_service
    if draft.rollout.canary.stable_service:
        stable_entry["serviceName"] = draft.rollout.canary.stable_service
    canary_status["weights"] = {"canary": canary_entry, "stable": stable_entry}
