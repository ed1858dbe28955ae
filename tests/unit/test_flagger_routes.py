"""The VirtualService a Canary routes through, as Flagger's Istio router writes it, and the
weights read back from it."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.decide.flagger.routes import Routes, observe_routes, virtual_service_spec
from shiftd.model.flagger.canary import Canary, parse_canary

Obj = dict[str, Any]


def canary(service: Obj | None = None, analysis: Obj | None = None) -> Canary:
    return parse_canary({"metadata": {"name": "podinfo", "namespace": "test", "uid": "u"},
                         "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo"},
                                  "service": {"port": 9898, **(service or {})},
                                  "analysis": analysis or {}}})


@pytest.mark.parametrize(("service", "hosts", "gateways"), [
    ({}, ["podinfo"], ["mesh"]),
    ({"hosts": ["*"], "gateways": ["public"]}, ["*"], ["public"]),
    ({"hosts": ["app.example.com"]}, ["app.example.com", "podinfo"], ["mesh"]),
])
def test_hosts_get_the_apex_service_and_gateways_default_to_the_mesh(
        service: Obj, hosts: list[str], gateways: list[str]) -> None:
    spec = virtual_service_spec(canary(service), Routes(primary=100, canary=0, mirrored=False))
    assert (spec["hosts"], spec["gateways"]) == (hosts, gateways)


def test_a_zero_weight_is_written_and_ports_only_with_port_discovery_behind_a_gateway() -> None:
    plain = virtual_service_spec(canary({"gateways": ["public"]}), Routes(100, 0, False))
    assert plain["http"][0]["route"] == [
        {"destination": {"host": "podinfo-primary"}, "weight": 100},
        {"destination": {"host": "podinfo-canary"}, "weight": 0}]
    discovered = virtual_service_spec(canary({"gateways": ["public"], "portDiscovery": True}),
                                      Routes(90, 10, False))
    assert discovered["http"][0]["route"][1] == {
        "destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 10}


def test_ab_testing_merges_each_condition_into_the_service_match() -> None:
    subject = canary({"match": [{"uri": {"prefix": "/api"}}]},
                     {"iterations": 2, "match": [{"headers": {"x-user": {"exact": "beta"}}}]})
    spec = virtual_service_spec(subject, Routes(0, 100, False))
    assert spec["http"][0]["match"] == [{"uri": {"prefix": "/api"},
                                         "headers": {"x-user": {"exact": "beta"}}}]
    assert spec["http"][1]["match"] == [{"uri": {"prefix": "/api"}}]
    assert observe_routes(subject, {"spec": spec}) == Routes(0, 100, False)


def test_routes_are_read_from_the_route_that_names_the_canary() -> None:
    vs = {"spec": {"http": [
        {"route": [{"destination": {"host": "elsewhere"}}]},
        {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 70},
                   {"destination": {"host": "podinfo-canary"}, "weight": 30}],
         "mirror": {"host": "podinfo-canary"}}]}}
    assert observe_routes(canary(), vs) == Routes(primary=70, canary=30, mirrored=True)


PRIMARY, CANARY = {"host": "podinfo-primary"}, {"host": "podinfo-canary"}
AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            {"sourceLabels": {"app": "tester"}}]


@pytest.mark.parametrize(("routes", "primary", "canary_weight"), [
    (Routes(100, 0, False), 100, 0),   # as the Canary is initialised
    (Routes(0, 100, False), 0, 100),   # each A/B iteration
])
def test_ab_testing_sends_matching_requests_by_weight_and_the_rest_to_the_primary(
        routes: Routes, primary: int, canary_weight: int) -> None:
    subject = canary({"retries": {"attempts": 3}},
                     {"iterations": 10, "match": AB_MATCH, "mirror": True})
    spec = virtual_service_spec(subject, routes)
    assert spec["http"] == [
        {"match": AB_MATCH, "retries": {"attempts": 3},
         "route": [{"destination": PRIMARY, "weight": primary},
                   {"destination": CANARY, "weight": canary_weight}]},
        # the default route's lone destination: 100 (Flagger writes the primary's weight, which
        # Istio ignores for a lone destination; shiftd keeps every route adding up to 100)
        {"retries": {"attempts": 3}, "route": [{"destination": PRIMARY, "weight": 100}]}]
    assert observe_routes(subject, {"spec": spec}) == routes


def test_ab_testing_never_mirrors_as_its_routes_replace_the_mirrored_one() -> None:
    subject = canary(analysis={"iterations": 2, "match": AB_MATCH, "mirror": True})
    spec = virtual_service_spec(subject, Routes(100, 0, True))
    assert all("mirror" not in route and "mirrorPercentage" not in route
               for route in spec["http"])


@pytest.mark.parametrize(("mirror_weight", "extra"), [
    (None, {}),
    (30, {"mirrorPercentage": {"value": 30}}),
])
def test_mirroring_copies_requests_to_the_canary_while_the_primary_answers_them_all(
        mirror_weight: int | None, extra: Obj) -> None:
    analysis: Obj = {"stepWeight": 10, "maxWeight": 50, "mirror": True}
    if mirror_weight is not None:
        analysis["mirrorWeight"] = mirror_weight
    subject = canary(analysis=analysis)
    spec = virtual_service_spec(subject, Routes(100, 0, True))
    assert spec["http"] == [{"route": [{"destination": PRIMARY, "weight": 100},
                                       {"destination": CANARY, "weight": 0}],
                             "mirror": CANARY, **extra}]
    assert observe_routes(subject, {"spec": spec}) == Routes(100, 0, True)
    unmirrored = virtual_service_spec(subject, Routes(90, 10, False))
    assert "mirror" not in unmirrored["http"][0]
