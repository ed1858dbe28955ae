"""Canary analysis end to end: the daemon, the API, and a real Prometheus server.

Prometheus (Debian's binary) scrapes an exporter the test drives; the seeds' AnalysisTemplates
are used as written, except that seed 000's ``address`` is removed (the configured default
address serves it) and seed 002's points at the test's Prometheus. Rollout time runs on a
manual clock; Prometheus keeps real time, so the test waits (polling under a deadline) until
it holds the samples a measurement needs before moving the clock.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shiftd.assembly import Daemon
from shiftd.kube.resources import ANALYSIS_RUN, ANALYSIS_TEMPLATE
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon, weights
from tests.integration.harness import Cluster, test_cluster
from tests.support.prometheus import (
    IstioExporter,
    PrometheusServer,
    istio_prometheus,
    prometheus_binary,
)

pytestmark = pytest.mark.skipif(prometheus_binary() is None,
                                reason="Debian's prometheus is not installed")

Obj = dict[str, Any]
HEALTHY = {"200": 100}
FAILING = {"200": 35, "500": 65}  # seed 002's 65% errors


async def status(cluster: Cluster, name: str | None = None) -> Obj:
    return (await cluster.rollout(name)).get("status") or {}


async def runs(cluster: Cluster) -> list[Obj]:
    items, _ = await cluster.client.list(ANALYSIS_RUN, cluster.namespace)
    return sorted(items, key=lambda run: str(run["metadata"]["name"]))


async def install(cluster: Cluster, folder: str, *, address: str | None) -> Obj:
    """The seed's AnalysisTemplate and Rollout (with analysis), Services and VirtualService;
    the template's Prometheus ``address`` removed or pointed at the test's server."""
    created = await cluster.apply_example(folder, exclude_analysis=False)
    template = next(d for d in created if d["kind"] == "AnalysisTemplate")
    for metric in template["spec"]["metrics"]:
        if address is None:
            metric["provider"]["prometheus"].pop("address", None)
        else:
            metric["provider"]["prometheus"]["address"] = address
    replaced: Obj = await cluster.client.replace(
        ANALYSIS_TEMPLATE, cluster.namespace, template["metadata"]["name"], template)
    return replaced


async def measurements(cluster: Cluster) -> list[Obj]:
    (run,) = [r for r in await runs(cluster) if r["metadata"]["labels"]["rollout-type"]
              == "Background"]
    results = (run.get("status") or {}).get("metricResults") or []
    return list(results[0].get("measurements") or []) if results else []


@asynccontextmanager
async def analysed_canary(
    folder: str, canary_host: str, *, default_address: bool, traffic: dict[str, float],
    clock: ManualClock,
) -> AsyncIterator[tuple[Cluster, PrometheusServer, IstioExporter, Daemon]]:
    """The seed updated to a new image, paused at its first pause, background analysis on."""
    async with istio_prometheus() as (prometheus, exporter), test_cluster() as cluster, \
            cluster.kubelet():
        host = f"{canary_host}.{cluster.namespace}.svc.cluster.local"
        exporter.traffic(destination_service=host, per_scrape=traffic)
        await prometheus.wait_for_samples(
            f'istio_requests_total{{destination_service="{host}"}}', 3)
        await install(cluster, folder, address=None if default_address else prometheus.url)
        extra = {"analysis": {"prometheusAddress": prometheus.url}} if default_address else {}
        async with running_daemon(cluster, clock=clock, **extra) as daemon:
            async def healthy() -> bool:
                return (await status(cluster)).get("phase") == "Healthy"

            await cluster.wait_for(healthy, what="Healthy")
            rollout = await cluster.rollout()
            await cluster.set_image(rollout["metadata"]["name"], "argoproj/rollouts-demo:orange")

            async def paused() -> bool:
                current = await status(cluster)
                return current.get("phase") == "Paused" and current.get("currentStepIndex") == 1

            await cluster.wait_for(paused, what="paused at the first pause")
            yield cluster, prometheus, exporter, daemon


async def measured(cluster: Cluster, count: int) -> list[Obj]:
    async def enough() -> list[Obj] | None:
        taken = await measurements(cluster)
        return taken if len(taken) >= count else None

    result: list[Obj] = await cluster.wait_for(enough, timeout=20,
                                               what=f"{count} measurements")
    return result


async def test_seed_002_canary_with_65_percent_errors_is_rolled_back_by_its_analysis() -> None:
    clock = ManualClock()
    async with analysed_canary("myapp-analysis", "myapp-canary-svc", default_address=False,
                               traffic=FAILING, clock=clock) as (cluster, _, _, daemon):
        (run,) = await runs(cluster)
        assert run["metadata"]["labels"]["rollout-type"] == "Background"
        assert await measurements(cluster) == []  # initialDelay: 60s
        clock.advance(60)
        first = await measured(cluster, 1)
        assert first[0]["phase"] == "Failed"
        assert 0.3 < float(first[0]["value"].strip("[]")) < 0.4
        for count in (2, 3):
            clock.advance(20)
            assert [m["phase"] for m in await measured(cluster, count)] == ["Failed"] * count
        assert (await status(cluster)).get("phase") == "Paused"  # 3 failures == failureLimit
        clock.advance(20)

        async def degraded() -> Obj | None:
            current = await status(cluster)
            return current if current.get("phase") == "Degraded" else None

        aborted = await cluster.wait_for(degraded, what="aborted by analysis")
        assert aborted["abort"] is True
        assert 'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)' in \
            aborted["message"]
        assert weights(await cluster.vs()) == {"myapp-stable-svc": 100, "myapp-canary-svc": 0}
        (run,) = await runs(cluster)
        assert run["status"]["phase"] == "Failed"
        assert run["status"]["runSummary"]["failed"] == 1
        name, namespace = run["metadata"]["name"], cluster.namespace
        metrics = daemon.telemetry.metrics_text().decode()
        assert (f'analysis_run_info{{name="{name}",namespace="{namespace}",phase="Failed"}} 1.0'
                in metrics)
        assert (f'analysis_run_metric_phase{{metric="success-rate",name="{name}",'
                f'namespace="{namespace}",phase="Failed",type="prometheus"}} 1.0' in metrics)


async def test_seed_000_healthy_canary_is_promoted_with_its_analysis_passing() -> None:
    clock = ManualClock()
    async with analysed_canary("asm-host-split", "canary", default_address=True,
                               traffic=HEALTHY, clock=clock) as (cluster, _, _, _):
        await cluster.promote()
        clock.advance(60)  # initialDelay; the 20 s pauses pass on the way
        first = await measured(cluster, 1)
        assert first[0]["phase"] == "Successful"
        assert first[0]["value"] == "[1]"
        for _ in range(20):
            clock.advance(20)
            current = await status(cluster)
            if current.get("phase") == "Healthy":
                break
            await measured(cluster, len(await measurements(cluster)))

        async def promoted() -> Obj | None:
            current = await status(cluster)
            return current if current.get("phase") == "Healthy" else None

        final = await cluster.wait_for(promoted, what="promoted")
        assert final["stableRS"] == final["currentPodHash"]
        assert weights(await cluster.vs()) == {"istio-rollout-stable": 100,
                                               "istio-rollout-canary": 0}

        async def run_ended() -> Obj | None:
            (run,) = await runs(cluster)
            return run if (run.get("status") or {}).get("phase") == "Successful" else None

        run = await cluster.wait_for(run_ended, what="the background run ended")
        assert run["spec"]["terminate"] is True
        assert all(m["phase"] == "Successful"
                   for m in run["status"]["metricResults"][0]["measurements"])


async def test_prometheus_down_gives_errors_then_aborts_after_the_limit() -> None:
    clock = ManualClock()
    async with analysed_canary("myapp-analysis", "myapp-canary-svc", default_address=False,
                               traffic=HEALTHY, clock=clock) as (cluster, _, _, _):
        template = (await cluster.client.list(ANALYSIS_TEMPLATE, cluster.namespace))[0][0]
        assert template  # the run was built from it already; now break the run's address
        (run,) = await runs(cluster)
        broken = copy.deepcopy(run["spec"]["metrics"])
        broken[0]["provider"]["prometheus"]["address"] = "http://127.0.0.1:1"
        await cluster.client.patch(ANALYSIS_RUN, cluster.namespace, run["metadata"]["name"],
                                   {"spec": {"metrics": broken}}, patch_type="merge")
        clock.advance(60)
        errors = await measured(cluster, 1)
        assert errors[0]["phase"] == "Error"
        for count in range(2, 6):
            clock.advance(10)  # errors retry every 10 s
            await measured(cluster, count)

        async def degraded() -> Obj | None:
            current = await status(cluster)
            return current if current.get("phase") == "Degraded" else None

        aborted = await cluster.wait_for(degraded, what="aborted after consecutive errors")
        assert "consecutiveErrors (5) > consecutiveErrorLimit (4)" in aborted["message"]
        assert weights(await cluster.vs())["myapp-canary-svc"] == 0


async def test_an_inconclusive_analysis_pauses_the_rollout_for_a_human() -> None:
    clock = ManualClock()
    async with istio_prometheus() as (prometheus, exporter), test_cluster() as cluster, \
            cluster.kubelet():
        host = f"myapp-canary-svc.{cluster.namespace}.svc.cluster.local"
        exporter.traffic(destination_service=host, per_scrape={"200": 70, "500": 30})
        await prometheus.wait_for_samples(
            f'istio_requests_total{{destination_service="{host}"}}', 3)
        template = await install(cluster, "myapp-analysis", address=prometheus.url)
        metric = template["spec"]["metrics"][0]
        metric["failureCondition"] = "result[0] < 0.5"
        await cluster.client.replace(ANALYSIS_TEMPLATE, cluster.namespace,
                                     template["metadata"]["name"], template)
        async with running_daemon(cluster, clock=clock):
            async def healthy() -> bool:
                return (await status(cluster)).get("phase") == "Healthy"

            await cluster.wait_for(healthy, what="Healthy")
            await cluster.set_image("myapp", "argoproj/rollouts-demo:orange")

            async def at_first_pause() -> bool:
                current = await status(cluster)
                return current.get("phase") == "Paused" and current.get("currentStepIndex") == 1

            await cluster.wait_for(at_first_pause, what="paused at 20%")
            await cluster.promote()  # past the first, indefinite pause
            clock.advance(60)
            assert (await measured(cluster, 1))[0]["phase"] == "Inconclusive"

            async def held() -> Obj | None:
                current = await status(cluster)
                reasons = [c["reason"] for c in current.get("pauseConditions") or []]
                return current if "InconclusiveAnalysisRun" in reasons else None

            paused = await cluster.wait_for(held, what="paused by an inconclusive run")
            assert paused["phase"] == "Paused"
            step = paused["currentStepIndex"]
            clock.advance(600)
            assert (await status(cluster))["currentStepIndex"] == step


async def test_a_restarted_daemon_takes_no_measurement_twice() -> None:
    clock = ManualClock()
    async with istio_prometheus() as (prometheus, exporter), test_cluster() as cluster, \
            cluster.kubelet():
        host = f"myapp-canary-svc.{cluster.namespace}.svc.cluster.local"
        exporter.traffic(destination_service=host, per_scrape=HEALTHY)
        await prometheus.wait_for_samples(
            f'istio_requests_total{{destination_service="{host}"}}', 3)
        await install(cluster, "myapp-analysis", address=prometheus.url)
        async with running_daemon(cluster, clock=clock):
            async def healthy() -> bool:
                return (await status(cluster)).get("phase") == "Healthy"

            await cluster.wait_for(healthy, what="Healthy")
            await cluster.set_image("myapp", "argoproj/rollouts-demo:orange")

            async def paused() -> bool:
                return (await status(cluster)).get("currentStepIndex") == 1

            await cluster.wait_for(paused, what="paused")
            clock.advance(60)
            await measured(cluster, 1)
            clock.advance(20)
            before = await measured(cluster, 2)
        # the daemon is gone; ten seconds later a new one starts
        clock.advance(10)
        async with running_daemon(cluster, clock=clock):
            rollout_status = await status(cluster)
            assert rollout_status["currentStepIndex"] == 1
            assert len(await measurements(cluster)) == 2  # nothing repeated on start
            clock.advance(10)  # 20 s after the last one: the next is due
            after = await measured(cluster, 3)
            assert after[:2] == before[:2]
