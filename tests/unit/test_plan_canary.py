"""The planner walked through whole rollouts on an in-memory cluster (pure, no I/O)."""

from __future__ import annotations

from tests.support.world import World


def started_world(folder: str = "asm-host-split") -> World:
    world = World.from_example(folder)
    world.settle()
    return world


def test_first_rollout_goes_straight_to_stable() -> None:
    world = started_world()
    status = world.status
    assert status["phase"] == "Healthy"
    assert status["stableRS"] == status["currentPodHash"]
    assert status["currentStepIndex"] == 18
    assert world.weights() == (100, 0)
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 1}
    for service in world.services.values():
        assert service["spec"]["selector"]["rollouts-pod-template-hash"] == status["stableRS"]


def test_a_settled_rollout_writes_nothing() -> None:
    world = started_world()
    world.advance(3600)
    plan = world.plan()
    assert plan.actions == ()
    assert plan.events == ()


def test_seed_000_walks_every_step_to_full_promotion() -> None:
    world = started_world()
    stable_hash = world.status["stableRS"]
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    status = world.status
    canary_hash = status["currentPodHash"]
    assert canary_hash != stable_hash
    assert status["currentStepIndex"] == 1
    assert status["phase"] == "Paused"
    assert status["message"] == "CanaryPauseStep"
    assert world.weights() == (90, 10)
    assert world.services["istio-rollout-canary"]["spec"]["selector"][
        "rollouts-pod-template-hash"] == canary_hash
    assert world.services["istio-rollout-stable"]["spec"]["selector"][
        "rollouts-pod-template-hash"] == stable_hash
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 1,
                                         "argoproj/rollouts-demo:yellow": 1}

    # an indefinite pause waits, whatever the time
    world.advance(7200)
    assert world.plan().actions == ()

    # kubectl argo rollouts promote: clears the pause conditions
    world.patch_status({"pauseConditions": None})
    for weight in (20, 30, 40, 50, 60, 70, 80, 90):
        world.settle()
        assert world.weights() == (100 - weight, weight)
        assert world.status["phase"] == "Paused"
        plan = world.plan()
        assert plan.requeue_at is not None
        world.now = plan.requeue_at
    world.settle()
    status = world.status
    assert status["phase"] == "Healthy", status.get("message")
    assert status["stableRS"] == canary_hash
    assert world.weights() == (100, 0)
    for service in world.services.values():
        assert service["spec"]["selector"]["rollouts-pod-template-hash"] == canary_hash
    # the old stable keeps its pods for scaleDownDelaySeconds, then goes
    assert world.replicas_by_image()["argoproj/rollouts-demo:blue"] == 1
    plan = world.plan()
    assert plan.requeue_at is not None
    world.now = plan.requeue_at
    world.settle()
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 0,
                                         "argoproj/rollouts-demo:yellow": 1}


def test_weight_is_not_raised_before_the_canary_is_available() -> None:
    world = started_world("imesh-host-split")
    world.set_image("nginx:1.15.5")
    canary_name = None
    for _ in range(5):
        plan = world.plan()
        world.apply(plan)
        if canary_name is None:
            canary_name = next(n for n, rs in world.replica_sets.items()
                               if rs["spec"]["template"]["spec"]["containers"][0]["image"]
                               == "nginx:1.15.5")
            world.held.add(canary_name)
            world._kubelet()
    assert world.weights() == (100, 0)
    world.held.clear()
    world._kubelet()
    world.settle()
    assert world.weights() == (50, 50)
    assert world.status["phase"] == "Paused"


def test_abort_moves_weight_to_zero_at_once_and_degrades() -> None:
    world = started_world()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    world.patch_status({"pauseConditions": None})
    world.settle()
    assert world.weights() == (80, 20)
    world.patch_status({"abort": True})
    plan = world.plan()
    world.apply(plan)
    assert world.weights() == (100, 0)
    world.settle()
    status = world.status
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2")
    assert status["currentStepIndex"] == 0
    assert world.services["istio-rollout-canary"]["spec"]["selector"][
        "rollouts-pod-template-hash"] == status["stableRS"]
    # canary pods stay for abortScaleDownDelaySeconds, then are removed
    assert world.replicas_by_image()["argoproj/rollouts-demo:yellow"] == 1
    world.advance(30)
    world.settle()
    assert world.replicas_by_image()["argoproj/rollouts-demo:yellow"] == 0


def test_retry_after_abort_starts_the_steps_again() -> None:
    world = started_world()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    world.patch_status({"abort": True})
    world.settle()
    world.patch_status({"abort": False})
    world.settle()
    assert world.status["phase"] == "Paused"
    assert world.status["currentStepIndex"] == 1
    assert world.weights() == (90, 10)


def test_promote_full_skips_the_remaining_steps() -> None:
    world = started_world()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    world.patch_status({"promoteFull": True})
    world.settle()
    status = world.status
    assert status["phase"] == "Healthy"
    assert status["stableRS"] == status["currentPodHash"]
    assert status.get("promoteFull") is False
    assert world.weights() == (100, 0)


def test_manual_pause_holds_the_rollout() -> None:
    world = started_world()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    world.patch_status({"pauseConditions": None})
    world.edit_spec(paused=True)
    world.settle()
    assert world.status["phase"] == "Paused"
    assert world.status["message"] == "manually paused"
    step = world.status["currentStepIndex"]
    world.advance(600)
    world.settle()
    assert world.status["currentStepIndex"] == step
    world.edit_spec(paused=False)
    world.settle()
    assert world.status["currentStepIndex"] > step


def test_invalid_spec_is_reported_and_recovered_from() -> None:
    world = started_world()
    world.edit_spec(strategy={"canary": {"steps": [{"setWeight": 120}]}})
    world.settle()
    status = world.status
    assert status["phase"] == "Degraded"
    assert "setWeight must be between 0 and 100" in status["message"]
    world.edit_spec(strategy={"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}})
    world.settle()
    assert world.status["phase"] == "Healthy"
    assert not [c for c in world.status["conditions"] if c["type"] == "InvalidSpec"]


def test_missing_route_is_invalid_spec_and_nothing_is_patched() -> None:
    world = started_world()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.edit_spec(strategy={"canary": {"trafficRouting": {"istio": {"virtualService": {
        "name": "istio-rollout-vsvc", "routes": ["secondary"]}}}}})
    before = len(world.replica_sets)
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "HTTP route 'secondary' not found" in world.status["message"]
    assert len(world.replica_sets) == before
