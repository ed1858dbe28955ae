"""Services and traffic for a canary plan: which pods each Service selects, what weight the
canary may safely get, and the ``SetTraffic`` write that routes it.

Traffic is only raised onto pods that are available and selected: the canary Service moves
onto the new pods once enough of them serve, and the weight follows once it has. A router that
routes by subsets (``TrafficObservation.routes_by_subset``) also has its subsets moved, each
only onto a ReplicaSet with available pods that carry the subset's other labels (a role's
``version`` label, say); ``serving_labels`` says which labels must stay on which pods while a
subset routes to them. The weights are recorded in ``status.canary.weights``, as Argo records
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiftd.decide.rollout.actions import Action, PatchService, SetTraffic
from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.managed import describe_routes, desired_routes, routes_due
from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.replicas import traffic_weight_to_replicas
from shiftd.decide.traffic import ManagedRoute
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
    # Aborting under dynamicStableScale, the canary keeps some traffic (and its Service) until
    # the stable can take it all back.
    draining = (decision.aborted and draft.rollout.canary.dynamic_stable_scale
                and decision.planned_weight > 0)
    leaving = decision.leaving_canary and not draining
    canary_hash = revisions.stable_hash if leaving else revisions.pod_hash
    canary_rs = revisions.stable_rs if leaving else revisions.new_rs
    desired_weight = 0 if leaving else decision.planned_weight
    previous = rolling_back_from(draft, decision)
    if previous is not None:  # the canary keeps its traffic until the stable can take it
        canary_hash, canary_rs, desired_weight = (previous.pod_hash, previous,
                                                  decision.current_weight)
    lowering = desired_weight < decision.current_weight
    services, selectors = _service_actions(
        draft, stable_target=(revisions.stable_hash, revisions.stable_rs),
        canary_target=(canary_hash, canary_rs),
        weight_after=min(desired_weight, decision.current_weight),
    )
    canary_selector = selectors.get("canary", canary_hash)
    traffic: tuple[Action, ...] = ()
    subsets: tuple[str | None, str | None] = (None, None)
    if draft.rollout.canary.traffic_routed:
        subsets = _subset_targets(draft, stable_target=(revisions.stable_hash, revisions.stable_rs),
                                  canary_target=(canary_hash, canary_rs),
                                  warn=not decision.leaving_canary)
        safe_weight = desired_weight
        if not lowering and canary_hash not in (canary_selector, subsets[0] or canary_hash):
            safe_weight = decision.current_weight  # never raise onto pods the Service skips
        elif not lowering and subsets[0] not in (None, canary_hash):
            safe_weight = decision.current_weight  # nor onto a subset held on older pods
        traffic = _traffic(draft, decision, subsets=subsets, weight=safe_weight,
                           routes=desired_routes(draft, decision))
        _record_weights(draft, canary_weight=safe_weight, canary_hash=canary_hash,
                        stable_hash=revisions.stable_hash)
    # A Service or subset held on older pods keeps them selected (and scaled).
    selected = {revisions.stable_hash, canary_hash, *(h for h in selectors.values() if h),
                *(h for h in subsets if h)}
    return RoutingWrites(services=tuple(services), traffic=traffic, lowering=lowering,
                         selected=frozenset(selected))


def rolling_back_from(draft: Draft, decision: Decision) -> ReplicaSetView | None:
    """Argo's ``IsDynamicallyRollingBackToStable``: under dynamicStableScale, the template went
    back to the stable's while a canary (recorded in ``status.canary.weights``) still takes
    traffic and the stable, shrunk for it, is not yet at full availability: that canary keeps
    its traffic, Service and pods until the stable can serve everything."""
    rollout, revisions = draft.rollout, decision.revisions
    if (not revisions.fully_promoted or not rollout.canary.traffic_routed
            or not rollout.canary.dynamic_stable_scale or decision.current_weight <= 0
            or revisions.stable_rs is None
            or revisions.stable_rs.available >= rollout.replicas):
        return None
    weights = (draft.rollout.status.get("canary") or {}).get("weights") or {}
    recorded = (weights.get("canary") or {}).get("podTemplateHash")
    if not recorded or recorded == revisions.stable_hash:
        return None
    return next((rs for rs in revisions.older if rs.pod_hash == recorded), None)


def may_switch_to(target: ReplicaSetView | None, *, first_adoption: bool) -> bool:
    """Argo's rule for pointing a Service (or a subset) at a ReplicaSet: when it is first
    adopted (a Service without the managed-by annotation; a subset selecting no revision yet)
    only once the ReplicaSet is fully available, otherwise once at least one pod is."""
    if target is None or target.available <= 0:
        return False
    return not first_adoption or target.available >= target.spec_replicas


def _subset_targets(draft: Draft, *, stable_target: tuple[str, ReplicaSetView | None],
                    canary_target: tuple[str, ReplicaSetView | None], warn: bool
                    ) -> tuple[str | None, str | None]:
    """The (canary, stable) hashes a subset router's subsets should select after this plan:
    the targets, except that a subset is never pointed at a ReplicaSet whose pods are not
    available yet or lack the subset's other labels (it keeps what it selects). With
    ``warn`` (mid-update, where no role switch is under way) a subset held for want of its
    labels is reported: it would wait forever."""
    observation = draft.observed.traffic
    if observation is None or not observation.routes_by_subset:
        return canary_target[0], stable_target[0]
    held: list[str | None] = []
    for role, (target_hash, target_rs), current, labels in (
            ("canary", canary_target, observation.canary_subset_hash,
             observation.canary_subset_labels),
            ("stable", stable_target, observation.stable_subset_hash,
             observation.stable_subset_labels)):
        ready = may_switch_to(target_rs, first_adoption=current is None)
        if current == target_hash or (ready and carries(target_rs, labels)):
            held.append(target_hash)
            continue
        held.append(current)
        if ready and target_rs is not None and warn:
            wanted = ", ".join(f"{key}={value}" for key, value in labels)
            draft.event("SubsetLabelsMissing", f"the {role} subset selects {wanted}, which the "
                        f"pods of ReplicaSet {target_rs.name} do not carry: the subset stays "
                        "where it is (set canaryMetadata/stableMetadata to match)", warning=True)
    return held[0], held[1]


def carries(target: ReplicaSetView | None, labels: tuple[tuple[str, str], ...]) -> bool:
    """The ReplicaSet's pods carry the labels a subset selects on besides the hash (its
    template's, e.g. a role's ``version`` label from canary/stableMetadata): a subset pointed
    at pods without them would select none."""
    if target is None:
        return False
    template_labels = (target.template.get("metadata") or {}).get("labels") or {}
    return all(template_labels.get(key) == value for key, value in labels)


def serving_labels(draft: Draft, routed: RoutingWrites) -> dict[str, dict[str, str]]:
    """For a subset router: by pod-template hash, the labels a subset with traffic selects
    on, now or after this plan's traffic write. A ReplicaSet's pods must keep them (its
    canary/stable metadata is not switched) until no weighted subset selects it."""
    observation = draft.observed.traffic
    if observation is None or not observation.routes_by_subset:
        return {}
    states = [(observation.canary_weight, observation.canary_subset_hash,
               observation.stable_subset_hash)]
    for action in routed.traffic:
        if isinstance(action, SetTraffic):
            states.append((action.canary_weight, action.canary_hash, action.stable_hash))
    serving: dict[str, dict[str, str]] = {}
    for weight, canary_hash, stable_hash in states:
        for share, pod_hash, labels in (
                (weight, canary_hash, observation.canary_subset_labels),
                (MAX_WEIGHT - weight, stable_hash, observation.stable_subset_labels)):
            if share > 0 and pod_hash and labels:
                serving.setdefault(pod_hash, {}).update(labels)
    return serving


def _traffic(
    draft: Draft, decision: Decision, *, subsets: tuple[str | None, str | None], weight: int,
    routes: tuple[ManagedRoute, ...],
) -> tuple[Action, ...]:
    """The ``SetTraffic`` write, if the weight, a route's weights, (for a subset router) a
    subset or the managed routes must change."""
    observation = draft.observed.traffic
    canary_hash, stable_hash = subsets
    subsets_differ = observation is not None and observation.routes_by_subset and (
        observation.canary_subset_hash != canary_hash
        or observation.stable_subset_hash != stable_hash
    )
    uneven = observation is not None and any(
        (found.canary, found.stable) != (weight, MAX_WEIGHT - weight)
        for found in observation.route_weights)
    routes_differ = routes_due(draft, routes)
    if weight == decision.current_weight and not (subsets_differ or uneven or routes_differ):
        return ()
    if weight != decision.current_weight:
        draft.event("TrafficWeightUpdated", f"Set weight to {weight}")
    if routes_differ:
        draft.event("TrafficRoutesUpdated", f"Managed routes: {describe_routes(routes)}")
    return (SetTraffic(canary_weight=weight,
                       canary_hash=canary_hash or decision.revisions.pod_hash,
                       stable_hash=stable_hash or decision.revisions.stable_hash,
                       managed_routes=routes),)


def _service_actions(
    draft: Draft,
    *,
    stable_target: tuple[str, ReplicaSetView | None],
    canary_target: tuple[str, ReplicaSetView | None],
    weight_after: int,
) -> tuple[list[Action], dict[str, str | None]]:
    """Point the stable and canary Services at their ReplicaSets' pods, each only once
    ``may_switch_to`` allows it (and the canary Service only onto enough available pods for
    the weight it keeps). Returns the actions and the hash each Service (by role) selects
    afterwards (``None``: it selects no particular revision)."""
    rollout = draft.rollout
    actions: list[Action] = []
    selectors: dict[str, str | None] = {}
    for role, name, (target, target_rs) in (
        ("stable", rollout.canary.stable_service, stable_target),
        ("canary", rollout.canary.canary_service, canary_target),
    ):
        service = draft.observed.services.get(name) if name else None
        if not name or service is None:
            continue
        current = service.selector.get(POD_TEMPLATE_HASH_LABEL)
        managed = service.annotations.get(MANAGED_BY_ANNOTATION) == rollout.name
        selectors[role] = current
        if current != target and not _may_point(rollout_replicas=rollout.replicas,
                                                target_rs=target_rs, managed=managed,
                                                weight=weight_after if role == "canary" else 0):
            continue  # delayed until its pods are available (Argo's "delaying service switch")
        selectors[role] = target
        patch: dict[str, Any] = {}
        if current != target:
            patch["spec"] = {"selector": {POD_TEMPLATE_HASH_LABEL: target}}
        if not managed:
            patch["metadata"] = {"annotations": {MANAGED_BY_ANNOTATION: rollout.name}}
        if patch:
            actions.append(PatchService(name=name, patch=patch))
    return actions, selectors


def _may_point(*, rollout_replicas: int, target_rs: ReplicaSetView | None, managed: bool,
               weight: int) -> bool:
    if not may_switch_to(target_rs, first_adoption=not managed):
        return False
    assert target_rs is not None
    return weight <= 0 or target_rs.available >= max(
        1, traffic_weight_to_replicas(rollout_replicas, weight))


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
