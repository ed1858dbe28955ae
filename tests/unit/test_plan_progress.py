"""progressDeadlineSeconds / progressDeadlineAbort, spec.paused and scaleDownDelayRevisionLimit
on the in-memory cluster, as Argo Rollouts reports and acts on them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shiftd.decide.rollout.progress import made_progress
from tests.support.world import World

BLUE, YELLOW = "argoproj/rollouts-demo:blue", "argoproj/rollouts-demo:yellow"


def world_for(replicas: int = 2, **spec: Any) -> World:
    world = World.from_example("asm-host-split")
    world.rollout["spec"].update(replicas=replicas, **spec)
    world.rollout["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {}}]
    world.settle()
    return world


def stuck_canary(**spec: Any) -> World:
    """A new revision whose pods never become available."""
    world = world_for(**spec)
    world.set_image(YELLOW)
    plan = world.plan()
    world.apply(plan)
    world.held.update(name for name in world.replica_sets
                      if world.replica_sets[name]["spec"]["template"]["spec"]["containers"][0][
                          "image"] == YELLOW)
    world._kubelet()
    world.settle()
    return world


def progressing_condition(world: World) -> dict[str, Any]:
    return next(c for c in world.status["conditions"] if c["type"] == "Progressing")


def test_an_update_without_progress_degrades_at_the_progress_deadline() -> None:
    world = stuck_canary(progressDeadlineSeconds=120)
    assert world.status["phase"] == "Progressing"
    assert world.plan().requeue_at == world.now + timedelta(seconds=121)
    world.advance(120)
    world.settle()
    assert world.status["phase"] == "Progressing"  # not yet: strictly after the deadline
    world.advance(1)
    world.settle()
    condition = progressing_condition(world)
    assert (condition["status"], condition["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert condition["message"].endswith("has timed out progressing.")
    assert world.status["phase"] == "Degraded"
    assert world.status["message"].startswith("ProgressDeadlineExceeded: ReplicaSet ")
    assert world.status.get("abort") is not True  # only reported: no progressDeadlineAbort


def test_the_deadline_wakes_the_planner() -> None:
    world = stuck_canary(progressDeadlineSeconds=120)
    plan = world.plan()
    assert plan.requeue_at is not None
    world.now = plan.requeue_at
    world.settle()
    assert world.status["phase"] == "Degraded"


def test_progress_after_the_deadline_clears_it() -> None:
    world = stuck_canary(progressDeadlineSeconds=60)
    world.advance(61)
    world.settle()
    assert world.status["phase"] == "Degraded"
    world.held.clear()
    world._kubelet()
    world.settle()
    assert progressing_condition(world)["reason"] != "ProgressDeadlineExceeded"
    assert world.status["phase"] == "Paused"


def test_progress_deadline_abort_rolls_the_update_back() -> None:
    world = stuck_canary(progressDeadlineSeconds=60, progressDeadlineAbort=True)
    world.advance(61)
    world.settle()
    status = world.status
    assert status["abort"] is True
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2")
    assert world.weights() == (100, 0)
    assert any("timed out progressing" in event for event in world.events)


def test_a_pause_step_does_not_count_against_the_deadline() -> None:
    world = world_for(progressDeadlineSeconds=60)
    world.set_image(YELLOW)
    world.settle()
    assert world.status["phase"] == "Paused"
    world.advance(3600)
    world.settle()
    assert world.status["phase"] == "Paused"


def test_a_progress_deadline_not_above_min_ready_seconds_is_invalid() -> None:
    world = world_for()
    world.edit_spec(progressDeadlineSeconds=10, minReadySeconds=10)
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "progressDeadlineSeconds must be greater than minReadySeconds" in \
        world.status["message"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({}, {}, False, id="nothing changed"),
        pytest.param({"updatedReplicas": 1}, {"updatedReplicas": 2}, True, id="pods updated"),
        pytest.param({"replicas": 4, "updatedReplicas": 2}, {"replicas": 3,
                      "updatedReplicas": 2}, True, id="old pods gone"),
        pytest.param({"readyReplicas": 2}, {"readyReplicas": 1}, False, id="fewer ready"),
        pytest.param({"availableReplicas": 1}, {"availableReplicas": 2}, True,
                     id="more available"),
        pytest.param({"stableRS": "a"}, {"stableRS": "b"}, True, id="a new stable"),
        pytest.param({"currentStepIndex": 1}, {"currentStepIndex": 2}, True, id="a step on"),
        pytest.param({}, {"currentStepIndex": 0}, False, id="a first step index"),
        pytest.param({"currentStepHash": "x"}, {"currentStepHash": "y"}, True,
                     id="other steps"),
    ],
)
def test_progress_is_argos_rollout_progressing(
    old: dict[str, Any], new: dict[str, Any], expected: bool
) -> None:
    assert made_progress(old, new) is expected


# --- spec.paused ------------------------------------------------------------------------------

def test_a_manually_paused_rollout_scales_nothing() -> None:
    world = world_for(replicas=4)
    world.edit_spec(paused=True)
    world.set_image(YELLOW)
    world.settle()
    assert world.replicas_by_image() == {BLUE: 4, YELLOW: 0}  # created empty, as Argo
    assert world.status["phase"] == "Paused"
    assert world.status["message"] == "manually paused"
    world.edit_spec(paused=False)
    world.settle()
    assert world.replicas_by_image() == {BLUE: 4, YELLOW: 2}


# --- scaleDownDelayRevisionLimit -----------------------------------------------------------------

def promote_fully(world: World, image: str) -> None:
    world.set_image(image)
    world.settle()
    world.patch_status({"promoteFull": True})
    world.settle()


@pytest.mark.parametrize(("limit", "running"), [(None, 3), (1, 2), (0, 1)])
def test_scale_down_delay_revision_limit_keeps_only_the_newest_old_revisions_up(
    limit: int | None, running: int
) -> None:
    world = World.from_example("asm-host-split")
    canary = world.rollout["spec"]["strategy"]["canary"]
    canary.update(steps=[{"setWeight": 50}, {"pause": {}}], scaleDownDelaySeconds=3600)
    world.rollout["spec"]["revisionHistoryLimit"] = 5
    if limit is not None:
        canary["scaleDownDelayRevisionLimit"] = limit
    world.settle()
    for colour in ("yellow", "orange"):
        promote_fully(world, f"argoproj/rollouts-demo:{colour}")
    scaled_up = [rs for rs in world.replica_sets.values() if rs["spec"]["replicas"] > 0]
    assert len(scaled_up) == running
    assert world.replicas_by_image()["argoproj/rollouts-demo:orange"] == 1
    if running > 1:  # the newest old revision is the one kept
        assert world.replicas_by_image()[YELLOW] == 1
