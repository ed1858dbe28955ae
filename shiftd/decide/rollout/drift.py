"""Weights someone changed by hand in the middle of an update are put back.

shiftd records the weights it routed in ``status.canary.weights``. When, between two steps,
the mesh routes something else to this revision's canary than what the status records and
the completed steps still ask for (someone patched a VirtualService during a pause, say),
the plan routes the recorded weight again and says so in a ``TrafficWeightDrift`` Event that
names each route found off. Only the weights move back; the router's patch leaves every other
field as it is. A weight the steps themselves are moving is never treated as drift.
"""

from __future__ import annotations

from dataclasses import replace

from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.targets import weight_at
from shiftd.model.argo.rollout import MAX_WEIGHT

TRAFFIC_WEIGHT_DRIFT_REASON = "TrafficWeightDrift"


def _recorded_canary_weight(draft: Draft, pod_hash: str) -> int | None:
    """The canary weight the status records for ``pod_hash`` (None: not this revision's)."""
    weights = (draft.rollout.status.get("canary") or {}).get("weights") or {}
    canary = weights.get("canary") or {}
    if canary.get("podTemplateHash") != pod_hash or canary.get("weight") is None:
        return None
    return int(canary["weight"])


def restore_drift(draft: Draft, decision: Decision) -> Decision:
    """Plan the recorded weight again when the mesh drifted from it between steps."""
    rollout, observation = draft.rollout, draft.observed.traffic
    steps = rollout.canary.steps
    if (observation is None or observation.error or not rollout.canary.traffic_routed
            or decision.leaving_canary or decision.weight_moved
            or decision.index >= len(steps)):
        return decision
    recorded = _recorded_canary_weight(draft, decision.revisions.pod_hash)
    if recorded is None or recorded != weight_at(steps, decision.index - 1):
        return decision  # the steps are moving the weight, or another revision holds it
    found = [route for route in observation.route_weights
             if (route.canary, route.stable) != (recorded, MAX_WEIGHT - recorded)]
    if not found and observation.canary_weight == recorded:
        return decision
    detail = "; ".join(f"{route.where}: canary {route.canary}, stable {route.stable}"
                       for route in found) or f"canary weight {observation.canary_weight}"
    draft.event(TRAFFIC_WEIGHT_DRIFT_REASON,
                f"Traffic weights changed outside shiftd ({detail}); restored to canary "
                f"{recorded}, stable {MAX_WEIGHT - recorded}", warning=True)
    return replace(decision, planned_weight=recorded)
