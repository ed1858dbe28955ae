"""The tests' stand-in disruption controller (``tests/support/disruption.py``), which keeps a
PodDisruptionBudget's status on a bare kube-apiserver: its counts, as the disruption
controller's, from the budget and the namespace's pods. Only a real-server run exercises the
controller itself, so its arithmetic is checked here."""

from __future__ import annotations

from typing import Any

from tests.support.disruption import budget_status

Obj = dict[str, Any]


def pod(name: str, *, ready: bool = True, app: str = "web", deleting: bool = False) -> Obj:
    metadata: Obj = {"name": name, "labels": {"app": app}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return {"metadata": metadata, "status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def budget(spec: Obj, *, disrupted: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": "web", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
            "status": {"disruptedPods": disrupted} if disrupted else {}}


def test_allowed_disruptions_are_the_healthy_selected_pods_above_the_minimum() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d", ready=False), pod("other", app="db")]
    status = budget_status(budget({"minAvailable": 2}), pods)
    assert status == {"observedGeneration": 3, "disruptedPods": {}, "disruptionsAllowed": 1,
                      "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 4}


def test_max_unavailable_as_a_percentage_is_rounded_up_against_the_expected_pods() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    status = budget_status(budget({"maxUnavailable": "25%"}), pods)
    assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 1)


def test_a_disrupted_pod_counts_unhealthy_until_it_is_gone_or_being_deleted() -> None:
    disrupted = {"a": "2026-12-03T00:00:00Z", "gone": "2026-12-03T00:00:00Z",
                 "c": "2026-12-03T00:00:00Z"}
    pods = [pod("a"), pod("b"), pod("c", deleting=True), pod("d")]
    status = budget_status(budget({"minAvailable": 1}, disrupted=disrupted), pods)
    assert status["disruptedPods"] == {"a": "2026-12-03T00:00:00Z"}
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (2, 1)
