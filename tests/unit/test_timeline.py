"""``decide.timeline``: the offline plan is the daemon's plan.

The timeline drives ``plan_rollout`` in its own in-memory cluster; here an independent driver
(``tests/support/world.py``, which applies plans the way the API server would, VirtualService
JSON patches included) walks the same update pause by pause, and every pause of the timeline
must show exactly the weight and replica counts the World holds while it waits there.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.decide.rollout.actions import PatchReplicaSet, SetTraffic
from shiftd.decide.rollout.observed import Observed, ReplicaSetView, ServiceView
from shiftd.decide.rollout.timeline import (
    AnalysisRef,
    TimelineError,
    action_json,
    next_action,
    rollout_timeline,
)
from shiftd.decide.traffic import TrafficObservation
from shiftd.model.argo.rollout import InvalidSpecError, parse_rollout
from tests.support.world import World, load_example

Obj = dict[str, Any]


def basic_canary(*, replicas: int = 10, max_surge: Any = 2, max_unavailable: Any = 1) -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "basic", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "basic"}},
            "template": {"metadata": {"labels": {"app": "basic"}},
                         "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
            "strategy": {"canary": {
                "maxSurge": max_surge, "maxUnavailable": max_unavailable,
                "steps": [{"setWeight": 25}, {"pause": {"duration": "30s"}},
                          {"setWeight": 50}, {"pause": {}}, {"setWeight": 75},
                          {"pause": {"duration": 10}}],
            }},
        },
    }


def _replicas(world: World, pod_hash: str | None) -> int:
    return sum(int(rs["spec"]["replicas"]) for rs in world.replica_sets.values()
               if rs["metadata"]["labels"].get("rollouts-pod-template-hash") == pod_hash)


def walk(world: World, image: str) -> dict[int, tuple[int | None, int, int]]:
    """Update ``world`` to ``image`` and record, at each step it waits at, the canary weight
    (None without a VirtualService) and the canary and stable ReplicaSets' sizes."""
    world.settle()
    world.set_image(image)
    seen: dict[int, tuple[int | None, int, int]] = {}
    for _ in range(100):
        plan = world.settle()
        status = world.status
        if status.get("stableRS") == status.get("currentPodHash"):
            return seen
        weight = world.weights()[1] if world.virtual_services else None
        seen[int(status["currentStepIndex"])] = (
            weight, _replicas(world, status["currentPodHash"]),
            _replicas(world, status["stableRS"]))
        if plan.requeue_at is not None:
            world.now = plan.requeue_at
        else:  # a pause without a duration: promote it as the plugin does
            world.patch_status({"pauseConditions": None})
    raise AssertionError("the World never finished the update")


def image_of(rollout: Obj) -> str:
    return str(rollout["spec"]["template"]["spec"]["containers"][0]["image"])


def world_after_update(world: World, image: str) -> Obj:
    """The Rollout as the timeline must see it: the World's, with the new image."""
    rollout = copy.deepcopy(world.rollout)
    for container in rollout["spec"]["template"]["spec"]["containers"]:
        container["image"] = image
    return rollout


WORLDS = [
    pytest.param(lambda: World.from_example("asm-host-split"), id="seed 000"),
    pytest.param(lambda: World.from_example("imesh-host-split"), id="seed 001"),
    pytest.param(lambda: World.from_example("myapp-analysis", with_analysis=True),
                 id="seed 002 with its background analysis"),
    pytest.param(lambda: World(rollout=basic_canary() | {"metadata": {
        "name": "basic", "namespace": "default", "uid": "uid-1", "generation": 1,
        "resourceVersion": "1"}}, services={}, virtual_services={}),
        id="basic canary with maxSurge 2 and maxUnavailable 1"),
    pytest.param(lambda: World(rollout=basic_canary(replicas=4, max_surge="25%",
                                                    max_unavailable=0) | {"metadata": {
        "name": "basic", "namespace": "default", "uid": "uid-1", "generation": 1,
        "resourceVersion": "1"}}, services={}, virtual_services={}),
        id="basic canary of 4 with maxSurge 25% and maxUnavailable 0"),
]


@pytest.mark.parametrize("world_of", WORLDS)
def test_every_pause_of_the_timeline_holds_what_the_world_holds_there(world_of: Any) -> None:
    world = world_of()
    timeline = rollout_timeline(world_after_update(world, "next:2"))
    seen = walk(world, "next:2")
    assert seen, "the World waited nowhere"
    for index, (weight, canary, stable) in seen.items():
        step = timeline.steps[index]
        assert (step.canary_replicas, step.stable_replicas) == (canary, stable), index
        if weight is not None:
            assert step.canary_weight == weight, index


@pytest.mark.parametrize("world_of", WORLDS)
def test_a_set_weight_step_leaves_what_the_following_pause_then_holds(world_of: Any) -> None:
    world = world_of()
    timeline = rollout_timeline(world_after_update(world, "next:2"))
    for index, (_, canary, stable) in walk(world, "next:2").items():
        before = timeline.steps[index - 1]
        assert (before.canary_replicas, before.stable_replicas) == (canary, stable), index


