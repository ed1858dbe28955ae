"""Choosing a provider, filling arguments, and writing numbers and JSON the way Argo (Go) does."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shiftd.providers import ProviderError, ProviderSettings, UnsupportedProvider, provider_for
from shiftd.providers._http import go_float, go_json
from shiftd.providers.base import substitute_args
from shiftd.providers.prometheus import PrometheusProvider
from shiftd.providers.skywalking import SkyWalkingProvider
from shiftd.providers.web import WebProvider


def metric(provider: Any) -> dict[str, Any]:
    return {"name": "m", "provider": provider}


@pytest.mark.parametrize(
    ("key", "kind"),
    [("prometheus", PrometheusProvider), ("skywalking", SkyWalkingProvider), ("web", WebProvider)],
)
def test_the_provider_is_picked_by_the_key_under_provider(key: str, kind: type) -> None:
    provider = provider_for(metric({key: {}}), settings=ProviderSettings())
    assert isinstance(provider, kind)


@pytest.mark.parametrize(
    "key",
    [
        "datadog",
        "newRelic",
        "wavefront",
        "cloudWatch",
        "graphite",
        "influxdb",
        "job",
        "kayenta",
        "plugin",
    ],
)
def test_providers_argo_has_and_shiftd_lacks_are_named_as_not_supported_yet(key: str) -> None:
    with pytest.raises(UnsupportedProvider) as caught:
        provider_for(metric({key: {"query": "x"}}), settings=ProviderSettings())
    assert str(caught.value) == (
        f"metric m: the {key} provider is not supported by shiftd yet "
        "(supported: prometheus, skywalking, web)"
    )
    assert isinstance(caught.value, ProviderError) and not caught.value.transient


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ({"promethues": {}}, "unknown provider 'promethues'"),
        ({}, "must name exactly one provider"),
        (None, "must name exactly one provider"),
        ({"prometheus": {}, "web": {}}, "got prometheus, web"),
    ],
)
def test_a_provider_block_that_names_no_single_known_provider_is_refused(
    provider: Any, message: str
) -> None:
    with pytest.raises(UnsupportedProvider, match=message):
        provider_for(metric(provider), settings=ProviderSettings())


def test_arguments_are_filled_in_every_string_with_or_without_spaces() -> None:
    spec = {
        "query": 'up{svc="{{args.service}}", ns="{{ args.namespace }}"}',
        "headers": [{"key": "X-Tenant", "value": "{{args.tenant-id}}"}],
        "timeout": 10,
    }
    filled = substitute_args(spec, {"service": "canary", "namespace": "demo", "tenant-id": "t1"})
    assert filled == {
        "query": 'up{svc="canary", ns="demo"}',
        "headers": [{"key": "X-Tenant", "value": "t1"}],
        "timeout": 10,
    }


def test_without_variables_the_spec_is_left_alone() -> None:
    spec = {"query": "{{args.service}}"}
    assert substitute_args(spec, None) is spec


def test_an_argument_without_a_value_is_a_permanent_error() -> None:
    with pytest.raises(ProviderError, match="argument 'service' has no value") as caught:
        substitute_args({"query": "{{args.service}}"}, {})
    assert not caught.value.transient


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.95, "0.95"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-0.0, "-0"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_floats_are_written_as_go_formats_them_with_f_and_shortest_precision(
    value: float, text: str
) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": [1.0, 2.5], "a": None}, '{"a":null,"b":[1,2.5]}'),
        ({"ok": True, "no": False}, '{"no":false,"ok":true}'),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456.0, "123456"),
        ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'),
        ("é", '"é"'),
    ],
)
def test_json_is_written_as_go_marshals_it(value: Any, text: str) -> None:
    assert go_json(value) == text
