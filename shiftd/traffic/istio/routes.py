"""Istio traffic routing: read and rewrite VirtualService weights and DestinationRule subsets.

The functions here are pure: they take the objects as the API returned them and return either
what the mesh routes now (``observe``) or the RFC 6902 JSON patch that moves it to a new
split (``weight_patch``, ``subset_patch``). Every patch starts with ``test`` operations on the
destinations it rewrites, so a concurrent reorder of the routes fails the patch (422) instead
of moving the wrong weight; everything not named by a path is left exactly as the user wrote it.

Route selection follows Argo Rollouts (``rollout/trafficrouting/istio/istio.go``): the named
http routes, or the only http route when none is named, plus the listed tls and tcp routes.
A destination matches a Service when its host equals the Service name or starts with
``<service>.``; with a DestinationRule, destinations match on subset names instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiftd.decide.traffic import RouteWeight
from shiftd.model.argo.rollout import (
    MAX_WEIGHT,
    POD_TEMPLATE_HASH_LABEL,
    IstioVirtualServiceRef,
)


class RouteError(ValueError):
    """The mesh objects do not fit the Rollout; the message becomes its InvalidSpec."""


@dataclass(frozen=True, slots=True)
class Destinations:
    """How the canary and stable destinations are recognised in a route."""

    canary_service: str | None
    stable_service: str | None
    canary_subset: str | None = None  # set when splitting by DestinationRule subsets
    stable_subset: str | None = None

    @property
    def by_subset(self) -> bool:
        return self.canary_subset is not None


@dataclass(frozen=True, slots=True)
class SelectedRoute:
    pointer: str  # JSON pointer of the route list, e.g. /spec/http/0/route
    label: str  # for messages: "HTTP route 'primary'"
    destinations: list[dict[str, Any]]


def _host_matches(host: str, service: str | None) -> bool:
    return service is not None and (host == service or host.startswith(f"{service}."))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def select_routes(vs: dict[str, Any], ref: IstioVirtualServiceRef,
                  managed: tuple[str, ...] = ()) -> list[SelectedRoute]:
    """The weighted routes of ``vs`` the Rollout controls; ``RouteError`` when one is missing.

    Routes named in ``managed`` (``trafficRouting.managedRoutes``) are shiftd's own, never a
    route the user asks to weight: with no route named, the only *other* http route is used.
    """
    spec = vs.get("spec") or {}
    name = f"VirtualService {(vs.get('metadata') or {}).get('name', ref.name)!r}"
    all_http = spec.get("http") or []
    http = [r if r.get("name") not in managed else {} for r in all_http]
    user_indexes = [i for i, r in enumerate(all_http) if r.get("name") not in managed]
    selected: list[SelectedRoute] = []
    if ref.routes:
        for route_name in ref.routes:
            index = next((i for i, r in enumerate(http) if r.get("name") == route_name), None)
            if index is None:
                raise RouteError(f"{name}: HTTP route {route_name!r} not found")
            selected.append(SelectedRoute(f"/spec/http/{index}/route",
                                          f"HTTP route {route_name!r}",
                                          http[index].get("route") or []))
    elif not ref.tls_routes and not ref.tcp_routes:
        if len(user_indexes) != 1:
            raise RouteError(
                f"{name} has {len(user_indexes)} HTTP routes: name the ones to split in "
                "spec.strategy.canary.trafficRouting.istio.virtualService.routes"
            )
        only = user_indexes[0]
        selected.append(SelectedRoute(f"/spec/http/{only}/route", "the HTTP route",
                                      http[only].get("route") or []))
    for kind, refs in (("tls", ref.tls_routes), ("tcp", ref.tcp_routes)):
        routes = spec.get(kind) or []
        for wanted in refs:
            index = next((i for i, r in enumerate(routes) if _route_matches(r, wanted)), None)
            if index is None:
                raise RouteError(f"{name}: {kind.upper()} route matching {wanted} not found")
            selected.append(SelectedRoute(f"/spec/{kind}/{index}/route",
                                          f"{kind.upper()} route {index}",
                                          routes[index].get("route") or []))
    return selected


def _route_matches(route: dict[str, Any], wanted: dict[str, Any]) -> bool:
    port = wanted.get("port")
    sni = set(wanted.get("sniHosts") or [])
    for match in route.get("match") or []:
        if port is not None and match.get("port") != port:
            continue
        if sni and not sni.issubset(set(match.get("sniHosts") or [])):
            continue
        return True
    return False


def _roles(route: SelectedRoute, destinations: Destinations, vs_name: str) -> tuple[int, int]:
    """Indexes of the canary and stable destinations in ``route``."""
    canary_index = stable_index = None
    for index, entry in enumerate(route.destinations):
        destination = entry.get("destination") or {}
        host = str(destination.get("host", ""))
        if destinations.by_subset:
            subset = destination.get("subset")
            is_canary = subset == destinations.canary_subset
            is_stable = subset == destinations.stable_subset
        else:
            is_canary = _host_matches(host, destinations.canary_service)
            is_stable = _host_matches(host, destinations.stable_service)
        if is_canary and canary_index is None:
            canary_index = index
        elif is_stable and stable_index is None:
            stable_index = index
        else:
            wanted = (f"subsets {destinations.canary_subset!r}/{destinations.stable_subset!r}"
                      if destinations.by_subset else
                      f"canary Service {destinations.canary_service!r} or stable Service "
                      f"{destinations.stable_service!r}")
            raise RouteError(
                f"VirtualService {vs_name!r} {route.label}: destination host {host!r} matches "
                f"neither {wanted}"
            )
    if stable_index is None:
        role = destinations.stable_subset if destinations.by_subset else \
            destinations.stable_service
        raise RouteError(f"VirtualService {vs_name!r} {route.label}: no destination for the "
                         f"stable {'subset' if destinations.by_subset else 'Service'} {role!r}")
    if canary_index is None:
        role = destinations.canary_subset if destinations.by_subset else \
            destinations.canary_service
        raise RouteError(f"VirtualService {vs_name!r} {route.label}: no destination for the "
                         f"canary {'subset' if destinations.by_subset else 'Service'} {role!r}")
    return canary_index, stable_index


def observe_weight(vs: dict[str, Any], ref: IstioVirtualServiceRef,
                   destinations: Destinations, managed: tuple[str, ...] = ()) -> int:
    """The lowest canary weight among the selected routes (validating them on the way)."""
    return min((found.canary for found in route_weights(vs, ref, destinations, managed)),
               default=0)


def route_weights(vs: dict[str, Any], ref: IstioVirtualServiceRef, destinations: Destinations,
                  managed: tuple[str, ...] = ()) -> list[RouteWeight]:
    """The canary and stable weight of every selected route (a missing weight reads as 0)."""
    vs_name = (vs.get("metadata") or {}).get("name", ref.name)
    found = []
    for route in select_routes(vs, ref, managed):
        canary_index, stable_index = _roles(route, destinations, vs_name)
        found.append(RouteWeight(
            where=f"VirtualService {vs_name!r} {route.label}",
            canary=int(route.destinations[canary_index].get("weight") or 0),
            stable=int(route.destinations[stable_index].get("weight") or 0)))
    return found


def canary_destination(vs: dict[str, Any], ref: IstioVirtualServiceRef,
                       destinations: Destinations, managed: tuple[str, ...]
                       ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The canary's destination entry and the whole destination list of the first selected
    HTTP route (what managed routes copy); None when no HTTP route is selected."""
    vs_name = (vs.get("metadata") or {}).get("name", ref.name)
    for route in select_routes(vs, ref, managed):
        if route.pointer.startswith("/spec/http/"):
            canary_index, _ = _roles(route, destinations, vs_name)
            return route.destinations[canary_index], route.destinations
    return None


