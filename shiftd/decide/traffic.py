"""What a traffic router observed of the mesh objects of one Rollout.

A router (``shiftd.traffic``) reads its objects from the caches and reports this; the planner
never looks at mesh objects itself, so a new router needs no change to the core.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # The other labels each subset selects on (e.g. ``version: canary``), as (key, value)
    # pairs: pods lacking them are not in the subset whatever their hash.
    canary_subset_labels: tuple[tuple[str, str], ...] = ()
    stable_subset_labels: tuple[tuple[str, str], ...] = ()
