"""``spec.workloadRef``: the pod template comes from a Deployment, a change to the Deployment's
template starts an update, and the Deployment is scaled down as ``scaleDown`` says while the
Rollout's first revision takes over (Argo's ``templateref.go``, ``replicaset.go`` and
``sync.go``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.decide.rollout.actions import CreateReplicaSet, PatchService, ScaleDeployment
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL, InvalidSpecError, parse_rollout
from tests.support.world import World

STABLE = "istio-rollout-stable"
GENERATION = "rollout.argoproj.io/workload-generation"
Obj = dict[str, Any]


def with_deployment(*, scale_down: str | None = None, replicas: int = 5) -> World:
    """Seed 000's Rollout with its template moved into a Deployment it references."""
    world = World.from_example("asm-host-split")
    spec = world.rollout["spec"]
    spec["replicas"] = replicas
    template = spec.pop("template")
    ref: Obj = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "istio-rollout"}
    if scale_down is not None:
        ref["scaleDown"] = scale_down
    spec["workloadRef"] = ref
    world.deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istio-rollout", "namespace": "default", "generation": 1,
                     "resourceVersion": "7"},
        "spec": {"replicas": replicas, "selector": copy.deepcopy(spec["selector"]),
                 "template": template},
    }
    return world


def set_deployment_image(world: World, image: str) -> None:
    assert world.deployment is not None
    for container in world.deployment["spec"]["template"]["spec"]["containers"]:
        container["image"] = image
    world.deployment["metadata"]["generation"] += 1


def deployment_replicas(world: World) -> int:
    assert world.deployment is not None
    return int(world.deployment["spec"]["replicas"])


def test_the_template_comes_from_the_deployment_and_the_status_names_its_generation() -> None:
    world = with_deployment()
    plan = world.plan()
    (created,) = [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    assert world.deployment is not None
    deployment_image = world.deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert created.body["spec"]["template"]["spec"]["containers"][0]["image"] == \
        deployment_image
    world.apply(plan)
    world.settle()
    assert world.status["workloadObservedGeneration"] == "1"
    assert world.rollout["metadata"]["annotations"][GENERATION] == "1"
    assert world.status["phase"] == "Healthy"


def test_without_its_workload_ref_the_rollout_drops_the_generation_it_followed() -> None:
    world = with_deployment()
    world.settle()
    assert world.deployment is not None
    spec = world.rollout["spec"]
    spec["template"] = copy.deepcopy(world.deployment["spec"]["template"])
    del spec["workloadRef"]
    world.rollout["metadata"]["generation"] += 1
    world.settle()
    assert "workloadObservedGeneration" not in world.status
    assert GENERATION not in world.rollout["metadata"]["annotations"]
    assert len(world.replica_sets) == 1  # the same template: no new revision


def test_a_change_to_the_deployments_template_starts_a_canary() -> None:
    world = with_deployment()
    world.settle()
    stable = world.status["stableRS"]
    set_deployment_image(world, "argoproj/rollouts-demo:yellow")
    world.settle()
    assert world.status["workloadObservedGeneration"] == "2"
    assert world.rollout["metadata"]["annotations"][GENERATION] == "2"
    assert world.status["currentPodHash"] != stable
    assert world.status["stableRS"] == stable
    assert world.status["phase"] == "Paused"
    assert world.replicas_by_image()["argoproj/rollouts-demo:yellow"] == 1


def test_a_deployment_that_is_not_found_is_invalid_spec_until_it_appears() -> None:
    world = with_deployment()
    deployment, world.deployment = world.deployment, None
    plan = world.plan()
    assert plan.phase == "Degraded"
    (condition,) = [c for c in plan.status["conditions"] if c["type"] == "InvalidSpec"]
    assert condition["message"] == 'spec.workloadRef: deployments.apps "istio-rollout" not found'
    world.apply(plan)
    world.deployment = deployment
    world.settle()
    assert world.status["phase"] == "Healthy"


@pytest.mark.parametrize(("ref", "message"), [
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "x"},
     "workload of type apps/v1/StatefulSet is not supported"),
    ({"apiVersion": "apps/v1", "kind": "Deployment"}, "spec.workloadRef.name is required"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "scaleDown": "later"},
     "spec.workloadRef.scaleDown must be one of never, onsuccess, progressively"),
])
def test_a_workload_ref_shiftd_cannot_follow_is_invalid_spec(ref: Obj, message: str) -> None:
    world = with_deployment()
    world.rollout["spec"]["workloadRef"] = ref
    with pytest.raises(InvalidSpecError, match=message):
        world.parsed()


