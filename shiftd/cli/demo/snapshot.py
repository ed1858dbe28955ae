"""What the demo sees: the Rollout, its route, ReplicaSets and Services as one ``Snapshot``.

``snapshot_of`` is pure: it reads the objects as the API returned them. The demo records a
new ``Observation`` each time the snapshot changes, so a state that lasts only a moment still
counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiftd.cli.demo.seed import HASH_LABEL
from shiftd.decide.rollout.observed import parse_time
from shiftd.model.durations import parse_duration

__all__ = ["Observation", "ReplicaSetState", "Snapshot", "snapshot_of", "weights_text"]

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReplicaSetState:
    name: str
    pod_hash: str
    image: str  # the image's tag: "blue", "yellow", ...
    replicas: int  # spec.replicas
    available: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state the demo shows and checks, from the objects as the API returned them."""

    phase: str | None = None
    message: str = ""
    step: int | None = None  # status.currentStepIndex
    steps: int = 0
    step_text: str = ""  # the current step, as in the spec
    paused: bool = False  # a pause condition is recorded
    pause_ends: datetime | None = None  # when a timed pause resumes by itself
    aborted: bool = False
    # The VirtualService route as written: (host, weight or None when the field is absent).
    route: tuple[tuple[str, int | None], ...] = ()
    stable_weight: int | None = None
    canary_weight: int | None = None
    replica_sets: tuple[ReplicaSetState, ...] = ()
    # (role, Service name, rollouts-pod-template-hash in its selector or None)
    selectors: tuple[tuple[str, str, str | None], ...] = ()

    def image_of(self, pod_hash: str | None) -> str | None:
        for rs in self.replica_sets:
            if rs.pod_hash == pod_hash:
                return rs.image
        return None

    def replicas_by_image(self) -> dict[str, tuple[int, int]]:
        result: dict[str, tuple[int, int]] = {}
        for rs in self.replica_sets:
            replicas, available = result.get(rs.image, (0, 0))
            result[rs.image] = (replicas + rs.replicas, available + rs.available)
        return result

    def selector_images(self) -> dict[str, str | None]:
        return {role: self.image_of(pod_hash) for role, _, pod_hash in self.selectors}


def _tag(image: str) -> str:
    return image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else image


def _describe_step(step: object) -> str:
    if not isinstance(step, dict):
        return ""
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause: {{duration: {duration}}}" if duration is not None else "pause: {}"
    return ", ".join(step)


def _pause_end(step: object, conditions: list[Obj]) -> datetime | None:
    if not conditions or not isinstance(step, dict) or "pause" not in step:
        return None
    duration = (step.get("pause") or {}).get("duration")
    started = parse_time(str(conditions[0].get("startTime") or ""))
    if duration is None or started is None:
        return None
    try:
        seconds = parse_duration(duration)
    except ValueError:
        return None
    return started + timedelta(seconds=seconds)


def _route(rollout: Obj, virtual_service: Obj | None) -> list[Obj]:
    """The http route the Rollout names (its first), or the only one."""
    if virtual_service is None:
        return []
    istio = (((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get(
        "trafficRouting", {}).get("istio") or {}
    names = (istio.get("virtualService") or {}).get("routes") or []
    http = (virtual_service.get("spec") or {}).get("http") or []
    for route in http:
        if not names or route.get("name") == names[0]:
            return list(route.get("route") or [])
    return []


def snapshot_of(
    rollout: Obj | None,
    virtual_service: Obj | None,
    replica_sets: Sequence[Obj],
    services: Mapping[str, Obj | None],
) -> Snapshot:
    """What the demo shows, from the Rollout, its VirtualService, ReplicaSets and Services."""
    if rollout is None:
        return Snapshot()
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    canary = (spec.get("strategy") or {}).get("canary") or {}
    steps = list(canary.get("steps") or [])
    index = status.get("currentStepIndex")
    step = steps[index] if isinstance(index, int) and 0 <= index < len(steps) else None
    conditions = list(status.get("pauseConditions") or [])

    route = tuple((str((entry.get("destination") or {}).get("host", "")), entry.get("weight"))
                  for entry in _route(rollout, virtual_service))
    roles = {"stable": canary.get("stableService"), "canary": canary.get("canaryService")}
    weights: dict[str, int | None] = {}
    for host, weight in route:
        for role, service in roles.items():
            if service and host.split(".")[0] == service:
                weights[role] = weight

    sets = []
    for rs in replica_sets:
        metadata, rs_spec = rs.get("metadata") or {}, rs.get("spec") or {}
        containers = ((rs_spec.get("template") or {}).get("spec") or {}).get("containers") or []
        sets.append(ReplicaSetState(
            name=str(metadata.get("name", "")),
            pod_hash=str((metadata.get("labels") or {}).get(HASH_LABEL, "")),
            image=_tag(str(containers[0].get("image", ""))) if containers else "",
            replicas=int(rs_spec.get("replicas") or 0),
            available=int((rs.get("status") or {}).get("availableReplicas") or 0),
        ))
    selectors = []
    for role, name in roles.items():
        if name:
            service = services.get(name) or {}
            selector = (service.get("spec") or {}).get("selector") or {}
            selectors.append((role, str(name), selector.get(HASH_LABEL)))

    return Snapshot(
        phase=status.get("phase"),
        message=str(status.get("message") or ""),
        step=index if isinstance(index, int) else None,
        steps=len(steps),
        step_text=_describe_step(step),
        paused=bool(conditions),
        pause_ends=_pause_end(step, conditions),
        aborted=bool(status.get("abort")),
        route=route,
        stable_weight=weights.get("stable"),
        canary_weight=weights.get("canary"),
        replica_sets=tuple(sorted(sets, key=lambda rs: rs.name)),
        selectors=tuple(selectors),
    )


@dataclass(frozen=True, slots=True)
class Observation:
    snapshot: Snapshot
    at: datetime  # rollout time (the daemon's clock)
    wall: float  # seconds since the demo started


def weights_text(snapshot: Snapshot) -> str:
    def weight(value: int | None) -> str:
        return "-" if value is None else str(value)

    return f"stable {weight(snapshot.stable_weight)} / canary {weight(snapshot.canary_weight)}"
