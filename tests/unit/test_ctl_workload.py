"""``shiftctl plan`` with a ``workloadRef``: the template planned is the Deployment's, and the
plan says where it comes from."""

from __future__ import annotations

import json

import pytest
import yaml

from shiftd.cli.ctl import main
from shiftd.cli.ctl.view import actual_weight_of
from shiftd.decide.rollout.operator import rollout_phase
from tests.support.world import EXAMPLES

FOLDER = EXAMPLES / "tsb-subset-skywalking"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_says_the_template_comes_from_the_deployment(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "-f", str(FOLDER / "rollout.yaml"),
                         "-f", str(FOLDER / "reviews.yaml"))
    assert code == 0, err
    assert "Pod template from Deployment/reviews (workloadRef)" in out
    code, out, err = run(capsys, "plan", "-o", "json", "-f", str(FOLDER / "rollout.yaml"),
                         "-f", str(FOLDER / "reviews.yaml"))
    assert code == 0, err
    document = json.loads(out)
    assert document["templateFrom"] == "Deployment/reviews"
    assert [step["canaryWeight"] for step in document["steps"][::2]] == [10, 20, 40, 60, 80]


def test_plan_without_the_deployment_asks_for_its_file(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "-f", str(FOLDER / "rollout.yaml"))
    assert code != 0
    assert "spec.workloadRef names Deployment/reviews, which is in no given file" in err


def test_plan_from_a_state_notes_the_deployments_generation(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "-o", "json", "-f", str(FOLDER / "rollout.yaml"),
                         "-f", str(FOLDER / "analysis.yaml"),
                         "--state", str(FOLDER / "reviews.yaml"),
                         "--now", "2026-01-01T00:00:00Z")
    assert code == 0, err
    document = json.loads(out)["next"]
    assert "pod template from Deployment/reviews (generation 0)" in document["notes"]
    (created,) = [a for a in document["actions"] if a["kind"] == "CreateReplicaSet"]
    assert created["body"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "docker.io/istio/examples-bookinfo-reviews-v1:1.16.4"


def test_the_views_read_a_workload_ref_rollouts_routing_without_its_deployment() -> None:
    rollout = yaml.safe_load((FOLDER / "rollout.yaml").read_text())
    (vs,) = [d for d in yaml.safe_load_all((FOLDER / "reviews.yaml").read_text())
             if d and d["kind"] == "VirtualService"]
    vs["spec"]["http"][0]["route"][0]["weight"] = 90
    vs["spec"]["http"][0]["route"][1]["weight"] = 10
    assert actual_weight_of(rollout, lambda namespace, name: vs) == "10"
    assert rollout_phase(rollout) == ("Progressing", "more replicas need to be updated")
