"""A pod template as a real API server stores it equals the Rollout's template it came from:
the server's defaults (recorded in shared/apiserver-transcripts/defaults.json) are applied to
both sides, the hash label and empty values ignored (issue 8, finding 2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.common.podtemplate import (
    SPEC_DIGEST_KEY,
    default_pod_template,
    image_pull_policy,
    without_spec,
)
from shiftd.decide.rollout.actions import CreateReplicaSet, PatchReplicaSet
from shiftd.decide.rollout.hashing import templates_equal
from tests.support.world import World

Obj = dict[str, Any]

ROLLOUT_TEMPLATE: Obj = {
    "metadata": {"labels": {"app": "demo"}},
    "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue",
                             "ports": [{"name": "http", "containerPort": 8080}]}]},
}
# What v1.24 answered for a ReplicaSet created from that template (defaults.json).
SERVER_STORED: Obj = {
    "metadata": {"creationTimestamp": None,
                 "labels": {"app": "demo", "rollouts-pod-template-hash": "abc"}},
    "spec": {"containers": [{
        "name": "demo", "image": "argoproj/rollouts-demo:blue",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {}, "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst", "securityContext": {},
        "schedulerName": "default-scheduler"},
}


def test_the_defaults_are_what_the_server_fills_in() -> None:
    stored = copy.deepcopy(SERVER_STORED)
    stored["metadata"]["labels"].pop("rollouts-pod-template-hash")
    assert default_pod_template(ROLLOUT_TEMPLATE) == stored


def test_defaulting_is_idempotent() -> None:
    once = default_pod_template(ROLLOUT_TEMPLATE)
    assert default_pod_template(once) == once


def test_a_server_defaulted_template_equals_the_rollouts_template() -> None:
    assert templates_equal(SERVER_STORED, ROLLOUT_TEMPLATE)
    assert templates_equal(ROLLOUT_TEMPLATE, SERVER_STORED)


def test_a_real_difference_is_still_a_difference() -> None:
    changed = copy.deepcopy(ROLLOUT_TEMPLATE)
    changed["spec"]["containers"][0]["image"] = "argoproj/rollouts-demo:yellow"
    assert not templates_equal(SERVER_STORED, changed)
    pulled_always = copy.deepcopy(ROLLOUT_TEMPLATE)
    pulled_always["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert not templates_equal(SERVER_STORED, pulled_always)


def test_a_template_cached_without_its_spec_compares_as_the_whole_template() -> None:
    cached = without_spec(SERVER_STORED)
    assert "spec" not in cached and SPEC_DIGEST_KEY in cached
    assert cached["metadata"] == SERVER_STORED["metadata"]
    assert templates_equal(cached, ROLLOUT_TEMPLATE)
    assert templates_equal(ROLLOUT_TEMPLATE, cached)
    assert templates_equal(cached, without_spec(ROLLOUT_TEMPLATE))
    assert without_spec(cached) is cached


def test_a_template_cached_without_its_spec_still_tells_a_difference() -> None:
    cached = without_spec(SERVER_STORED)
    changed = copy.deepcopy(ROLLOUT_TEMPLATE)
    changed["spec"]["containers"][0]["image"] = "argoproj/rollouts-demo:yellow"
    assert not templates_equal(cached, changed)
    relabelled = copy.deepcopy(ROLLOUT_TEMPLATE)
    relabelled["metadata"]["labels"]["tier"] = "web"
    assert not templates_equal(cached, relabelled)
    assert not templates_equal(cached, {"metadata": ROLLOUT_TEMPLATE["metadata"]})


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.15.4", "IfNotPresent"),
    ("registry:5000/team/nginx", "Always"),
    ("registry:5000/team/nginx:1.2", "IfNotPresent"),
    ("nginx@sha256:abc", "IfNotPresent"),
])
def test_the_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_the_planner_adopts_a_replica_set_whose_template_the_server_defaulted() -> None:
    world = World.from_example("asm-host-split")
    template = default_pod_template(world.rollout["spec"]["template"])
    template["metadata"]["labels"]["rollouts-pod-template-hash"] = "handmade"
    world.replica_sets["istio-rollout-handmade"] = {
        "metadata": {"name": "istio-rollout-handmade", "namespace": "default",
                     "labels": dict(template["metadata"]["labels"])},
        "spec": {"replicas": 1, "template": template},
        "status": {"replicas": 1, "availableReplicas": 1, "readyReplicas": 1}}
    plan = world.plan()
    assert not [a for a in plan.actions if isinstance(a, CreateReplicaSet)]
    assert [a.name for a in plan.actions if isinstance(a, PatchReplicaSet)] == [
        "istio-rollout-handmade"]
    world.apply(plan)
    world.settle()
    assert world.status["stableRS"] == "handmade"
    assert list(world.replica_sets) == ["istio-rollout-handmade"]
