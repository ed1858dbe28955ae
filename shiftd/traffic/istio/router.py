"""The Istio router: VirtualService weights, and DestinationRule subsets when subset-level.

With ``trafficRouting.managedRoutes``, it also keeps the managed routes (header and mirror
routes, ``managed.py``) above the user's routes in every VirtualService with an HTTP route,
and reports each weighted route's weights so the planner can see a hand-made change.

It reads its objects from the caches (``observe``, pure and fast) and writes guarded JSON
patches computed by ``routes.py`` (``apply``). On a cluster whose API server does not serve
Istio's kinds, a Rollout asking for Istio is told so (its observation carries the error, which
the planner turns into an InvalidSpec condition and Event) and nothing is written. Until
Istio's kinds have been listed (from a separate mesh cluster that may be unreachable, see
``mesh`` in the settings) ``observe`` raises ``NotYetListed``: the Rollout waits, rather than
being told that its VirtualService does not exist.
"""

from __future__ import annotations

from typing import Any

from shiftd.decide.rollout.actions import SetTraffic
from shiftd.decide.traffic import ManagedRoute, RouteWeight, TrafficObservation
from shiftd.kube.errors import NotYetListed
from shiftd.kube.resources import DESTINATION_RULE, VIRTUAL_SERVICE, ResourceKind
from shiftd.model.argo.rollout import IstioRouting, Rollout
from shiftd.traffic.base import ObjectReader, ObjectRef, ObjectWriter, Written
from shiftd.traffic.istio.managed import managed_patch, read_routes, routes_intact
from shiftd.traffic.istio.routes import (
    Destinations,
    RouteError,
    canary_destination,
    observe_subsets,
    route_weights,
    subset_labels,
    subset_patch,
    weight_patch,
)


def _destinations(rollout: Rollout, routing: IstioRouting) -> Destinations:
    rule = routing.destination_rule
    return Destinations(
        canary_service=rollout.canary.canary_service,
        stable_service=rollout.canary.stable_service,
        canary_subset=rule["canarySubsetName"] if rule else None,
        stable_subset=rule["stableSubsetName"] if rule else None,
    )


def _needed(routing: IstioRouting) -> list[ResourceKind]:
    return [VIRTUAL_SERVICE] + ([DESTINATION_RULE] if routing.destination_rule else [])


