"""The Services, DestinationRules and VirtualService a Canary owns, as Flagger's Kubernetes
and Istio routers make them, and the weights read back from the VirtualService.

Services: ``<name>`` (the apex) and ``<name>-primary`` select the primary's pods,
``<name>-canary`` the target's; one port from ``spec.service``. DestinationRules
``<name>-canary`` / ``<name>-primary`` carry ``trafficPolicy``. The VirtualService ``<name>``
routes its hosts (the apex name added unless ``*`` or it is listed) to the primary and canary
Services by weight, through the named gateways (``mesh`` when none); with ``analysis.match``
(A/B testing) a first route sends matching requests by the weights and every other request
to the primary, its lone destination at weight 100 (Flagger writes the primary's weight
there, 0 while the A/B test runs; Istio sends a lone destination everything whatever its
weight, so routing is the same, and shiftd keeps its rule that a route's weights add up to
100). Mirroring adds ``mirror`` (and
``mirrorPercentage`` with ``mirrorWeight``) to the weighted route, never with A/B testing.
Every destination carries its weight, 0 included (Flagger's Weight field has no omitempty).
A VirtualService that existed before the Canary keeps its original spec in an annotation,
restored when the Canary is deleted with ``revertOnDeletion``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shiftd.decide.flagger.workloads import owner_reference
from shiftd.model.flagger.canary import TOTAL_WEIGHT, Canary

JsonObject = dict[str, Any]
ORIGINAL_CONFIGURATION = "flagger.kubernetes.io/original-configuration"
KUBECTL_CONFIGURATION = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True, slots=True)
class Routes:
    """What the VirtualService routes now (Flagger's GetRoutes)."""

    primary: int
    canary: int
    mirrored: bool


def service_names(canary: Canary) -> tuple[str, str, str]:
    """(apex, primary, canary) Service names."""
    apex = canary.spec.service.name or canary.spec.target_ref.name
    return apex, f"{apex}-primary", f"{apex}-canary"


def _owned_metadata(canary: Canary, name: str, *, labels: Mapping[str, str] | None = None
                    ) -> JsonObject:
    return {"name": name, "namespace": canary.namespace, "labels": dict(labels or {}),
            "ownerReferences": [owner_reference(canary)]}


def service(canary: Canary, name: str, *, label: str, value: str) -> JsonObject:
    spec = canary.spec.service
    port: JsonObject = {"name": spec.port_name, "protocol": "TCP", "port": spec.port,
                        "targetPort": spec.target_port if spec.target_port is not None
                        else spec.port}
    if spec.app_protocol:
        port["appProtocol"] = spec.app_protocol
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _owned_metadata(canary, name, labels={label: name}),
            "spec": {"type": "ClusterIP", "selector": {label: value}, "ports": [port]}}


def services(canary: Canary, *, label: str, value: str) -> list[JsonObject]:
    apex, primary, canary_name = service_names(canary)
    return [service(canary, canary_name, label=label, value=value),
            service(canary, primary, label=label, value=f"{value}-primary"),
            service(canary, apex, label=label, value=f"{value}-primary")]


def destination_rules(canary: Canary) -> list[JsonObject]:
    _, primary, canary_name = service_names(canary)
    rules = []
    for name in (canary_name, primary):
        spec: JsonObject = {"host": name}
        if canary.spec.service.traffic_policy:
            spec["trafficPolicy"] = copy.deepcopy(canary.spec.service.traffic_policy)
        rules.append({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
                      "metadata": _owned_metadata(canary, name), "spec": spec})
    return rules


def _destination(canary: Canary, host: str, weight: int) -> JsonObject:
    destination: JsonObject = {"host": host}
    service = canary.spec.service
    if service.port_discovery and (
            (service.gateways and service.gateways[0] != "mesh") or service.delegation):
        destination["port"] = {"number": service.port}
    # Flagger's HTTPRouteDestination.Weight has no omitempty: a zero weight is written
    return {"destination": destination, "weight": weight}


def _http_options(canary: Canary) -> JsonObject:
    spec = canary.spec.service
    options: JsonObject = {}
    for key, value in (("rewrite", spec.rewrite), ("timeout", spec.timeout),
                       ("retries", spec.retries), ("corsPolicy", spec.cors_policy),
                       ("headers", spec.headers)):
        if value:
            options[key] = copy.deepcopy(value)
    return options


def _match(conditions: tuple[JsonObject, ...]) -> JsonObject:
    return {"match": [copy.deepcopy(dict(item)) for item in conditions]} if conditions else {}


def _merged_match(canary: Canary) -> tuple[JsonObject, ...]:
    """Flagger's mergeMatchConditions: each service match condition, for each A/B one, with
    the A/B condition's headers and sourceLabels."""
    service_match = canary.spec.service.match
    if not service_match:
        return canary.spec.analysis.match
    merged = []
    for condition in canary.spec.analysis.match:
        for default in service_match:
            item = copy.deepcopy(dict(default))
            for key in ("headers", "sourceLabels"):
                if condition.get(key) is not None:
                    item[key] = copy.deepcopy(condition[key])
            merged.append(item)
    return tuple(merged)


