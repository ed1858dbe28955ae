"""What the apiserver checks of an object before storing it, beyond its schema.

Object names (RFC 1123 subdomains, labels, or DNS-1035 labels for Services), the pod selector
of ReplicaSets and Deployments (immutable, and matching the template's labels), and the integer
at a custom resource's scale ``specReplicasPath``. Each check returns ``Cause`` values; the
store turns them into the 422 a real server sends, with the same wording.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shiftd.sim.errors import Cause
from shiftd.sim.schema import go_value

Obj = Mapping[str, Any]

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAME_RULES: Mapping[str, tuple[re.Pattern[str], int, str]] = {
    "subdomain": (
        re.compile(rf"^{_LABEL}(\.{_LABEL})*$"), 253,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
        "'-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ),
    "label": (
        re.compile(rf"^{_LABEL}$"), 63,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
        "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
        "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    ),
    "dns1035": (
        re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"), 63,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
        "with an alphabetic character, and end with an alphanumeric character (e.g. "
        "'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')",
    ),
}


def name_causes(name: str, rule: str) -> list[Cause]:
    pattern, limit, explanation = _NAME_RULES[rule]
    causes = []
    if len(name) > limit:
        causes.append(Cause("metadata.name", f"Invalid value: {go_value(name)}: must be no "
                                             f"more than {limit} characters"))
    if not pattern.match(name):
        causes.append(Cause("metadata.name", f"Invalid value: {go_value(name)}: {explanation}"))
    return causes


def _go_string_map(labels: Any) -> str:
    if not isinstance(labels, Mapping):
        return "map[string]string(nil)"
    items = ", ".join(f'"{key}":"{labels[key]}"' for key in sorted(labels))
    return f"map[string]string{{{items}}}"


def _go_requirements(expressions: Any) -> str:
    if not expressions:
        return "[]v1.LabelSelectorRequirement(nil)"
    parts = []
    for item in expressions:
        values = item.get("values")
        rendered = ("[]string(nil)" if values is None
                    else "[]string{" + ", ".join(f'"{v}"' for v in values) + "}")
        parts.append(f'v1.LabelSelectorRequirement{{Key:"{item.get("key", "")}", '
                     f'Operator:"{item.get("operator", "")}", Values:{rendered}}}')
    return "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"


def go_label_selector(selector: Any) -> str:
    """A LabelSelector as Go's ``%#v`` prints it in an immutable-field error."""
    selector = selector if isinstance(selector, Mapping) else {}
    return (f"v1.LabelSelector{{MatchLabels:{_go_string_map(selector.get('matchLabels'))}, "
            f"MatchExpressions:{_go_requirements(selector.get('matchExpressions'))}}}")


def _selects(selector: Obj, labels: Mapping[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in match.items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or ()
        if (operator == "In" and labels.get(key) not in values) or (
                operator == "NotIn" and labels.get(key) in values) or (
                operator == "Exists" and key not in labels) or (
                operator == "DoesNotExist" and key in labels):
            return False
    return True


def pod_selector_causes(obj: Obj, current: Obj | None) -> list[Cause]:
    """A ReplicaSet's or Deployment's selector: unchanged on update, matching the template."""
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if current is not None:
        old = (current.get("spec") or {}).get("selector")
        if selector != old:
            return [Cause("spec.selector", f"Invalid value: {go_label_selector(selector)}: "
                                           "field is immutable")]
    if not isinstance(selector, Mapping) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")):
        return [Cause("spec.selector", "Required value", "FieldValueRequired")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not _selects(selector, labels):
        return [Cause("spec.template.metadata.labels",
                      f"Invalid value: {_go_string_map(labels)}: `selector` does not match "
                      "template `labels`")]
    return []


def scale_causes(obj: Obj, path: str) -> list[Cause]:
    """The scale subresource's accessor error for a non-integer at ``specReplicasPath``."""
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, Mapping) or part not in value:
            return []
        value = value[part]
    if isinstance(value, int) and not isinstance(value, bool):
        return []
    go_type = {str: "string", bool: "bool", float: "float64", dict: "map[string]interface {}",
               list: "[]interface {}"}.get(type(value), "<nil>")
    shown = str(value).lower() if isinstance(value, bool) else value
    return [Cause(path, f"Invalid value: 0: {path} accessor error: {shown} is of the type "
                        f"{go_type}, expected int64")]


__all__ = ["go_label_selector", "name_causes", "pod_selector_causes", "scale_causes"]
