"""The traffic routers the daemon knows, and the one a Rollout's spec asks for.

Adding a router: write it (``traffic/<mesh>/``) and add it to ``known_routers``.
"""

from __future__ import annotations

from collections.abc import Sequence

from shiftd.kube.resources import ResourceKind
from shiftd.model.argo.rollout import Rollout
from shiftd.traffic.base import ObjectReader, ObjectWriter, TrafficRouter
from shiftd.traffic.istio.router import IstioRouter
from shiftd.traffic.noop import NoRouter


def known_routers(*, reader: ObjectReader, writer: ObjectWriter) -> list[TrafficRouter]:
    return [IstioRouter(reader=reader, writer=writer)]


class TrafficRouters:
    """Picks the router of each Rollout; a Rollout with no traffic routing gets ``NoRouter``."""

    def __init__(self, routers: Sequence[TrafficRouter]) -> None:
        self._routers = tuple(routers)
        self._none = NoRouter()

    @property
    def kinds(self) -> tuple[ResourceKind, ...]:
        return tuple(dict.fromkeys(kind for router in self._routers for kind in router.kinds))

    def for_rollout(self, rollout: Rollout) -> TrafficRouter:
        for router in self._routers:
            if router.wants(rollout):
                return router
        return self._none
