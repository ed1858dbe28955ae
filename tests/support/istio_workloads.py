"""Istio's destination-side telemetry for one workload, served for a real Prometheus.

``async with workload_prometheus(namespace=..., workload=...) as (prometheus, exporter):``
serves ``istio_requests_total`` and the ``istio_request_duration_milliseconds`` histogram
with the labels Flagger's builtin Istio queries select (``reporter="destination"``,
``destination_workload_namespace``, ``destination_workload``, ``response_code``), and runs
Prometheus scraping it every second. Every scrape first counts ``exporter.per_scrape``
more requests (by response code), all taking ``exporter.latency_ms``: steady traffic, so
success rates and p99 latencies are exact. Change them to make the canary fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.prometheus import PrometheusServer, run_prometheus, serve

BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


@dataclass
class WorkloadExporter:
    namespace: str
    workload: str
    per_scrape: dict[str, float] = field(default_factory=lambda: {"200": 20.0})
    latency_ms: float = 20.0
    _requests: dict[str, float] = field(default_factory=dict)
    _buckets: dict[float, float] = field(default_factory=dict)
    _count: float = 0.0
    _sum: float = 0.0

    def _labels(self) -> str:
        return (f'reporter="destination",destination_workload_namespace="{self.namespace}",'
                f'destination_workload="{self.workload}"')

    def _count_traffic(self) -> None:
        total = sum(self.per_scrape.values())
        for code, count in self.per_scrape.items():
            self._requests[code] = self._requests.get(code, 0.0) + count
        for bound in (*BUCKETS, float("inf")):
            if self.latency_ms <= bound:
                self._buckets[bound] = self._buckets.get(bound, 0.0) + total
            else:
                self._buckets.setdefault(bound, 0.0)
        self._count += total
        self._sum += total * self.latency_ms

    def exposition(self) -> str:
        labels = self._labels()
        lines = ["# TYPE istio_requests_total counter"]
        lines += [f'istio_requests_total{{{labels},response_code="{code}"}} {value:g}'
                  for code, value in sorted(self._requests.items())]
        lines.append("# TYPE istio_request_duration_milliseconds histogram")
        for bound, value in sorted(self._buckets.items()):
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{le}"}} '
                         f'{value:g}')
        lines.append(f"istio_request_duration_milliseconds_count{{{labels}}} {self._count:g}")
        lines.append(f"istio_request_duration_milliseconds_sum{{{labels}}} {self._sum:g}")
        return "\n".join(lines) + "\n"

    async def _metrics(self, request: web.Request) -> web.Response:
        self._count_traffic()  # counted and rendered in one step: no half-counted scrape
        return web.Response(text=self.exposition(), content_type="text/plain", charset="utf-8")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        return app


@asynccontextmanager
async def workload_prometheus(*, namespace: str, workload: str
                              ) -> AsyncIterator[tuple[PrometheusServer, WorkloadExporter]]:
    exporter = WorkloadExporter(namespace=namespace, workload=workload)
    async with serve(exporter.app()) as url, \
            run_prometheus(targets=[url.removeprefix("http://")]) as server:
        yield server, exporter
