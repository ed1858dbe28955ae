"""Managed routes: ``trafficRouting.managedRoutes`` and the steps that fill them.

A ``setHeaderRoute`` step sends every request matching its headers to the canary; a
``setMirrorRoute`` step mirrors a percentage of the requests it matches to the canary. Each
names a route that must be listed in ``managedRoutes`` (Argo's validation), and a step without
``match`` removes its route. The matches are kept in Argo's own spelling, normalised to one
canonical JSON text, so that what a router reads back from the mesh compares equal to what the
step asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shiftd.model.argo.fields import InvalidSpecError

STRING_MATCH_KINDS = ("exact", "regex", "prefix")
DEFAULT_MIRROR_PERCENTAGE = 100


@dataclass(frozen=True, slots=True)
class SetHeaderRouteStep:
    name: str
    match: str  # canonical JSON of [{headerName, headerValue: {exact|regex|prefix}}]; "[]": remove


@dataclass(frozen=True, slots=True)
class SetMirrorRouteStep:
    name: str
    match: str  # canonical JSON of [{method?, path?, headers?}]; "[]": remove the route
    percentage: int  # 0..100 of the matching requests copied to the canary


RouteStep = SetHeaderRouteStep | SetMirrorRouteStep


def canonical(value: Any) -> str:
    """One JSON text per value: keys sorted, no spaces."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def string_match(raw: Any, *, path: str) -> dict[str, str]:
    """A StringMatch: exactly one of exact, regex, prefix (empty values dropped, as Argo)."""
    if not isinstance(raw, dict):
        raise InvalidSpecError(f"{path} must be an object with one of exact, regex, prefix")
    found = {kind: raw[kind] for kind in STRING_MATCH_KINDS if raw.get(kind) not in (None, "")}
    if len(found) != 1 or not all(isinstance(v, str) for v in found.values()):
        raise InvalidSpecError(f"{path}: StringMatch match value must have exactly one of the "
                               "following: exact, regex, prefix")
    return found


def _header_matches(raw: Any, *, path: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidSpecError(f"{path} must be a list")
    matches = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("headerName"), str) \
                or not item["headerName"]:
            raise InvalidSpecError(f"{where}.headerName is required")
        matches.append({"headerName": item["headerName"],
                        "headerValue": string_match(item.get("headerValue"),
                                                    path=f"{where}.headerValue")})
    return matches


def _mirror_matches(raw: Any, *, path: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidSpecError(f"{path} must be a list")
    matches = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise InvalidSpecError(f"{where} must be an object")
        match: dict[str, Any] = {}
        for key in ("method", "path"):
            if item.get(key) is not None:
                match[key] = string_match(item[key], path=f"{where}.{key}")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            raise InvalidSpecError(f"{where}.headers must be a map of header name to StringMatch")
        if headers:
            match["headers"] = {name: string_match(value, path=f"{where}.headers.{name}")
                                for name, value in headers.items()}
        matches.append(match)
    return matches


def _route_name(value: Any, *, path: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise InvalidSpecError(f"{path}.name is required")
    return str(value["name"])


def parse_route_step(kind: str, value: Any, *, path: str) -> RouteStep:
    """A ``setHeaderRoute`` or ``setMirrorRoute`` step (``path`` names the step)."""
    where = f"{path}.{kind}"
    name = _route_name(value, path=where)
    if kind == "setHeaderRoute":
        return SetHeaderRouteStep(name=name, match=canonical(
            _header_matches(value.get("match") or [], path=f"{where}.match")))
    percentage = value.get("percentage", DEFAULT_MIRROR_PERCENTAGE)
    if percentage is None:
        percentage = DEFAULT_MIRROR_PERCENTAGE
    if isinstance(percentage, bool) or not isinstance(percentage, int) \
            or not 0 <= percentage <= 100:
        raise InvalidSpecError(f"{where}.percentage must be an integer between 0 and 100")
    return SetMirrorRouteStep(name=name, percentage=percentage, match=canonical(
        _mirror_matches(value.get("match") or [], path=f"{where}.match")))


def parse_managed_routes(raw: Any, *, path: str) -> tuple[str, ...]:
    """``trafficRouting.managedRoutes``: the route names, in order (their order in the mesh)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidSpecError(f"{path} must be a list of {{name}}")
    names = [_route_name(item, path=f"{path}[{index}]") for index, item in enumerate(raw)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidSpecError(f"{path}: route {duplicates[0]!r} is listed twice")
    return tuple(names)


def check_route_steps(steps: tuple[object, ...], *, managed: tuple[str, ...], routed: bool,
                      path: str) -> None:
    """Argo's validation of route steps: traffic routing set, each name in managedRoutes."""
    for index, step in enumerate(steps):
        if not isinstance(step, SetHeaderRouteStep | SetMirrorRouteStep):
            continue
        kind = "setHeaderRoute" if isinstance(step, SetHeaderRouteStep) else "setMirrorRoute"
        where = f"{path}.steps[{index}].{kind}"
        if not routed:
            raise InvalidSpecError(f"{where}: {kind} requires trafficRouting (istio)")
        if step.name not in managed:
            raise InvalidSpecError(
                f"{where}: Steps define a route that does not exist in "
                f"{path}.trafficRouting.managedRoutes ({step.name!r})")


def describe_route_step(step: RouteStep) -> str:
    """A route step in one line, for Events and ``shiftctl plan``."""
    if isinstance(step, SetHeaderRouteStep):
        matches = orjson.loads(step.match)
        if not matches:
            return f"setHeaderRoute: remove {step.name}"
        shown = ", ".join(f"{m['headerName']} {kind} {value!r}" for m in matches
                          for kind, value in m["headerValue"].items())
        return f"setHeaderRoute: {step.name} ({shown} -> canary)"
    if step.match == "[]":
        return f"setMirrorRoute: remove {step.name}"
    return f"setMirrorRoute: {step.name} ({step.percentage}% mirrored to canary)"
