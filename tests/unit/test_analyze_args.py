"""Filling ``{{args.x}}`` into a metric, by Argo's rules (one implementation for every caller)."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.model.argo.analysis import (
    UndefinedArgument,
    substitute,
    substitute_all,
)
from shiftd.model.argo.rollout import InvalidSpecError

VALUES = {"service": "canary", "namespace": "demo", "tenant-id": "t1", "quote": 'a"b\nc'}


@pytest.mark.parametrize(
    ("text", "filled"),
    [
        ("no placeholder", "no placeholder"),
        ("{{args.service}}", "canary"),
        ("{{ args.service }}", "canary"),
        ("{{args.service}}.{{args.namespace}}.svc", "canary.demo.svc"),
        ("x-{{  args.tenant-id\t}}", "x-t1"),
        ("{{args.quote}}", 'a"b\nc'),
        ("single { and } braces", "single { and } braces"),
        ("", ""),
    ],
)
def test_placeholders_are_filled_verbatim_with_spaces_allowed_inside_the_braces(
    text: str, filled: str
) -> None:
    assert substitute(text, VALUES) == filled


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("{{args.servce}}", UndefinedArgument, "args.servce is used but not defined"),
        ("{{ args.missing }}", UndefinedArgument, "args.missing is used but not defined"),
        ("{{service}}", InvalidSpecError, "{{service}} cannot be resolved"),
        ("{{ inputs.service }}", InvalidSpecError, "{{inputs.service}} cannot be resolved"),
        ("{{}}", InvalidSpecError, "{{}} cannot be resolved"),
        ("up{{args.service", InvalidSpecError, "{{ is not closed"),
    ],
)
def test_a_placeholder_that_cannot_be_resolved_is_an_invalid_spec_as_in_argo(
    text: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        substitute(text, VALUES)
    assert message in str(caught.value)


def test_a_value_is_not_searched_again_for_placeholders() -> None:
    assert substitute("{{args.a}}", {"a": "{{args.b}}"}) == "{{args.b}}"


def test_every_string_of_the_metric_is_filled_keys_and_provider_fields_included() -> None:
    metric: dict[str, Any] = {
        "name": "error-rate",
        "successCondition": "result[0] < {{args.limit}}",
        "count": 3,
        "provider": {
            "web": {
                "url": "http://{{args.service}}/{{ args.namespace }}",
                "headers": [{"key": "X-Tenant", "value": "{{args.tenant-id}}"}],
                "jsonBody": {"{{args.service}}": True},
            }
        },
    }
    filled = substitute_all(metric, {**VALUES, "limit": "0.05"})
    assert filled == {
        "name": "error-rate",
        "successCondition": "result[0] < 0.05",
        "count": 3,
        "provider": {
            "web": {
                "url": "http://canary/demo",
                "headers": [{"key": "X-Tenant", "value": "t1"}],
                "jsonBody": {"canary": True},
            }
        },
    }
    assert metric["provider"]["web"]["url"] == "http://{{args.service}}/{{ args.namespace }}"
