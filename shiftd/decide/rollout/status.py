"""Rollout status: conditions, phase and message, computed as Argo Rollouts computes them.

Conditions keep their timestamps unless their status, reason or message changes, so an idle
Rollout's status is byte-for-byte stable and a reconcile of it writes nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from shiftd.model.argo.rollout import Rollout

INVALID_SPEC = "InvalidSpec"
PROGRESSING = "Progressing"
AVAILABLE = "Available"
HEALTHY = "Healthy"
COMPLETED = "Completed"
PAUSED = "Paused"

ROLLOUT_ABORTED_REASON = "RolloutAborted"
CANARY_PAUSE_REASON = "CanaryPauseStep"


@functools.lru_cache(maxsize=64)  # a plan formats the same few instants (``now``) many times
def format_time(value: Any) -> str:
    """RFC 3339 in UTC with a Z, at second precision, as Kubernetes writes metav1.Time."""
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def format_micro_time(value: Any) -> str:
    """RFC 3339 in UTC with microseconds, as Kubernetes writes metav1.MicroTime (Leases)."""
    return str(value.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    now: str,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with one condition set; unchanged conditions keep their times."""
    wanted = status if isinstance(status, str) else ("True" if status else "False")
    result: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != type_:
            result.append(condition)
            continue
        found = True
        if (condition.get("status"), condition.get("reason"), condition.get("message")) == (
            wanted, reason, message
        ):
            result.append(condition)
            continue
        transition = condition.get("lastTransitionTime", now)
        if condition.get("status") != wanted:
            transition = now
        result.append({"type": type_, "status": wanted, "reason": reason, "message": message,
                       "lastTransitionTime": transition, "lastUpdateTime": now})
    if not found:
        result.append({"type": type_, "status": wanted, "reason": reason, "message": message,
                       "lastTransitionTime": now, "lastUpdateTime": now})
    return result


def remove_condition(conditions: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type_]


def selector_string(selector: dict[str, Any]) -> str:
    """metav1.FormatLabelSelector for the matchLabels part (what kubectl shows)."""
    labels = selector.get("matchLabels") or {}
    parts = [f"{key}={value}" for key, value in sorted(labels.items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def calculate_phase(rollout: Rollout, status: dict[str, Any]) -> tuple[str, str]:
    """Argo's ``CalculateRolloutPhase`` for the canary strategy."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == INVALID_SPEC and condition.get("status") == "True":
            return "Degraded", f"{INVALID_SPEC}: {condition.get('message', '')}"
        if condition.get("reason") in (ROLLOUT_ABORTED_REASON, "ProgressDeadlineExceeded"):
            return "Degraded", f"{condition['reason']}: {condition.get('message', '')}"
    if rollout.paused:
        return "Paused", "manually paused"
    for pause in status.get("pauseConditions") or []:
        return "Paused", str(pause.get("reason", ""))
    if rollout.restart_at is not None and status.get("restartedAt") != format_time(
            rollout.restart_at):
        return "Progressing", "rollout is restarting"
    if int(status.get("updatedReplicas", 0)) < rollout.replicas:
        return "Progressing", "more replicas need to be updated"
    if int(status.get("availableReplicas", 0)) < int(status.get("updatedReplicas", 0)):
        return "Progressing", "updated replicas are still becoming available"
    if not rollout.canary.traffic_routed and int(status.get("replicas", 0)) > int(
        status.get("updatedReplicas", 0)
    ):
        return "Progressing", "old replicas are pending termination"
    if not status.get("stableRS") or status.get("stableRS") != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""


def merge_patch_diff(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning ``old`` into ``new`` (``None`` if they are equal)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(old[key], dict) and isinstance(value, dict):
                patch[key] = merge_patch_diff(old[key], value)
            else:
                patch[key] = value
    return patch or None
