"""Managed routes (setHeaderRoute / setMirrorRoute) in a VirtualService, and their steps.

The routes sit above the user's routes in managedRoutes order; the user's routes keep every
field and their order; weights of every weighted route still add up to 100; what shiftd
writes reads back as what it asked for, so a second patch is empty.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.decide.traffic import ManagedRoute
from shiftd.model.argo.rollout import InvalidSpecError, SetHeaderRouteStep, parse_rollout
from shiftd.model.argo.routes import canonical
from shiftd.traffic.istio.managed import managed_patch, read_routes, routes_intact
from shiftd.traffic.istio.routes import RouteError, route_weights
from tests.support.world import apply_json_patch
from tests.unit.test_istio_routes import HOSTS, ref, route, virtual_service

MANAGED = ("header-route", "mirror-route")
HEADER = ManagedRoute(name="header-route", kind="header", match=canonical(
    [{"headerName": "x-canary", "headerValue": {"exact": "yes"}}]))
MIRROR = ManagedRoute(name="mirror-route", kind="mirror", percentage=35, match=canonical(
    [{"method": {"exact": "GET"}, "path": {"prefix": "/api"}}]))


def user_vs() -> dict[str, Any]:
    primary = route("primary", ("stable-svc", 100), ("canary-svc", 0))
    primary["timeout"] = "5s"  # a field shiftd never writes
    other = route("other", ("legacy", None))
    return virtual_service(primary, other)


def patched(vs: dict[str, Any], *, routes: tuple[ManagedRoute, ...], weight: int,
            names: tuple[str, ...] = ("primary",)) -> dict[str, Any]:
    result = copy.deepcopy(vs)
    apply_json_patch(result, managed_patch(result, ref(*names), HOSTS, managed=MANAGED,
                                           routes=routes, canary_weight=weight))
    return result


def test_managed_routes_go_above_the_users_routes_in_managed_routes_order() -> None:
    vs = patched(user_vs(), routes=(HEADER, MIRROR), weight=30)
    http = vs["spec"]["http"]
    assert [r.get("name") for r in http] == ["header-route", "mirror-route", "primary", "other"]
    assert http[0]["match"] == [{"headers": {"x-canary": {"exact": "yes"}}}]
    assert http[0]["route"] == [{"destination": {"host": "canary-svc"}, "weight": 100}]
    assert http[1]["match"] == [{"method": {"exact": "GET"}, "uri": {"prefix": "/api"}}]
    assert http[1]["mirror"] == {"host": "canary-svc"}
    assert http[1]["mirrorPercentage"] == {"value": 35}
    assert http[1]["route"] == http[2]["route"]  # the mirror route keeps the weights
    assert http[2]["timeout"] == "5s"
    assert http[3] == user_vs()["spec"]["http"][1]
    assert vs["spec"]["hosts"] == ["app"] and vs["spec"]["gateways"] == ["gw"]


def test_every_weighted_route_adds_up_to_100_with_managed_routes_in_place() -> None:
    vs = patched(user_vs(), routes=(HEADER, MIRROR), weight=30)
    found = route_weights(vs, ref("primary"), HOSTS, MANAGED)
    assert [(w.canary, w.stable) for w in found] == [(30, 70)]
    for http_route in vs["spec"]["http"][:3]:
        assert sum(int(e.get("weight") or 0) for e in http_route["route"]) == 100


def test_what_shiftd_writes_reads_back_as_asked_and_a_second_patch_is_empty() -> None:
    vs = patched(user_vs(), routes=(MIRROR, HEADER), weight=30)
    assert read_routes(vs, MANAGED) == (HEADER, MIRROR)
    assert routes_intact(vs, ref("primary"), HOSTS, MANAGED)
    assert managed_patch(vs, ref("primary"), HOSTS, managed=MANAGED, routes=(HEADER, MIRROR),
                         canary_weight=30) == []


def test_a_new_weight_moves_the_mirror_routes_copy_of_the_weights_too() -> None:
    vs = patched(patched(user_vs(), routes=(MIRROR,), weight=30), routes=(MIRROR,), weight=60)
    assert vs["spec"]["http"][0]["route"] == vs["spec"]["http"][1]["route"]
    assert {e["destination"]["host"]: e["weight"] for e in vs["spec"]["http"][1]["route"]} \
        == {"stable-svc": 40, "canary-svc": 60}


def test_removing_the_routes_gives_back_the_users_routes_exactly() -> None:
    original = user_vs()
    vs = patched(patched(original, routes=(HEADER, MIRROR), weight=0), routes=(), weight=0)
    assert vs == original


def test_a_managed_route_moved_below_a_user_route_is_not_intact() -> None:
    vs = patched(user_vs(), routes=(HEADER,), weight=30)
    vs["spec"]["http"].append(vs["spec"]["http"].pop(0))
    assert not routes_intact(vs, ref("primary"), HOSTS, MANAGED)
    again = patched(vs, routes=(HEADER,), weight=30)
    assert [r.get("name") for r in again["spec"]["http"]] == ["header-route", "primary", "other"]


def test_the_patch_is_guarded_by_a_test_of_the_http_routes_it_was_computed_from() -> None:
    vs = user_vs()
    operations = managed_patch(vs, ref("primary"), HOSTS, managed=MANAGED, routes=(HEADER,),
                               canary_weight=10)
    assert operations[0] == {"op": "test", "path": "/spec/http", "value": vs["spec"]["http"]}


def test_the_only_user_route_is_weighted_when_none_is_named_beside_managed_routes() -> None:
    vs = patched(virtual_service(route(None, ("stable-svc", 100), ("canary-svc", 0))),
                 routes=(HEADER,), weight=20, names=())
    unnamed = ref()
    assert [(w.canary, w.stable) for w in route_weights(vs, unnamed, HOSTS, MANAGED)] \
        == [(20, 80)]
    with pytest.raises(RouteError, match="2 HTTP routes"):
        route_weights(vs, unnamed, HOSTS, ())


def rollout_with(steps: list[Any], managed: list[str] | None) -> dict[str, Any]:
    routing: dict[str, Any] = {"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}}
    if managed is not None:
        routing["managedRoutes"] = [{"name": name} for name in managed]
    return {"metadata": {"name": "app"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{}]}},
        "strategy": {"canary": {"canaryService": "canary-svc", "stableService": "stable-svc",
                                "trafficRouting": routing, "steps": steps}}}}


def test_route_steps_parse_with_their_names_listed_in_managed_routes() -> None:
    header = {"setHeaderRoute": {"name": "header-route", "match": [
        {"headerName": "x-canary", "headerValue": {"exact": "yes"}}]}}
    parsed = parse_rollout(rollout_with([header, {"setHeaderRoute": {"name": "header-route"}}],
                                        ["header-route"]))
    assert parsed.canary.managed_routes == ("header-route",)
    assert parsed.canary.steps[0] == SetHeaderRouteStep(name="header-route", match=HEADER.match)
    assert parsed.canary.steps[1] == SetHeaderRouteStep(name="header-route", match="[]")


@pytest.mark.parametrize(("steps", "managed", "message"), [
    ([{"setMirrorRoute": {"name": "m", "match": [{"method": {"exact": "GET"}}]}}], ["other"],
     "does not exist in spec.strategy.canary.trafficRouting.managedRoutes"),
    ([{"setHeaderRoute": {"name": "h"}}], None, "does not exist in"),
    ([{"setHeaderRoute": {"name": "h", "match": [
        {"headerName": "x", "headerValue": {"exact": "a", "prefix": "b"}}]}}], ["h"],
     "exactly one of the following: exact, regex, prefix"),
    ([{"setMirrorRoute": {"name": "m", "percentage": 101}}], ["m"], "between 0 and 100"),
])
def test_route_steps_argo_would_refuse_are_invalid(steps: list[Any], managed: list[str] | None,
                                                   message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_rollout(rollout_with(steps, managed))
