"""Subset-level routing (``trafficRouting.istio.destinationRule``), seed 004's way: the subsets
carry the pod-template hash next to the labels they already select on (``version: canary`` /
``version: stable``, which canary/stableMetadata put on each role's pods), and the
VirtualService weights the subset destinations.

The safety rules (the class of bugs behind Argo's #2507 and #587): a subset is pointed at a
ReplicaSet only once it has available pods that carry the subset's labels; the pods a subset
with traffic routes to keep those labels and stay scaled until traffic has left it; the
DestinationRule's other subsets and fields are never touched.
"""

from __future__ import annotations

import copy
from typing import Any

from shiftd.decide.rollout.actions import Plan, SetTraffic
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL, IstioVirtualServiceRef
from shiftd.traffic.istio.routes import (
    Destinations,
    observe_weight,
    subset_labels,
    subset_patch,
    weight_patch,
)
from tests.support.world import World, apply_json_patch, load_example

Obj = dict[str, Any]
FOLDER = "tsb-subset-skywalking"
DESTINATIONS = Destinations(canary_service=None, stable_service=None, canary_subset="canary",
                            stable_subset="stable")


def destination_rule() -> Obj:
    (rule,) = [copy.deepcopy(d) for d in load_example(FOLDER) if d["kind"] == "DestinationRule"]
    rule["spec"]["trafficPolicy"] = {"loadBalancer": {"simple": "ROUND_ROBIN"}}
    rule["spec"]["subsets"].append({"name": "legacy", "labels": {"version": "v0"},
                                    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})
    return rule


def test_subsets_get_the_hash_next_to_their_labels_and_nothing_else_changes() -> None:
    rule = destination_rule()
    before = copy.deepcopy(rule)
    apply_json_patch(rule, subset_patch(rule, DESTINATIONS, canary_hash="c1", stable_hash="s1"))
    assert rule["spec"]["subsets"][0] == {"name": "stable", "labels": {
        "version": "stable", POD_TEMPLATE_HASH_LABEL: "s1"}}
    assert rule["spec"]["subsets"][1] == {"name": "canary", "labels": {
        "version": "canary", POD_TEMPLATE_HASH_LABEL: "c1"}}
    assert rule["spec"]["subsets"][2] == before["spec"]["subsets"][2]
    assert {k: v for k, v in rule["spec"].items() if k != "subsets"} == \
        {k: v for k, v in before["spec"].items() if k != "subsets"}
    assert rule["metadata"] == before["metadata"]
    # moving again only rewrites the hash
    apply_json_patch(rule, subset_patch(rule, DESTINATIONS, canary_hash="c2", stable_hash="s1"))
    assert rule["spec"]["subsets"][1]["labels"] == {"version": "canary",
                                                    POD_TEMPLATE_HASH_LABEL: "c2"}
    assert subset_patch(rule, DESTINATIONS, canary_hash="c2", stable_hash="s1") == []


def test_the_labels_a_subset_selects_on_besides_the_hash_are_observed() -> None:
    rule = destination_rule()
    apply_json_patch(rule, subset_patch(rule, DESTINATIONS, canary_hash="c1", stable_hash="s1"))
    assert subset_labels(rule, DESTINATIONS) == ((("version", "canary"),),
                                                 (("version", "stable"),))


def seed_004_world() -> World:
    """Seed 004's Rollout (its Deployment's template, without the analysis) over a subset
    router whose subsets select ``version`` labels, as its DestinationRule does."""
    world = World.from_example(FOLDER, with_analysis=True)
    world.rollout["spec"]["strategy"]["canary"].pop("analysis")
    (deployment,) = [copy.deepcopy(d) for d in load_example(FOLDER) if d["kind"] == "Deployment"]
    deployment["metadata"].update(generation=1, resourceVersion="1")
    world.deployment = deployment
    world.routes_by_subset = True
    world.subset_labels = ((("version", "canary"),), (("version", "stable"),))
    return world


def template_labels(world: World, pod_hash: str | None) -> dict[str, str] | None:
    for rs in world.replica_sets.values():
        if rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == pod_hash:
            labels: dict[str, str] = rs["spec"]["template"]["metadata"]["labels"]
            return labels
    return None


def available(world: World, pod_hash: str | None) -> int:
    for rs in world.replica_sets.values():
        if rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == pod_hash:
            return int(rs["status"]["availableReplicas"])
    return 0


def routed_to_pods_that_are_gone(world: World) -> list[str]:
    """Each weighted subset's pods: available, and carrying the subset's labels."""
    vs = next(iter(world.virtual_services.values()))
    weights = {d["destination"]["subset"]: int(d.get("weight") or 0)
               for d in vs["spec"]["http"][0]["route"]}
    problems = []
    for name, pod_hash, labels in (("canary", world.subsets[0], world.subset_labels[0]),
                                   ("stable", world.subsets[1], world.subset_labels[1])):
        if weights[name] <= 0:
            continue
        found = template_labels(world, pod_hash)
        if found is None or available(world, pod_hash) <= 0 or any(
                found.get(k) != v for k, v in labels):
            problems.append(f"{name} subset ({weights[name]} %) on {pod_hash}: {found}")
    return problems


def settle_one_write_at_a_time(world: World, *, limit: int = 60) -> list[str]:
    """Reconcile until quiet, applying each write on its own and checking the routing after
    every one (the order of a plan's writes matters to whoever is routed meanwhile)."""
    world.check_fixed_point = False
    problems: list[str] = []
    for _ in range(limit):
        plan = world.plan()
        if not plan.actions:
            return problems
        for action in plan.actions:
            world.apply(Plan(actions=(action,), events=(), requeue_at=None, status={}))
            problems += routed_to_pods_that_are_gone(world)
    raise AssertionError("the planner did not settle")


