"""Managed routes in a VirtualService: read them back, and rewrite the http routes around them.

Pure, as ``routes.py``. shiftd's managed routes (``trafficRouting.managedRoutes``) sit at the
top of ``spec.http`` in ``managedRoutes`` order, above the user's routes, which keep their own
order and every field. A header route sends what it matches to the canary destination (weight
100); a mirror route keeps the weights of the weighted route and mirrors a percentage of what
it matches to the canary (as Argo Rollouts writes them). The patch replaces ``spec.http``
whole, guarded by a ``test`` of the list it was computed from, so a concurrent edit fails the
patch (422) rather than being overwritten.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from shiftd.decide.traffic import ManagedRoute
from shiftd.model.argo.rollout import MAX_WEIGHT, IstioVirtualServiceRef
from shiftd.model.argo.routes import DEFAULT_MIRROR_PERCENTAGE, canonical
from shiftd.traffic.istio.routes import Destinations, RouteError, canary_destination, weight_patch

Obj = dict[str, Any]


def _istio_match(route: ManagedRoute) -> list[Obj]:
    """Argo's match (``route.match``) in Istio's spelling."""
    matches: list[Obj] = orjson.loads(route.match)
    if route.kind == "header":
        return [{"headers": {m["headerName"]: m["headerValue"]}} for m in matches]
    renamed = {"method": "method", "path": "uri", "headers": "headers"}
    return [{renamed[key]: value for key, value in m.items()} for m in matches]


def _argo_match(route: Obj, *, kind: str) -> str:
    """An Istio route's match in Argo's spelling, canonical (the inverse of ``_istio_match``)."""
    matches = [m for m in route.get("match") or [] if isinstance(m, dict)]
    if kind == "header":
        return canonical([{"headerName": name, "headerValue": value}
                          for m in matches for name, value in (m.get("headers") or {}).items()])
    renamed = {"method": "method", "uri": "path", "headers": "headers"}
    return canonical([{renamed[key]: value for key, value in m.items() if key in renamed}
                      for m in matches])


def build_route(route: ManagedRoute, *, canary: Obj, weighted: list[Obj]) -> Obj:
    """The http route shiftd writes for ``route``; ``canary`` is the canary's destination
    entry of the weighted route and ``weighted`` that route's whole destination list."""
    destination = copy.deepcopy(canary.get("destination") or {})
    if route.kind == "header":
        return {"name": route.name, "match": _istio_match(route),
                "route": [{"destination": destination, "weight": MAX_WEIGHT}]}
    return {"name": route.name, "match": _istio_match(route), "route": copy.deepcopy(weighted),
            "mirror": destination, "mirrorPercentage": {"value": route.percentage}}


def read_routes(vs: Obj, managed: tuple[str, ...]) -> tuple[ManagedRoute, ...]:
    """The managed routes ``vs`` holds now, in ``managedRoutes`` order."""
    found: dict[str, ManagedRoute] = {}
    for route in (vs.get("spec") or {}).get("http") or []:
        name = route.get("name")
        if name not in managed or name in found:
            continue
        if "mirror" in route:
            value = (route.get("mirrorPercentage") or {}).get("value", DEFAULT_MIRROR_PERCENTAGE)
            found[name] = ManagedRoute(name=name, kind="mirror",
                                       match=_argo_match(route, kind="mirror"),
                                       percentage=int(value))
        else:
            found[name] = ManagedRoute(name=name, kind="header",
                                       match=_argo_match(route, kind="header"))
    return tuple(found[name] for name in managed if name in found)


def _set_weights(http: list[Obj], operations: list[Obj]) -> None:
    """Apply ``weight_patch``'s ``add`` operations on ``/spec/http/...`` to ``http``."""
    for operation in operations:
        if operation["op"] != "add":
            continue
        _, _, _, index, _, entry, _ = operation["path"].split("/")
        http[int(index)]["route"][int(entry)]["weight"] = operation["value"]


def rewritten_http(vs: Obj, ref: IstioVirtualServiceRef, destinations: Destinations, *,
                   managed: tuple[str, ...], routes: tuple[ManagedRoute, ...],
                   canary_weight: int | None) -> list[Obj] | None:
    """``spec.http`` with exactly ``routes`` on top in ``managed`` order (a route not listed
    there is never written) and the user's routes below (weighted at
    ``canary_weight``; None: as they are); None when ``vs`` has no weighted HTTP route."""
    user = [copy.deepcopy(r) for r in (vs.get("spec") or {}).get("http") or []
            if r.get("name") not in managed]
    bare = {**vs, "spec": {**(vs.get("spec") or {}), "http": user}}
    if canary_weight is not None:
        http_only = [op for op in weight_patch(bare, ref, destinations, canary_weight)
                     if op["path"].startswith("/spec/http/")]
        _set_weights(user, http_only)
    found = canary_destination(bare, ref, destinations, ())
    if found is None:
        return None
    canary, weighted = found
    ordered = sorted((r for r in routes if r.name in managed), key=lambda r: managed.index(r.name))
    return [*(build_route(route, canary=canary, weighted=weighted) for route in ordered), *user]


def routes_intact(vs: Obj, ref: IstioVirtualServiceRef, destinations: Destinations,
                  managed: tuple[str, ...]) -> bool:
    """The managed routes in ``vs`` are exactly what shiftd would write for them."""
    http = rewritten_http(vs, ref, destinations, managed=managed,
                          routes=read_routes(vs, managed), canary_weight=None)
    return http is None or http == ((vs.get("spec") or {}).get("http") or [])


def managed_patch(vs: Obj, ref: IstioVirtualServiceRef, destinations: Destinations, *,
                  managed: tuple[str, ...], routes: tuple[ManagedRoute, ...],
                  canary_weight: int) -> list[Obj]:
    """JSON patch giving ``vs`` the weight and exactly ``routes`` as its managed routes;
    [] when it has them already. tls and tcp routes are weighted in place."""
    operations = [op for op in weight_patch(vs, ref, destinations, canary_weight, managed)
                  if not op["path"].startswith("/spec/http/")]
    http = rewritten_http(vs, ref, destinations, managed=managed, routes=routes,
                          canary_weight=canary_weight)
    if http is None:
        if routes:
            name = (vs.get("metadata") or {}).get("name", ref.name)
            raise RouteError(f"VirtualService {name!r}: managed routes need a weighted HTTP "
                             "route to copy their destinations from")
        return operations
    current = (vs.get("spec") or {}).get("http")
    if http != (current or []):
        operations = [{"op": "test", "path": "/spec/http", "value": current},
                      {"op": "add", "path": "/spec/http", "value": http}, *operations]
    return operations