def test_the_timeline_of_seed_000_lists_each_step_with_its_weight_and_time() -> None:
    rollout = next(d for d in load_example("asm-host-split") if d["kind"] == "Rollout"
                   and "analysis" not in d["spec"]["strategy"]["canary"])
    timeline = rollout_timeline(rollout)
    assert [(s.index, s.canary_weight, s.canary_replicas, s.stable_replicas)
            for s in timeline.steps[:4]] == [(0, 10, 1, 1), (1, 10, 1, 1), (2, 20, 1, 1),
                                             (3, 20, 1, 1)]
    assert timeline.steps[1].manual and timeline.steps[1].pause_seconds is None
    assert timeline.steps[3].pause_seconds == 20.0
    assert [s.at_seconds for s in timeline.steps[2:6]] == [0.0, 20.0, 20.0, 40.0]
    assert timeline.promoted_at_seconds == 160.0
    assert timeline.settled_at_seconds == 190.0  # the default scaleDownDelaySeconds of 30


def test_background_analysis_is_listed_from_its_starting_step() -> None:
    rollout = next(d for d in load_example("asm-host-split") if d["kind"] == "Rollout"
                   and "analysis" in d["spec"]["strategy"]["canary"])
    timeline = rollout_timeline(rollout)
    background = AnalysisRef("background", ("istio-success-rate",))
    assert timeline.steps[0].analysis == ()
    assert all(step.analysis == (background,) for step in timeline.steps[1:])


def test_a_step_analysis_is_assumed_to_succeed_and_named() -> None:
    rollout = basic_canary()
    rollout["spec"]["strategy"]["canary"]["steps"].append(
        {"analysis": {"templates": [{"templateName": "check"}]}})
    timeline = rollout_timeline(rollout)
    assert timeline.steps[-1].analysis == (AnalysisRef("step", ("check",)),)
    assert timeline.steps[-1].canary_replicas == 8


def test_a_rollout_without_steps_is_promoted_at_once() -> None:
    rollout = basic_canary()
    del rollout["spec"]["strategy"]["canary"]["steps"]
    timeline = rollout_timeline(rollout)
    assert timeline.steps == ()
    assert timeline.promoted_at_seconds == 0.0


def test_an_invalid_rollout_raises_the_daemons_invalid_spec() -> None:
    rollout = basic_canary()
    rollout["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {"duration": "5x"}}
    with pytest.raises(InvalidSpecError, match=r"steps\[1\]\.pause\.duration"):
        rollout_timeline(rollout)


def test_timeline_error_is_a_value_error() -> None:
    assert issubclass(TimelineError, ValueError)


# --- the next action ---------------------------------------------------------------------------

def test_the_next_action_from_a_paused_state_is_nothing_and_says_it_waits_for_promote() -> None:
    world = World.from_example("asm-host-split")
    world.settle()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    rollout = parse_rollout(world.rollout)
    observed = world_observed(world)
    result = next_action(rollout, observed, now=world.now,
                         resource_version=world.rollout["metadata"]["resourceVersion"])
    assert result.plan.actions == ()
    assert (result.canary_weight, result.canary_replicas, result.stable_replicas) == (10, 1, 1)
    assert "waiting for `promote`" in result.reason
    assert "step 1/18" in result.reason


def test_the_next_action_after_promote_moves_to_the_next_weight_in_two_reconciles() -> None:
    world = World.from_example("imesh-host-split")
    world.settle()
    world.set_image("nginx:1.15.5")
    rollout = parse_rollout(world.rollout)
    result = next_action(rollout, world_observed(world), now=world.now,
                         resource_version=world.rollout["metadata"]["resourceVersion"])
    kinds = [type(action).__name__ for action in result.plan.actions]
    assert kinds[0] == "CreateReplicaSet"
    assert (result.canary_replicas, result.stable_replicas) == (1, 2)
    assert result.canary_weight == 0  # pods first, weight once they are available
    assert "Created ReplicaSet" in result.reason
    assert action_json(result.plan.actions[0], rollout=rollout)["replicas"] == 1


def test_actions_are_spelled_with_a_kind_and_a_target() -> None:
    rollout = parse_rollout(next(d for d in load_example("asm-host-split")
                                 if d["kind"] == "Rollout"))
    assert action_json(SetTraffic(canary_weight=10, canary_hash="c", stable_hash="s"),
                       rollout=rollout) == {
        "kind": "SetTraffic", "target": "VirtualService/istio-rollout-vsvc",
        "canaryWeight": 10, "stableWeight": 90, "canaryHash": "c", "stableHash": "s"}
    assert action_json(PatchReplicaSet(name="x", patch={"spec": {"replicas": 3}}),
                       rollout=rollout) == {"kind": "PatchReplicaSet",
                                            "target": "ReplicaSet/x", "replicas": 3,
                                            "patch": {"spec": {"replicas": 3}}}


def world_observed(world: World) -> Observed:
    parsed = parse_rollout(world.rollout)
    return Observed(
        replica_sets=tuple(ReplicaSetView.from_object(rs, rollout_uid="uid-1")
                           for rs in world.replica_sets.values()),
        services={name: ServiceView.from_object(svc) for name, svc in world.services.items()},
        traffic=TrafficObservation(canary_weight=world.weights()[1])
        if parsed.canary.traffic_routed else None,
    )

