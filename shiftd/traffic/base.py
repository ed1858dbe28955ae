"""The traffic-router seam: what the Rollout controller asks of a mesh, and nothing more.

A router (as Flagger's routers: Reconcile / SetRoutes / GetRoutes / Finalize) says which
kinds it needs cached (``kinds``), which objects a Rollout depends on so their changes wake it
(``references``), what the mesh routes now, read from the caches, pure and fast
(``observe``), makes the mesh route a ``SetTraffic`` (``apply``) and undoes what it must when
the Rollout goes away (``finalize``). The planner only ever sees ``TrafficObservation``
values, so a new router is a new folder here plus one line in ``registry.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

from shiftd.decide.rollout.actions import SetTraffic
from shiftd.decide.traffic import TrafficObservation
from shiftd.kube.resources import ResourceKind
from shiftd.model.argo.rollout import Rollout

ObjectRef = tuple[ResourceKind, str, str]  # kind, namespace, name
Written = tuple[ResourceKind, dict[str, Any]]  # an object as the API server answered a write


class ObjectReader(Protocol):
    """Read access to the daemon's caches."""

    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> dict[str, Any] | None:
        ...

    def served(self, kind: ResourceKind) -> bool:
        """False when the API server does not serve ``kind`` (its CRD is not installed)."""
        ...

    def listed(self, kind: ResourceKind) -> bool:
        """False until ``kind`` has been listed from its API server (which may be another
        cluster's, unreachable for now): until then a missing object is only unknown."""
        ...


class ObjectWriter(Protocol):
    """The write the routers need; ``KubeClient`` satisfies it."""

    async def patch(
        self, kind: ResourceKind, namespace: str | None, name: str, patch: Any, *,
        patch_type: Any, subresource: str | None = None,
    ) -> dict[str, Any]: ...


class TrafficRouter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> tuple[ResourceKind, ...]:
        """The kinds this router reads; the daemon caches them when the API serves them."""
        ...

    def wants(self, rollout: Rollout) -> bool:
        """Whether the Rollout's spec asks for this router."""
        ...

    def references(self, rollout: Rollout) -> list[ObjectRef]: ...

    def observe(self, rollout: Rollout) -> TrafficObservation:
        """Raises ``NotYetListed`` while its kinds have not been listed (the reconcile is
        then retried later, and nothing is concluded from objects not seen yet)."""
        ...

    async def apply(self, rollout: Rollout, action: SetTraffic) -> list[Written]: ...

    async def finalize(self, rollout: Rollout) -> list[Written]: ...
