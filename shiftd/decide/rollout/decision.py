"""The values one planning pass of a Rollout hands from part to part.

``Draft`` is the pass's mutable scratchpad: the status being built, the Events, the wake-up
time and the analysis writes; it never escapes the planner. ``Decision`` is what has been
decided so far, as a frozen value: each part of the strategy (steps, promotion, abort) returns
a new one, and the writes are derived from the last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shiftd.decide.rollout.actions import Action, EventSpec
from shiftd.decide.rollout.observed import Observed
from shiftd.decide.rollout.revisions import Revisions
from shiftd.decide.rollout.status import format_time
from shiftd.model.argo.rollout import Rollout


def copy_json(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data; an orjson round trip is many times faster than deepcopy."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return copied


@dataclass
class Draft:
    """The mutable scratchpad of one planning pass; never escapes the planner."""

    rollout: Rollout
    observed: Observed
    now: datetime
    status: dict[str, Any]
    events: list[EventSpec] = field(default_factory=list)
    requeue_at: datetime | None = None
    again: bool = False  # stopped early on purpose: plan again once these writes are done
    analysis_actions: list[Action] = field(default_factory=list)
    current_runs: set[str] = field(default_factory=set)  # AnalysisRuns the steps still follow

    @property
    def now_text(self) -> str:
        return format_time(self.now)

    def wake_at(self, when: datetime) -> None:
        if self.requeue_at is None or when < self.requeue_at:
            self.requeue_at = when

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(EventSpec(reason, message, "Warning" if warning else "Normal"))


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one Rollout's update stands, as decided so far in this pass."""

    revisions: Revisions
    index: int  # the current step; len(steps) once past the last
    aborted: bool  # the update is being rolled back (never true once fully promoted)
    current_weight: int  # what the router routes to the canary now; 0 without a router
    planned_weight: int  # what this plan routes to it (before abort or promotion)

    @property
    def fully_promoted(self) -> bool:
        return self.revisions.fully_promoted

    @property
    def weight_moved(self) -> bool:
        """A setWeight step already moved the weight in this pass (one move per pass)."""
        return self.planned_weight != self.current_weight

    @property
    def leaving_canary(self) -> bool:
        """Aborted or fully promoted: Services and traffic belong to the stable revision."""
        return self.aborted or self.fully_promoted
