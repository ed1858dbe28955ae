"""The Istio router: VirtualService weights, and DestinationRule subsets when subset-level.

It reads its objects from the caches (``observe``, pure and fast) and writes guarded JSON
patches computed by ``routes.py`` (``apply``). On a cluster whose API server does not serve
Istio's kinds, a Rollout asking for Istio is told so (its observation carries the error, which
the planner turns into an InvalidSpec condition and Event) and nothing is written.
"""

from __future__ import annotations

from typing import Any

from shiftd.decide.rollout.actions import SetTraffic
from shiftd.decide.traffic import TrafficObservation
from shiftd.kube.resources import DESTINATION_RULE, VIRTUAL_SERVICE
from shiftd.model.argo.rollout import IstioRouting, Rollout
from shiftd.traffic.base import ObjectReader, ObjectRef, ObjectWriter, Written
from shiftd.traffic.istio.routes import (
    Destinations,
    RouteError,
    observe_subsets,
    observe_weight,
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
        needed = [VIRTUAL_SERVICE] + ([DESTINATION_RULE] if routing.destination_rule else [])
        for kind in needed:
            if not self._reader.served(kind):
                return (f"spec.strategy.canary.trafficRouting.istio: the API server does not "
                        f"serve {kind.kind} ({kind.plural}.{kind.group}); is Istio installed?")
        return None

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
        destinations = _destinations(rollout, routing)
        weights: list[int] = []
        canary_hash = stable_hash = None
        labels: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = ((), ())
        try:
            for ref in routing.virtual_services:
                vs = self._reader.get(VIRTUAL_SERVICE, ref.namespace or rollout.namespace,
                                      ref.name)
                if vs is None:
                    raise RouteError(f"VirtualService {ref.name!r} not found")
                weights.append(observe_weight(vs, ref, destinations))
            if routing.destination_rule is not None:
                rule = self._rule(rollout, routing)
                canary_hash, stable_hash = observe_subsets(rule, destinations)
                labels = subset_labels(rule, destinations)
        except RouteError as error:
            return TrafficObservation(canary_weight=min(weights, default=0), error=str(error))
        return TrafficObservation(canary_weight=min(weights, default=0),
                                  routes_by_subset=routing.destination_rule is not None,
                                  canary_subset_hash=canary_hash, stable_subset_hash=stable_hash,
                                  canary_subset_labels=labels[0],
                                  stable_subset_labels=labels[1])

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
            operations = weight_patch(vs, ref, destinations, action.canary_weight)
            if operations:
                written.append((VIRTUAL_SERVICE, await self._writer.patch(
                    VIRTUAL_SERVICE, namespace, ref.name, operations, patch_type="json")))
        return written
