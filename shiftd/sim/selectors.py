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
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>[^=!,\s]*)\s*$")


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


_SPECIAL = "=!(),<>"


def _tokens(selector: str) -> list[str]:
    """The label-selector lexer's tokens: operators, parentheses, commas and identifiers
    (``in``/``notin`` are identifiers until the parser reads them as operators)."""
    tokens: list[str] = []
    index = 0
    while index < len(selector):
        char = selector[index]
        if char.isspace():
            index += 1
        elif selector[index:index + 2] in ("!=", "=="):
            tokens.append(selector[index:index + 2])
            index += 2
        elif char in _SPECIAL:
            tokens.append(char)
            index += 1
        else:
            start = index
            while (index < len(selector) and not selector[index].isspace()
                   and selector[index] not in _SPECIAL):
                index += 1
            tokens.append(selector[start:index])
    return tokens


def _is_identifier(token: str) -> bool:
    return token != "" and token[0] not in _SPECIAL


class _LabelParser:
    """The apiserver's label-selector grammar, with its error messages word for word (those
    inside one requirement prefixed ``unable to parse requirement:``, as there)."""

    def __init__(self, selector: str) -> None:
        self._tokens = _tokens(selector)
        self._at = 0

    def _peek(self) -> str:
        return self._tokens[self._at] if self._at < len(self._tokens) else ""

    def _take(self) -> str:
        token = self._peek()
        self._at += 1
        return token

    def parse(self) -> list[Callable[[Mapping[str, str]], bool]]:
        requirements: list[Callable[[Mapping[str, str]], bool]] = []
        while True:
            token = self._peek()
            if token == "":
                return requirements
            if not (_is_identifier(token) or token == "!"):
                raise bad_request(f"found '{token}', expected: !, identifier, or 'end of "
                                  "string'")
            requirements.append(self._requirement())
            after = self._take()
            if after == "":
                return requirements
            if after != ",":
                raise bad_request(f"found '{after}', expected: ',' or 'end of string'")
            following = self._peek()
            if not (_is_identifier(following) or following == "!"):
                raise bad_request(f"found '{following}', expected: identifier after ','")

    def _requirement(self) -> Callable[[Mapping[str, str]], bool]:
        negated = self._peek() == "!"
        if negated:
            self._take()
        key = self._take()
        if not _is_identifier(key):
            raise _unparsable(f"found '{key}', expected: identifier")
        if self._peek() in ("", ","):
            if negated:
                return lambda labels: key not in labels
            return lambda labels: key in labels
        operator = self._take()  # after "!key" too: the real parser then wants an operator
        if operator in ("in", "notin"):
            values = self._values()
            if operator == "in":
                return lambda labels: labels.get(key) in values
            return lambda labels: labels.get(key) not in values
        if operator not in ("=", "==", "!=", ">", "<"):
            raise _unparsable(f"found '{operator}', expected: '=', '!=', '==', 'in', notin'")
        value = self._exact_value()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        if operator in (">", "<"):
            return _compare(key, value, greater=operator == ">")
        return lambda labels: labels.get(key) == value

    def _exact_value(self) -> str:
        if self._peek() in ("", ","):
            return ""
        token = self._take()
        if not _is_identifier(token):
            raise _unparsable(f"found '{token}', expected: identifier")
        return token

    def _values(self) -> frozenset[str]:
        opening = self._take()
        if opening != "(":
            raise _unparsable(f"found '{opening}' expected: '('")
        first = self._peek()
        if first == ")":
            self._take()
            return frozenset({""})
        if not (_is_identifier(first) or first == ","):
            raise _unparsable(f"found '{first}', expected: ',', ')' or identifier")
        values = self._identifiers()
        if self._take() != ")":
            raise _unparsable(f"found '{first}', expected: ')'")
        return values

    def _identifiers(self) -> frozenset[str]:
        """Comma-separated values, possibly empty ones, up to (not including) ``)``."""
        values: set[str] = set()
        while True:
            token = self._take()
            if _is_identifier(token):
                values.add(token)
                following = self._peek()
                if following == ")":
                    return frozenset(values)
                if following != ",":
                    raise _unparsable(f"found '{following}', expected: ',' or ')'")
            elif token == ",":
                if not values:
                    values.add("")
                following = self._peek()
                if following == ")":
                    values.add("")
                    return frozenset(values)
                if following == ",":
                    self._take()
                    values.add("")
            else:
                raise _unparsable(f"found '{token}', expected: ',', or identifier")


def _compare(key: str, value: str, *, greater: bool) -> Callable[[Mapping[str, str]], bool]:
    """``key>N`` / ``key<N``: the label, read as an integer, compared with ``N``."""
    try:
        bound = int(value)
    except ValueError as error:
        raise bad_request(f"for 'Gt', 'Lt' operators, the value must be an integer: "
                          f"{value!r}") from error

    def matches(labels: Mapping[str, str]) -> bool:
        try:
            number = int(labels[key])
        except (KeyError, ValueError):
            return False
        return number > bound if greater else number < bound

    return matches


def _unparsable(reason: str) -> Exception:
    return bad_request(f"unable to parse requirement: {reason}")


def label_selector(selector: str | None) -> Predicate:
    """A predicate over objects for a ``labelSelector`` query parameter."""
    if not selector or not selector.strip():
        return lambda obj: True
    requirements = _LabelParser(selector).parse()

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