def virtual_service_spec(canary: Canary, routes: Routes) -> JsonObject:
    """The VirtualService spec routing by ``routes`` (Flagger's Reconcile and SetRoutes)."""
    apex, primary, canary_name = service_names(canary)
    hosts = list(canary.spec.service.hosts)
    if not any(host in (apex, "*") for host in hosts):
        hosts.append(apex)
    weighted: JsonObject = {**_http_options(canary), "route": [
        _destination(canary, primary, routes.primary),
        _destination(canary, canary_name, routes.canary)]}
    if routes.mirrored and not canary.spec.analysis.match:
        # A/B testing replaces the routes whole (Flagger's SetRoutes): no mirror with a match
        weighted["mirror"] = {"host": canary_name}
        if canary.spec.analysis.mirror_weight:
            weighted["mirrorPercentage"] = {"value": canary.spec.analysis.mirror_weight}
    # the mesh gateway when no gateway is named
    spec: JsonObject = {"hosts": hosts, "gateways": list(canary.spec.service.gateways or
                                                         ("mesh",))}
    if canary.spec.service.delegation:
        spec.update(hosts=[], gateways=[])  # a delegate VirtualService has neither
    if canary.spec.analysis.match:
        spec["http"] = [{**_match(_merged_match(canary)), **weighted},
                        {**_match(canary.spec.service.match), **_http_options(canary),
                         "route": [_destination(canary, primary, 100)]}]
    else:
        spec["http"] = [{**_match(canary.spec.service.match), **weighted}]
    return spec


def virtual_service(canary: Canary, existing: Mapping[str, Any] | None, routes: Routes
                    ) -> JsonObject:
    """The VirtualService as it should be: ours (owned by the Canary), or one found in place
    taken over as Flagger does — not owned (deleting the Canary leaves it), its spec before
    the takeover kept in the original-configuration annotation unless kubectl's
    last-applied-configuration already holds it (Flagger rewrites that annotation on every
    later spec change; shiftd keeps the first, the user's)."""
    apex, _, _ = service_names(canary)
    spec = virtual_service_spec(canary, routes)
    if existing is None:
        return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                "metadata": _owned_metadata(canary, apex), "spec": spec}
    updated = copy.deepcopy(dict(existing))
    meta = updated.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    owned = any(ref.get("uid") == canary.uid for ref in meta.get("ownerReferences") or [])
    if (not owned and KUBECTL_CONFIGURATION not in annotations
            and existing.get("spec") != spec):
        annotations.setdefault(ORIGINAL_CONFIGURATION,
                               orjson.dumps(existing.get("spec") or {}).decode())
        meta["annotations"] = annotations
    updated["spec"] = spec
    return updated


def original_spec(virtual_service_obj: Mapping[str, Any]) -> JsonObject | None:
    """The spec a taken-over VirtualService had before the Canary: kubectl's
    last-applied-configuration first, else the original-configuration annotation."""
    annotations = (virtual_service_obj.get("metadata") or {}).get("annotations") or {}
    applied = annotations.get(KUBECTL_CONFIGURATION)
    if applied:
        loaded = orjson.loads(applied)
        spec = loaded.get("spec") if isinstance(loaded, dict) else None
        return spec if isinstance(spec, dict) else None
    recorded = annotations.get(ORIGINAL_CONFIGURATION)
    if not recorded:
        return None
    loaded = orjson.loads(recorded)
    return loaded if isinstance(loaded, dict) else None


def observe_routes(canary: Canary, virtual_service_obj: Mapping[str, Any] | None) -> Routes:
    """Weights of the primary and canary destinations in the (first, weighted) route; all to
    the primary while it routes to neither."""
    if virtual_service_obj is None:
        return Routes(primary=TOTAL_WEIGHT, canary=0, mirrored=False)
    _, primary, canary_name = service_names(canary)
    http = (virtual_service_obj.get("spec") or {}).get("http") or []
    weighted = next((route for route in http
                     if any((entry.get("destination") or {}).get("host") == canary_name
                            for entry in route.get("route") or [])), None)
    if weighted is None:
        # not routing to the Canary's Services yet (a VirtualService found in place)
        return Routes(primary=TOTAL_WEIGHT, canary=0, mirrored=False)
    weights = {str((entry.get("destination") or {}).get("host")): int(entry.get("weight") or 0)
               for entry in weighted.get("route") or []}
    mirror = weighted.get("mirror") or {}
    return Routes(primary=weights.get(primary, 0), canary=weights.get(canary_name, 0),
                  mirrored=bool(mirror.get("host")))