def test_the_first_revision_gets_the_stable_subset_once_its_pods_are_all_available() -> None:
    world = seed_004_world()
    plan = world.plan()
    world.held.update(a.name for a in plan.actions if hasattr(a, "body"))
    world.apply(plan)
    world.settle()
    assert world.subsets == (None, None)  # no pod available: the subsets keep what they had
    world.held.clear()
    world.apply(world.plan())
    world.settle()
    stable = world.status["stableRS"]
    assert world.subsets == (stable, stable)
    assert template_labels(world, stable) == {"app": "reviews", "version": "stable",
                                              "service.istio.io/canonical-revision": "stable",
                                              POD_TEMPLATE_HASH_LABEL: stable}


def test_a_canary_subset_waits_for_an_available_canary_pod() -> None:
    world = seed_004_world()
    world.settle()
    stable = world.status["stableRS"]
    assert world.deployment is not None
    world.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "reviews:v2"
    world.deployment["metadata"]["generation"] = 2
    plan = world.plan()
    world.held.update(a.name for a in plan.actions if hasattr(a, "body"))
    world.apply(plan)
    world.settle()
    assert world.subsets == (stable, stable)
    assert not routed_to_pods_that_are_gone(world)
    world.held.clear()
    world.apply(world.plan())
    world.settle()
    canary = world.status["currentPodHash"]
    assert world.subsets == (canary, stable)
    assert routed_to_pods_that_are_gone(world) == []


def test_promotion_over_role_labelled_subsets_never_routes_to_pods_leaving_a_subset() -> None:
    world = seed_004_world()
    world.settle()
    stable = world.status["stableRS"]
    assert world.deployment is not None
    world.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "reviews:v2"
    world.deployment["metadata"]["generation"] = 2
    assert settle_one_write_at_a_time(world) == []
    canary = world.status["currentPodHash"]
    for _ in range(4):  # through the 10 % ... 80 % steps and their pauses
        world.advance(600)
        assert settle_one_write_at_a_time(world) == []
    world.advance(600)
    assert settle_one_write_at_a_time(world) == []
    assert world.status["phase"] == "Healthy"
    assert world.status["stableRS"] == canary
    assert world.subsets == (canary, canary)
    assert template_labels(world, canary) is not None
    assert (template_labels(world, canary) or {})["version"] == "stable"
    old = template_labels(world, stable) or {}
    assert "version" not in old  # the old revision's stable metadata, removed at the end


def test_an_abort_over_role_labelled_subsets_keeps_the_stable_subset_serving() -> None:
    world = seed_004_world()
    world.settle()
    stable = world.status["stableRS"]
    assert world.deployment is not None
    world.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "reviews:v2"
    world.deployment["metadata"]["generation"] = 2
    settle_one_write_at_a_time(world)
    world.advance(600)
    settle_one_write_at_a_time(world)
    canary = world.status["currentPodHash"]
    world.patch_status({"abort": True})
    assert settle_one_write_at_a_time(world) == []
    assert world.subsets == (canary, stable)  # the canary subset, at 0 %, stays put
    assert (template_labels(world, stable) or {})["version"] == "stable"


def test_a_plan_over_subsets_is_a_fixed_point_once_its_own_steps_are_done() -> None:
    world = seed_004_world()
    world.settle()
    assert world.deployment is not None
    world.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "reviews:v2"
    world.deployment["metadata"]["generation"] = 2
    world.settle()
    for _ in range(5):
        world.advance(600)
        world.settle()  # checks every plan (but those saying "again") is a fixed point
    assert world.status["phase"] == "Healthy"
    traffic = [a for a in world.plan().actions if isinstance(a, SetTraffic)]
    assert traffic == []


def test_routes_to_other_subsets_keep_their_weights() -> None:
    (vs,) = [copy.deepcopy(d) for d in load_example(FOLDER) if d["kind"] == "VirtualService"]
    vs["spec"]["http"][0]["name"] = "primary"
    legacy = {"name": "legacy", "match": [{"headers": {"x-legacy": {"exact": "1"}}}],
              "route": [{"destination": {"host": "reviews", "subset": "legacy"}, "weight": 70},
                        {"destination": {"host": "reviews", "subset": "stable"}, "weight": 30}]}
    vs["spec"]["http"].append(copy.deepcopy(legacy))
    ref = IstioVirtualServiceRef(name="reviews", namespace=None, routes=("primary",))
    apply_json_patch(vs, weight_patch(vs, ref, DESTINATIONS, 40))
    assert observe_weight(vs, ref, DESTINATIONS) == 40
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [60, 40]
    assert vs["spec"]["http"][1] == legacy


def test_a_subset_whose_labels_the_canary_pods_lack_holds_the_weight_and_says_why() -> None:
    world = seed_004_world()
    del world.rollout["spec"]["strategy"]["canary"]["canaryMetadata"]
    world.settle()
    stable = world.status["stableRS"]
    assert world.deployment is not None
    world.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "reviews:v2"
    world.deployment["metadata"]["generation"] = 2
    world.settle()
    assert world.subsets == (stable, stable)
    assert world.status["canary"]["weights"]["canary"]["weight"] == 0
    assert routed_to_pods_that_are_gone(world) == []
    assert any("the canary subset selects version=canary, which the pods of ReplicaSet "
               in event for event in world.events)
