"""The invariant monitor's judgement over time (tests/support/progress.py): steps and the new
revision's traffic only move forward, no setWeight skipped, each measurement once; gaps are
not judged."""

from __future__ import annotations

from typing import Any

from tests.support.progress import ProgressJudge

Obj = dict[str, Any]
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
         {"setWeight": 80}, {"pause": {}}]


def rollout(index: int, *, version: int, revision: str = "new", abort: bool = False) -> Obj:
    return {
        "metadata": {"name": "web", "resourceVersion": str(version)},
        "spec": {"strategy": {"canary": {
            "canaryService": "web-canary", "stableService": "web-stable", "steps": STEPS,
            "trafficRouting": {"istio": {"virtualService": {"name": "web-vsvc"}}}}}},
        "status": {"currentPodHash": revision, "currentStepIndex": index,
                   **({"abort": True} if abort else {})},
    }


def service(name: str, pod_hash: str) -> Obj:
    return {"metadata": {"name": name},
            "spec": {"selector": {"app": "web", "rollouts-pod-template-hash": pod_hash}}}


def vs(canary: int, version: int = 0, *, promoted: bool = False) -> dict[str, dict[str, Obj]]:
    """The route with ``canary`` % to the canary Service (selecting revision "new") and the
    rest to the stable one (selecting "old", or "new" once ``promoted``)."""
    route = {"metadata": {"name": "web-vsvc", "resourceVersion": str(version)},
             "spec": {"http": [{"route": [
                 {"destination": {"host": "web-stable"}, "weight": 100 - canary},
                 {"destination": {"host": "web-canary.ns.svc.cluster.local"},
                  "weight": canary}]}]}}
    return {"virtualservices": {"web-vsvc": route}, "destinationrules": {},
            "services": {"web-stable": service("web-stable", "new" if promoted else "old"),
                         "web-canary": service("web-canary", "new")}}


def judged(*states: tuple[Obj, int] | tuple[Obj, int, int]) -> list[str]:
    """What the judge finds in these (Rollout, canary weight[, route version]) states."""
    judge = ProgressJudge()
    found: list[str] = []
    for rollout_state, canary, *route_version in states:
        found += judge.judge([rollout_state], vs(canary, *route_version), [])
    return found + judge.unresolved()


NOTHING: dict[str, dict[str, Obj]] = {"virtualservices": {}, "services": {},
                                      "destinationrules": {}}


def test_a_rollout_walking_its_steps_forward_breaks_nothing() -> None:
    judge = ProgressJudge()
    states = [(rollout(0, version=1), vs(0)), (rollout(0, version=1), vs(20)),
              (rollout(1, version=2), vs(20)), (rollout(2, version=3), vs(50)),
              (rollout(4, version=4), vs(80)), (rollout(5, version=5), vs(80, promoted=True)),
              (rollout(6, version=6), vs(0, promoted=True))]
    assert [v for state, objects in states for v in judge.judge([state], objects, [])] == []
    assert judge.unresolved() == []


def test_completing_by_moving_the_weight_before_the_stable_service_is_a_step_back() -> None:
    assert judged((rollout(5, version=1), 80, 1), (rollout(5, version=1), 0, 2),
                  (rollout(6, version=3), 0, 2)) == [
        "Rollout web revision new: its traffic went back from 80 to 0 at step 5"]


def test_a_step_index_going_back_is_a_repeated_step() -> None:
    assert judged((rollout(3, version=1), 50), (rollout(2, version=2), 50)) == [
        "Rollout web revision new: step index went back from 3 to 2"]


def test_a_weight_going_back_unexplained_by_the_next_status_is_reported() -> None:
    assert judged((rollout(3, version=1), 50, 1), (rollout(3, version=1), 20, 2),
                  (rollout(3, version=3), 20, 2)) == [
        "Rollout web revision new: its traffic went back from 50 to 20 at step 3"]


def test_a_weight_going_back_before_the_abort_is_written_is_excused() -> None:
    assert judged((rollout(3, version=1), 50, 1), (rollout(3, version=1), 0, 3),
                  (rollout(3, version=3, abort=True), 0, 3)) == []


def test_a_status_written_before_the_route_does_not_judge_its_decrease() -> None:
    # seen late: a status write older than the route's, then the abort after it
    assert judged((rollout(3, version=1), 50, 1), (rollout(3, version=1), 0, 4),
                  (rollout(3, version=3), 0, 4), (rollout(3, version=5, abort=True), 0, 4)
                  ) == []


def test_a_weight_jumping_over_a_set_weight_step_is_a_skipped_step() -> None:
    assert judged((rollout(1, version=1), 20), (rollout(1, version=1), 80)) == [
        "Rollout web revision new: canary weight jumped from 20 to 80, skipping the step "
        "to 50"]


def test_changes_seen_across_a_watch_gap_are_not_judged() -> None:
    judge = ProgressJudge()
    assert judge.judge([rollout(1, version=1)], vs(20), []) == []
    judge.gap()
    assert judge.judge([rollout(0, version=5)], vs(80), []) == []
    assert judge.judge([rollout(0, version=6)], vs(20), []) == []
    assert judge.unresolved() == [
        "Rollout web revision new: its traffic went back from 80 to 20 at step 0"]


def test_a_new_revision_starts_over() -> None:
    assert judged((rollout(6, version=1, revision="a"), 0),
                  (rollout(0, version=2, revision="b"), 0),
                  (rollout(1, version=3, revision="b"), 20)) == []


def run(*starts: str, count: int | None = None, errors: int = 0) -> Obj:
    metric: Obj = {"name": "success-rate"}
    if count is not None:
        metric["count"] = count
    measurements = [{"startedAt": f"e{n}", "phase": "Error"} for n in range(errors)]
    measurements += [{"startedAt": start, "phase": "Successful"} for start in starts]
    return {"metadata": {"name": "web-1"}, "spec": {"metrics": [metric]},
            "status": {"metricResults": [{"name": "success-rate",
                                          "measurements": measurements}]}}


def test_a_metric_measured_twice_for_one_instant_or_beyond_its_count_is_reported() -> None:
    judge = ProgressJudge()
    assert judge.judge([], NOTHING, [run("t1", "t2", count=2, errors=3)]) == []
    assert judge.judge([], NOTHING, [run("t1", "t1")]) == [
        "AnalysisRun web-1 metric success-rate: measured twice at t1"]
    assert judge.judge([], NOTHING, [run("t1", "t2", "t3", count=2)]) == [
        "AnalysisRun web-1 metric success-rate: 3 measurements, count is 2"]


def test_traffic_read_while_a_service_cache_lags_behind_the_route_is_not_judged() -> None:
    judge = ProgressJudge()
    assert judge.judge([rollout(5, version=1)], vs(80, 1), []) == []
    # the route moved on (version 5) but the Services' cache is still at version 2: the
    # stable Service's switch to the new revision is not in it yet
    stale = vs(0, 5)
    assert judge.judge([rollout(6, version=6)], stale, [],
                       caught_up={"services": 2, "virtualservices": 5}) == []
    assert judge.judge([rollout(6, version=6)], vs(0, 5, promoted=True), [],
                       caught_up={"services": 7, "virtualservices": 7}) == []
    assert judge.unresolved() == []
