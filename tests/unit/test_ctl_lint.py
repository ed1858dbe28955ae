"""``shiftctl lint``: every shared example is clean, every broken file is caught once.

The broken manifests live in ``tests/golden/lint/`` with a comment on each planted problem;
the expected report is the golden file ``lint-broken.txt``. A lone valid Rollout passes, its
references outside the given files noted; a given file that contradicts it is a problem (and
the daemon refuses the same). Seed 004 uses ``workloadRef``,
which shiftd does not support yet: lint reports exactly that, once. Seed 003 is a Flagger
``Canary``: skipped with a note, not a problem.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from shiftd.cli.ctl import main
from shiftd.cli.ctl.lint import LintInput, Problem, find_crd_dir, lint, load_schemas, split_message
from tests.golden import GOLDEN_DIR, assert_golden
from tests.support.world import EXAMPLES, World

BROKEN = GOLDEN_DIR / "lint"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def example_files(folder: str) -> list[str]:
    return [arg for path in sorted((EXAMPLES / folder).glob("*.yaml"))
            for arg in ("-f", str(path))]


@pytest.mark.parametrize("folder", ["asm-host-split", "imesh-host-split", "myapp-analysis"])
def test_the_istio_examples_are_clean(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lint", *example_files(folder))
    assert (code, out) == (0, ""), err
    assert "checked, no problems" in err


def test_the_flagger_example_is_skipped_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lint", *example_files("flagger-podinfo"))
    assert (code, out) == (0, "")
    assert "note: skipped 1 Canary object: shiftd does not lint that kind" in err


def test_the_workload_ref_example_passes_with_its_deployment(
    capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "lint", *example_files("tsb-subset-skywalking"))
    assert code == 0, out
    assert out == ""


def test_a_workload_ref_whose_deployment_is_not_given_is_reported(
    capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = EXAMPLES / "tsb-subset-skywalking" / "rollout.yaml"
    code, out, _ = run(capsys, "lint", "--no-references", "-f", str(rollout))
    assert code == 0, out
    code, out, _ = run(capsys, "lint", "-f", str(rollout))
    assert code == 1
    assert (f"{rollout}: Rollout reviews-rollout: spec.workloadRef.name: Deployment 'reviews' "
            "is not among the given files") in out.splitlines()


def test_a_workload_ref_whose_deployment_contradicts_the_selector_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = EXAMPLES / "tsb-subset-skywalking"
    deployment = yaml.safe_load_all((folder / "reviews.yaml").read_text())
    (first,) = [d for d in deployment if d and d["kind"] == "Deployment"]
    first["spec"]["template"]["metadata"]["labels"] = {"app": "ratings"}
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(first))
    code, out, _ = run(capsys, "lint", "--no-references", "-f", str(folder / "rollout.yaml"),
                       "-f", str(tmp_path / "deployment.yaml"))
    assert code == 0  # references not followed: the Deployment is not read
    code, out, _ = run(capsys, "lint", "-f", str(folder / "rollout.yaml"),
                       "-f", str(tmp_path / "deployment.yaml"),
                       "-f", str(folder / "analysis.yaml"))
    assert code == 1
    assert "spec.selector: does not match spec.template.metadata.labels" in out


def test_a_workload_ref_to_another_kind_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rollout = yaml.safe_load((EXAMPLES / "tsb-subset-skywalking" / "rollout.yaml").read_text())
    rollout["spec"]["workloadRef"]["kind"] = "StatefulSet"
    (tmp_path / "rollout.yaml").write_text(yaml.safe_dump(rollout))
    code, out, _ = run(capsys, "lint", "--no-references", "-f", str(tmp_path / "rollout.yaml"))
    assert code == 1
    assert "workload of type apps/v1/StatefulSet is not supported" in out


def test_the_broken_files_report_each_problem_once_with_its_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BROKEN)
    code, out, err = run(capsys, "lint", "-f", "broken-rollout.yaml",
                         "-f", "broken-template.yaml")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == len(set(lines))
    planted = sum(text.count("# ") for text in (
        (BROKEN / name).read_text() for name in ("broken-rollout.yaml", "broken-template.yaml")
    )) - 1  # the first comment is the file's heading
    assert len(lines) == planted
    assert err.splitlines()[-1] == f"error: {planted} problems in 3 objects"
    assert_golden("lint-broken.txt", out)


def test_references_can_be_left_unchecked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BROKEN)
    _, out, _ = run(capsys, "lint", "--no-references", "-f", "broken-rollout.yaml")
    assert "not among the given files" not in out
    assert "steps[0].setWeight" in out


@pytest.mark.parametrize("name", ["rollout.yaml", "rollout-with-analysis.yaml"])
def test_a_lone_valid_rollout_passes_with_its_missing_references_as_notes(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "lint", "-f", str(EXAMPLES / "asm-host-split" / name))
    assert (code, out) == (0, "")
    notes = [line.split(": ", 3)[3] for line in err.splitlines() if line.startswith("note: ")]
    assert notes[:3] == [
        "spec.strategy.canary.canaryService: Service 'istio-rollout-canary' is not among "
        "the given files (not checked)",
        "spec.strategy.canary.stableService: Service 'istio-rollout-stable' is not among "
        "the given files (not checked)",
        "spec.strategy.canary.trafficRouting.istio.virtualService.name: VirtualService "
        "'istio-rollout-vsvc' is not among the given files (not checked)",
    ]
    assert "1 object checked, no problems" in err


def test_a_service_given_that_contradicts_the_rollout_still_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    services = list(yaml.safe_load_all(
        (EXAMPLES / "asm-host-split" / "services.yaml").read_text()))
    services[0]["metadata"]["annotations"] = {
        "argo-rollouts.argoproj.io/managed-by-rollouts": "another-rollout"}
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump_all(services))
    code, out, _ = run(capsys, "lint", "-f", str(EXAMPLES / "asm-host-split" / "rollout.yaml"),
                       "-f", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{EXAMPLES / 'asm-host-split' / 'rollout.yaml'}: Rollout istio-rollout: "
        f"spec.strategy.canary.canaryService: Service {services[0]['metadata']['name']!r} is "
        f"managed by another Rollout ('another-rollout', {path})"]


def test_the_daemon_refuses_a_service_managed_by_another_rollout_as_lint_does() -> None:
    world = World.from_example("asm-host-split")
    world.services["istio-rollout-canary"]["metadata"]["annotations"] = {
        "argo-rollouts.argoproj.io/managed-by-rollouts": "another-rollout"}
    plan = world.plan()
    assert plan.status["phase"] == "Degraded"
    assert "Service 'istio-rollout-canary' is managed by another Rollout ('another-rollout')" \
        in plan.status["message"]


def test_a_virtual_service_given_that_contradicts_the_rollout_still_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (vs,) = [d for d in yaml.safe_load_all(
        (EXAMPLES / "asm-host-split" / "virtualservice.yaml").read_text()) if d]
    vs["spec"]["http"][0]["name"] = "renamed"
    path = tmp_path / "vs.yaml"
    path.write_text(yaml.safe_dump(vs))
    code, out, _ = run(capsys, "lint", "-f", str(EXAMPLES / "asm-host-split" / "rollout.yaml"),
                       "-f", str(path))
    assert code == 1
    assert "HTTP route 'primary' not found" in out


def test_a_route_step_must_name_a_managed_route(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rollout = yaml.safe_load((EXAMPLES / "asm-host-split" / "rollout.yaml").read_text())
    canary = rollout["spec"]["strategy"]["canary"]
    canary["trafficRouting"]["managedRoutes"] = [{"name": "header-route"}]
    canary["steps"][:0] = [
        {"setHeaderRoute": {"name": "header-route", "match": [
            {"headerName": "x-canary", "headerValue": {"exact": "yes"}}]}},
        {"setMirrorRoute": {"name": "mirror-route", "match": [{"method": {"exact": "GET"}}]}}]
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(rollout))
    code, out, _ = run(capsys, "lint", "-f", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}: Rollout istio-rollout: spec.strategy.canary.steps[1].setMirrorRoute: Steps "
        "define a route that does not exist in "
        "spec.strategy.canary.trafficRouting.managedRoutes ('mirror-route')"]


def test_unknown_fields_are_found_against_the_crd_schema() -> None:
    crd_dir = find_crd_dir()
    assert crd_dir is not None
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "r", "labels": {"anything": "goes"}},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                        "template": {"metadata": {"labels": {"a": "b"}},
                                     "spec": {"containers": [{"name": "c", "image": "i",
                                                              "imagePullPolicy": "Always"}]}},
                        "strategy": {"canary": {"steps": [{"setWeigth": 10}]}}}}
    report = lint([LintInput("r.yaml", rollout)], schemas=load_schemas(crd_dir))
    paths = [problem.path for problem in report.problems]
    assert "spec.strategy.canary.steps[0].setWeigth" in paths
    assert not any(path.startswith(("metadata", "spec.template")) for path in paths)


def test_without_the_crds_unknown_fields_are_noted_as_unchecked() -> None:
    report = lint([], schemas=None)
    assert report.problems == []
    assert any("unknown fields not checked" in note for note in report.notes)


@pytest.mark.parametrize(("text", "expected"), [
    ("spec.strategy.canary.steps[3].pause.duration: invalid duration '5x'",
     ("spec.strategy.canary.steps[3].pause.duration", "invalid duration '5x'")),
    ("spec.strategy.canary.steps[0].setWeight must be between 0 and 100, got 150",
     ("spec.strategy.canary.steps[0].setWeight", "must be between 0 and 100, got 150")),
    ("something without a path", ("spec", "something without a path")),
])
def test_messages_split_into_a_path_and_a_message(text: str,
                                                  expected: tuple[str, str]) -> None:
    assert split_message(text, default_path="spec") == expected


def test_a_problem_reads_as_file_object_path_message() -> None:
    problem = Problem("rollout.yaml", "Rollout", "istio-rollout",
                      "spec.strategy.canary.steps[3].pause.duration", "invalid duration '5x'")
    assert str(problem) == ("rollout.yaml: Rollout istio-rollout: "
                            "spec.strategy.canary.steps[3].pause.duration: invalid duration '5x'")


def test_lint_reads_from_stdin(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(Path(BROKEN / "broken-template.yaml")
                                                 .read_text()))
    code, out, _ = run(capsys, "lint", "-f", "-")
    assert code == 1
    assert out.startswith("-: AnalysisTemplate bad-template: ")


def test_a_subset_selecting_labels_its_pods_would_not_carry_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = EXAMPLES / "tsb-subset-skywalking"
    rollout = yaml.safe_load((folder / "rollout.yaml").read_text())
    del rollout["spec"]["strategy"]["canary"]["canaryMetadata"]
    (tmp_path / "rollout.yaml").write_text(yaml.safe_dump(rollout))
    code, out, _ = run(capsys, "lint", "-f", str(tmp_path / "rollout.yaml"),
                       "-f", str(folder / "reviews.yaml"), "-f", str(folder / "analysis.yaml"))
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path / 'rollout.yaml'}: Rollout reviews-rollout: "
        "spec.strategy.canary.canaryMetadata.labels: DestinationRule 'reviews' subset 'canary' "
        "selects version=canary, which the canary pods would not carry"]
