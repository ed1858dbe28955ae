"""What one reconcile of a Canary looks at: the objects it reads, and the checks' verdict
once the controller has measured them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shiftd.decide.flagger.actions import CanaryEvent

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One kind of checks, measured: passed, or the Events saying why not. For a gate,
    ``hook`` names the webhook that answered (the one that refused, or the last that
    passed); a rollback gate "passes" when a rollback hook asks for the rollback."""

    passed: bool
    events: tuple[CanaryEvent, ...] = ()
    hook: str = ""


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
    checks: Mapping[str, Verdict] = field(default_factory=dict)  # by kind (CheckKind)
