"""What one reconcile of a Canary looks at: the objects it reads, and the checks' verdict
once the controller has measured them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shiftd.decide.flagger.actions import CanaryEvent

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The metric checks of one interval: passed, or the Events saying why not."""

    passed: bool
    events: tuple[CanaryEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Observed:
    """What one reconcile looks at (``None``: not there)."""

    target: JsonObject | None
    primary: JsonObject | None
    virtual_service: JsonObject | None
    services: dict[str, JsonObject | None] = field(default_factory=dict)
    destination_rules: dict[str, JsonObject | None] = field(default_factory=dict)
    autoscaler: JsonObject | None = None  # the HPA spec.autoscalerRef names
    primary_autoscaler: JsonObject | None = None  # its <name>-primary copy
    checks: Verdict | None = None
