"""Label and field selectors, parsed once per request into predicates over stored objects.

The grammar is the apiserver's: label requirements ``k=v``, ``k==v``, ``k!=v``,
``k in (a,b)``, ``k notin (a,b)``, ``k`` and ``!k`` joined by commas; field requirements
``path=v``, ``path==v``, ``path!=v`` over the fields the kind supports. A malformed selector or
an unsupported field is a 400, as on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shiftd.sim.errors import bad_request

Predicate = Callable[[Mapping[str, Any]], bool]

# Fields every kind can be selected on, plus the extra ones real servers offer for some kinds.
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_KIND_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "status.phase", "status.podIP"),
    "Event": (
        "involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
        "involvedObject.uid", "involvedObject.apiVersion", "reason", "type", "source",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
}

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>[^=!,\s]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside a ``(...)`` value set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_RE.match(text):
        key = match["key"]
        values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_RE.match(text):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.match(text):
        key = match["key"]
        if match["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {text!r}")


def label_selector(selector: str | None) -> Predicate:
    """A predicate over objects for a ``labelSelector`` query parameter."""
    if not selector or not selector.strip():
        return lambda obj: True
    requirements = [_label_requirement(part) for part in _split_requirements(selector)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    return "" if value is None else str(value)


def field_selector(selector: str | None, kind: str) -> Predicate:
    """A predicate for a ``fieldSelector`` query parameter; unsupported fields are a 400."""
    if not selector or not selector.strip():
        return lambda obj: True
    allowed = _COMMON_FIELDS + _KIND_FIELDS.get(kind, ())
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_requirements(selector):
        match = _EQ_RE.match(part)
        if match is None:
            raise bad_request(f"invalid selector: {selector!r}; can't understand {part!r}")
        if match["key"] not in allowed:
            raise bad_request(
                f'field label not supported: {match["key"]}'
            )
        requirements.append((match["key"], match["op"] != "!=", match["value"]))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(
            (_field_value(obj, path) == value) is equal for path, equal, value in requirements
        )

    return matches


def all_of(predicates: Sequence[Predicate]) -> Predicate:
    return lambda obj: all(predicate(obj) for predicate in predicates)


__all__ = ["Predicate", "all_of", "field_selector", "label_selector"]
