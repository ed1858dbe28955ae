"""The read models ``shiftctl get`` renders, as values: built from plain objects, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shiftd.views import (
    AnalysisRunNode,
    ImageRoles,
    PodNode,
    Replicas,
    RolloutObjects,
    owned_objects,
    pod_state,
    rollout_list,
    rollout_tree,
)

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rollout(name: str = "web", namespace: str = "shop", **status: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}",
                         "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 2, "strategy": {"canary": {"steps": [
                {"setWeight": 25}, {"pause": {}}]}}},
            "status": {"observedGeneration": "1", "phase": "Paused", "stableRS": "old",
                       "currentPodHash": "new", "currentStepIndex": 1, "replicas": 3,
                       "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 1,
                       **status}}


def replica_set(name: str, *, revision: int, pod_hash: str, replicas: int,
                owner: str = "u-web") -> Obj:
    return {"metadata": {"name": name, "uid": f"u-{name}", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"rollouts-pod-template-hash": pod_hash},
                         "annotations": {"rollout.argoproj.io/revision": str(revision)},
                         "ownerReferences": [{"uid": owner, "controller": True}]},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": f"web:{pod_hash}"}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "availableReplicas": replicas}}


def pod(name: str, owner: str, **status: Any) -> Obj:
    return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "ownerReferences": [{"uid": owner}]},
            "spec": {"containers": [{"name": "web"}]},
            "status": {"phase": "Running", **status}}


def test_the_tree_groups_objects_by_revision_newest_first_with_roles_and_pods() -> None:
    run = {"metadata": {"name": "web-new-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                        "annotations": {"rollout.argoproj.io/revision": "2"}},
           "status": {"phase": "Successful",
                      "metricResults": [{"successful": 2}, {"successful": 1, "error": 1}]}}
    objects = RolloutObjects(
        rollout=rollout(),
        replica_sets=[replica_set("web-old", revision=1, pod_hash="old", replicas=2),
                      replica_set("web-new", revision=2, pod_hash="new", replicas=1)],
        pods=[pod("web-new-a", "u-web-new",
                  containerStatuses=[{"ready": True, "state": {"running": {}}}])],
        analysis_runs=[run], actual_weight="25")

    tree = rollout_tree(objects)

    assert [r.revision for r in tree.revisions] == [2, 1]
    newest, oldest = tree.revisions
    assert [(rs.name, rs.role, rs.health) for rs in newest.replica_sets] == [
        ("web-new", "canary", "Healthy")]
    assert newest.replica_sets[0].pods == (
        PodNode(name="web-new-a", created=T0, status="Running", ready="1/1", restarts=0),)
    assert newest.analysis_runs == (AnalysisRunNode(
        name="web-new-1", created=T0, phase="Successful",
        counts=(("Successful", 3), ("Error", 1))),)
    assert [(rs.name, rs.role, rs.pods) for rs in oldest.replica_sets] == [
        ("web-old", "stable", ())]
    summary = tree.summary
    assert (summary.phase, summary.step, summary.set_weight, summary.actual_weight) == (
        "Paused", "1/2", 25, "25")
    assert summary.images == (ImageRoles("web:new", ("canary",)),
                              ImageRoles("web:old", ("stable",)))
    assert summary.replicas == Replicas(desired=2, current=3, updated=1, ready=3, available=3)


def test_only_the_rollouts_own_replica_sets_pods_and_runs_are_kept() -> None:
    mine = replica_set("web-new", revision=1, pod_hash="new", replicas=1)
    other = replica_set("api-1", revision=1, pod_hash="x", replicas=1, owner="u-api")
    runs = [{"metadata": {"name": "mine", "ownerReferences": [
                {"uid": "u-web", "controller": True}]}},
            {"metadata": {"name": "theirs", "ownerReferences": [
                {"uid": "u-api", "controller": True}]}}]

    objects = owned_objects(rollout(), replica_sets=[mine, other],
                            pods=[pod("a", "u-web-new"), pod("b", "u-api-1")],
                            analysis_runs=runs, actual_weight="-")

    assert [rs["metadata"]["name"] for rs in objects.replica_sets] == ["web-new"]
    assert [p["metadata"]["name"] for p in objects.pods] == ["a"]
    assert [r["metadata"]["name"] for r in objects.analysis_runs] == ["mine"]


@pytest.mark.parametrize(("status", "state"), [
    ({"containerStatuses": [{"ready": True, "state": {"running": {}}, "restartCount": 1}]},
     ("Running", "1/1", 1)),
    ({"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
     ("ImagePullBackOff", "0/1", 0)),
    ({"containerStatuses": [{"state": {"terminated": {"exitCode": 2}}}]},
     ("ExitCode:2", "0/1", 0)),
    ({"containerStatuses": [{"state": {"terminated": {"signal": 9}}}]}, ("Signal:9", "0/1", 0)),
    ({"conditions": [{"type": "Ready", "status": "True"}]}, ("Running", "1/1", 0)),
    ({"phase": "Pending"}, ("Pending", "0/1", 0)),
])
def test_a_pods_status_ready_count_and_restarts_follow_the_plugin(
    status: Obj, state: tuple[str, str, int]
) -> None:
    assert pod_state(pod("p", "u", **status)) == state


def test_the_list_is_sorted_by_namespace_then_name_and_non_canary_has_no_weight() -> None:
    plain = rollout("zeta", "a")
    plain["spec"]["strategy"] = {}

    summaries = rollout_list([rollout("web", "b"), rollout("api", "b"), plain])

    assert [(s.namespace, s.name) for s in summaries] == [("a", "zeta"), ("b", "api"),
                                                          ("b", "web")]
    assert (summaries[0].canary, summaries[0].step, summaries[0].set_weight) == (
        False, None, None)
