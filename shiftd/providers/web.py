"""The web provider: one HTTP request per measurement, its JSON answer picked by ``jsonPath``.

Argo's ``provider.web`` fields: ``url``, ``method`` (GET, POST or PUT; GET by default),
``headers``, ``body`` or ``jsonBody`` (not both, and only with POST or PUT; ``jsonBody`` sets
``Content-Type: application/json``), ``timeoutSeconds`` (10 by default), ``jsonPath``
(``{$}`` by default), ``insecure`` and ``authentication.oauth2``/``basicAuth``. A non-2xx
answer is an error. A JSON answer yields the first value the path selects (numbers as floats,
as Go decodes them); an answer that is not JSON yields its text.

``jsonPath`` is Kubernetes JSONPath. This module implements the part metric templates use:
one ``{...}`` expression made of ``$``, ``.field``, ``['field']``, ``[index]`` (negative
counts from the end), ``[start:end]`` and the ``*`` / ``[*]`` wildcards. Filters and
recursive descent are refused with a clear error rather than guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shiftd.providers._http import (
    auth_headers,
    deadline,
    go_json,
    is_transient_status,
    load_json,
    request_headers,
    send,
)
from shiftd.providers.base import Measurement, ProviderError, ProviderSettings

__all__ = ["JsonPathError", "WebProvider", "compile_json_path", "find_first"]

DEFAULT_TIMEOUT_SECONDS = 10.0
_METHODS = ("GET", "POST", "PUT")


class WebProvider:
    """Measures ``provider.web`` metrics."""

    def __init__(self, *, settings: ProviderSettings) -> None:
        self._settings = settings

    async def measure(self, metric: Mapping[str, Any]) -> Measurement:
        what = f"web metric {metric.get('name', '<unnamed>')}"
        spec = _spec(metric)
        url = spec.get("url")
        if not isinstance(url, str) or not url:
            raise ProviderError(f"{what}: url is required", transient=False)
        method = str(spec.get("method") or "GET").upper()
        if method not in _METHODS:
            raise ProviderError(
                f"{what}: method {method} is not one of {', '.join(_METHODS)}", transient=False
            )
        try:
            path = compile_json_path(str(spec.get("jsonPath") or "{$}"))
        except JsonPathError as error:
            raise ProviderError(f"{what}: jsonPath: {error}", transient=False) from None
        headers = request_headers(spec, what=what)
        body = _body(spec, method=method, what=what)
        if spec.get("jsonBody") is not None:
            headers["Content-Type"] = "application/json"
        insecure = bool(spec.get("insecure", False))
        async with deadline(_timeout(spec), what=what) as session:
            headers.update(
                await auth_headers(
                    session, spec.get("authentication"), what=what, insecure=insecure
                )
            )
            answer = await send(
                session, method, url, what=what, insecure=insecure, headers=headers, data=body
            )
        if not 200 <= answer.status < 300:
            raise ProviderError(
                f"{what}: received non 2xx response code: {answer.status}",
                transient=is_transient_status(answer.status),
            )
        try:
            document = load_json(answer.body)
        except ValueError:
            text = answer.text()
            return Measurement(value=text, raw=text)
        try:
            value = find_first(path, document)
        except JsonPathError as error:
            raise ProviderError(f"{what}: jsonPath {path.text}: {error}", transient=False) from None
        return Measurement(value=value, raw=go_json(value))


def _spec(metric: Mapping[str, Any]) -> Mapping[str, Any]:
    provider = metric.get("provider") or {}
    spec = provider.get("web") if isinstance(provider, Mapping) else None
    if not isinstance(spec, Mapping):
        raise ProviderError("metric has no provider.web object", transient=False)
    return spec


def _timeout(spec: Mapping[str, Any]) -> float:
    timeout = spec.get("timeoutSeconds")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    return DEFAULT_TIMEOUT_SECONDS


def _body(spec: Mapping[str, Any], *, method: str, what: str) -> bytes | None:
    text, structured = spec.get("body") or "", spec.get("jsonBody")
    if text and structured is not None:
        raise ProviderError(
            f"{what}: use either body or jsonBody; both cannot exist for a web metric",
            transient=False,
        )
    if (text or structured is not None) and method == "GET":
        raise ProviderError(
            f"{what}: body/jsonBody can only be used with the POST or PUT methods",
            transient=False,
        )
    if structured is not None:
        return json.dumps(structured, separators=(",", ":")).encode()
    return str(text).encode() if text else None


# --- JSONPath --------------------------------------------------------------------------------


class JsonPathError(ValueError):
    """A path shiftd cannot compile, or one that selects nothing from a document."""


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Slice:
    start: int | None
    end: int | None


@dataclass(frozen=True)
class _Wildcard:
    pass


_Step = _Field | _Index | _Slice | _Wildcard


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[_Step, ...]


_NAME = re.compile(r"[^.\[\]\s]+")
_BRACKET = re.compile(
    r"""\[\s*(?:
        (?P<star>\*)
      | (?P<quote>['"])(?P<key>.*?)(?P=quote)
      | (?P<start>-?\d+)?\s*(?P<colon>:)\s*(?P<end>-?\d+)?
      | (?P<index>-?\d+)
    )\s*\]""",
    re.VERBOSE,
)


def compile_json_path(text: str) -> JsonPath:
    """Compile a Kubernetes JSONPath template holding one ``{...}`` expression."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        raise JsonPathError(f"{text!r} must be one expression in braces, like {{$.data.value}}")
    body = stripped[1:-1].strip()
    if "{" in body or "}" in body:
        raise JsonPathError(f"{text!r}: only one {{...}} expression is supported")
    body = body.removeprefix("$")
    steps: list[_Step] = []
    position = 0
    while position < len(body):
        if body.startswith("..", position):
            raise JsonPathError(f"{text!r}: recursive descent (..) is not supported")
        if body.startswith("[?", position):
            raise JsonPathError(f"{text!r}: filter expressions are not supported")
        if body[position] == ".":
            position += 1
            if body.startswith("*", position):
                steps.append(_Wildcard())
                position += 1
                continue
            name = _NAME.match(body, position)
            if name is None:
                if position == len(body) and not steps:
                    break  # "{.}" and "{$.}" select the whole document
                raise JsonPathError(f"{text!r}: expected a field name at {position}")
            steps.append(_Field(name.group()))
            position = name.end()
            continue
        bracket = _BRACKET.match(body, position)
        if bracket is None:
            raise JsonPathError(f"{text!r}: cannot parse from {body[position:]!r}")
        if bracket.group("star"):
            steps.append(_Wildcard())
        elif bracket.group("quote"):
            steps.append(_Field(bracket.group("key")))
        elif bracket.group("colon"):
            start, end = bracket.group("start"), bracket.group("end")
            steps.append(_Slice(_int_or_none(start), _int_or_none(end)))
        else:
            steps.append(_Index(int(bracket.group("index"))))
        position = bracket.end()
    return JsonPath(text=text, steps=tuple(steps))


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None else None


def find_first(path: JsonPath, document: Any) -> Any:
    """The first value ``path`` selects in ``document``, as Argo's web provider takes it."""
    nodes = [document]
    for step in path.steps:
        nodes = [child for node in nodes for child in _apply(step, node)]
    if not nodes:
        raise JsonPathError("result of web metric produced no value")
    return nodes[0]


def _apply(step: _Step, node: Any) -> list[Any]:
    if isinstance(step, _Field):
        if not isinstance(node, Mapping):
            raise JsonPathError(f"{step.name} is not found: not an object")
        if step.name not in node:
            raise JsonPathError(f"{step.name} is not found")
        return [node[step.name]]
    if isinstance(step, _Wildcard):
        if isinstance(node, Mapping):
            return [node[key] for key in sorted(node)]
        if isinstance(node, list):
            return list(node)
        raise JsonPathError("* applies to objects and arrays only")
    if not isinstance(node, list):
        raise JsonPathError("an index applies to arrays only")
    if isinstance(step, _Index):
        index = step.index + len(node) if step.index < 0 else step.index
        if not 0 <= index < len(node):
            raise JsonPathError(
                f"array index out of bounds: index {step.index}, length {len(node)}"
            )
        return [node[index]]
    return list(node[step.start : step.end])
