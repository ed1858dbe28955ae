"""The JSON shape of the parts of a Rollout (and an AnalysisTemplate) shiftd reads, checked
before anything is parsed, so a value of the wrong type is an InvalidSpec naming its field
instead of a crash deep in a parser or the planner.

An API server validating against a CRD schema refuses most such objects already; this is for
the rest (a CRD installed without a schema, one that preserves unknown fields, a schema older
than shiftd). Only containers and names are checked here: each field's own rules (ranges,
durations, percentages) stay with its parser. Fields not listed are not looked at.
"""

from __future__ import annotations

from typing import Any

from shiftd.model.argo.fields import InvalidSpecError

# A shape is "object" (any keys), "string", "strings" (a list of them), "integer" (read as is,
# not by a field parser), "string map" (an object
# of strings), a dict of the known keys' shapes (an object; a key ending in "!" is required),
# or a one-item list (a list of it).
Shape = str | dict[str, Any] | list[Any]

OBJECT, STRING, STRINGS, INTEGER = "object", "string", "strings", "integer"
_STRING_MAP = "string map"
_ARG: dict[str, Shape] = {"name!": STRING, "valueFrom": {
    "fieldRef": {"fieldPath": STRING}, "secretKeyRef": OBJECT}}
_ANALYSIS: dict[str, Shape] = {
    "startingStep": INTEGER, "templates": [{"templateName": STRING}], "args": [_ARG],
    "dryRun": [OBJECT], "measurementRetention": [OBJECT], "analysisRunMetadata": OBJECT}
_POD_METADATA: dict[str, Shape] = {"labels": _STRING_MAP, "annotations": _STRING_MAP}
_VIRTUAL_SERVICE: dict[str, Shape] = {"name": STRING, "routes": STRINGS,
                                      "tlsRoutes": [OBJECT], "tcpRoutes": [OBJECT]}
# what shiftd reads of a pod template's spec (the API server's defaults, compared semantically)
_CONTAINER: dict[str, Shape] = {"name": STRING, "image": STRING, "ports": [OBJECT],
                                "env": [{"valueFrom": {"fieldRef": OBJECT}}]}
_POD_SPEC: dict[str, Shape] = {"containers": [_CONTAINER], "initContainers": [_CONTAINER],
                               "ephemeralContainers": [_CONTAINER], "volumes": [OBJECT]}
_STEP: dict[str, Shape] = {"pause": OBJECT, "setCanaryScale": OBJECT,
                           "analysis": _ANALYSIS, "setHeaderRoute": OBJECT,
                           "setMirrorRoute": OBJECT}
_CANARY: dict[str, Shape] = {
    "canaryService": STRING, "stableService": STRING, "steps": [_STEP],
    "analysis": _ANALYSIS, "canaryMetadata": _POD_METADATA, "stableMetadata": _POD_METADATA,
    "trafficRouting": {"istio": {"virtualService": _VIRTUAL_SERVICE,
                                 "virtualServices": [_VIRTUAL_SERVICE],
                                 "destinationRule": OBJECT},
                       "managedRoutes": [OBJECT]},
}
ROLLOUT_SPEC: dict[str, Shape] = {
    "selector": {"matchLabels": _STRING_MAP, "matchExpressions": [
        {"key": STRING, "operator": STRING, "values": STRINGS}]},
    "template": {"metadata": {"labels": _STRING_MAP, "annotations": _STRING_MAP},
                 "spec": _POD_SPEC},
    "strategy": {"canary": _CANARY, "blueGreen": OBJECT},
    "workloadRef": OBJECT,
}
_METRIC: dict[str, Shape] = {"name": STRING, "provider": OBJECT, "successCondition":
                             STRING, "failureCondition": STRING}
TEMPLATE_SPEC: dict[str, Shape] = {"metrics": [_METRIC], "args": [_ARG],
                                   "dryRun": [OBJECT], "measurementRetention": [OBJECT]}

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "a number", float: "a number"}


def _described(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _fail(path: str, expected: str, value: Any) -> InvalidSpecError:
    return InvalidSpecError(f"{path} must be {expected}, got {_described(value)}")


def _expected(shape: Shape) -> str:
    if isinstance(shape, list) or shape == STRINGS:
        return "a list"
    return "a string" if shape == STRING else "an object"


def check_shape(value: Any, shape: Shape, *, path: str) -> None:
    """Raise ``InvalidSpecError`` naming the first field whose value is not of its shape (a
    null counts as absent, as Kubernetes reads an omitted field)."""
    if value is None:
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        for index, item in enumerate(value):
            if item is None:  # a list item cannot be absent
                raise _fail(f"{path}[{index}]", _expected(shape[0]), item)
            check_shape(item, shape[0], path=f"{path}[{index}]")
    elif isinstance(shape, dict) or shape in (OBJECT, _STRING_MAP):
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        if shape == _STRING_MAP:
            for key, item in value.items():
                if not isinstance(item, str):
                    raise _fail(f"{path}.{key}", "a string", item)
        elif isinstance(shape, dict):
            for key, child in shape.items():
                name = key.removesuffix("!")
                if key != name and value.get(name) is None:
                    raise InvalidSpecError(f"{path}.{name} is required")
                check_shape(value.get(name), child, path=f"{path}.{name}")
    elif shape == STRINGS:
        check_shape(value, [STRING], path=path)
    elif shape == INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, "an integer", value)
    elif not isinstance(value, str):
        raise _fail(path, "a string", value)
