"""Custom resources against a CRD version's structural schema: pruning, defaults, validation.

The apiserver drops every field the ``openAPIV3Schema`` does not allow, fills in the schema's
``default`` values (at any depth, inside arrays and maps too) and rejects values of the wrong
type with a 422 naming each field. The Argo schemas are large (hundreds of kilobytes), so each
version's schema is compiled once into a tree of ``_Node``; a write then walks only the object,
doing all three in one pass.

Honoured: ``properties``, ``additionalProperties`` (schema or ``true``), ``items``,
``x-kubernetes-preserve-unknown-fields``, ``x-kubernetes-embedded-resource`` (keeps
``apiVersion``/``kind``/``metadata``), ``x-kubernetes-int-or-string``, ``default``, ``type``,
``nullable``, ``required``, ``enum``, ``minimum``, ``maximum``, ``pattern`` (a search, as Go's
``MatchString``; a pattern Python's ``re`` cannot compile is not evaluated), ``minLength``,
``maxLength`` (in characters), ``minItems`` and ``maxItems``, with a real server's messages
(kube-apiserver v1.28: a string's first failed check only). Not evaluated: ``format``,
``oneOf``/``anyOf``/``allOf``, ``uniqueItems`` and CEL ``x-kubernetes-validations``; a real
server rejects more, never less, and the daemon writes only status and routing fields that
those rules do not constrain.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shiftd.sim.errors import Cause

_EMBEDDED_KEYS = frozenset({"apiVersion", "kind", "metadata"})
_ROOT_KEYS = ("apiVersion", "kind", "metadata")
# The common case, checked first by exact type (bool is an int subclass, hence the care).
_EXACT_TYPES: Mapping[str, frozenset[type]] = {
    "object": frozenset({dict}), "array": frozenset({list}), "string": frozenset({str}),
    "boolean": frozenset({bool}), "integer": frozenset({int}), "number": frozenset({int, float}),
}
_PYTHON_TYPES: Mapping[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float),
}


def json_type(value: Any) -> str:
    """The OpenAPI type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def go_value(value: Any) -> str:
    """A value as Go's ``%#v`` prints it in a field error (strings quoted)."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _format_path(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@dataclass(slots=True)
class _Node:
    type: str | None = None
    int_or_string: bool = False
    nullable: bool = False
    preserve: bool = False
    embedded: bool = False
    properties: dict[str, _Node] = field(default_factory=dict)
    additional: _Node | None = None
    additional_any: bool = False
    items: _Node | None = None
    defaults: tuple[tuple[str, Any], ...] = ()
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    checked: bool = False  # has any of the checks above (enum to maxItems)


def _compile(schema: Mapping[str, Any]) -> _Node:
    properties = {key: _compile(sub) for key, sub in (schema.get("properties") or {}).items()}
    raw_additional = schema.get("additionalProperties")
    raw_items = schema.get("items")
    return _Node(
        type=schema.get("type"),
        int_or_string=bool(schema.get("x-kubernetes-int-or-string")),
        nullable=bool(schema.get("nullable")),
        preserve=bool(schema.get("x-kubernetes-preserve-unknown-fields")),
        embedded=bool(schema.get("x-kubernetes-embedded-resource")),
        properties=properties,
        additional=_compile(raw_additional) if isinstance(raw_additional, Mapping) else None,
        additional_any=raw_additional is True,
        items=_compile(raw_items) if isinstance(raw_items, Mapping) else None,
        defaults=tuple(
            (key, sub["default"]) for key, sub in (schema.get("properties") or {}).items()
            if isinstance(sub, Mapping) and "default" in sub
        ),
        required=tuple(schema.get("required") or ()),
        enum=tuple(schema["enum"]) if "enum" in schema else None,
        minimum=schema.get("minimum"),
        maximum=schema.get("maximum"),
        pattern=_pattern(schema.get("pattern")),
        min_length=schema.get("minLength"),
        max_length=schema.get("maxLength"),
        min_items=schema.get("minItems"),
        max_items=schema.get("maxItems"),
        checked=any(key in schema for key in _CHECKS),
    )


_CHECKS = ("enum", "minimum", "maximum", "pattern", "minLength", "maxLength", "minItems",
           "maxItems")


def _pattern(text: Any) -> re.Pattern[str] | None:
    """A schema's ``pattern`` compiled (Go's RE2 syntax is, for the CRDs' patterns, Python's);
    ``None`` when there is none or Python cannot compile it (then it is not evaluated)."""
    if not isinstance(text, str):
        return None
    try:
        return re.compile(text)
    except re.error:
        return None


class _Walk:
    """One pass over an object: returns the pruned, defaulted copy; collects causes."""

    def __init__(self, skip: frozenset[str] = frozenset()) -> None:
        self.causes: list[Cause] = []
        self._skip = skip  # top-level fields kept as they are (already processed)

    def value(self, value: Any, node: _Node, path: tuple[str | int, ...]) -> Any:
        if value is None:
            if not node.nullable and node.type is not None:
                self._type_error(value, node, path)
            return value
        if node.int_or_string:
            if not isinstance(value, (int, str)) or isinstance(value, bool):
                self._error(path, f"Invalid value: {go_value(json_type(value))}: "
                                  f"{_format_path(path)} in body must be of type "
                                  f"integer,string: {go_value(json_type(value))}",
                            "FieldValueTypeInvalid")
            if node.checked and isinstance(value, str):
                self._check_string(value, node, path)
            return value
        expected = node.type
        if expected is not None and not (
                type(value) in _EXACT_TYPES.get(expected, ()) or self._has_type(value, expected)):
            self._type_error(value, node, path)
            return value
        if node.checked:
            self._check_scalar(value, node, path)
        if isinstance(value, dict):
            return self._object(value, node, path)
        if isinstance(value, list) and node.items is not None:
            items = node.items
            return [self.value(item, items, (*path, index)) for index, item in enumerate(value)]
        return value

    @staticmethod
    def _has_type(value: Any, expected: str) -> bool:
        if isinstance(value, bool) and expected in ("integer", "number"):
            return False
        if expected == "integer" and isinstance(value, float):
            return value.is_integer()
        return isinstance(value, _PYTHON_TYPES.get(expected, (object,)))

    def _object(self, value: dict[str, Any], node: _Node, path: tuple[str | int, ...]) -> Any:
        keeps_all = node.preserve and not node.properties and node.additional is None
        if keeps_all:
            return value
        out: dict[str, Any] = {}
        for key, sub in value.items():
            if not path and key in self._skip:
                out[key] = sub
                continue
            child = node.properties.get(key)
            if child is not None:
                out[key] = self.value(sub, child, (*path, key))
            elif node.additional is not None:
                out[key] = self.value(sub, node.additional, (*path, key))
            elif node.additional_any or node.preserve or (
                    node.embedded and key in _EMBEDDED_KEYS):
                out[key] = sub
        for key, default in node.defaults:
            if key not in out:
                out[key] = self.value(copy.deepcopy(default), node.properties[key],
                                      (*path, key))
        for key in node.required:
            if key not in out:
                self._error((*path, key), "Required value", "FieldValueRequired")
        return out

    def _check_scalar(self, value: Any, node: _Node, path: tuple[str | int, ...]) -> None:
        if isinstance(value, str):
            self._check_string(value, node, path)
        elif isinstance(value, list):
            self._check_items(value, node, path)
        if node.enum is not None and value not in node.enum:
            supported = ", ".join(go_value(option) for option in node.enum)
            self._error(path, f"Unsupported value: {go_value(value)}: supported values: "
                              f"{supported}", "FieldValueNotSupported")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if node.minimum is not None and value < node.minimum:
                self._error(path, f"Invalid value: {go_value(value)}: {_format_path(path)} in "
                                  "body should be greater than or equal to "
                                  f"{go_value(node.minimum)}")
            if node.maximum is not None and value > node.maximum:
                self._error(path, f"Invalid value: {go_value(value)}: {_format_path(path)} in "
                                  f"body should be less than or equal to "
                                  f"{go_value(node.maximum)}")

    def _check_string(self, value: str, node: _Node, path: tuple[str | int, ...]) -> None:
        """maxLength, minLength, pattern: the first that fails (as the real server)."""
        where = _format_path(path)
        if node.max_length is not None and len(value) > node.max_length:
            self._error(path, f"Too long: may not be longer than {node.max_length}",
                        "FieldValueTooLong")
        elif node.min_length is not None and len(value) < node.min_length:
            self._error(path, f"Invalid value: {go_value(value)}: {where} in body should be at "
                              f"least {node.min_length} chars long")
        elif node.pattern is not None and node.pattern.search(value) is None:
            self._error(path, f"Invalid value: {go_value(value)}: {where} in body should match "
                              f"'{node.pattern.pattern}'")

    def _check_items(self, value: list[Any], node: _Node, path: tuple[str | int, ...]) -> None:
        if node.min_items is not None and len(value) < node.min_items:
            self._error(path, f"Invalid value: {len(value)}: {_format_path(path)} in body should "
                              f"have at least {node.min_items} items")
        if node.max_items is not None and len(value) > node.max_items:
            self._error(path, f"Too many: {len(value)}: must have at most {node.max_items} items",
                        "FieldValueTooMany")

    def _type_error(self, value: Any, node: _Node, path: tuple[str | int, ...]) -> None:
        actual = go_value(json_type(value))
        self._error(path, f"Invalid value: {actual}: {_format_path(path)} in body must be of "
                          f"type {node.type}: {actual}", "FieldValueTypeInvalid")

    def _error(self, path: tuple[str | int, ...], message: str, reason: str = "FieldValueInvalid"
               ) -> None:
        self.causes.append(Cause(_format_path(path), message, reason))


Processor = Callable[[dict[str, Any], dict[str, Any] | None],
                     tuple[dict[str, Any], list[Cause]]]


def compile_processor(schema: Mapping[str, Any] | None) -> Processor:
    """A function that prunes and defaults a whole custom resource by ``schema`` and returns
    it with the causes of any invalid field.

    ``apiVersion``, ``kind`` and ``metadata`` are always kept and not checked against the
    schema (the server validates ObjectMeta itself). A missing schema keeps everything. A
    top-level field (``spec``, ``status``) equal to the same field of ``stored`` (an object
    this processor already produced) is taken from it as it is: a status write does not walk
    the spec again.
    """
    if not schema:
        return lambda obj, stored: (obj, [])
    root = _compile(schema)
    root_keys = frozenset(_ROOT_KEYS)
    root.required = tuple(key for key in root.required if key not in root_keys)

    def process(obj: dict[str, Any], stored: dict[str, Any] | None
                ) -> tuple[dict[str, Any], list[Cause]]:
        body = {key: value for key, value in obj.items() if key not in root_keys}
        reused = frozenset(key for key, value in body.items()
                           if stored is not None and key in stored and stored[key] == value)
        walk = _Walk(reused)
        processed = walk.value(body, root, ())
        kept = {key: obj[key] for key in _ROOT_KEYS if key in obj}
        if isinstance(processed, dict):
            kept.update(processed)
        return kept, walk.causes

    return process


__all__ = ["Cause", "Processor", "compile_processor", "go_value", "json_type"]
