"""``shiftctl lint`` and ``shiftctl plan`` on the canary fields of issue 9: setCanaryScale,
dynamicStableScale, minPodsPerReplicaSet, canaryMetadata / stableMetadata,
progressDeadlineSeconds / progressDeadlineAbort, paused, scaleDownDelayRevisionLimit and
restartAt are accepted, checked as the daemon checks them, and planned as it plans them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftd.cli.ctl import main
from tests.support.world import load_example

FIELDS: dict[str, Any] = {
    "progressDeadlineSeconds": 300,
    "progressDeadlineAbort": True,
    "paused": False,
    "restartAt": "2026-01-01T00:00:00Z",
}
CANARY_FIELDS: dict[str, Any] = {
    "dynamicStableScale": True,
    "minPodsPerReplicaSet": 2,
    "abortScaleDownDelaySeconds": 30,
    "scaleDownDelayRevisionLimit": 1,
    "canaryMetadata": {"labels": {"role": "canary"}, "annotations": {"role": "canary"}},
    "stableMetadata": {"labels": {"role": "stable"}},
    "steps": [{"setCanaryScale": {"replicas": 3}}, {"setWeight": 20}, {"pause": {}},
              {"setCanaryScale": {"weight": 50}}, {"setWeight": 50}, {"pause": {"duration": 60}},
              {"setCanaryScale": {"matchTrafficWeight": True}}],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_example(tmp_path: Path, *, spec: dict[str, Any] | None = None,
                  canary: dict[str, Any] | None = None) -> list[str]:
    """Seed 000's files, its Rollout given ``spec`` and ``canary`` fields (10 replicas)."""
    documents = [d for d in load_example("asm-host-split")
                 if not (d["kind"] == "Rollout" and "analysis" in d["spec"]["strategy"]["canary"])]
    args: list[str] = []
    for index, document in enumerate(copy.deepcopy(documents)):
        if document["kind"] == "Rollout":
            document["spec"].update(replicas=10, **(FIELDS if spec is None else spec))
            document["spec"]["strategy"]["canary"].update(
                CANARY_FIELDS if canary is None else canary)
        path = tmp_path / f"{index}.yaml"
        path.write_text(yaml.safe_dump(document))
        args += ["-f", str(path)]
    return args


def test_lint_accepts_every_new_field(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    code, out, err = run(capsys, "lint", *write_example(tmp_path))
    assert (code, out) == (0, ""), out
    assert "checked, no problems" in err


@pytest.mark.parametrize(
    ("spec", "canary", "message"),
    [
        ({}, {"dynamicStableScale": True, "scaleDownDelaySeconds": 10},
         "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds"),
        ({}, {"canaryMetadata": {"labels": {"role": 1}}},
         "canaryMetadata.labels.role: must be a string"),
        ({}, {"stableMetadata": {"labels": {"rollouts-pod-template-hash": "x"}}},
         "stableMetadata.labels: must not set rollouts-pod-template-hash"),
        ({"progressDeadlineSeconds": 5, "minReadySeconds": 5}, {},
         "spec.progressDeadlineSeconds: must be greater than minReadySeconds"),
        ({"restartAt": "soon"}, {}, "spec.restartAt: must be an RFC 3339 time"),
        ({"progressDeadlineAbort": "yes"}, {}, "spec.progressDeadlineAbort: must be true or false"),
        ({}, {"minPodsPerReplicaSet": -1}, "canary.minPodsPerReplicaSet: must not be negative"),
    ],
)
def test_lint_reports_what_the_daemon_would_refuse(
    spec: dict[str, Any], canary: dict[str, Any], message: str,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    code, out, _ = run(capsys, "lint", *write_example(tmp_path, spec=spec, canary=canary))
    assert code == 1
    assert message in out


def test_plan_shows_the_canary_sizes_set_canary_scale_and_min_pods_ask_for(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    canary = {key: value for key, value in CANARY_FIELDS.items() if key != "dynamicStableScale"}
    code, out, err = run(capsys, "plan", *write_example(tmp_path, spec={}, canary=canary),
                         "-o", "json")
    assert code == 0, err
    steps = {step["index"]: step for step in json.loads(out)["steps"]}
    # setCanaryScale replicas: 3 before any weight; its size holds through setWeight 20
    assert (steps[0]["canaryReplicas"], steps[0]["canaryWeight"]) == (3, 0)
    assert (steps[1]["canaryReplicas"], steps[1]["canaryWeight"]) == (3, 20)
    # setCanaryScale weight 50: half the pods while 20 % of the traffic
    assert (steps[3]["canaryReplicas"], steps[3]["canaryWeight"]) == (5, 20)
    # matchTrafficWeight at 50 %: back to the weight's share
    assert steps[6]["canaryReplicas"] == 5
    assert all(step["stableReplicas"] == 10 for step in steps.values())


def test_plan_shows_the_stable_shrinking_under_dynamic_stable_scale(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    canary = {"dynamicStableScale": True,
              "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]}
    code, out, err = run(capsys, "plan", *write_example(tmp_path, spec={}, canary=canary),
                         "-o", "json")
    assert code == 0, err
    steps = json.loads(out)["steps"]
    assert [(s["canaryWeight"], s["canaryReplicas"], s["stableReplicas"])
            for s in steps if "pause" in s["step"]] == [(20, 2, 8), (60, 6, 4)]


def test_the_seed_004_rollout_with_its_template_inlined_lints_clean(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Seed 004's canaryMetadata / stableMetadata are understood (workloadRef aside)."""
    documents = load_example("tsb-subset-skywalking")
    rollout = copy.deepcopy(next(d for d in documents if d["kind"] == "Rollout"))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    rollout["spec"].pop("workloadRef")
    rollout["spec"]["template"] = copy.deepcopy(deployment["spec"]["template"])
    args: list[str] = []
    for index, document in enumerate([rollout, *(d for d in documents
                                                 if d["kind"] != "Rollout")]):
        path = tmp_path / f"{index}.yaml"
        path.write_text(yaml.safe_dump(document))
        args += ["-f", str(path)]
    code, out, err = run(capsys, "lint", *args)
    assert (code, out) == (0, ""), out
    assert "checked, no problems" in err
