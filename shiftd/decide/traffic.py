"""What a traffic router observed of the mesh objects of one Rollout.

A router (``shiftd.traffic``) reads its objects from the caches and reports this; the planner
never looks at mesh objects itself, so a new router needs no change to the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shiftd.model.argo.routes import DEFAULT_MIRROR_PERCENTAGE


@dataclass(frozen=True, slots=True)
class ManagedRoute:
    """A route shiftd adds above the user's routes while a canary runs (a managed route).

    ``header``: requests matching ``match`` all go to the canary; ``mirror``: ``percentage``
    of the requests matching ``match`` are copied to the canary. ``match`` is canonical JSON
    in Argo's spelling of the step, so a router's reading of the mesh compares equal to it.
    """

    name: str
    kind: Literal["header", "mirror"]
    match: str
    percentage: int = DEFAULT_MIRROR_PERCENTAGE  # mirror only


@dataclass(frozen=True, slots=True)
class RouteWeight:
    """The weights one weighted route gives the canary and the stable now."""

    where: str  # for messages: "VirtualService 'app' HTTP route 'primary'"
    canary: int
    stable: int


@dataclass(frozen=True, slots=True)
class TrafficObservation:
    """``canary_weight`` is what the mesh routes to the canary now (the lowest among routes,
    so a half-applied change never overstates it); ``error`` makes the Rollout InvalidSpec.

    A router that routes by subsets (named groups of pods, such as Istio's DestinationRule
    subsets) says so with ``routes_by_subset`` and reports which pod-template hash each subset
    selects now; the planner then moves the subsets along with the weight. A router that
    routes to Services leaves them unset.
    """

    canary_weight: int
    error: str | None = None
    routes_by_subset: bool = False
    canary_subset_hash: str | None = None  # what the canary subset selects now
    stable_subset_hash: str | None = None  # what the stable subset selects now
    # Every weighted route, as found (empty: the router does not report them one by one).
    route_weights: tuple[RouteWeight, ...] = ()
    # The managed routes found, in managedRoutes order; ``managed_routes_intact`` is False
    # when they are not exactly as shiftd writes them (out of order, below a user route,
    # edited, or different between VirtualServices): rewriting them is then due.
    managed_routes: tuple[ManagedRoute, ...] = ()
    managed_routes_intact: bool = True
    # The other labels each subset selects on (e.g. ``version: canary``), as (key, value)
    # pairs: pods lacking them are not in the subset whatever their hash.
    canary_subset_labels: tuple[tuple[str, str], ...] = ()
    stable_subset_labels: tuple[tuple[str, str], ...] = ()
