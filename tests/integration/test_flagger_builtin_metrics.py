"""Flagger's builtin Istio metrics, measured: builtin_query's PromQL against a real Prometheus.

A real Prometheus scrapes ``tests/support/istio_exporter.py`` every second while the exporter
plays steady traffic for a canary workload (95 % successes; 98 % of requests at 20 ms, 2 % at
400 ms) and for its primary (all errors, slow), so the answers are known: a success rate of
exactly 95 and a p99 of 375 ms (Prometheus interpolates rank 99 of 100 linearly inside the
(250, 500] bucket that holds requests 99 and 100). The primary's traffic must not leak into
the canary's numbers: ``destination_workload=~"podinfo"`` is an anchored match. The same
queries then go through ``flagger_prometheus.run_query``, the client the controller uses. Starting
Prometheus takes about 5 s.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from shiftd.decide.flagger.metrics import builtin_query, halt_message, within_threshold
from shiftd.providers.flagger_prometheus import run_query
from tests.support.istio_exporter import istio_telemetry_prometheus
from tests.support.prometheus import prometheus_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="needs the prometheus binary (apt-get install prometheus)",
    ),
]


def close_to(expected: float) -> Callable[[list[float]], bool]:
    return lambda values: len(values) == 1 and abs(values[0] - expected) < 1e-6


async def test_builtin_queries_read_the_canarys_success_rate_and_p99_from_istio_telemetry(
) -> None:
    async with istio_telemetry_prometheus() as (prometheus, exporter):
        exporter.traffic(workload="podinfo", namespace="test",
                         per_scrape={"200": 95, "503": 5}, latency_ms={20: 0.98, 400: 0.02})
        exporter.traffic(workload="podinfo-primary", namespace="test",
                         per_scrape={"500": 10}, latency_ms=3000)
        exporter.traffic(workload="podinfo", namespace="other",
                         per_scrape={"500": 10}, latency_ms=3000)
        success_rate = builtin_query("request-success-rate", namespace="test",
                                     target="podinfo", interval="1m")
        duration = builtin_query("request-duration", namespace="test", target="podinfo",
                                 interval="1m")
        [rate] = await prometheus.wait_for(success_rate, close_to(95.0),
                                           what="a success rate of 95")
        [p99] = await prometheus.wait_for(duration, close_to(375.0),
                                          what="a p99 of 375 ms")
        # What the Canary controller's client reads (Flagger's rules, URL-encoded PromQL).
        async with aiohttp.ClientSession() as session:
            measured = [await run_query(session, address=prometheus.url, query=query)
                        for query in (success_rate, duration)]
        assert measured == [pytest.approx(95.0), pytest.approx(375.0)]
    assert not within_threshold(rate, {"min": 99})
    assert halt_message(canary="podinfo", namespace="test", metric="request-success-rate",
                        value=rate, threshold_range={"min": 99}) == (
        "Halt podinfo.test advancement success rate 95.00% < 99%")
    assert within_threshold(p99, {"max": 500})
