"""Argo's delayed Service switch: a Service (or a subset) is pointed at a ReplicaSet only once
its pods are available — fully available when the Service is first adopted (no managed-by
annotation yet), at least one pod otherwise — so migrating a Service that selects running
pods never routes to pods that are not ready (issue 8, finding 1)."""

from __future__ import annotations

import pytest

from shiftd.decide.rollout.actions import CreateReplicaSet, PatchService, SetTraffic
from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.routing import may_switch_to
from shiftd.model.argo.rollout import MANAGED_BY_ANNOTATION, POD_TEMPLATE_HASH_LABEL
from tests.support.world import World

STABLE, CANARY = "istio-rollout-stable", "istio-rollout-canary"


def view(*, desired: int, available: int) -> ReplicaSetView:
    return ReplicaSetView(name="rs", pod_hash="h", revision=1, spec_replicas=desired,
                          replicas=desired, ready=available, available=available, template={})


@pytest.mark.parametrize(("desired", "available", "first_adoption", "allowed"), [
    (3, 0, False, False),
    (3, 1, False, True),
    (3, 0, True, False),
    (3, 2, True, False),
    (3, 3, True, True),
])
def test_a_switch_waits_for_one_available_pod_or_all_of_them_on_first_adoption(
        desired: int, available: int, first_adoption: bool, allowed: bool) -> None:
    assert may_switch_to(view(desired=desired, available=available),
                         first_adoption=first_adoption) is allowed


def test_no_switch_to_a_replica_set_that_does_not_exist() -> None:
    assert not may_switch_to(None, first_adoption=False)


def selector_hash(world: World, name: str) -> str | None:
    return world.services[name]["spec"]["selector"].get(POD_TEMPLATE_HASH_LABEL)


def first_deploy_held() -> tuple[World, str]:
    world = World.from_example("asm-host-split")
    world.rollout["spec"]["replicas"] = 3
    plan = world.plan()
    (created,) = [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    world.held.add(created.name)
    world.apply(plan)
    world.settle()
    return world, created.name


def test_on_first_deploy_the_services_keep_their_pods_until_the_replica_set_is_available(
) -> None:
    world, name = first_deploy_held()
    assert selector_hash(world, STABLE) is None and selector_hash(world, CANARY) is None
    assert MANAGED_BY_ANNOTATION not in (world.services[STABLE]["metadata"].get("annotations")
                                         or {})
    # one pod of several is not enough for a Service shiftd has not adopted yet
    world.replica_sets[name]["status"]["availableReplicas"] = 1
    assert not [a for a in world.plan().actions if isinstance(a, PatchService)]

    world.held.discard(name)
    world.apply(world.plan())  # the ReplicaSet's status update wakes the Rollout
    world.settle()
    pod_hash = world.status["stableRS"]
    assert selector_hash(world, STABLE) == pod_hash == selector_hash(world, CANARY)
    assert world.services[STABLE]["metadata"]["annotations"][MANAGED_BY_ANNOTATION] == \
        world.rollout["metadata"]["name"]


def test_an_adopted_canary_service_moves_once_one_pod_is_available() -> None:
    world = World.from_example("asm-host-split")
    world.settle()
    stable = world.status["stableRS"]
    world.set_image("argoproj/rollouts-demo:yellow")
    plan = world.plan()
    (created,) = [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    world.held.add(created.name)
    world.apply(plan)
    world.settle()
    assert selector_hash(world, CANARY) == stable  # still on the available stable pods
    assert world.weights() == (100, 0)
    world.replica_sets[created.name]["status"]["availableReplicas"] = 1
    switched = [a for a in world.plan().actions if isinstance(a, PatchService)]
    assert [a.name for a in switched] == [CANARY]


def test_a_subset_is_not_pointed_at_a_replica_set_before_its_pods_are_available() -> None:
    world = World.from_example("asm-host-split")
    world.routes_by_subset = True
    plan = world.plan()
    (created,) = [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    world.held.add(created.name)
    world.apply(plan)
    world.settle()
    assert world.subsets == (None, None)  # first adoption: wait for every pod
    world.held.discard(name := created.name)
    world.apply(world.plan())
    world.settle()
    assert world.subsets == (world.replica_sets[name]["metadata"]["labels"][
        POD_TEMPLATE_HASH_LABEL],) * 2
    assert not [a for a in world.plan().actions if isinstance(a, SetTraffic)]
