"""``shiftctl plan`` on the fields of issue 9 that the timeline alone does not show: route steps
(``managedRoutes``), and with ``--state`` subset routing through a DestinationRule with
canary/stable metadata, a due ``restartAt`` (the pods given in the state), and a progress
deadline passed (with and without ``progressDeadlineAbort``). With ``--state`` the command
must say what the in-memory cluster's next reconcile does."""

from __future__ import annotations

import copy
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftd.cli.ctl import main
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL
from tests.support.world import World, load_example
from tests.unit.test_ctl_plan import rollout_file, state_file
from tests.unit.test_plan_progress import stuck_canary
from tests.unit.test_plan_restart import restartable_world
from tests.unit.test_plan_subsets import FOLDER, seed_004_world

Obj = dict[str, Any]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def at(world: World) -> str:
    return world.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_of(capsys: pytest.CaptureFixture[str], world: World, tmp_path: Path,
            *extra: Path, files: tuple[Path, ...] = ()) -> Obj:
    """``plan -f ROLLOUT --state STATE [--state EXTRA...] -o json`` at the world's time."""
    args = ["plan", "-f", str(rollout_file(world, tmp_path / "rollout.yaml"))]
    for path in files:
        args += ["-f", str(path)]
    args += ["--state", str(state_file(world, tmp_path / "state.yaml"))]
    for path in extra:
        args += ["--state", str(path)]
    code, out, err = run(capsys, *args, "--now", at(world), "-o", "json")
    assert code == 0, err
    document: Obj = json.loads(out)["next"]
    return document


def kinds(world: World) -> list[str]:
    return [type(action).__name__ for action in world.plan().actions]


# --- managedRoutes: the route steps in the timeline ---------------------------------------------

ROUTE_STEPS = [
    {"setWeight": 10},
    {"setMirrorRoute": {"name": "mirror-route", "percentage": 35,
                        "match": [{"method": {"exact": "GET"}}]}},
    {"setHeaderRoute": {"name": "header-route",
                        "match": [{"headerName": "x-canary", "headerValue": {"exact": "yes"}}]}},
    {"pause": {}},
    {"setHeaderRoute": {"name": "header-route"}},
]


def test_plan_describes_each_route_step_of_the_timeline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    documents = [d for d in load_example("asm-host-split")
                 if not (d["kind"] == "Rollout" and "analysis" in d["spec"]["strategy"]["canary"])]
    for document in documents:
        if document["kind"] == "Rollout":
            canary = document["spec"]["strategy"]["canary"]
            canary["trafficRouting"]["managedRoutes"] = [{"name": "header-route"},
                                                         {"name": "mirror-route"}]
            canary["steps"] = ROUTE_STEPS
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    code, out, err = run(capsys, "plan", "-f", str(path))
    assert (code, err) == (0, "")
    assert "setMirrorRoute: mirror-route (35% mirrored to canary)" in out
    assert "setHeaderRoute: header-route (x-canary exact 'yes' -> canary)" in out
    assert "setHeaderRoute: remove header-route" in out
    code, out, _ = run(capsys, "plan", "-f", str(path), "-o", "json")
    assert code == 0
    assert [step["step"] for step in json.loads(out)["steps"]] == ROUTE_STEPS


# --- destinationRule subsets and canary/stable metadata (seed 004) ---------------------------


def destination_rule(world: World) -> Obj:
    """Seed 004's DestinationRule with the hashes the world's subsets select now."""
    (rule,) = [copy.deepcopy(d) for d in load_example(FOLDER) if d["kind"] == "DestinationRule"]
    hashes = {"canary": world.subsets[0], "stable": world.subsets[1]}
    for subset in rule["spec"]["subsets"]:
        if hashes.get(subset["name"]):
            subset["labels"][POD_TEMPLATE_HASH_LABEL] = hashes[subset["name"]]
    return rule


def seed_004_files(world: World, tmp_path: Path) -> tuple[tuple[Path, ...], Path]:
    assert world.deployment is not None
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(yaml.safe_dump(world.deployment))
    rule = tmp_path / "rule.yaml"
    rule.write_text(yaml.safe_dump(destination_rule(world)))
    return (deployment,), rule


