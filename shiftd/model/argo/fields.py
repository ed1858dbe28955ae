"""Parsers for single fields of an Argo Rollouts spec, and the error they raise.

Each turns one raw value into a typed one or raises ``InvalidSpecError`` with a message fit for
the Rollout's InvalidSpec condition; ``rollout.py`` assembles them into a ``Rollout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

POD_TEMPLATE_HASH_LABEL = "rollouts-pod-template-hash"


class InvalidSpecError(ValueError):
    """The Rollout cannot be acted on; the message goes into the InvalidSpec condition."""


@dataclass(frozen=True, slots=True)
class PodMetadata:
    """Labels and annotations for one role's pods (canaryMetadata / stableMetadata)."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def int_field(spec: dict[str, Any], key: str, default: int, *, path: str) -> int:
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpecError(f"{path}.{key} must be an integer, got {value!r}")
    if value < 0:
        raise InvalidSpecError(f"{path}.{key} must not be negative, got {value}")
    return value


def optional_int(spec: dict[str, Any], key: str, *, path: str) -> int | None:
    if spec.get(key) is None:
        return None
    return int_field(spec, key, 0, path=path)


def bool_field(spec: dict[str, Any], key: str, *, path: str) -> bool:
    value = spec.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidSpecError(f"{path}.{key} must be true or false, got {value!r}")
    return value


def parse_int_or_percent(value: Any, *, path: str) -> int | str:
    if isinstance(value, bool):
        raise InvalidSpecError(f"{path} must be an integer or a percentage, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise InvalidSpecError(f"{path} must not be negative, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%") and text[:-1].isdigit():
            return text
        if text.isdigit():
            return int(text)
    raise InvalidSpecError(f"{path} must be an integer or a percentage like '25%', got {value!r}")


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """Kubernetes' GetValueFromIntOrPercent: a percentage of ``total``, rounded as asked."""
    if isinstance(value, int):
        return value
    scaled = int(value[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def parse_restart_at(raw: Any) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSpecError(f"spec.restartAt must be an RFC 3339 time, got {raw!r}") from None
    if when.tzinfo is None:
        raise InvalidSpecError(f"spec.restartAt must carry a time zone, got {raw!r}")
    return when.replace(microsecond=0)  # metav1.Time: what status.restartedAt can record


def parse_pod_metadata(raw: Any, *, path: str) -> PodMetadata | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"labels", "annotations"}:
        raise InvalidSpecError(f"{path} must be an object with labels and/or annotations")
    maps: dict[str, dict[str, str]] = {}
    for key in ("labels", "annotations"):
        values = raw.get(key) or {}
        if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            raise InvalidSpecError(f"{path}.{key} must map names to strings")
        maps[key] = dict(values)
    if POD_TEMPLATE_HASH_LABEL in maps["labels"]:
        raise InvalidSpecError(f"{path}.labels must not set {POD_TEMPLATE_HASH_LABEL}")
    return PodMetadata(labels=maps["labels"], annotations=maps["annotations"])