def weight_patch(vs: dict[str, Any], ref: IstioVirtualServiceRef, destinations: Destinations,
                 canary_weight: int, managed: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """JSON patch setting canary/stable weights in every selected route; [] if already so."""
    vs_name = (vs.get("metadata") or {}).get("name", ref.name)
    operations: list[dict[str, Any]] = []
    for route in select_routes(vs, ref, managed):
        canary_index, stable_index = _roles(route, destinations, vs_name)
        for index, weight in ((canary_index, canary_weight),
                              (stable_index, MAX_WEIGHT - canary_weight)):
            entry = route.destinations[index]
            if entry.get("weight") == weight:
                continue
            path = f"{route.pointer}/{index}"
            operations.append({"op": "test", "path": f"{path}/destination",
                               "value": entry.get("destination")})
            operations.append({"op": "add", "path": f"{path}/weight", "value": weight})
    return operations


def observe_subsets(rule: dict[str, Any], destinations: Destinations) -> tuple[str | None,
                                                                            str | None]:
    """The pod-template hashes the canary and stable subsets select now."""
    found: dict[str, str | None] = {}
    for subset in (rule.get("spec") or {}).get("subsets") or []:
        found[str(subset.get("name"))] = (subset.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL)
    rule_name = (rule.get("metadata") or {}).get("name")
    for wanted in (destinations.canary_subset, destinations.stable_subset):
        if wanted not in found:
            raise RouteError(f"DestinationRule {rule_name!r}: subset {wanted!r} not found")
    return found[str(destinations.canary_subset)], found[str(destinations.stable_subset)]


def subset_labels(rule: dict[str, Any], destinations: Destinations
                  ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The labels besides the pod-template hash that the canary and stable subsets select
    on, as sorted (key, value) pairs."""
    found: dict[str, tuple[tuple[str, str], ...]] = {}
    for subset in (rule.get("spec") or {}).get("subsets") or []:
        labels = subset.get("labels") or {}
        found[str(subset.get("name"))] = tuple(sorted(
            (str(k), str(v)) for k, v in labels.items() if k != POD_TEMPLATE_HASH_LABEL))
    return (found.get(str(destinations.canary_subset), ()),
            found.get(str(destinations.stable_subset), ()))


def subset_patch(rule: dict[str, Any], destinations: Destinations, *, canary_hash: str,
                 stable_hash: str) -> list[dict[str, Any]]:
    """JSON patch pointing the canary and stable subsets at their pod-template hashes."""
    operations: list[dict[str, Any]] = []
    wanted = {destinations.canary_subset: canary_hash, destinations.stable_subset: stable_hash}
    for index, subset in enumerate((rule.get("spec") or {}).get("subsets") or []):
        target = wanted.get(subset.get("name"))
        if target is None:
            continue
        labels = subset.get("labels")
        if labels is not None and labels.get(POD_TEMPLATE_HASH_LABEL) == target:
            continue
        operations.append({"op": "test", "path": f"/spec/subsets/{index}/name",
                           "value": subset.get("name")})
        if labels is None:
            operations.append({"op": "add", "path": f"/spec/subsets/{index}/labels",
                               "value": {POD_TEMPLATE_HASH_LABEL: target}})
        else:
            operations.append({"op": "add", "path": f"/spec/subsets/{index}/labels/"
                               f"{_escape(POD_TEMPLATE_HASH_LABEL)}", "value": target})
    return operations
