"""The vocabulary the CRD schemas are written in: structural OpenAPI v3 nodes as plain dicts.

Every object node is one of two kinds, and the choice is the point of this module:

- ``closed(...)`` lists every field Argo Rollouts' own schema has at that place, with Argo's
  names and types, so the API server prunes exactly what it would prune under Argo's CRD;
- ``open_(...)`` keeps unknown fields (``x-kubernetes-preserve-unknown-fields``): used where
  Argo has it (plugin configs, a web metric's jsonBody), and where shiftd deliberately does not
  spell out a large subtree it never interprets — the pod template (copied verbatim into
  ReplicaSets, which the API server validates), a Job metric's spec, the providers and traffic
  routers shiftd does not drive. The fields shiftd reads there are still listed and typed.

Nothing under an open node is ever pruned, so no Argo field is lost by installing these CRDs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Schema = dict[str, Any]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"


def string(*, fmt: str | None = None, description: str | None = None) -> Schema:
    node: Schema = {"type": "string"}
    if fmt is not None:
        node["format"] = fmt
    return _described(node, description)


def timestamp() -> Schema:
    return string(fmt="date-time")


def int32(description: str | None = None) -> Schema:
    return _described({"type": "integer", "format": "int32"}, description)


def int64() -> Schema:
    return {"type": "integer", "format": "int64"}


def boolean(description: str | None = None) -> Schema:
    return _described({"type": "boolean"}, description)


def int_or_string(description: str | None = None) -> Schema:
    return _described({INT_OR_STRING: True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                      description)


def string_map() -> Schema:
    """Labels, annotations: string to string."""
    return {"type": "object", "additionalProperties": {"type": "string"}}


def array(items: Schema, *, atomic: bool = False) -> Schema:
    node: Schema = {"type": "array", "items": items}
    if atomic:
        node["x-kubernetes-list-type"] = "atomic"
    return node


def strings() -> Schema:
    return array(string())


def closed(properties: Mapping[str, Schema], *, required: Sequence[str] = (),
           description: str | None = None) -> Schema:
    """An object with exactly these fields (Argo's full list at this place)."""
    node: Schema = {"type": "object", "properties": dict(sorted(properties.items()))}
    if required:
        node["required"] = sorted(required)
    return _described(node, description)


def open_(properties: Mapping[str, Schema] | None = None, *, required: Sequence[str] = (),
          description: str | None = None) -> Schema:
    """An object whose unknown fields are kept; ``properties`` are the ones shiftd reads."""
    node = closed(properties or {}, required=required, description=description)
    if not node["properties"]:
        del node["properties"]
    node[PRESERVE] = True
    return node


def metadata_labels() -> Schema:
    """``{labels, annotations}``, as Argo's PodTemplateMetadata."""
    return closed({"labels": string_map(), "annotations": string_map()})


def _described(node: Schema, description: str | None) -> Schema:
    if description:
        node["description"] = description
    return node
