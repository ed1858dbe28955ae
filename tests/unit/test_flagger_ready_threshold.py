"""primaryReadyThreshold and canaryReadyThreshold: Flagger's isDeploymentReady asks for the
threshold's share of the updated replicas to be available, the share computed in float32 and
truncated as Go does; at its edges, and as the Canary machine applies each to its Deployment."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.workloads import not_ready, ready_replicas_needed
from tests.unit.test_flagger_machine import World

Obj = dict[str, Any]


def deployment(*, updated: int, available: int) -> Obj:
    return {"metadata": {"name": "podinfo", "generation": 1}, "spec": {"replicas": updated},
            "status": {"observedGeneration": 1, "replicas": updated, "updatedReplicas": updated,
                       "availableReplicas": available}}


@pytest.mark.parametrize(("updated", "threshold", "needed"), [
    (4, 100, 4), (4, 50, 2), (4, 51, 2), (4, 74, 2), (4, 75, 3), (4, 0, 0),
    (3, 75, 2),       # 2.25 truncated
    (1, 99, 0),       # below one replica: none needed
    (300, 21, 62),    # float32: 300 * 0.21f is 62.99999..., not 63
    (900, 13, 116),
    (0, 100, 0),
])
def test_the_replicas_needed_are_the_threshold_share_truncated_in_float32(
        updated: int, threshold: int, needed: int) -> None:
    assert ready_replicas_needed(updated, threshold) == needed


@pytest.mark.parametrize(("available", "threshold", "expected"), [
    (2, 50, None),
    (1, 50, "1 of 2 (readyThreshold 50%) updated replicas are available"),
    (3, 75, None),
    (2, 75, "2 of 3 (readyThreshold 75%) updated replicas are available"),
    (0, 0, None),
    (3, 100, "3 of 4 (readyThreshold 100%) updated replicas are available"),
])
def test_a_deployment_is_ready_once_the_threshold_share_is_available(
        available: int, threshold: int, expected: str | None) -> None:
    found = not_ready(deployment(updated=4, available=available), threshold_percent=threshold)
    assert found == (None if expected is None else f"waiting for rollout to finish: {expected}")


def partly_available(obj: Obj, *, available: int) -> None:
    obj["spec"]["replicas"] = 4
    obj["status"].update(replicas=4, updatedReplicas=4, availableReplicas=available)


@pytest.mark.parametrize(("threshold", "initialized"), [(50, True), (75, False)])
def test_the_primary_ready_threshold_decides_when_the_canary_is_initialized(
        threshold: int, initialized: bool) -> None:
    world = World.seed(primaryReadyThreshold=threshold)
    world.step()
    partly_available(world.objects[("Deployment", "podinfo-primary")], available=2)
    world.step()
    assert (world.status["phase"] == st.INITIALIZED) is initialized
    waiting = ("podinfo-primary.test not ready: waiting for rollout to finish: 2 of 3 "
               "(readyThreshold 75%) updated replicas are available")
    assert (waiting in world.events) is not initialized


@pytest.mark.parametrize(("threshold", "advances"), [(50, True), (75, False)])
def test_the_canary_ready_threshold_decides_when_the_analysis_advances(
        threshold: int, advances: bool) -> None:
    world = World.seed(canaryReadyThreshold=threshold)
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    assert world.status["phase"] == st.PROGRESSING
    partly_available(world.target, available=2)
    world.tick()
    assert world.weight == (10 if advances else 0)
    waiting = ("canary deployment podinfo.test not ready: waiting for rollout to finish: "
               "2 of 3 (readyThreshold 75%) updated replicas are available")
    assert (waiting in world.events) is not advances
