"""The seeds' Prometheus queries, verbatim, measured against a real Prometheus.

Each test starts Debian's ``prometheus`` scraping an Istio-like exporter every second
(``tests/support/prometheus.py``), drives the exporter's ``istio_requests_total`` counters
like a mesh would, waits (polling under a deadline) for Prometheus to hold the samples a
query needs, and measures through ``provider_for(...).measure`` exactly as analysis will. The
queries come from the examples' AnalysisTemplates unchanged; only ``address`` is pointed at
the test's Prometheus, and ``{{args.*}}`` is filled by ``substitute_all`` (as analysis does).
Starting Prometheus takes about 5 s: its scrape manager applies new targets on a 5 s tick.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from shiftd.model.argo.analysis import substitute_all
from shiftd.providers import ProviderError, ProviderSettings, provider_for
from tests.integration.harness import example_documents
from tests.support.prometheus import istio_prometheus, prometheus_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="needs the prometheus binary (apt-get install prometheus)",
    ),
]


def template_metric(folder: str) -> dict[str, Any]:
    """The first metric of the example's AnalysisTemplate, untouched."""
    [template] = [d for d in example_documents(folder) if d["kind"] == "AnalysisTemplate"]
    metric: dict[str, Any] = copy.deepcopy(template["spec"]["metrics"][0])
    return metric


def pointed_at(metric: dict[str, Any], url: str) -> dict[str, Any]:
    # The examples name the in-cluster Prometheus (http://prometheus.istio-system:9090).
    metric["provider"]["prometheus"]["address"] = url
    return metric


def requests_of(destination_service: str, code: str | None = None) -> str:
    code_matcher = f',response_code="{code}"' if code else ""
    return f'istio_requests_total{{destination_service="{destination_service}"{code_matcher}}}'


async def test_seed_000_query_reads_1_when_healthy_035_at_65_percent_errors_nan_when_idle() -> None:
    metric = template_metric("asm-host-split")
    args = {"service": "canary", "namespace": "default"}
    service = "canary.default.svc.cluster.local"
    async with istio_prometheus() as (prometheus, exporter):
        provider = provider_for(pointed_at(metric, prometheus.url), settings=ProviderSettings())

        exporter.traffic(destination_service=service, per_scrape={"200": 100})
        # irate(...[40s]) needs two samples inside 40 s.
        await prometheus.wait_for_samples(requests_of(service), 2)
        healthy = await provider.measure(substitute_all(metric, args))
        assert (healthy.value, healthy.raw) == ([1.0], "[1]")
        resolved = healthy.metadata["ResolvedPrometheusQuery"]
        assert 'destination_service=~"canary.default.svc.cluster.local"' in resolved
        assert "{{" not in resolved

        # The seed's failure: the canary answers 65 % of requests with 500.
        exporter.traffic(destination_service=service, per_scrape={"200": 35, "500": 65})
        await prometheus.wait_for_samples(requests_of(service, "500"), 2)
        failing = await provider.measure(substitute_all(metric, args))
        assert failing.value == [pytest.approx(0.35)]
        assert failing.raw.startswith("[0.35")  # fails the seed's result[0] > 0.90

        # No requests at all: irate is 0 over 0, which Prometheus answers as NaN.
        exporter.traffic(destination_service=service, per_scrape={})
        await prometheus.wait_for_more_samples(requests_of(service), 2)
        idle = await provider.measure(substitute_all(metric, args))
        assert len(idle.value) == 1 and math.isnan(idle.value[0])
        assert idle.raw == "[NaN]"


async def test_seed_002_query_reads_1_when_healthy_035_when_failing_empty_when_idle() -> None:
    metric = template_metric("myapp-analysis")
    namespaces = {
        "healthy": "rollouts-demo",
        "failing": "rollouts-broken",
        "idle": "rollouts-idle",
        "unknown": "rollouts-nowhere",
    }
    services = {
        case: f"myapp-canary-svc.{namespace}.svc.cluster.local"
        for case, namespace in namespaces.items()
    }
    async with istio_prometheus() as (prometheus, exporter):
        exporter.traffic(destination_service=services["healthy"], per_scrape={"200": 50})
        exporter.traffic(destination_service=services["failing"], per_scrape={"200": 35, "500": 65})
        # Requests were counted once, long ago: the counter exists but does not move.
        exporter.add(destination_service=services["idle"], response_code="200", count=120)
        # rate(...[2m]) needs two samples of every series in the window.
        await prometheus.wait_for_samples('istio_requests_total{reporter="source"}', 2)

        provider = provider_for(pointed_at(metric, prometheus.url), settings=ProviderSettings())
        measured = {
            case: await provider.measure(substitute_all(
                metric, {"service": "myapp-canary-svc", "namespace": namespace}
            ))
            for case, namespace in namespaces.items()
        }

    assert (measured["healthy"].value, measured["healthy"].raw) == ([1.0], "[1]")
    assert measured["failing"].value == [pytest.approx(0.35)]
    # "unless ... == 0" drops the ratio when there is no traffic: the seed's condition
    # len(result) == 0 || result[0] > 0.90 then passes.
    assert (measured["idle"].value, measured["idle"].raw) == ([], "[]")
    assert (measured["unknown"].value, measured["unknown"].raw) == ([], "[]")


async def test_a_range_query_measures_every_sample_of_every_series_in_label_order() -> None:
    service = "reviews.bookinfo.svc.cluster.local"
    metric = {
        "name": "requests",
        "successCondition": "all(result, # < 100000)",
        "provider": {
            "prometheus": {
                "query": requests_of(service),
                "rangeQuery": {"start": 'now() - duration("1m")', "end": "now()", "step": "1s"},
            }
        },
    }
    async with istio_prometheus() as (prometheus, exporter):
        exporter.traffic(destination_service=service, per_scrape={"200": 1, "500": 1000})
        await prometheus.wait_for_samples(requests_of(service), 3)
        provider = provider_for(pointed_at(metric, prometheus.url), settings=ProviderSettings())
        measurement = await provider.measure(metric)

    values = measurement.value
    ok = [value for value in values if value < 1000]
    errors = values[len(ok) :]
    # Series by series, as Argo flattens a matrix: all of response_code 200, then all of 500.
    assert values == ok + errors and len(ok) >= 3 and len(errors) >= 3
    assert all(value >= 1000 for value in errors)
    assert ok == sorted(ok) and errors == sorted(errors)
    assert measurement.raw == "[" + ",".join(str(int(value)) for value in values) + "]"


async def test_a_query_prometheus_rejects_is_permanent_and_a_stopped_prometheus_transient() -> None:
    broken = {
        "name": "broken",
        "provider": {"prometheus": {"query": "sum(rate(istio_requests_total[2m])"}},
    }
    async with istio_prometheus() as (prometheus, _):
        provider = provider_for(pointed_at(broken, prometheus.url), settings=ProviderSettings())
        with pytest.raises(ProviderError, match="answered 400: bad_data") as rejected:
            await provider.measure(broken)
        assert not rejected.value.transient

    # The same measurement once Prometheus has gone away.
    with pytest.raises(ProviderError) as refused:
        await provider.measure(broken)
    assert refused.value.transient
