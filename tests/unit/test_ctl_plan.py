"""``shiftctl plan``: golden timelines of the seeds' examples, and the next action from state.

Without ``--state`` the numbers come from ``decide.timeline`` (tested against the World in
``test_timeline.py``); these tests pin the command's table and its JSON contract
(``docs/plan-json.md``). With ``--state``, the state file is what the World holds at some
point of an update, and the command must say exactly what the World's next reconcile does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftd.cli.ctl import main
from tests.golden import assert_golden
from tests.support.world import EXAMPLES, World
from tests.unit.test_timeline import basic_canary

NOW = "2026-01-01T00:00:00Z"
SEEDS = {
    "000": ["asm-host-split/rollout.yaml", "asm-host-split/services.yaml",
            "asm-host-split/virtualservice.yaml"],
    "001": ["imesh-host-split/all.yaml"],
    "002": ["myapp-analysis/all.yaml"],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files(seed: str) -> list[str]:
    return [arg for name in SEEDS[seed] for arg in ("-f", str(EXAMPLES / name))]


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_the_timeline_table_of_each_seed_matches_its_golden_file(
    seed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "plan", *files(seed))
    assert (code, err) == (0, "")
    assert_golden(f"plan-{seed}.txt", out)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_the_timeline_json_of_each_seed_matches_its_golden_file(
    seed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plan", *files(seed), "-o", "json")
    assert code == 0
    document = json.loads(out)
    assert set(document["steps"][0]) >= {"index", "step", "canaryWeight", "canaryReplicas",
                                          "stableReplicas", "pause", "analysis"}
    assert [step["index"] for step in document["steps"]] == list(range(len(document["steps"])))
    assert_golden(f"plan-{seed}.json", out)


def test_yaml_output_carries_the_same_document_as_json(
    capsys: pytest.CaptureFixture[str]
) -> None:
    _, as_json, _ = run(capsys, "plan", *files("001"), "-o", "json")
    _, as_yaml, _ = run(capsys, "plan", *files("001"), "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_a_rollout_the_daemon_would_refuse_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rollout = next(
        d for d in yaml.safe_load_all((EXAMPLES / "imesh-host-split/all.yaml").read_text())
        if d and d["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {"duration": "5x"}}
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(rollout))
    code, out, err = run(capsys, "plan", "-f", str(path))
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "spec.strategy.canary.steps[1].pause.duration: invalid duration '5x'" in err


@pytest.mark.parametrize("argv", [
    pytest.param(["plan"], id="no file"),
    pytest.param(["plan", "-f", "/nothing/here.yaml"], id="a file that does not exist"),
    pytest.param(["plan", "-f", str(EXAMPLES / "asm-host-split" / "services.yaml")],
                 id="no Rollout among the files"),
    pytest.param(["plan", "-f", str(EXAMPLES / "asm-host-split" / "rollout.yaml"),
                  "-f", str(EXAMPLES / "asm-host-split" / "rollout-with-analysis.yaml")],
                 id="two Rollouts"),
])
def test_bad_plan_usage_exits_2_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1


# --- --state ---------------------------------------------------------------------------------

def state_file(world: World, path: Path) -> Path:
    items: list[Any] = [world.rollout, *world.replica_sets.values(),
                        *world.services.values(), *world.virtual_services.values()]
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def rollout_file(world: World, path: Path) -> Path:
    spec_only = {key: value for key, value in world.rollout.items() if key != "status"}
    path.write_text(yaml.safe_dump(spec_only))
    return path


def test_paused_at_step_1_the_next_action_is_nothing_until_promoted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = World.from_example("asm-host-split")
    world.settle()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    code, out, err = run(capsys, "plan", "-f", str(rollout_file(world, tmp_path / "r.yaml")),
                         "--state", str(state_file(world, tmp_path / "s.yaml")),
                         "--now", "2026-01-01T00:00:00Z", "-o", "json")
    assert (code, err) == (0, "")
    document = json.loads(out)["next"]
    assert (document["canaryWeight"], document["canaryReplicas"],
            document["stableReplicas"], document["actions"]) == (10, 1, 1, [])
    assert document["reason"] == ("paused at step 1/18 (pause without a duration): waiting "
                                  "for `promote`")


def test_after_set_image_the_next_action_is_exactly_the_worlds_next_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = World.from_example("imesh-host-split")
    world.settle()
    world.set_image("nginx:1.15.5")
    state = state_file(world, tmp_path / "s.yaml")
    rollout = rollout_file(world, tmp_path / "r.yaml")
    code, out, _ = run(capsys, "plan", "-f", str(rollout), "--state", str(state),
                       "--now", "2026-01-01T00:00:00Z", "-o", "json")
    assert code == 0
    document = json.loads(out)["next"]
    expected = world.plan()
    assert [a["kind"] for a in document["actions"]] == [
        type(action).__name__ for action in expected.actions]
    assert (document["canaryReplicas"], document["stableReplicas"]) == (1, 2)
    assert_golden("plan-001-state-after-set-image.json", out)
    code, table, _ = run(capsys, "plan", "-f", str(rollout), "--state", str(state),
                         "--now", "2026-01-01T00:00:00Z")
    assert code == 0
    assert_golden("plan-001-state-after-set-image.txt", table)


def test_a_basic_canary_state_plans_the_counts_the_world_then_writes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rollout = basic_canary()
    rollout["metadata"].update(uid="uid-1", generation=1, resourceVersion="1")
    world = World(rollout=rollout, services={}, virtual_services={})
    world.settle()
    world.set_image("web:2")
    for _ in range(3):  # a few reconciles into the update
        world.apply(world.plan())
    expected = world.plan()
    code, out, _ = run(capsys, "plan", "-f", str(rollout_file(world, tmp_path / "r.yaml")),
                       "--state", str(state_file(world, tmp_path / "s.yaml")),
                       "--now", "2026-01-01T00:00:00Z", "-o", "json")
    assert code == 0
    document = json.loads(out)["next"]
    world.apply(expected)
    status = world.status
    by_hash = {rs["metadata"]["labels"]["rollouts-pod-template-hash"]: rs["spec"]["replicas"]
               for rs in world.replica_sets.values()}
    assert (document["canaryReplicas"], document["stableReplicas"]) == (
        by_hash[status["currentPodHash"]], by_hash[status["stableRS"]])
