"""The pure parts of ``RolloutPods``: a LabelSelector as a query, a pod's owner, and the part
of a metadata patch that would change a pod."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.controllers.rollout_pods import owner_of, pod_changes, selector_query


@pytest.mark.parametrize(
    ("selector", "query"),
    [
        pytest.param({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2", id="labels sorted"),
        pytest.param({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"}]},
            "app=web,tier in (back,front),env notin (dev),team,!legacy", id="expressions"),
    ],
)
def test_a_label_selector_becomes_the_apiservers_query(selector: dict[str, Any],
                                                        query: str) -> None:
    assert selector_query(selector) == query


def test_a_pods_owner_is_its_controlling_replica_set() -> None:
    pod = {"metadata": {"ownerReferences": [
        {"kind": "ReplicaSet", "name": "other", "controller": False},
        {"kind": "ReplicaSet", "name": "web-abc", "controller": True}]}}
    assert owner_of(pod) == "web-abc"
    assert owner_of({"metadata": {}}) == ""


def test_only_the_keys_that_would_change_a_pod_are_patched() -> None:
    pod = {"metadata": {"labels": {"app": "web", "role": "canary"},
                        "annotations": {"note": "x"}}}
    patch = {"labels": {"role": "stable", "app": "web", "gone": None},
             "annotations": {"note": None}}
    assert pod_changes(pod, patch) == {"labels": {"role": "stable"},
                                       "annotations": {"note": None}}
    assert pod_changes(pod, {"labels": {"role": "canary", "absent": None}}) == {}
