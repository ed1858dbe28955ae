"""The planner is router-neutral: what a router reports decides what it is asked to move."""

from __future__ import annotations

import copy

import pytest

from shiftd.decide.rollout.actions import SetTraffic
from shiftd.model.argo.rollout import InvalidSpecError, parse_rollout
from tests.support.world import World


def started(*, routes_by_subset: bool) -> World:
    world = World.from_example("asm-host-split")
    world.routes_by_subset = routes_by_subset
    world.settle()
    return world


def test_a_subset_router_gets_its_subsets_pointed_at_the_stable_revision_at_once() -> None:
    world = started(routes_by_subset=True)
    stable = world.status["stableRS"]
    assert world.subsets == (stable, stable)
    assert world.weights() == (100, 0)


def test_a_subset_router_moves_the_canary_subset_to_the_new_revision() -> None:
    world = started(routes_by_subset=True)
    stable = world.status["stableRS"]
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    assert world.subsets == (world.status["currentPodHash"], stable)
    assert world.status["currentPodHash"] != stable


def test_stale_subsets_are_moved_when_the_router_routes_by_subset() -> None:
    world = started(routes_by_subset=True)
    stable = world.status["stableRS"]
    world.subsets = ("stale", "stale")
    traffic = [a for a in world.plan().actions if isinstance(a, SetTraffic)]
    assert traffic == [SetTraffic(canary_weight=0, canary_hash=stable, stable_hash=stable)]


def test_subsets_a_service_router_reports_are_never_its_business() -> None:
    world = started(routes_by_subset=False)
    world.subsets = ("stale", "stale")
    assert world.plan().actions == ()


def test_a_subset_router_follows_a_whole_update_to_promotion() -> None:
    world = started(routes_by_subset=True)
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    world.patch_status({"promoteFull": True})
    world.settle()
    world.advance(60)  # past scaleDownDelaySeconds
    world.settle()
    new = world.status["currentPodHash"]
    assert world.status["stableRS"] == new
    assert world.subsets == (new, new)
    assert world.weights() == (100, 0)


def _rollout(routing: object) -> dict[str, object]:
    world = World.from_example("asm-host-split")
    rollout = copy.deepcopy(world.rollout)
    canary = rollout["spec"]["strategy"]["canary"]  # type: ignore[index]
    if routing is None:
        canary.pop("trafficRouting")
    else:
        canary["trafficRouting"] = routing
    return rollout


def test_traffic_routed_means_traffic_routing_names_a_router() -> None:
    routed = parse_rollout(_rollout({"istio": {"virtualService": {"name": "vs"}}}))
    assert routed.canary.router == "istio" and routed.canary.traffic_routed
    basic = parse_rollout(_rollout(None))
    assert basic.canary.router is None and not basic.canary.traffic_routed


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"nginx": {"stableIngress": "web"}},
         "spec.strategy.canary.trafficRouting.nginx is not supported by shiftd; only istio is"),
        ({"managedRoutes": [{"name": "header"}]},
         "spec.strategy.canary.trafficRouting.istio is required"),
    ],
)
def test_routers_shiftd_cannot_drive_are_invalid_specs(routing: object, message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_rollout(_rollout(routing))
    assert str(caught.value) == message
