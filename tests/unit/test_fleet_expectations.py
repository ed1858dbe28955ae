"""The chaos fleet's expectation: where Argo ends a Rollout, given what its analysis measured
(``tests.support.fleet.expected_phase``)."""

from __future__ import annotations

from typing import Any

from tests.support.fleet import Member, expected_phase, revision_runs

Obj = dict[str, Any]
HEALTHY, FAILING = Member("a", "host-split", False), Member("b", "host-split", True)


def run(phase: str, *measured: str, owner: str = "a", revision: str = "h2") -> Obj:
    return {"metadata": {"labels": {"rollouts-pod-template-hash": revision},
                         "ownerReferences": [{"name": owner}]},
            "status": {"phase": phase, "metricResults": [
                {"measurements": [{"phase": m} for m in measured]}]}}


def test_a_run_ended_in_error_aborts_even_a_healthy_canary() -> None:
    assert expected_phase(HEALTHY, [run("Error", *["Error"] * 5)]) == "Degraded"


def test_a_failing_canary_measured_as_failing_is_aborted() -> None:
    assert expected_phase(FAILING, [run("Failed", "Failed")]) == "Degraded"


def test_a_failing_canary_its_analysis_never_measured_is_promoted_as_argo_would() -> None:
    assert expected_phase(FAILING, [run("Successful", "Error", "Error")]) == "Healthy"
    assert expected_phase(FAILING, []) == "Healthy"


def test_a_failing_canary_measured_but_not_failed_is_still_expected_aborted() -> None:
    assert expected_phase(FAILING, [run("Running", "Successful")]) == "Degraded"


def test_a_healthy_canary_whose_runs_passed_is_promoted() -> None:
    assert expected_phase(HEALTHY, [run("Successful", "Error", "Successful")]) == "Healthy"


def test_only_the_runs_of_the_rollouts_new_revision_count() -> None:
    runs = [run("Error", owner="a", revision="h1"), run("Successful", owner="b"),
            run("Successful", owner="a")]
    assert revision_runs(runs, "a", "h2") == [runs[2]]
