"""The Rollout planner: from a Rollout, what was observed and ``now``, the writes to make next.

``plan_rollout`` is the heart of shiftd and is pure. It dispatches on the Rollout's strategy
to that strategy's planner (``canary.plan_canary`` today); another strategy is a new module
and one line in ``_planners``. ``plan_invalid_spec`` is the plan for a Rollout that cannot be
acted on, whatever its strategy.

Every strategy's plan is a fixed point: planning again on the state its writes leave finds
nothing to do until something else changes (unless the plan says ``again``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from shiftd.decide.rollout.actions import Plan
from shiftd.decide.rollout.canary import plan_canary
from shiftd.decide.rollout.finish import plan_invalid_spec
from shiftd.decide.rollout.observed import Observed
from shiftd.model.argo.rollout import Rollout, StrategyName

__all__ = ["StrategyPlanner", "plan_invalid_spec", "plan_rollout"]


class StrategyPlanner(Protocol):
    """Plans one valid Rollout of one strategy. Pure: no I/O, no clock."""

    def __call__(self, rollout: Rollout, observed: Observed, *, now: datetime,
                 resource_version: str | None = None) -> Plan: ...


def _planners() -> Mapping[StrategyName, StrategyPlanner]:
    return {
        "canary": plan_canary,
    }


def plan_rollout(rollout: Rollout, observed: Observed, *, now: datetime,
                 resource_version: str | None = None) -> Plan:
    """Decide the next writes for one valid Rollout, by its strategy."""
    planner = _planners()[rollout.strategy]
    return planner(rollout, observed, now=now, resource_version=resource_version)
