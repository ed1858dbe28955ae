"""The planner on the less travelled paths: history, adoption, basic canary, bad specs."""

from __future__ import annotations

import copy

import pytest

from shiftd.decide.rollout.hashing import pod_template_hash
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL
from tests.support.world import World


def started(folder: str = "asm-host-split") -> World:
    world = World.from_example(folder)
    world.settle()
    return world


def promote_fully(world: World, image: str) -> None:
    world.set_image(image)
    world.settle()
    world.patch_status({"promoteFull": True})
    world.settle()
    world.advance(60)
    world.settle()


def test_revision_history_limit_deletes_the_oldest_scaled_down_replicasets() -> None:
    world = started()  # revisionHistoryLimit: 2
    for colour in ("yellow", "orange", "green", "purple"):
        promote_fully(world, f"argoproj/rollouts-demo:{colour}")
    images = world.replicas_by_image()
    assert set(images) == {"argoproj/rollouts-demo:orange", "argoproj/rollouts-demo:green",
                           "argoproj/rollouts-demo:purple"}
    assert images["argoproj/rollouts-demo:purple"] == 1
    revisions = sorted(int(rs["metadata"]["annotations"]["rollout.argoproj.io/revision"])
                       for rs in world.replica_sets.values())
    assert revisions == [3, 4, 5]


def test_an_orphan_replicaset_with_the_same_template_is_adopted() -> None:
    world = World.from_example("asm-host-split")
    template = copy.deepcopy(world.rollout["spec"]["template"])
    template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "oldhash"
    world.replica_sets["istio-rollout-oldhash"] = {
        "metadata": {"name": "istio-rollout-oldhash", "labels": {POD_TEMPLATE_HASH_LABEL:
                                                                  "oldhash"}},
        "spec": {"replicas": 1, "template": template},
        "status": {"replicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    }
    world.settle()
    assert list(world.replica_sets) == ["istio-rollout-oldhash"]
    owner = world.replica_sets["istio-rollout-oldhash"]["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "uid-1" and owner["controller"] is True
    assert world.status["stableRS"] == "oldhash"
    assert world.status["phase"] == "Healthy"


def test_going_back_to_the_stable_template_skips_the_steps() -> None:
    world = started()
    stable = world.status["stableRS"]
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    assert world.weights() == (90, 10)
    world.set_image("argoproj/rollouts-demo:blue")
    world.settle()
    assert world.status["currentPodHash"] == stable
    assert world.status["currentStepIndex"] == 18
    assert world.status["phase"] == "Healthy"
    assert world.weights() == (100, 0)


def test_a_new_revision_mid_rollout_never_routes_to_unready_pods() -> None:
    world = started()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    world.patch_status({"pauseConditions": None})
    world.settle()
    assert world.weights() == (80, 20)
    world.set_image("argoproj/rollouts-demo:green")
    # green's pods never become ready: traffic may only go to blue or the ready yellow pods
    for _ in range(6):
        plan = world.plan()
        world.apply(plan)
        for name, rs in world.replica_sets.items():
            if rs["spec"]["template"]["spec"]["containers"][0]["image"].endswith("green"):
                world.held.add(name)
        world._kubelet()
        canary_selector = world.services["istio-rollout-canary"]["spec"]["selector"][
            POD_TEMPLATE_HASH_LABEL]
        selected = [rs for rs in world.replica_sets.values()
                    if rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == canary_selector]
        weight = world.weights()[1]
        assert weight == 0 or selected[0]["status"]["availableReplicas"] > 0
        assert sum(world.weights()) == 100


def basic_canary(replicas: int, steps: list[dict[str, object]]) -> World:
    world = World.from_example("asm-host-split")
    canary = world.rollout["spec"]["strategy"]["canary"]
    canary.pop("trafficRouting")
    canary.pop("canaryService")
    canary.pop("stableService")
    canary["steps"] = steps
    world.rollout["spec"]["replicas"] = replicas
    world.settle()
    return world


def test_basic_canary_approximates_the_weight_with_replica_counts() -> None:
    world = basic_canary(4, [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50},
                             {"pause": {}}])
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 3,
                                         "argoproj/rollouts-demo:yellow": 1}
    assert world.status["phase"] == "Paused"
    world.patch_status({"pauseConditions": None})
    world.settle()
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 2,
                                         "argoproj/rollouts-demo:yellow": 2}
    world.patch_status({"pauseConditions": None})
    world.settle()
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 0,
                                         "argoproj/rollouts-demo:yellow": 4}
    assert world.status["phase"] == "Healthy"


def test_basic_canary_never_exceeds_max_surge_nor_drops_below_max_unavailable() -> None:
    world = basic_canary(10, [{"setWeight": 30}, {"pause": {}}])
    world.rollout["spec"]["strategy"]["canary"].update(maxSurge=1, maxUnavailable=1)
    world.set_image("argoproj/rollouts-demo:yellow")
    for _ in range(30):
        plan = world.plan()
        if not plan.actions:
            break
        world.apply(plan)
        total = sum(rs["spec"]["replicas"] for rs in world.replica_sets.values())
        available = sum(rs["status"]["availableReplicas"] for rs in world.replica_sets.values())
        assert total <= 11
        assert available >= 9
    assert world.replicas_by_image() == {"argoproj/rollouts-demo:blue": 7,
                                         "argoproj/rollouts-demo:yellow": 3}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategy": {"canary": {"canaryService": "istio-rollout-stable"}}},
         "canaryService and spec.strategy.canary.stableService must differ"),
        ({"strategy": {"canary": {"steps": [{"pause": {"duration": "ten minutes"}}]}}},
         "steps[0].pause.duration: invalid duration"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 101}]}}},
         "setWeight must be between 0 and 100"),
        ({"strategy": {"canary": {"trafficRouting": {"istio": {"virtualService": {
            "name": "missing-vs", "routes": ["primary"]}}}}}},
         "VirtualService 'missing-vs' not found"),
        ({"strategy": {"canary": {"canaryService": "no-such-svc"}}},
         "Service 'no-such-svc' not found"),
        ({"strategy": {"blueGreen": {"activeService": "x"}}}, "blueGreen is not supported"),
    ],
)
def test_invalid_specs_degrade_with_a_message_and_patch_nothing_else(
    change: dict[str, object], message: str
) -> None:
    world = started()
    before = (copy.deepcopy(world.replica_sets), copy.deepcopy(world.services),
              copy.deepcopy(world.virtual_services))
    world.edit_spec(**change)
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert message in world.status["message"]
    assert (world.replica_sets, world.services, world.virtual_services) == before
    invalid = [c for c in world.status["conditions"] if c["type"] == "InvalidSpec"]
    assert invalid and invalid[0]["status"] == "True"


def test_destination_host_matching_neither_service_is_invalid() -> None:
    world = started()
    world.virtual_services["istio-rollout-vsvc"]["spec"]["http"][0]["route"][1][
        "destination"]["host"] = "somebody-else"
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "destination host 'somebody-else' matches neither" in world.status["message"]


def test_pod_template_hash_ignores_its_own_label() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    labelled = copy.deepcopy(template)
    labelled["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "abc"
    assert pod_template_hash(template) == pod_template_hash(labelled)
    assert len(pod_template_hash(template)) <= 10
