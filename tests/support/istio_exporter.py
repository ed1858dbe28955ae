"""Istio's standard telemetry, by workload, for a real Prometheus to scrape in tests.

Flagger's builtin metrics read what Istio's sidecars export about the destination workload:
``istio_requests_total`` and the ``istio_request_duration_milliseconds`` histogram, labelled
``reporter``, ``destination_workload``, ``destination_workload_namespace`` and
``response_code`` (plus more that the queries ignore). :class:`IstioTelemetryExporter` serves
exactly those series on ``/metrics``, with traffic the test sets per workload:

    exporter.traffic(workload="podinfo", namespace="test", per_scrape={"200": 95, "500": 5},
                     latency_ms={20: 0.98, 400: 0.02})

From then on, every scrape first counts 95 more 200s and 5 more 500s for ``podinfo``, 98 % of
them taking 20 ms and 2 % 400 ms (each latency lands in Istio's default buckets). Steady
traffic between scrapes makes ``rate`` ratios exact, so a test knows the success rate and the
p99 that Flagger's queries must return. Every series the traffic will touch is exported (at 0)
from the moment it is set, so no series starts in the middle of a query's window.

``async with istio_telemetry_prometheus() as (prometheus, exporter):`` runs the exporter and a
real Prometheus scraping it every second (``tests/support/prometheus.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.prometheus import PrometheusServer, scraped_by_prometheus

__all__ = ["ISTIO_DURATION_BUCKETS_MS", "IstioTelemetryExporter", "istio_telemetry_prometheus"]

# Istio's default buckets for istio_request_duration_milliseconds.
ISTIO_DURATION_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)

# (reporter, destination_workload, destination_workload_namespace, response_code)
_Series = tuple[str, str, str, str]


@dataclass
class _Histogram:
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(ISTIO_DURATION_BUCKETS_MS))
    count: float = 0.0
    total_ms: float = 0.0

    def observe(self, latency_ms: float, requests: float) -> None:
        for index, bound in enumerate(ISTIO_DURATION_BUCKETS_MS):
            if latency_ms <= bound:
                self.buckets[index] += requests
        self.count += requests
        self.total_ms += latency_ms * requests


@dataclass
class IstioTelemetryExporter:
    """Istio request counters and duration histograms by destination workload."""

    url: str = ""
    scrapes: int = 0
    _requests: dict[_Series, float] = field(default_factory=dict)
    _durations: dict[_Series, _Histogram] = field(default_factory=dict)
    # series -> (requests per scrape, {latency ms: share of those requests})
    _traffic: dict[_Series, tuple[float, dict[float, float]]] = field(default_factory=dict)

    def traffic(
        self,
        *,
        workload: str,
        namespace: str,
        per_scrape: Mapping[str, float],
        latency_ms: Mapping[float, float] | float = 10.0,
        reporter: str = "destination",
    ) -> None:
        """Each scrape from now on counts ``per_scrape[code]`` more requests per response code
        for this workload, their latencies split by ``latency_ms`` (a latency, or latencies
        to their shares of the requests). An empty ``per_scrape`` stops the traffic."""
        shares = {float(latency_ms): 1.0} if isinstance(latency_ms, int | float) else {
            float(latency): float(share) for latency, share in latency_ms.items()}
        if per_scrape and abs(sum(shares.values()) - 1.0) > 1e-9:
            raise ValueError(f"latency shares must add up to 1, got {sum(shares.values())}")
        for series in [s for s in self._traffic if s[:3] == (reporter, workload, namespace)]:
            del self._traffic[series]
        for code, count in per_scrape.items():
            series = (reporter, workload, namespace, code)
            self._traffic[series] = (float(count), shares)
            self._requests.setdefault(series, 0.0)
            self._durations.setdefault(series, _Histogram())

    def exposition(self) -> str:
        lines = [
            "# HELP istio_requests_total Requests seen by the proxies.",
            "# TYPE istio_requests_total counter",
            *(f"istio_requests_total{{{_labels(series)}}} {value:g}"
              for series, value in sorted(self._requests.items())),
            "# HELP istio_request_duration_milliseconds Request durations seen by the proxies.",
            "# TYPE istio_request_duration_milliseconds histogram",
        ]
        for series, histogram in sorted(self._durations.items(), key=lambda item: item[0]):
            labels = _labels(series)
            name = "istio_request_duration_milliseconds"
            for bound, count in zip(ISTIO_DURATION_BUCKETS_MS, histogram.buckets, strict=True):
                lines.append(f'{name}_bucket{{{labels},le="{bound:g}"}} {count:g}')
            lines += [
                f'{name}_bucket{{{labels},le="+Inf"}} {histogram.count:g}',
                f"{name}_sum{{{labels}}} {histogram.total_ms:g}",
                f"{name}_count{{{labels}}} {histogram.count:g}",
            ]
        return "\n".join(lines) + "\n"

    async def _metrics(self, request: web.Request) -> web.Response:
        # Counting and rendering happen in one step of the loop: a scrape never sees half of
        # a traffic step.
        for series, (count, shares) in self._traffic.items():
            self._requests[series] += count
            for latency, share in shares.items():
                self._durations[series].observe(latency, count * share)
        self.scrapes += 1
        return web.Response(text=self.exposition(), content_type="text/plain", charset="utf-8")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        return app


def _labels(series: _Series) -> str:
    reporter, workload, namespace, code = series
    return (f'reporter="{reporter}",destination_workload="{workload}",'
            f'destination_workload_namespace="{namespace}",response_code="{code}"')


@asynccontextmanager
async def istio_telemetry_prometheus(
    *, scrape_interval: str = "1s"
) -> AsyncIterator[tuple[PrometheusServer, IstioTelemetryExporter]]:
    """An :class:`IstioTelemetryExporter` and a real Prometheus scraping it."""
    exporter = IstioTelemetryExporter()
    async with scraped_by_prometheus(exporter, scrape_interval=scrape_interval) as server:
        yield server, exporter