def test_plan_state_moves_the_canary_subset_onto_pods_that_carry_the_canary_metadata(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = seed_004_world()
    world.settle()
    stable = world.status["stableRS"]
    assert world.deployment is not None
    world.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "reviews:v2"
    world.deployment["metadata"]["generation"] = 2
    files, rule = seed_004_files(world, tmp_path)
    document = next_of(capsys, world, tmp_path, rule, files=files)
    assert [a["kind"] for a in document["actions"]] == kinds(world)
    (created,) = [a for a in document["actions"] if a["kind"] == "CreateReplicaSet"]
    labels = created["body"]["spec"]["template"]["metadata"]["labels"]
    assert labels["version"] == "canary"  # canaryMetadata
    assert labels["service.istio.io/canonical-revision"] == "canary"
    # the subset is not moved onto the canary before it has pods
    assert not [a for a in document["actions"] if a["kind"] == "SetTraffic"
                and a["canaryHash"] != stable]
    world.apply(world.plan())  # the canary ReplicaSet is created; its pods become available
    canary = world.status["currentPodHash"]
    files, rule = seed_004_files(world, tmp_path)
    document = next_of(capsys, world, tmp_path, rule, files=files)
    assert [a["kind"] for a in document["actions"]] == kinds(world)
    (traffic,) = [a for a in document["actions"] if a["kind"] == "SetTraffic"]
    assert traffic["target"].startswith("DestinationRule/reviews,")
    assert (traffic["canaryHash"], traffic["stableHash"]) == (canary, stable)
    assert (traffic["canaryWeight"], traffic["stableWeight"]) == (10, 90)


# --- restartAt --------------------------------------------------------------------------------


def pods_file(world: World, path: Path) -> Path:
    """The world's pods as ``kubectl get pods -o yaml`` prints them (all Ready)."""
    assert world.pods is not None
    items = [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ownerReferences": [{"kind": "ReplicaSet", "name": owner, "controller": True}]},
        "status": {"conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2020-01-01T00:00:00Z"}]}}
        for name, (owner, created) in world.pods.items()]
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def test_plan_state_with_the_pods_shows_the_restart_batch_the_daemon_evicts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = restartable_world()
    expected = world.plan()
    (eviction,) = expected.actions
    document = next_of(capsys, world, tmp_path, pods_file(world, tmp_path / "pods.yaml"))
    names = getattr(eviction, "names", ())
    assert document["actions"] == [{"kind": "EvictPods",
                                    "target": ",".join(f"Pod/{n}" for n in names)}]
    assert len(names) == 1  # maxUnavailable 25 % of 4


def test_plan_state_without_the_pods_says_the_rollout_is_restarting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = restartable_world()
    document = next_of(capsys, world, tmp_path)
    assert not [a for a in document["actions"] if a["kind"] == "EvictPods"]
    assert document["phase"] == "Progressing"


# --- progressDeadlineSeconds / progressDeadlineAbort ------------------------------------------


@pytest.mark.parametrize("abort", [False, True])
def test_plan_state_past_the_progress_deadline_reports_it_as_argo_does(
    abort: bool, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = stuck_canary(progressDeadlineSeconds=60, progressDeadlineAbort=abort)
    world.advance(61)
    document = next_of(capsys, world, tmp_path)
    assert [a["kind"] for a in document["actions"]] == kinds(world)
    (status,) = [a["patch"] for a in document["actions"] if a["kind"] == "PatchRolloutStatus"]
    assert document["phase"] == "Degraded"
    if abort:  # progressDeadlineAbort: the update is aborted at once
        assert status["abort"] is True
        assert status["message"].startswith("RolloutAborted: ")
    else:
        (progressing,) = [c for c in status["conditions"] if c["type"] == "Progressing"]
        assert (progressing["status"], progressing["reason"]) == ("False",
                                                                  "ProgressDeadlineExceeded")
        assert status["message"].startswith("ProgressDeadlineExceeded: ")
        assert not status.get("abort")
