"""Istio route rewriting: which routes are chosen, what the JSON patch touches, what is invalid."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.model.argo.rollout import IstioVirtualServiceRef
from shiftd.traffic.istio.routes import (
    Destinations,
    RouteError,
    observe_subsets,
    observe_weight,
    subset_patch,
    weight_patch,
)
from tests.support.world import apply_json_patch

HOSTS = Destinations(canary_service="canary-svc", stable_service="stable-svc")


def virtual_service(*routes: dict[str, Any], tls: list[Any] | None = None,
                    tcp: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": ["app"], "gateways": ["gw"], "http": list(routes)}
    if tls is not None:
        spec["tls"] = tls
    if tcp is not None:
        spec["tcp"] = tcp
    return {"metadata": {"name": "vs"}, "spec": spec}


def route(name: str | None, *destinations: tuple[str, int | None]) -> dict[str, Any]:
    entries = []
    for host, weight in destinations:
        entry: dict[str, Any] = {"destination": {"host": host}}
        if weight is not None:
            entry["weight"] = weight
        entries.append(entry)
    result: dict[str, Any] = {"route": entries, "match": [{"uri": {"prefix": "/"}}]}
    if name:
        result["name"] = name
    return result


def ref(*routes: str, tls: tuple[dict[str, Any], ...] = (),
        tcp: tuple[dict[str, Any], ...] = ()) -> IstioVirtualServiceRef:
    return IstioVirtualServiceRef(name="vs", namespace=None, routes=routes, tls_routes=tls,
                                  tcp_routes=tcp)


def test_a_missing_canary_weight_reads_as_zero() -> None:
    vs = virtual_service(route("primary", ("stable-svc", 100), ("canary-svc", None)))
    assert observe_weight(vs, ref("primary"), HOSTS) == 0


def test_weights_are_written_to_the_named_route_only_and_add_up_to_100() -> None:
    vs = virtual_service(route("primary", ("stable-svc", 100), ("canary-svc", 0)),
                         route("other", ("stable-svc", 100), ("canary-svc", 0)))
    original = copy.deepcopy(vs)
    operations = weight_patch(vs, ref("primary"), HOSTS, 30)
    apply_json_patch(vs, operations)
    weights = [d["weight"] for d in vs["spec"]["http"][0]["route"]]
    assert weights == [70, 30]
    assert sum(weights) == 100
    assert vs["spec"]["http"][1] == original["spec"]["http"][1]
    assert vs["spec"]["http"][0]["match"] == original["spec"]["http"][0]["match"]
    assert vs["spec"]["gateways"] == ["gw"]


def test_every_write_is_guarded_by_a_test_of_the_destination() -> None:
    vs = virtual_service(route("primary", ("stable-svc", 100), ("canary-svc", 0)))
    operations = weight_patch(vs, ref("primary"), HOSTS, 10)
    tests = [op for op in operations if op["op"] == "test"]
    assert [t["value"]["host"] for t in tests] == ["canary-svc", "stable-svc"]


def test_nothing_is_written_when_the_weights_already_match() -> None:
    vs = virtual_service(route("primary", ("stable-svc", 80), ("canary-svc", 20)))
    assert weight_patch(vs, ref("primary"), HOSTS, 20) == []


def test_the_only_route_is_used_when_none_is_named() -> None:
    vs = virtual_service(route(None, ("stable-svc.ns.svc.cluster.local", 100),
                               ("canary-svc.ns.svc.cluster.local", 0)))
    apply_json_patch(vs, weight_patch(vs, ref(), HOSTS, 50))
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [50, 50]


@pytest.mark.parametrize(
    ("vs", "routes", "message"),
    [
        (virtual_service(route("primary", ("stable-svc", 100), ("canary-svc", 0))),
         ("secondary",), "HTTP route 'secondary' not found"),
        (virtual_service(route("primary", ("stable-svc", 100), ("other-svc", 0))),
         ("primary",), "destination host 'other-svc' matches neither"),
        (virtual_service(route("primary", ("stable-svc", 100))),
         ("primary",), "no destination for the canary Service 'canary-svc'"),
        (virtual_service(route("primary", ("canary-svc", 100))),
         ("primary",), "no destination for the stable Service 'stable-svc'"),
        (virtual_service(route("a", ("stable-svc", 100), ("canary-svc", 0)),
                         route("b", ("stable-svc", 100), ("canary-svc", 0))),
         (), "has 2 HTTP routes"),
    ],
)
def test_routes_that_do_not_fit_are_reported(vs: dict[str, Any], routes: tuple[str, ...],
                                             message: str) -> None:
    with pytest.raises(RouteError, match=message):
        weight_patch(vs, ref(*routes), HOSTS, 10)


def test_host_prefix_must_end_at_a_dot() -> None:
    vs = virtual_service(route("primary", ("stable-svc", 100), ("canary-svc-2", 0)))
    with pytest.raises(RouteError, match="canary-svc-2"):
        observe_weight(vs, ref("primary"), HOSTS)


def test_tls_and_tcp_routes_are_rewritten_with_the_http_route() -> None:
    tls = [{"match": [{"port": 443, "sniHosts": ["app.example.com"]}],
            "route": [{"destination": {"host": "stable-svc"}, "weight": 100},
                      {"destination": {"host": "canary-svc"}, "weight": 0}]}]
    tcp = [{"match": [{"port": 9000}],
            "route": [{"destination": {"host": "stable-svc"}, "weight": 100},
                      {"destination": {"host": "canary-svc"}, "weight": 0}]}]
    vs = virtual_service(route("primary", ("stable-svc", 100), ("canary-svc", 0)), tls=tls,
                         tcp=tcp)
    reference = ref("primary", tls=({"port": 443, "sniHosts": ["app.example.com"]},),
                    tcp=({"port": 9000},))
    apply_json_patch(vs, weight_patch(vs, reference, HOSTS, 40))
    for section in ("http", "tls", "tcp"):
        assert [d["weight"] for d in vs["spec"][section][0]["route"]] == [60, 40]
    assert observe_weight(vs, reference, HOSTS) == 40


def test_a_missing_tls_route_is_reported() -> None:
    vs = virtual_service(route("primary", ("stable-svc", 100), ("canary-svc", 0)), tls=[])
    with pytest.raises(RouteError, match="TLS route"):
        observe_weight(vs, ref("primary", tls=({"port": 443},)), HOSTS)


def test_subsets_are_split_by_destination_rule_labels() -> None:
    subsets = Destinations(canary_service=None, stable_service=None, canary_subset="canary",
                           stable_subset="stable")
    vs = virtual_service(route("primary", ("reviews", 100), ("reviews", 0)))
    vs["spec"]["http"][0]["route"][0]["destination"]["subset"] = "stable"
    vs["spec"]["http"][0]["route"][1]["destination"]["subset"] = "canary"
    apply_json_patch(vs, weight_patch(vs, ref("primary"), subsets, 25))
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [75, 25]
    rule = {"metadata": {"name": "reviews"}, "spec": {"host": "reviews", "subsets": [
        {"name": "canary", "labels": {"app": "reviews"}}, {"name": "stable"}]}}
    apply_json_patch(rule, subset_patch(rule, subsets, canary_hash="c1", stable_hash="s1"))
    assert observe_subsets(rule, subsets) == ("c1", "s1")
    assert rule["spec"]["subsets"][0]["labels"]["app"] == "reviews"
    assert subset_patch(rule, subsets, canary_hash="c1", stable_hash="s1") == []
