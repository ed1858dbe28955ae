"""The invariant monitor judges namespace snapshots: each broken promise is reported, and a
route that has never served (a cold start) is not blamed for having nothing available."""

from __future__ import annotations

from typing import Any

from tests.support.invariants import InvariantMonitor, Snapshot

Obj = dict[str, Any]
NS = "shop"


def service(name: str, **selector: str) -> Obj:
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"selector": selector}}


def replica_set(name: str, *, available: int, owner: str | None = "app",
                image: str = "v1", **labels: str) -> Obj:
    metadata: Obj = {"name": name, "namespace": NS}
    if owner:
        metadata["ownerReferences"] = [{"kind": "Rollout", "name": owner, "uid": "u-1",
                                        "controller": True}]
    return {"metadata": metadata,
            "spec": {"template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"availableReplicas": available}}


def vs(*weights: tuple[str, int]) -> Obj:
    return {"metadata": {"name": "vs", "namespace": NS}, "spec": {"http": [{"route": [
        {"destination": {"host": host}, "weight": weight} for host, weight in weights]}]}}


def snapshot(**objects: list[Obj]) -> Snapshot:
    return Snapshot(NS, objects)


def judged(*snapshots: Snapshot) -> list[str]:
    monitor = InvariantMonitor(NS)
    for index, state in enumerate(snapshots):
        monitor.judge(state, cause=f"state {index}")
    return monitor.violations


SERVICES = [service("stable", app="a", h="1"), service("canary", app="a", h="2")]


def test_weights_that_do_not_add_up_to_100_are_a_violation() -> None:
    found = judged(snapshot(virtualservices=[vs(("stable", 90), ("canary", 20))],
                            services=SERVICES))
    assert found == ["vs.http[0]: weights [90, 20] do not add up to 100 (after state 0)"]


def test_a_cold_start_with_nothing_available_is_not_blamed() -> None:
    assert judged(snapshot(virtualservices=[vs(("stable", 100), ("canary", 0))],
                           services=SERVICES,
                           replicasets=[replica_set("rs-1", available=0, app="a", h="1")])) == []


def test_a_route_that_served_and_then_points_at_nothing_available_is_a_violation() -> None:
    serving = snapshot(virtualservices=[vs(("stable", 100), ("canary", 0))],
                       services=SERVICES,
                       replicasets=[replica_set("rs-1", available=2, app="a", h="1")])
    switched = snapshot(virtualservices=[vs(("stable", 100), ("canary", 0))],
                        services=[service("stable", app="a", h="3"), SERVICES[1]],
                        replicasets=[replica_set("rs-1", available=2, app="a", h="1"),
                                     replica_set("rs-3", available=0, image="v3", app="a",
                                                 h="3")])
    assert judged(serving) == []
    assert judged(serving, switched) == [
        "vs.http[0]: weight 100 to stable, which selects no available pod (after state 1)"]


def test_canary_weight_before_the_canary_is_available_is_a_violation() -> None:
    found = judged(snapshot(
        virtualservices=[vs(("stable", 90), ("canary", 10))], services=SERVICES,
        replicasets=[replica_set("rs-1", available=2, app="a", h="1"),
                     replica_set("rs-2", available=0, image="v2", app="a", h="2")]))
    assert found == ["vs.http[0]: weight 10 to canary, which selects no available pod "
                     "(after state 0)"]


def test_ready_pods_count_as_available_even_without_a_replica_set() -> None:
    pod = {"metadata": {"name": "p", "namespace": NS, "labels": {"app": "a", "h": "1"}},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert judged(snapshot(virtualservices=[vs(("stable", 100), ("canary", 0))],
                           services=SERVICES, pods=[pod])) == []


def test_two_replica_sets_of_one_rollout_with_one_template_are_a_violation() -> None:
    found = judged(snapshot(replicasets=[
        replica_set("rs-1", available=1, app="a", **{"rollouts-pod-template-hash": "1"}),
        replica_set("rs-2", available=1, app="a", **{"rollouts-pod-template-hash": "2"})]))
    assert found == ["Rollout app owns two ReplicaSets with the same template: rs-1 and rs-2 "
                     "(after state 0)"]


def test_subset_destinations_are_judged_by_their_subset_labels() -> None:
    rule = {"metadata": {"name": "dr", "namespace": NS}, "spec": {"host": "svc", "subsets": [
        {"name": "stable", "labels": {"h": "1"}}, {"name": "canary", "labels": {"h": "2"}}]}}
    route = {"metadata": {"name": "vs", "namespace": NS}, "spec": {"http": [{"route": [
        {"destination": {"host": "svc", "subset": "stable"}, "weight": 50},
        {"destination": {"host": "svc", "subset": "canary"}, "weight": 50}]}]}}
    found = judged(snapshot(
        virtualservices=[route], destinationrules=[rule], services=[service("svc", app="a")],
        replicasets=[replica_set("rs-1", available=2, app="a", h="1"),
                     replica_set("rs-2", available=0, image="v2", app="a", h="2")]))
    assert found == ["vs.http[0]: weight 50 to svc/canary, which selects no available pod "
                     "(after state 0)"]


def test_availability_is_judged_only_once_the_replica_set_cache_caught_up_with_the_route(
) -> None:
    route = vs(("stable", 90), ("canary", 10))
    route["metadata"]["resourceVersion"] = "50"
    objects: dict[str, list[Obj]] = {
        "virtualservices": [route], "services": SERVICES,
        "replicasets": [replica_set("rs-1", available=2, app="a", h="1"),
                        replica_set("rs-2", available=0, image="v2", app="a", h="2")]}
    lagging = Snapshot(NS, objects, {"replicasets": 40, "pods": 60})
    caught_up = Snapshot(NS, objects, {"replicasets": 50, "pods": 60})
    assert judged(lagging) == []
    assert judged(lagging, caught_up) == [
        "vs.http[0]: weight 10 to canary, which selects no available pod (after state 1)"]
