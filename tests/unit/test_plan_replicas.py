"""The replica math inside whole rollouts on the in-memory cluster: setCanaryScale,
minPodsPerReplicaSet, dynamicStableScale (with aborts), promote --full and aborts on a basic
canary, and a new revision identical to the stable one."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shiftd.decide.rollout.actions import PatchService, SetTraffic
from tests.support.world import World

BLUE, YELLOW = "argoproj/rollouts-demo:blue", "argoproj/rollouts-demo:yellow"


def routed(replicas: int, steps: list[dict[str, Any]], **canary: Any) -> World:
    world = World.from_example("asm-host-split")
    world.rollout["spec"]["replicas"] = replicas
    world.rollout["spec"]["strategy"]["canary"].update(steps=steps, **canary)
    world.settle()
    return world


def basic(replicas: int, steps: list[dict[str, Any]], **canary: Any) -> World:
    world = World.from_example("asm-host-split")
    block = world.rollout["spec"]["strategy"]["canary"]
    for key in ("trafficRouting", "canaryService", "stableService"):
        block.pop(key)
    block.update(steps=steps, **canary)
    world.rollout["spec"]["replicas"] = replicas
    world.settle()
    return world


def spec_replicas(world: World) -> dict[str, int]:
    return world.replicas_by_image()


def available_by_image(world: World) -> dict[str, int]:
    result: dict[str, int] = {}
    for rs in world.replica_sets.values():
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        result[image] = result.get(image, 0) + rs["status"]["availableReplicas"]
    return result


def promote(world: World) -> None:
    world.patch_status({"pauseConditions": None})
    world.settle()


def step_through(world: World, *, check: Any, limit: int = 60) -> None:
    """Apply plans one by one until quiet, calling ``check`` after each."""
    for _ in range(limit):
        plan = world.plan()
        if not plan.actions:
            if plan.requeue_at is None:
                return
            world.now = plan.requeue_at
            continue
        world.apply(plan)
        check()
    raise AssertionError("the planner did not settle")


# --- setCanaryScale and minPodsPerReplicaSet ------------------------------------------------------

def test_set_canary_scale_sizes_the_canary_apart_from_its_weight() -> None:
    world = routed(4, [{"setCanaryScale": {"replicas": 2}}, {"pause": {}},
                       {"setWeight": 25}, {"pause": {}},
                       {"setCanaryScale": {"matchTrafficWeight": True}}, {"pause": {}}])
    world.set_image(YELLOW)
    world.settle()
    assert spec_replicas(world) == {BLUE: 4, YELLOW: 2}
    assert world.weights() == (100, 0)
    promote(world)
    assert spec_replicas(world) == {BLUE: 4, YELLOW: 2}  # still the explicit size
    assert world.weights() == (75, 25)
    promote(world)
    assert spec_replicas(world) == {BLUE: 4, YELLOW: 1}  # back to ceil(25% of 4)
    assert world.weights() == (75, 25)


def test_set_canary_scale_weight_sizes_the_canary_by_that_share() -> None:
    world = routed(10, [{"setCanaryScale": {"weight": 30}}, {"pause": {}}])
    world.set_image(YELLOW)
    world.settle()
    assert spec_replicas(world) == {BLUE: 10, YELLOW: 3}
    assert world.weights() == (100, 0)


def test_min_pods_per_replicaset_gives_a_small_canary_that_many_pods() -> None:
    world = routed(10, [{"setWeight": 5}, {"pause": {}}], minPodsPerReplicaSet=2)
    world.set_image(YELLOW)
    world.settle()
    assert spec_replicas(world) == {BLUE: 10, YELLOW: 2}
    assert world.weights() == (95, 5)


def test_an_abort_with_zero_abort_delay_leaves_a_scaled_canary_up() -> None:
    world = routed(3, [{"setCanaryScale": {"replicas": 1}}, {"pause": {}}],
                   abortScaleDownDelaySeconds=0)
    world.set_image(YELLOW)
    world.settle()
    world.patch_status({"abort": True})
    world.settle()
    world.advance(3600)
    world.settle()
    assert spec_replicas(world) == {BLUE: 3, YELLOW: 1}
    assert world.status["phase"] == "Degraded"


# --- dynamicStableScale ---------------------------------------------------------------------------

def available_behind(world: World, role: str) -> int:
    selector = world.services[f"istio-rollout-{role}"]["spec"]["selector"]
    wanted = selector.get("rollouts-pod-template-hash")
    return sum(rs["status"]["availableReplicas"] for rs in world.replica_sets.values()
               if rs["metadata"]["labels"].get("rollouts-pod-template-hash") == wanted)


def capacity_follows_traffic(world: World) -> None:
    """Neither Service is routed more traffic than its available pods can take (10 replicas)."""
    stable_weight, canary_weight = world.weights()
    assert available_behind(world, "stable") >= math.ceil(stable_weight * 10 / 100)
    assert available_behind(world, "canary") >= math.ceil(canary_weight * 10 / 100)


def dynamic_world() -> World:
    world = routed(10, [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}],
                   dynamicStableScale=True)
    world.set_image(YELLOW)
    step_through(world, check=lambda: capacity_follows_traffic(world))
    return world


def test_dynamic_stable_scale_shrinks_the_stable_as_traffic_leaves_it() -> None:
    world = dynamic_world()
    assert world.weights() == (80, 20)
    assert spec_replicas(world) == {BLUE: 8, YELLOW: 2}
    world.patch_status({"pauseConditions": None})
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert world.weights() == (50, 50)
    assert spec_replicas(world) == {BLUE: 5, YELLOW: 5}


def test_dynamic_stable_scale_drops_the_old_stable_at_promotion_without_delay() -> None:
    world = dynamic_world()
    for _ in range(2):
        world.patch_status({"pauseConditions": None})
        step_through(world, check=lambda: capacity_follows_traffic(world))
    assert world.status["phase"] == "Healthy"
    assert world.weights() == (100, 0)
    assert spec_replicas(world) == {BLUE: 0, YELLOW: 10}


def test_a_dynamic_abort_regrows_the_stable_before_traffic_returns_to_it() -> None:
    world = dynamic_world()
    world.patch_status({"pauseConditions": None})
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert spec_replicas(world) == {BLUE: 5, YELLOW: 5}
    world.patch_status({"abort": True})
    seen: list[int] = []

    def check() -> None:
        capacity_follows_traffic(world)
        seen.append(world.weights()[1])

    step_through(world, check=check)
    assert world.weights() == (100, 0)
    assert spec_replicas(world) == {BLUE: 10, YELLOW: 0}
    assert seen == sorted(seen, reverse=True)  # the canary weight only went down
    assert world.status["phase"] == "Degraded"
    for service in world.services.values():
        assert service["spec"]["selector"]["rollouts-pod-template-hash"] == \
            world.status["stableRS"]


# --- basic canary: promote --full and abort within maxSurge / maxUnavailable ---------------------

def within_fences(world: World, *, replicas: int, surge: int, unavailable: int) -> None:
    total = sum(rs["spec"]["replicas"] for rs in world.replica_sets.values())
    available = sum(rs["status"]["availableReplicas"] for rs in world.replica_sets.values())
    assert total <= replicas + surge
    assert available >= replicas - unavailable


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (0, 1), ("25%", "25%"), (2, 1)])
def test_promote_full_on_a_basic_canary_honours_surge_and_unavailability(
    surge: int | str, unavailable: int | str
) -> None:
    world = basic(4, [{"setWeight": 25}, {"pause": {}}], maxSurge=surge,
                  maxUnavailable=unavailable)
    world.set_image(YELLOW)
    world.settle()
    assert spec_replicas(world) == {BLUE: 3, YELLOW: 1}
    world.patch_status({"promoteFull": True})
    limits = {"surge": 1 if surge == "25%" else int(surge),
              "unavailable": 1 if unavailable == "25%" else int(unavailable)}
    step_through(world, check=lambda: within_fences(world, replicas=4, **limits))
    assert spec_replicas(world) == {BLUE: 0, YELLOW: 4}
    assert world.status["phase"] == "Healthy"


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (0, 1), (2, 2)])
def test_an_abort_on_a_basic_canary_honours_max_unavailable(
    surge: int, unavailable: int
) -> None:
    world = basic(4, [{"setWeight": 50}, {"pause": {}}], maxSurge=surge,
                  maxUnavailable=unavailable)
    world.set_image(YELLOW)
    world.settle()
    assert spec_replicas(world) == {BLUE: 2, YELLOW: 2}
    world.patch_status({"abort": True})
    step_through(world, check=lambda: within_fences(world, replicas=4, surge=surge,
                                                    unavailable=unavailable))
    assert spec_replicas(world) == {BLUE: 4, YELLOW: 0}
    assert world.status["phase"] == "Degraded"


def test_a_basic_canary_reverted_to_the_stable_template_returns_within_the_fences() -> None:
    world = basic(4, [{"setWeight": 50}, {"pause": {}}], maxSurge=1, maxUnavailable=0)
    world.set_image(YELLOW)
    world.settle()
    world.set_image(BLUE)  # the new revision is the stable one
    step_through(world, check=lambda: within_fences(world, replicas=4, surge=1, unavailable=0))
    assert spec_replicas(world) == {BLUE: 4, YELLOW: 0}
    assert world.status["phase"] == "Healthy"


# --- what the spec may say ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ({"dynamicStableScale": True, "trafficRouting": None},
         "Canary dynamicStableScale can only be used with traffic routing"),
        ({"dynamicStableScale": True, "scaleDownDelaySeconds": 5},
         "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds"),
        ({"steps": [{"setCanaryScale": {"replicas": 1}}], "trafficRouting": None},
         "SetCanaryScale requires TrafficRouting to be set"),
    ],
)
def test_argos_own_refusals_stay_invalid_spec(canary: dict[str, Any], message: str) -> None:
    world = World.from_example("asm-host-split")
    world.edit_spec(strategy={"canary": canary})
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert message in world.status["message"]


def test_a_dynamic_abort_with_an_explicit_abort_delay_drains_without_deadlock() -> None:
    world = routed(10, [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}],
                   dynamicStableScale=True, abortScaleDownDelaySeconds=30)
    world.set_image(YELLOW)
    step_through(world, check=lambda: capacity_follows_traffic(world))
    world.patch_status({"pauseConditions": None})
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert spec_replicas(world) == {BLUE: 5, YELLOW: 5}
    world.patch_status({"abort": True})
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert world.weights() == (100, 0)
    assert spec_replicas(world) == {BLUE: 10, YELLOW: 0}  # after the abort delay


def test_going_back_to_the_stable_template_under_dynamic_scale_waits_for_the_stable() -> None:
    world = dynamic_world()
    world.patch_status({"pauseConditions": None})
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert spec_replicas(world) == {BLUE: 5, YELLOW: 5}
    world.set_image(BLUE)  # the new revision is the stable one, shrunk to 5 for its traffic
    first = world.plan()
    assert not any(isinstance(a, SetTraffic) for a in first.actions)
    assert not any(isinstance(a, PatchService) for a in first.actions)
    world.apply(first)
    assert world.weights() == (50, 50)  # until the stable's new pods are available
    assert spec_replicas(world) == {BLUE: 10, YELLOW: 5}
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert world.weights() == (100, 0)
    assert spec_replicas(world) == {BLUE: 10, YELLOW: 0}
    assert world.status["phase"] == "Healthy"


# --- Argo's dynamic-stable-scale controller tests (rollout/trafficrouting_test.go) -----------
# Each row: a 5-replica Rollout (maxSurge 1, maxUnavailable 1) with dynamicStableScale, aborted
# with the canary and stable ReplicaSets at (spec, available) and the canary weight routed now;
# the weight the abort routes next.

ARGO_DYNAMIC_ABORT_ROWS = [
    pytest.param([{"setWeight": 50}, {"pause": {}}], (0, 0), (5, 4), 0, 0,
                 id="TestDynamicScalingDontIncreaseWeightWhenAborted"),
    pytest.param([{"setWeight": 50}, {"pause": {}}], (4, 4), (5, 3), 100, 50,
                 id="TestDynamicScalingDecreaseWeightAccordingToStepWeightsAvailability"
                    "WhenAborted"),
    pytest.param([{"pause": {}}], (4, 4), (5, 1), 100, 80,
                 id="TestDynamicScalingDecreaseWeightAccordingToStableAvailabilityWhenAborted"),
    pytest.param([{"setWeight": 50}, {"pause": {}}], (0, 0), (5, 5), 20, 0,
                 id="TestDynamicScalingDecreaseWeightAccordingToStableAvailabilityWhenAborted"
                    "AndResetService"),
]


def set_replica_set(world: World, image: str, spec: int, available: int) -> None:
    for rs in world.replica_sets.values():
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            rs["spec"]["replicas"] = spec
            rs["status"] = {"replicas": spec, "readyReplicas": available,
                            "availableReplicas": available}


def route_weights(world: World, canary_weight: int) -> None:
    parsed = world.parsed()
    for vs in world.virtual_services.values():
        for destination in vs["spec"]["http"][0]["route"]:
            host = destination["destination"]["host"]
            destination["weight"] = (canary_weight if host == parsed.canary.canary_service
                                     else 100 - canary_weight)


@pytest.mark.parametrize(("steps", "canary", "stable", "routed_weight", "expected"),
                         ARGO_DYNAMIC_ABORT_ROWS)
def test_a_dynamic_abort_routes_the_weight_argos_controller_tests_expect(
    steps: list[dict[str, Any]], canary: tuple[int, int], stable: tuple[int, int],
    routed_weight: int, expected: int,
) -> None:
    world = routed(5, steps, dynamicStableScale=True, maxSurge=1, maxUnavailable=1)
    world.set_image(YELLOW)
    world.settle()
    set_replica_set(world, YELLOW, *canary)
    set_replica_set(world, BLUE, *stable)
    route_weights(world, routed_weight)
    world.patch_status({"abort": True})
    traffic = [a for a in world.plan().actions if isinstance(a, SetTraffic)]
    weights = [a.canary_weight for a in traffic] or [routed_weight]  # none: the weight stays
    assert weights[-1] == expected


def test_a_dynamic_abort_with_zero_replicas_routes_nothing_to_the_canary() -> None:
    # TestDynamicScalingAbortWithZeroReplicas
    world = routed(0, [{"setWeight": 50}, {"pause": {}}], dynamicStableScale=True, maxSurge=1,
                   maxUnavailable=1)
    world.set_image(YELLOW)
    world.settle()
    route_weights(world, 50)
    world.patch_status({"abort": True})
    traffic = [a for a in world.plan().actions if isinstance(a, SetTraffic)]
    assert [a.canary_weight for a in traffic][-1:] == [0]


def test_a_new_canary_superseding_a_dynamic_one_does_not_overload_the_stable() -> None:
    # TestDynamicStableScaleNewCanarySupersedeShouldNotOverloadStable: the stable has 1 pod
    # for 10 % of the traffic; the superseded canary's 90 % may not go back to it yet
    world = routed(10, [{"setWeight": 90}, {"pause": {}}], dynamicStableScale=True,
                   maxSurge=1, maxUnavailable=0)
    world.set_image(YELLOW)
    step_through(world, check=lambda: capacity_follows_traffic(world))
    assert (world.weights(), spec_replicas(world)) == ((10, 90), {BLUE: 1, YELLOW: 9})
    world.set_image("argoproj/rollouts-demo:green")
    plan = world.plan()
    assert not [a for a in plan.actions if isinstance(a, SetTraffic)
                and a.stable_weight > world.weights()[0]]
    step_through(world, check=lambda: capacity_follows_traffic(world))
