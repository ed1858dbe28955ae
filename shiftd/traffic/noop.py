"""The router of a Rollout without traffic routing: replica counts alone approximate the
weight, so there is nothing to observe, write or undo."""

from __future__ import annotations

from shiftd.decide.rollout.actions import SetTraffic
from shiftd.decide.traffic import TrafficObservation
from shiftd.kube.resources import ResourceKind
from shiftd.model.argo.rollout import Rollout
from shiftd.traffic.base import ObjectRef, Written


class NoRouter:
    name = "none"
    kinds: tuple[ResourceKind, ...] = ()

    def wants(self, rollout: Rollout) -> bool:
        return not rollout.canary.traffic_routed

    def references(self, rollout: Rollout) -> list[ObjectRef]:
        return []

    def observe(self, rollout: Rollout) -> TrafficObservation:
        return TrafficObservation(canary_weight=0)

    async def apply(self, rollout: Rollout, action: SetTraffic) -> list[Written]:
        return []

    async def finalize(self, rollout: Rollout) -> list[Written]:
        return []
