"""canaryMetadata / stableMetadata: each role's labels and annotations on its ReplicaSet's pod
template (and, through the controller, its pods), switched at promotion without a new hash."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shiftd.decide.rollout.actions import CreateReplicaSet, PatchReplicaSet, Plan
from shiftd.decide.rollout.hashing import pod_template_hash
from shiftd.decide.rollout.metadata import annotation_value, metadata_patch
from shiftd.decide.rollout.operator import undo_patch
from shiftd.model.argo.rollout import EPHEMERAL_METADATA_ANNOTATION, PodMetadata
from tests.support.world import World

HASH = "rollouts-pod-template-hash"
CANARY = {"labels": {"version": "canary", "service.istio.io/canonical-revision": "canary"},
          "annotations": {"version": "canary"}}
STABLE = {"labels": {"version": "stable", "service.istio.io/canonical-revision": "stable"},
          "annotations": {"version": "stable"}}


def world_with_metadata(**metadata: Any) -> World:
    world = World.from_example("asm-host-split")
    world.rollout["spec"]["strategy"]["canary"].update(
        metadata or {"canaryMetadata": CANARY, "stableMetadata": STABLE})
    return world


def by_hash(world: World, pod_hash: str) -> dict[str, Any]:
    return next(rs for rs in world.replica_sets.values()
                if rs["metadata"]["labels"][HASH] == pod_hash)


def template_metadata(rs: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    metadata = rs["spec"]["template"]["metadata"]
    return metadata.get("labels") or {}, metadata.get("annotations") or {}


def settle_recording(world: World) -> list[Plan]:
    plans: list[Plan] = []
    for _ in range(50):
        plan = world.plan()
        if not plan.actions:
            return plans
        plans.append(plan)
        world.apply(plan)
    raise AssertionError("the planner did not settle")


def test_a_first_revision_is_created_with_the_stable_metadata() -> None:
    world = world_with_metadata()
    world.settle()
    (rs,) = world.replica_sets.values()
    labels, annotations = template_metadata(rs)
    assert labels["version"] == "stable" and labels["app"] == "istio-rollout"
    assert annotations["version"] == "stable"
    assert annotations["sidecar.istio.io/inject"] == "true"  # the template's own stays
    assert json.loads(rs["metadata"]["annotations"][EPHEMERAL_METADATA_ANNOTATION]) == STABLE


def test_a_canary_gets_the_canary_metadata_and_keeps_the_rollouts_hash() -> None:
    world = world_with_metadata()
    world.settle()
    stable_hash = world.status["stableRS"]
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    canary_hash = world.status["currentPodHash"]
    assert canary_hash == pod_template_hash(world.rollout["spec"]["template"])
    assert template_metadata(by_hash(world, canary_hash))[0]["version"] == "canary"
    assert template_metadata(by_hash(world, stable_hash))[0]["version"] == "stable"


def test_promotion_switches_the_roles_metadata_in_place() -> None:
    world = world_with_metadata()
    world.settle()
    old_hash = world.status["stableRS"]
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    new_hash = world.status["currentPodHash"]
    names = set(world.replica_sets)
    world.patch_status({"promoteFull": True})
    plans = settle_recording(world)
    assert world.status["stableRS"] == new_hash
    assert set(world.replica_sets) == names  # no ReplicaSet created: no pod restarted
    assert not any(isinstance(a, CreateReplicaSet) for p in plans for a in p.actions)
    new_labels, new_annotations = template_metadata(by_hash(world, new_hash))
    assert new_labels["version"] == "stable" and new_annotations["version"] == "stable"
    assert new_labels[HASH] == new_hash
    old_labels, old_annotations = template_metadata(by_hash(world, old_hash))
    assert "version" not in old_labels and "version" not in old_annotations
    assert EPHEMERAL_METADATA_ANNOTATION not in by_hash(world, old_hash)["metadata"][
        "annotations"]
    switch = next(a for p in plans for a in p.actions
                  if isinstance(a, PatchReplicaSet) and a.name == by_hash(world, new_hash)[
                      "metadata"]["name"] and a.pod_metadata)
    assert switch.pod_metadata == {
        "labels": {"version": "stable", "service.istio.io/canonical-revision": "stable"},
        "annotations": {"version": "stable"}}


def test_metadata_shiftd_did_not_inject_is_left_alone() -> None:
    world = world_with_metadata(stableMetadata={"labels": {"tier": "gold"}},
                                canaryMetadata={"labels": {"track": "canary"}})
    world.settle()
    (name,) = world.replica_sets
    world.replica_sets[name]["spec"]["template"]["metadata"]["labels"]["team"] = "payments"
    world.edit_spec(strategy={"canary": {"stableMetadata": {"labels": {"tier": "silver"}}}})
    world.settle()
    labels, _ = template_metadata(world.replica_sets[name])
    assert labels["tier"] == "silver" and labels["team"] == "payments"
    # (as Argo: with neither field left, nothing is synced any more; with one, both are)
    world.edit_spec(strategy={"canary": {"stableMetadata": None}})
    world.settle()
    labels, _ = template_metadata(world.replica_sets[name])
    assert "tier" not in labels and labels["team"] == "payments"


def test_undo_restores_a_template_without_the_injected_metadata() -> None:
    world = world_with_metadata()
    world.settle()
    original = copy.deepcopy(world.rollout["spec"]["template"])
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()
    undo = undo_patch(world.rollout, list(world.replica_sets.values()))
    assert undo.template == original


@pytest.mark.parametrize(
    ("current", "existing", "desired", "expected"),
    [
        pytest.param({}, None, PodMetadata({"a": "1"}), {"labels": {"a": "1"}},
                     id="inject into nothing"),
        pytest.param({"labels": {"a": "1"}}, PodMetadata({"a": "1"}), PodMetadata({"a": "1"}),
                     {}, id="already there: nothing to do"),
        pytest.param({"labels": {"a": "1", "b": "2"}}, PodMetadata({"a": "1", "b": "2"}),
                     PodMetadata({"a": "9"}), {"labels": {"a": "9", "b": None}},
                     id="changed and no longer desired"),
        pytest.param({"labels": {"a": "1", "c": "3"}}, PodMetadata({"a": "1"}), None,
                     {"labels": {"a": None}}, id="removed, what others set stays"),
        pytest.param({"annotations": {"x": "1"}}, PodMetadata(annotations={"y": "2"}), None,
                     {}, id="an injected key already gone is not removed again"),
    ],
)
def test_metadata_patch_is_argos_sync_of_ephemeral_metadata(
    current: dict[str, Any], existing: PodMetadata | None, desired: PodMetadata | None,
    expected: dict[str, Any],
) -> None:
    assert metadata_patch(current, existing=existing, desired=desired) == expected


@pytest.mark.parametrize(
    "metadata",
    [{"labels": {"a": 1}}, {"labels": {HASH: "x"}}, {"tags": {}}, ["labels"]],
)
def test_malformed_role_metadata_is_an_invalid_spec(metadata: Any) -> None:
    world = world_with_metadata(canaryMetadata=metadata)
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "canaryMetadata" in world.status["message"]


def test_the_recorded_metadata_is_written_as_go_writes_it_whatever_the_specs_key_order() -> None:
    # Argo's record (encoding/json sorts a map's keys): a Rollout taken over from Argo, or a
    # spec whose keys come back in another order, is not patched for nothing
    written = annotation_value(PodMetadata({"version": "canary", "app.kubernetes.io/x": "1"},
                                           {"z": "1", "a": "2"}))
    assert written == ('{"labels":{"app.kubernetes.io/x":"1","version":"canary"},'
                       '"annotations":{"a":"2","z":"1"}}')
    assert written == annotation_value(PodMetadata({"app.kubernetes.io/x": "1",
                                                    "version": "canary"}, {"a": "2", "z": "1"}))
