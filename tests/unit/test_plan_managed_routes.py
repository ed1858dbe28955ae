"""The planner with managed routes and with weights changed by hand.

Header and mirror routes follow from the completed steps (each sets its route, one without
a match removes it), go when the update is promoted or aborted, and never point at a canary
without available pods. A weight someone changes between two steps is routed back, with a
TrafficWeightDrift Event; a weight the steps move is never called drift.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftd.cli.ctl import main
from shiftd.decide.rollout.actions import SetTraffic
from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.rollout.managed import desired_routes
from shiftd.decide.rollout.observed import Observed, ReplicaSetView
from shiftd.decide.rollout.revisions import Revisions
from shiftd.decide.rollout.timeline import action_json, rollout_timeline
from shiftd.decide.traffic import ManagedRoute
from shiftd.model.argo.rollout import parse_rollout
from tests.support.world import EXAMPLES, World

HEADER_STEP = {"setHeaderRoute": {"name": "header-route", "match": [
    {"headerName": "x-canary", "headerValue": {"exact": "yes"}}]}}
MIRROR_STEP = {"setMirrorRoute": {"name": "mirror-route", "percentage": 35, "match": [
    {"method": {"exact": "GET"}}]}}


def routed_rollout(steps: list[Any]) -> dict[str, Any]:
    rollout: dict[str, Any] = next(
        d for d in yaml.safe_load_all((EXAMPLES / "imesh-host-split/all.yaml").read_text())
        if d and d["kind"] == "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    canary["trafficRouting"]["managedRoutes"] = [{"name": "header-route"},
                                                 {"name": "mirror-route"}]
    canary["steps"] = steps
    return rollout


def routes_at(steps: list[Any], *, index: int, available: int = 1, aborted: bool = False
              ) -> list[str]:
    rollout = parse_rollout(copy.deepcopy(routed_rollout(steps)))
    new_rs = ReplicaSetView(name="new", pod_hash="new", revision=2, spec_replicas=1,
                            replicas=1, ready=available, available=available, template={})
    revisions = Revisions(new_rs=new_rs, stable_rs=None, older=(), pod_hash="new",
                          stable_hash="old", revision=2, first_stable=False)
    draft = Draft(rollout=rollout,
                  observed=Observed(replica_sets=(new_rs,), services={}, traffic=None),
                  now=datetime(2026, 1, 1, tzinfo=UTC), status={})
    decision = Decision(revisions=revisions, index=index, aborted=aborted, current_weight=0,
                        planned_weight=0)
    return [route.name for route in desired_routes(draft, decision)]


STEPS = [{"setWeight": 10}, MIRROR_STEP, HEADER_STEP, {"pause": {}},
         {"setHeaderRoute": {"name": "header-route"}}, {"pause": {}}]


@pytest.mark.parametrize(("index", "routes"), [
    (1, []),  # nothing completed yet but the weight
    (2, ["mirror-route"]),
    (3, ["header-route", "mirror-route"]),  # managedRoutes order, not step order
    (5, ["mirror-route"]),  # a step without match removes its route
    (6, []),  # past the last step: promotion
])
def test_managed_routes_follow_the_completed_steps(index: int, routes: list[str]) -> None:
    assert routes_at(STEPS, index=index) == routes


def test_no_managed_route_points_at_a_canary_without_available_pods() -> None:
    assert routes_at(STEPS, index=3, available=0) == []


def test_an_abort_removes_every_managed_route() -> None:
    assert routes_at(STEPS, index=3, aborted=True) == []


def test_the_timeline_of_a_rollout_with_route_steps_settles(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rollout = routed_rollout([{"setWeight": 20}, HEADER_STEP, MIRROR_STEP, {"pause": {}},
                              {"setWeight": 50}])
    timeline = rollout_timeline(rollout)
    assert [step.index for step in timeline.steps] == [0, 1, 2, 3, 4]
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(rollout))
    assert main(["plan", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "setHeaderRoute: header-route (x-canary exact 'yes' -> canary)" in out
    assert "setMirrorRoute: mirror-route (35% mirrored to canary)" in out


def paused_at_fifty() -> World:
    world = World.from_example("imesh-host-split")
    world.settle()
    world.set_image("nginx:1.15.5")
    world.settle()
    assert world.weights() == (50, 50)
    return world


def set_weights(world: World, *, stable: int, canary: int) -> None:
    for entry in world.virtual_services["imesh-vsvc"]["spec"]["http"][0]["route"]:
        entry["weight"] = canary if entry["destination"]["host"] == "canary-svc" else stable


def test_a_weight_changed_by_hand_during_a_pause_is_routed_back_with_an_event() -> None:
    world = paused_at_fifty()
    set_weights(world, stable=100, canary=0)
    plan = world.plan()
    assert [a.canary_weight for a in plan.actions if isinstance(a, SetTraffic)] == [50]
    drift = [e for e in plan.events if e.reason == "TrafficWeightDrift"]
    assert len(drift) == 1 and drift[0].type == "Warning"
    assert "restored to canary 50, stable 50" in drift[0].message
    world.settle()
    assert world.weights() == (50, 50)
    assert world.status["currentStepIndex"] == 1


def test_weights_the_steps_move_are_never_called_drift() -> None:
    world = World.from_example("imesh-host-split")
    world.settle()
    world.set_image("nginx:1.15.5")
    reasons: list[str] = []
    for _ in range(20):
        plan = world.plan()
        reasons.extend(e.reason for e in plan.events)
        if not plan.actions:
            world.advance(3600)
            continue
        world.apply(plan)
    assert world.status["stableRS"] == world.status["currentPodHash"]
    assert "TrafficWeightUpdated" in reasons
    assert "TrafficWeightDrift" not in reasons


def test_plan_json_lists_the_managed_routes_a_traffic_write_leaves() -> None:
    rollout = parse_rollout(routed_rollout([HEADER_STEP, MIRROR_STEP]))
    header = ManagedRoute(name="header-route", kind="header", match="[]")
    mirror = ManagedRoute(name="mirror-route", kind="mirror", match="[]", percentage=35)
    action = SetTraffic(canary_weight=10, canary_hash="new", stable_hash="old",
                        managed_routes=(header, mirror))
    assert action_json(action, rollout=rollout)["managedRoutes"] == [
        {"name": "header-route", "kind": "header"},
        {"name": "mirror-route", "kind": "mirror", "percentage": 35}]
