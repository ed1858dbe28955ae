"""Typed views of AnalysisTemplate / ClusterAnalysisTemplate / AnalysisRun metrics, and args.

``parse_metric`` validates one metric of a template or run; ``merge_args`` merges template
args with the Rollout's, and ``substitute`` / ``substitute_all`` fill ``{{args.name}}`` by
Argo's rules (the one implementation: runs, the analysis task and shiftctl all use it).
A missing required arg, a bad duration or a bad limit raises
``InvalidSpecError`` naming the field, so the Rollout shows it in its InvalidSpec condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shiftd.model.argo.rollout import InvalidSpecError
from shiftd.model.durations import parse_duration

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
DEFAULT_ERROR_RETRY_SECONDS = 10.0
DEFAULT_MEASUREMENT_HISTORY_LIMIT = 10
SUPPORTED_PROVIDERS = ("prometheus", "skywalking", "web")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    interval_seconds: float | None  # None: measure once (unless count says otherwise)
    initial_delay_seconds: float
    count: int | None  # as written; see effective_count
    failure_limit: int  # -1: never fail on failures
    inconclusive_limit: int
    consecutive_error_limit: int
    success_condition: str | None
    failure_condition: str | None
    provider: dict[str, Any]

    @property
    def effective_count(self) -> int | None:
        """Argo's EffectiveCount: no count and no interval means one measurement; an interval
        without a count means measure until the run is terminated (``None``)."""
        if not self.count:
            return None if self.interval_seconds is not None else 1
        return self.count

    @property
    def provider_name(self) -> str:
        return next(iter(self.provider), "")


def _duration(raw: Mapping[str, Any], key: str, *, path: str) -> float | None:
    value = raw.get(key)
    if value in (None, ""):
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise InvalidSpecError(f"{path}.{key}: {error}") from None


def _limit(raw: Mapping[str, Any], key: str, default: int, *, path: str,
           minimum: int = 0) -> int:
    value = raw.get(key, default)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSpecError(f"{path}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_metric(raw: Mapping[str, Any], *, path: str) -> Metric:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSpecError(f"{path}.name is required")
    provider = raw.get("provider")
    if not isinstance(provider, dict) or len(provider) != 1:
        raise InvalidSpecError(f"{path}.provider must name exactly one provider")
    provider_name = next(iter(provider))
    if provider_name not in SUPPORTED_PROVIDERS:
        raise InvalidSpecError(f"{path}.provider.{provider_name} is not supported by shiftd yet "
                               f"(supported: {', '.join(SUPPORTED_PROVIDERS)})")
    if raw.get("consecutiveSuccessLimit"):
        raise InvalidSpecError(f"{path}.consecutiveSuccessLimit is not supported by shiftd yet")
    count = raw.get("count")
    if isinstance(count, str) and count.isdigit():
        count = int(count)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or count < 0):
        raise InvalidSpecError(f"{path}.count must be a non-negative integer, got {count!r}")
    interval = _duration(raw, "interval", path=path)
    if interval is not None and interval <= 0:
        raise InvalidSpecError(f"{path}.interval must be positive")
    return Metric(
        name=name,
        interval_seconds=interval,
        initial_delay_seconds=_duration(raw, "initialDelay", path=path) or 0.0,
        count=count,
        failure_limit=_limit(raw, "failureLimit", 0, path=path, minimum=-1),
        inconclusive_limit=_limit(raw, "inconclusiveLimit", 0, path=path),
        consecutive_error_limit=_limit(raw, "consecutiveErrorLimit",
                                       DEFAULT_CONSECUTIVE_ERROR_LIMIT, path=path),
        success_condition=raw.get("successCondition") or None,
        failure_condition=raw.get("failureCondition") or None,
        provider=dict(provider),
    )


def parse_metrics(raw_metrics: Sequence[Mapping[str, Any]], *, path: str) -> tuple[Metric, ...]:
    metrics = tuple(parse_metric(m, path=f"{path}[{i}]") for i, m in enumerate(raw_metrics))
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidSpecError(f"{path}: duplicate metric names: {', '.join(duplicates)}")
    return metrics


def merge_args(template_args: Sequence[Mapping[str, Any]],
               given: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Template args overridden by the Rollout's, by name (Argo's MergeArgs)."""
    merged: dict[str, dict[str, Any]] = {}
    for arg in template_args:
        merged[str(arg["name"])] = dict(arg)
    for arg in given:
        name = str(arg.get("name"))
        if name in merged:
            updated = {k: v for k, v in merged[name].items() if k not in ("value", "valueFrom")}
            updated.update({k: v for k, v in arg.items() if k in ("value", "valueFrom")})
            merged[name] = updated
    return list(merged.values())


def missing_args(args: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(a["name"]) for a in args if a.get("value") is None and not a.get("valueFrom")]


class UndefinedArgument(InvalidSpecError):
    """An ``{{args.name}}`` placeholder names an argument that has no value."""


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its placeholders filled in, by Argo's rules (its ``ResolveArgs``).

    Every ``{{ ... }}`` is a placeholder: the text between the braces, trimmed, must be
    ``args.<name>`` with ``name`` in ``values`` (:class:`UndefinedArgument` otherwise); any
    other placeholder (``{{foo}}``) and a ``{{`` left open are errors too, as in Argo. Values
    go in verbatim and are not searched again.
    """
    parts: list[str] = []
    position = 0
    while (start := text.find("{{", position)) >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            raise InvalidSpecError(f"{{{{ is not closed in {text!r}")
        tag = text[start + 2:end].strip()
        parts += [text[position:start], _argument(tag, values)]
        position = end + 2
    return "".join(parts) + text[position:] if parts else text


def _argument(tag: str, values: Mapping[str, str]) -> str:
    name = tag.removeprefix("args.")
    if name == tag:
        raise InvalidSpecError(f"{{{{{tag}}}}} cannot be resolved (only {{{{args.NAME}}}} is)")
    if name not in values:
        raise UndefinedArgument(f"args.{name} is used but not defined")
    return values[name]


def substitute_all(value: Any, values: Mapping[str, str]) -> Any:
    """``substitute`` applied to every string inside a metric's spec, keys included (Argo
    substitutes the metric's whole JSON, so every field and key may use an argument)."""
    if isinstance(value, str):
        return substitute(value, values)
    if isinstance(value, list):
        return [substitute_all(item, values) for item in value]
    if isinstance(value, dict):
        return {substitute(str(key), values): substitute_all(item, values)
                for key, item in value.items()}
    return value
