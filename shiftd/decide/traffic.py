"""What a traffic router observed of the mesh objects of one Rollout.

A router (``shiftd.traffic``) reads its objects from the caches and reports this; the planner
never looks at mesh objects itself, so a new router needs no change to the core.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrafficObservation:
    """``canary_weight`` is what the mesh routes to the canary now (the lowest among routes,
    so a half-applied change never overstates it); ``error`` makes the Rollout InvalidSpec."""

    canary_weight: int
    error: str | None = None
    canary_subset_hash: str | None = None  # DestinationRule subsets, when subset-level
    stable_subset_hash: str | None = None
