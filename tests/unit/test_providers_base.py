"""Choosing a provider from the registry, and writing numbers and JSON the way Argo (Go) does."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from shiftd.model.argo.analysis import SUPPORTED_PROVIDERS as model_supported
from shiftd.providers import ProviderError, ProviderSettings, UnsupportedProvider, provider_for
from shiftd.providers._http import go_float, go_json, load_json
from shiftd.providers.prometheus import PrometheusProvider
from shiftd.providers.registry import SUPPORTED_PROVIDERS, provider_as_of
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


def test_the_registry_supports_exactly_the_providers_the_model_accepts() -> None:
    assert model_supported == SUPPORTED_PROVIDERS


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


def test_only_prometheus_can_measure_as_of_a_past_moment() -> None:
    def now() -> datetime:
        return datetime(2024, 5, 1, tzinfo=UTC)

    provider = provider_as_of(metric({"prometheus": {}}), settings=ProviderSettings(), now=now)
    assert isinstance(provider, PrometheusProvider)
    with pytest.raises(UnsupportedProvider, match="the web provider cannot measure the past"):
        provider_as_of(metric({"web": {}}), settings=ProviderSettings(), now=now)


@pytest.mark.parametrize("body", [b'{"value": NaN}', b"[Infinity]", b"-Infinity"])
def test_bare_nan_and_infinity_tokens_are_not_json_as_for_go(body: bytes) -> None:
    with pytest.raises(ValueError, match="invalid character"):
        load_json(body)


def test_json_numbers_are_read_as_floats_and_nan_strings_stay_strings() -> None:
    assert load_json(b'{"n": 3, "s": "NaN"}') == {"n": 3.0, "s": "NaN"}
