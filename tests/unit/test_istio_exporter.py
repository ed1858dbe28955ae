"""The test exporter of Istio's telemetry serves the series Flagger's queries read."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.istio_exporter import IstioTelemetryExporter
from tests.support.prometheus import serve

Key = tuple[str, frozenset[tuple[str, str]]]


async def scrape(exporter: IstioTelemetryExporter) -> dict[Key, float]:
    async with (
        serve(exporter.app()) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics") as answer,
    ):
        text = await answer.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


LABELS = {"reporter": "destination", "destination_workload": "podinfo",
          "destination_workload_namespace": "test"}


def key(name: str, **labels: str) -> Key:
    return name, frozenset({**LABELS, **labels}.items())


async def test_each_scrape_counts_one_more_step_of_traffic_per_code_and_latency() -> None:
    exporter = IstioTelemetryExporter()
    exporter.traffic(workload="podinfo", namespace="test", per_scrape={"200": 90, "500": 10},
                     latency_ms={20: 0.5, 400: 0.5})
    await scrape(exporter)
    series = await scrape(exporter)
    assert series[key("istio_requests_total", response_code="200")] == 180
    assert series[key("istio_requests_total", response_code="500")] == 20
    bucket = "istio_request_duration_milliseconds_bucket"
    assert series[key(bucket, response_code="200", le="10")] == 0
    assert series[key(bucket, response_code="200", le="25")] == 90
    assert series[key(bucket, response_code="200", le="250")] == 90
    assert series[key(bucket, response_code="200", le="500")] == 180
    assert series[key(bucket, response_code="200", le="+Inf")] == 180
    assert series[key("istio_request_duration_milliseconds_count", response_code="500")] == 20
    assert series[key("istio_request_duration_milliseconds_sum", response_code="500")] == 4200


async def test_series_are_exported_at_zero_before_their_first_request_and_traffic_can_stop(
) -> None:
    exporter = IstioTelemetryExporter()
    exporter.traffic(workload="podinfo", namespace="test", per_scrape={"200": 1})
    assert 'response_code="200"} 0' in exporter.exposition()
    await scrape(exporter)
    exporter.traffic(workload="podinfo", namespace="test", per_scrape={})
    series = await scrape(exporter)
    assert series[key("istio_requests_total", response_code="200")] == 1


def test_latency_shares_must_add_up_to_one() -> None:
    with pytest.raises(ValueError, match="add up to 1"):
        IstioTelemetryExporter().traffic(workload="w", namespace="n", per_scrape={"200": 1},
                                         latency_ms={10: 0.5})
