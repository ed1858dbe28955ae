"""The planner with AnalysisRuns: created when due, failed runs abort, inconclusive ones pause,
stale ones are terminated; and the stable Service moves before the weights at promotion."""

from __future__ import annotations

from shiftd.decide.rollout.actions import PatchAnalysisRun, PatchService, SetTraffic
from tests.support.world import World


def analysed(folder: str = "asm-host-split") -> World:
    world = World.from_example(folder, with_analysis=True)
    world.settle()
    world.set_image("argoproj/rollouts-demo:orange")
    world.settle()
    return world


def background_runs(world: World) -> list[str]:
    return sorted(name for name, run in world.analysis_runs.items()
                  if run["metadata"]["labels"]["rollout-type"] == "Background")


def test_background_analysis_starts_at_its_starting_step() -> None:
    world = analysed()
    assert world.status["currentStepIndex"] == 1
    (name,) = background_runs(world)
    run = world.analysis_runs[name]
    pod_hash = world.status["currentPodHash"]
    assert name == f"istio-rollout-{pod_hash}-2"
    assert run["metadata"]["labels"]["rollouts-pod-template-hash"] == pod_hash
    assert run["metadata"]["ownerReferences"][0]["kind"] == "Rollout"
    args = {a["name"]: a["value"] for a in run["spec"]["args"]}
    assert args == {"service": "canary", "namespace": "default"}
    assert 'destination_service=~"canary.default.svc.cluster.local"' in run["spec"]["metrics"][
        0]["provider"]["prometheus"]["query"]
    assert world.status["canary"]["currentBackgroundAnalysisRunStatus"]["name"] == name


def test_a_failed_background_run_aborts_the_rollout() -> None:
    world = analysed()
    world.patch_status({"pauseConditions": None})
    world.settle()
    assert world.weights() == (80, 20)
    (name,) = background_runs(world)
    message = 'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'
    world.finish_run(name, "Failed", message)
    world.apply(world.plan())
    assert world.weights() == (100, 0)
    world.settle()
    status = world.status
    assert status["phase"] == "Degraded"
    assert status["abort"] is True
    assert status["message"] == (
        f"RolloutAborted: Rollout aborted update to revision 2: {message}")
    assert status["canary"]["currentBackgroundAnalysisRunStatus"]["status"] == "Failed"

    world.patch_status({"abort": False})  # kubectl argo rollouts retry
    world.settle()
    assert background_runs(world) == [name, f"{name}.1"]
    assert world.status["phase"] == "Paused"


def test_an_inconclusive_run_pauses_until_a_human_promotes() -> None:
    world = analysed()
    world.patch_status({"pauseConditions": None})
    world.settle()
    (name,) = background_runs(world)
    world.finish_run(name, "Inconclusive", "inconclusive (1) > inconclusiveLimit (0)")
    world.settle()
    reasons = [c["reason"] for c in world.status["pauseConditions"]]
    assert "InconclusiveAnalysisRun" in reasons
    world.advance(60)
    world.settle()
    assert world.weights() == (80, 20)  # held while inconclusive
    world.patch_status({"pauseConditions": None})
    world.settle()
    assert f"{name}.1" in background_runs(world)


def test_promotion_terminates_the_background_run() -> None:
    world = analysed()
    (name,) = background_runs(world)
    world.patch_status({"promoteFull": True})
    plans = []
    for _ in range(10):
        plan = world.plan()
        if not plan.actions:
            break
        plans.append(plan)
        world.apply(plan)
    assert world.status["phase"] == "Healthy"
    assert any(isinstance(a, PatchAnalysisRun) and a.name == name
               and a.patch == {"spec": {"terminate": True}} for p in plans for a in p.actions)


def test_a_step_analysis_must_succeed_before_the_step_completes() -> None:
    world = World.from_example("asm-host-split", with_analysis=True)
    canary = world.rollout["spec"]["strategy"]["canary"]
    canary.pop("analysis")
    canary["steps"] = [{"setWeight": 10},
                       {"analysis": {"templates": [{"templateName": "istio-success-rate"}],
                                     "args": [{"name": "service", "value": "canary"},
                                              {"name": "namespace", "value": "default"}]}},
                       {"setWeight": 50}, {"pause": {}}]
    world.settle()
    world.set_image("argoproj/rollouts-demo:orange")
    world.settle()
    assert world.status["currentStepIndex"] == 1
    (name,) = list(world.analysis_runs)
    assert world.analysis_runs[name]["metadata"]["labels"]["step-index"] == "1"
    assert world.weights() == (90, 10)
    world.finish_run(name, "Successful")
    world.settle()
    assert world.status["currentStepIndex"] == 3
    assert world.weights() == (50, 50)


def test_a_required_arg_without_a_value_is_invalid_spec_naming_it() -> None:
    world = World.from_example("asm-host-split", with_analysis=True)
    canary = world.rollout["spec"]["strategy"]["canary"]
    canary["analysis"]["args"] = [a for a in canary["analysis"]["args"]
                                  if a["name"] != "namespace"]
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "args.namespace has no value" in world.status["message"]


def test_at_promotion_the_stable_service_moves_before_the_weights() -> None:
    world = World.from_example("imesh-host-split")
    world.settle()
    world.set_image("nginx:1.15.5")
    world.settle()
    world.advance(3600)
    plan = world.plan()
    while not any(isinstance(a, SetTraffic) for a in plan.actions):
        world.apply(plan)
        plan = world.plan()
    kinds = [(type(a).__name__, getattr(a, "name", "")) for a in plan.actions]
    stable_switch = next(i for i, a in enumerate(plan.actions)
                         if isinstance(a, PatchService) and a.name == "stable-svc")
    weights = next(i for i, a in enumerate(plan.actions) if isinstance(a, SetTraffic))
    assert stable_switch < weights, kinds


def test_analysis_run_metadata_labels_and_annotates_every_run() -> None:
    world = World.from_example("asm-host-split", with_analysis=True)
    world.rollout["spec"]["strategy"]["canary"]["analysisRunMetadata"] = {
        "labels": {"team": "shop"}, "annotations": {"owner": "payments"}}
    world.settle()
    world.set_image("argoproj/rollouts-demo:orange")
    world.settle()
    (name,) = background_runs(world)
    metadata = world.analysis_runs[name]["metadata"]
    assert metadata["labels"]["team"] == "shop"
    assert metadata["labels"]["rollout-type"] == "Background"
    assert metadata["annotations"]["owner"] == "payments"


def _terminated(world: World, name: str) -> bool:
    return bool(world.analysis_runs[name].get("spec", {}).get("terminate"))


def test_an_abort_terminates_the_running_background_run() -> None:
    world = analysed()
    (name,) = background_runs(world)
    assert not _terminated(world, name)
    world.patch_status({"abort": True})
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert _terminated(world, name)


def test_a_new_revision_terminates_the_previous_revisions_run() -> None:
    world = analysed()
    (first,) = background_runs(world)
    world.set_image("argoproj/rollouts-demo:green")
    world.settle()
    assert _terminated(world, first)
    current = [n for n in background_runs(world) if n != first]
    assert current == [] or not _terminated(world, current[0])