def test_a_rollout_with_both_a_template_and_a_workload_ref_is_invalid_spec() -> None:
    world = with_deployment()
    assert world.deployment is not None
    world.rollout["spec"]["template"] = copy.deepcopy(world.deployment["spec"]["template"])
    with pytest.raises(InvalidSpecError, match="template must be empty for workload reference"):
        world.parsed()


def test_the_selector_comes_from_the_deployment_when_the_rollout_has_none() -> None:
    world = with_deployment()
    del world.rollout["spec"]["selector"]
    assert world.parsed().selector == {"matchLabels": {"app": "istio-rollout"}}


def test_without_a_workload_ref_parsing_ignores_the_deployment() -> None:
    world = World.from_example("asm-host-split")
    assert parse_rollout(world.rollout, workload={"spec": {}}).workload_ref is None


@pytest.mark.parametrize("scale_down", [None, "never"])
def test_never_leaves_the_deployment_alone(scale_down: str | None) -> None:
    world = with_deployment(scale_down=scale_down)
    world.settle()
    set_deployment_image(world, "argoproj/rollouts-demo:yellow")
    world.settle()
    assert deployment_replicas(world) == 5


def test_onsuccess_scales_the_deployment_to_zero_once_the_rollout_is_healthy() -> None:
    world = with_deployment(scale_down="onsuccess")
    plan = world.plan()
    (created,) = [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    world.held.add(created.name)
    world.apply(plan)
    world.settle()
    assert deployment_replicas(world) == 5  # not healthy yet: the Deployment serves
    world.held.discard(created.name)
    world.apply(world.plan())  # the ReplicaSet's status update wakes the Rollout
    world.settle()
    assert world.status["phase"] == "Healthy"
    assert deployment_replicas(world) == 0
    assert any("Scaled Deployment istio-rollout to 0" in e for e in world.events)


def test_progressively_keeps_the_two_together_at_the_asked_capacity() -> None:
    world = with_deployment(scale_down="progressively")
    plan = world.plan()
    (created,) = [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    world.held.add(created.name)
    world.apply(plan)
    world.settle()
    assert deployment_replicas(world) == 5  # no Rollout pod available: nothing moves
    for available in (1, 3, 4):
        world.replica_sets[created.name]["status"].update(readyReplicas=available,
                                                          availableReplicas=available)
        (scale,) = [a for a in world.plan().actions if isinstance(a, ScaleDeployment)]
        assert scale.replicas == 5 - available
        assert scale.resource_version is not None
        # the stable Service is adopted only once every Rollout pod is available: until
        # then it keeps selecting the Deployment's pods too
        assert not [a for a in world.plan().actions if isinstance(a, PatchService)
                    and "spec" in a.patch]
    world.held.discard(created.name)
    world.settle()
    assert world.status["phase"] == "Healthy"
    assert deployment_replicas(world) == 0
    assert world.services[STABLE]["spec"]["selector"][POD_TEMPLATE_HASH_LABEL] == \
        world.status["stableRS"]


def test_the_deployment_is_scaled_only_during_the_migration() -> None:
    world = with_deployment(scale_down="onsuccess")
    world.settle()
    assert deployment_replicas(world) == 0
    assert world.deployment is not None
    world.deployment["spec"]["replicas"] = 2  # someone scales it back up after the migration
    set_deployment_image(world, "argoproj/rollouts-demo:yellow")
    world.settle()
    world.advance(3600)
    world.patch_status({"promoteFull": True})
    world.settle()
    assert world.status["phase"] == "Healthy"
    assert deployment_replicas(world) == 2