class IstioRouter:
    """Splits traffic with VirtualService weights (and DestinationRule subsets)."""

    name = "istio"
    kinds = (VIRTUAL_SERVICE, DESTINATION_RULE)

    def __init__(self, *, reader: ObjectReader, writer: ObjectWriter) -> None:
        self._reader = reader
        self._writer = writer

    def wants(self, rollout: Rollout) -> bool:
        return rollout.canary.istio is not None

    async def finalize(self, rollout: Rollout) -> list[Written]:
        """Nothing: as with Argo Rollouts, a deleted Rollout leaves the mesh as it routes."""
        return []

    def _unserved(self, routing: IstioRouting) -> str | None:
        for kind in _needed(routing):
            if not self._reader.served(kind):
                return (f"spec.strategy.canary.trafficRouting.istio: the API server does not "
                        f"serve {kind.kind} ({kind.plural}.{kind.group}); is Istio installed?")
        return None

    def _require_listed(self, routing: IstioRouting) -> None:
        for kind in _needed(routing):
            if not self._reader.listed(kind):
                raise NotYetListed(f"{kind.plural}.{kind.group} not listed yet from the API "
                                   f"server that holds them")

    def references(self, rollout: Rollout) -> list[ObjectRef]:
        routing = rollout.canary.istio
        if routing is None:
            return []
        refs: list[ObjectRef] = [
            (VIRTUAL_SERVICE, ref.namespace or rollout.namespace, ref.name)
            for ref in routing.virtual_services
        ]
        if routing.destination_rule is not None:
            name, _, namespace = routing.destination_rule["name"].partition(".")
            refs.append((DESTINATION_RULE, namespace or rollout.namespace, name))
        return refs

    def observe(self, rollout: Rollout) -> TrafficObservation:
        routing = rollout.canary.istio
        if routing is None:
            return TrafficObservation(canary_weight=0)
        unserved = self._unserved(routing)
        if unserved is not None:
            return TrafficObservation(canary_weight=0, error=unserved)
        self._require_listed(routing)
        destinations = _destinations(rollout, routing)
        weights: list[RouteWeight] = []
        canary_hash = stable_hash = None
        labels: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = ((), ())
        try:
            managed = self._observe_virtual_services(rollout, routing, destinations, weights)
            if routing.destination_rule is not None:
                rule = self._rule(rollout, routing)
                canary_hash, stable_hash = observe_subsets(rule, destinations)
                labels = subset_labels(rule, destinations)
        except RouteError as error:
            return TrafficObservation(canary_weight=min((w.canary for w in weights), default=0),
                                      error=str(error))
        return TrafficObservation(canary_weight=min((w.canary for w in weights), default=0),
                                  routes_by_subset=routing.destination_rule is not None,
                                  canary_subset_hash=canary_hash, stable_subset_hash=stable_hash,
                                  route_weights=tuple(weights), managed_routes=managed[0],
                                  managed_routes_intact=managed[1],
                                  canary_subset_labels=labels[0],
                                  stable_subset_labels=labels[1])

    def _observe_virtual_services(
        self, rollout: Rollout, routing: IstioRouting, destinations: Destinations,
        weights: list[RouteWeight],
    ) -> tuple[tuple[ManagedRoute, ...], bool]:
        """Adds every weighted route to ``weights``; returns the managed routes found and
        whether they are intact (the same, as shiftd writes them, in every VirtualService)."""
        names = rollout.canary.managed_routes
        found: list[tuple[ManagedRoute, ...]] = []
        intact = True
        for ref in routing.virtual_services:
            vs = self._reader.get(VIRTUAL_SERVICE, ref.namespace or rollout.namespace, ref.name)
            if vs is None:
                elsewhere = (f" in namespace {ref.namespace!r} (shiftd must watch it: list it "
                             "in `namespaces`)") if ref.namespace else ""
                raise RouteError(f"VirtualService {ref.name!r} not found{elsewhere}")
            weights.extend(route_weights(vs, ref, destinations, names))
            if names and canary_destination(vs, ref, destinations, names) is not None:
                found.append(read_routes(vs, names))
                intact = intact and routes_intact(vs, ref, destinations, names)
        if names and not found:
            raise RouteError("spec.strategy.canary.trafficRouting.managedRoutes: no "
                             "VirtualService has a weighted HTTP route to add them to")
        intact = intact and all(routes == found[0] for routes in found)
        return (found[0] if found else ()), intact

    def _rule(self, rollout: Rollout, routing: IstioRouting) -> dict[str, Any]:
        assert routing.destination_rule is not None
        name, _, namespace = routing.destination_rule["name"].partition(".")
        rule = self._reader.get(DESTINATION_RULE, namespace or rollout.namespace, name)
        if rule is None:
            raise RouteError(f"DestinationRule {name!r} not found")
        return rule

    async def apply(self, rollout: Rollout, action: SetTraffic) -> list[Written]:
        """Write the split; returns the objects as the API server answered them.

        Subsets move first, so a weight never reaches a subset before it selects the right
        pods. A JSON patch whose ``test`` fails (422) means the object changed under us: the
        error propagates and the reconcile is retried on fresh objects.
        """
        routing = rollout.canary.istio
        if routing is None:
            return []
        destinations = _destinations(rollout, routing)
        written: list[Written] = []
        if routing.destination_rule is not None:
            rule = self._rule(rollout, routing)
            operations = subset_patch(rule, destinations, canary_hash=action.canary_hash,
                                      stable_hash=action.stable_hash)
            if operations:
                meta = rule["metadata"]
                written.append((DESTINATION_RULE, await self._writer.patch(
                    DESTINATION_RULE, meta["namespace"], meta["name"], operations,
                    patch_type="json")))
        for ref in routing.virtual_services:
            namespace = ref.namespace or rollout.namespace
            vs = self._reader.get(VIRTUAL_SERVICE, namespace, ref.name)
            if vs is None:
                raise RouteError(f"VirtualService {ref.name!r} not found")
            names = rollout.canary.managed_routes
            if names and canary_destination(vs, ref, destinations, names) is not None:
                operations = managed_patch(vs, ref, destinations, managed=names,
                                           routes=action.managed_routes,
                                           canary_weight=action.canary_weight)
            else:
                operations = weight_patch(vs, ref, destinations, action.canary_weight, names)
            if operations:
                written.append((VIRTUAL_SERVICE, await self._writer.patch(
                    VIRTUAL_SERVICE, namespace, ref.name, operations, patch_type="json")))
        return written
