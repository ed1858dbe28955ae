"""Pruning of custom resources against a CRD version's structural schema.

The apiserver silently drops every field its ``openAPIV3Schema`` does not allow. The schemas of
the Argo CRDs are large (hundreds of kilobytes), so each version's schema is compiled once into
a tree of closures; pruning an object then walks only the object, never the schema.

Honoured: ``properties``, ``additionalProperties`` (schema or ``true``), ``items``,
``x-kubernetes-preserve-unknown-fields``, ``x-kubernetes-embedded-resource`` (keeps
``apiVersion``/``kind``/``metadata``) and ``x-kubernetes-int-or-string`` (a scalar, never
pruned). Values whose type does not match the schema are left alone: the emulator prunes, it
does not validate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Pruner = Callable[[Any], Any]

_EMBEDDED_KEYS = frozenset({"apiVersion", "kind", "metadata"})
_ROOT_KEYS = ("apiVersion", "kind", "metadata")


def _identity(value: Any) -> Any:
    return value


def _compile_node(schema: Mapping[str, Any]) -> Pruner | None:
    """Compile one schema node; ``None`` means values under it are kept unchanged."""
    if schema.get("x-kubernetes-int-or-string"):
        return None
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    raw_properties = schema.get("properties") or {}
    properties: dict[str, Pruner] = {
        key: (_compile_node(sub) or _identity) for key, sub in raw_properties.items()
    }
    raw_additional = schema.get("additionalProperties")
    additional: Pruner | None = None
    if isinstance(raw_additional, Mapping):
        additional = _compile_node(raw_additional) or _identity
    elif raw_additional is True:
        additional = _identity
    raw_items = schema.get("items")
    items = _compile_node(raw_items) if isinstance(raw_items, Mapping) else None

    keeps_all_keys = preserve and not raw_properties and additional is None
    prunes_objects = not keeps_all_keys
    if keeps_all_keys and items is None:
        return None
    kept_extra = _EMBEDDED_KEYS if embedded else frozenset()

    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            if not prunes_objects:
                return value
            out: dict[str, Any] = {}
            for key, sub in value.items():
                child = properties.get(key)
                if child is not None:
                    out[key] = child(sub)
                elif additional is not None:
                    out[key] = additional(sub)
                elif preserve or key in kept_extra:
                    out[key] = sub
            return out
        if isinstance(value, list) and items is not None:
            return [items(element) for element in value]
        return value

    return prune


def compile_pruner(schema: Mapping[str, Any] | None) -> Pruner:
    """A function pruning a whole custom resource to what ``schema`` allows.

    ``apiVersion``, ``kind`` and ``metadata`` are always kept, as on a real server. A missing
    schema keeps everything.
    """
    if not schema:
        return _identity
    node = _compile_node(schema)
    if node is None:
        return _identity
    compiled = node

    def prune_root(obj: Any) -> Any:
        if not isinstance(obj, dict):
            return obj
        kept = {key: obj[key] for key in _ROOT_KEYS if key in obj}
        pruned = compiled({key: value for key, value in obj.items() if key not in _ROOT_KEYS})
        if isinstance(pruned, dict):
            kept.update(pruned)
        return kept

    return prune_root
