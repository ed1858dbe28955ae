"""``get rollout`` and ``list rollouts`` drawn from plain objects at a fixed ``now``.

The golden tests on the emulator pin the whole layout; these pin the pieces in tables: ages
as kubectl prints them, the plugin's icons, the tree's branches, AnalysisRuns beside the
ReplicaSets of their revision, scale-down delays, colours only when asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shiftd.cli.ctl.render import human_duration, pod_icon, render_list, render_rollout
from shiftd.views import RolloutObjects, replica_set_health

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
ALPHA = "\N{GREEK SMALL LETTER ALPHA}"  # the AnalysisRun icon
Obj = dict[str, Any]


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (52, "52s"), (119, "119s"), (120, "2m"),
    (150, "2m30s"), (48 * 60, "48m"), (3 * 3600, "3h"), (3 * 3600 + 120, "3h2m"),
    (9 * 3600, "9h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"), (800 * 86400, "2y70d"),
    (9 * 365 * 86400, "9y"),
])
def test_ages_read_as_kubectl_prints_them(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def rs(name: str, *, revision: int, pod_hash: str, replicas: int, available: int,
       uid: str, annotations: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": name, "uid": uid, "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"rollouts-pod-template-hash": pod_hash},
                         "annotations": {"rollout.argoproj.io/revision": str(revision),
                                         **(annotations or {})}},
            "spec": {"replicas": replicas,
                     "template": {"spec": {"containers": [{"name": "web",
                                                           "image": f"web:{revision}"}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "availableReplicas": available}}


def view() -> RolloutObjects:
    rollout = {"metadata": {"name": "web", "namespace": "shop", "generation": 1,
                            "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"replicas": 2, "strategy": {"canary": {"steps": [
                   {"setWeight": 50}, {"pause": {}}]}}},
               "status": {"observedGeneration": "1", "phase": "Progressing",
                          "message": "more replicas need to be updated",
                          "currentStepIndex": 0, "stableRS": "old", "currentPodHash": "new",
                          "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                          "availableReplicas": 2}}
    pod = {"metadata": {"name": "web-new-abcde", "creationTimestamp": "2026-01-01T00:59:00Z",
                        "ownerReferences": [{"uid": "u-new"}]},
           "spec": {"containers": [{"name": "web"}, {"name": "istio-proxy"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"ready": True, "state": {"running": {}}, "restartCount": 2},
               {"ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    run = {"metadata": {"name": "web-new-2", "creationTimestamp": "2026-01-01T00:59:30Z",
                        "annotations": {"rollout.argoproj.io/revision": "2"}},
           "status": {"phase": "Running", "metricResults": [{"successful": 3, "failed": 1}]}}
    return RolloutObjects(
        rollout=rollout,
        replica_sets=[
            rs("web-new", revision=2, pod_hash="new", replicas=1, available=0, uid="u-new"),
            rs("web-old", revision=1, pod_hash="old", replicas=2, available=2, uid="u-old",
               annotations={"scale-down-deadline": "2026-01-01T01:00:30Z"}),
        ],
        pods=[pod], analysis_runs=[run], actual_weight="0")


def test_the_tree_shows_revisions_replica_sets_pods_and_analysis_runs() -> None:
    text = render_rollout(view(), now=NOW)
    summary, _, tree = text.partition("\n\n")
    assert "Status:          ◌ Progressing\nMessage:         more replicas need to be updated" \
        in summary
    assert "Images:          web:1 (stable)\n                 web:2 (canary)" in summary
    assert tree.splitlines() == [
        "NAME                      KIND         STATUS              AGE  INFO",
        "⟳ web                     Rollout      ◌ Progressing       60m",
        "├──# revision:2",
        "│  ├──⧉ web-new           ReplicaSet   ◌ Progressing       60m  canary",
        "│  │  └──□ web-new-abcde  Pod          ✖ CrashLoopBackOff  60s  ready:1/2,restarts:2",
        f"│  └──{ALPHA} web-new-2         AnalysisRun  ◌ Running           30s  ✔ 3,✖ 1",
        "└──# revision:1",
        "   └──⧉ web-old           ReplicaSet   ✔ Healthy           60m  stable,delay:30s",
    ]


def test_colours_are_only_added_when_asked_and_keep_the_columns() -> None:
    plain = render_rollout(view(), now=NOW)
    coloured = render_rollout(view(), now=NOW, colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[33mcanary\x1b[0m" in coloured
    stripped = coloured
    for code in ("\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[94m", "\x1b[0m"):
        stripped = stripped.replace(code, "")
    assert stripped == plain


@pytest.mark.parametrize(("status", "icon"), [
    ("Running", "✔"), ("Pending", "◌"), ("Init:0/1", "◌"), ("ExitCode:1", "✖"),
    ("ErrImagePull", "⚠"), ("ImagePullBackOff", "⚠"), ("Unknown", "?"), ("Weird", " "),
])
def test_pod_icons_follow_the_plugin(status: str, icon: str) -> None:
    assert pod_icon(status) == icon


@pytest.mark.parametrize(("replicas", "available", "observed", "health"), [
    (2, 2, 1, "Healthy"), (2, 1, 1, "Progressing"), (0, 0, 1, "ScaledDown"),
    (2, 2, 0, "Progressing"),
])
def test_replica_set_health_follows_the_plugin(replicas: int, available: int, observed: int,
                                               health: str) -> None:
    obj = rs("x", revision=1, pod_hash="h", replicas=replicas, available=available, uid="u")
    obj["status"]["observedGeneration"] = observed
    assert replica_set_health(obj) == health


def test_list_rollouts_shows_the_plugins_columns_with_namespaces_on_demand() -> None:
    rollout = view().rollout
    assert render_list([rollout], all_namespaces=False).splitlines() == [
        "NAME  STRATEGY  STATUS       STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE",
        "web   Canary    Progressing  0/2   50          2/3    2        1           2",
    ]
    assert render_list([rollout], all_namespaces=True).splitlines()[1].startswith("shop ")
