"""Telemetry: metric updates, label-set lifetimes, and the HTTP endpoints served on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import anyio
import pytest

from shiftd.runtime.telemetry import Telemetry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(telemetry: Telemetry, metric: str, /, **labels: str) -> float | None:
    return telemetry.registry.get_sample_value(metric, labels)


@asynccontextmanager
async def serving(telemetry: Telemetry) -> AsyncIterator[Callable[[str], str]]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda *, task_status: telemetry.serve(
                address="127.0.0.1", port=0, task_status=task_status
            )
        )
        yield lambda path: f"http://127.0.0.1:{port}{path}"
        tg.cancel_scope.cancel()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def observe_web(telemetry: Telemetry, *, phase: str = "Progressing", weight: float = 20) -> None:
    telemetry.observe_rollout(
        namespace="shop",
        name="web",
        phase=phase,
        strategy="canary",
        weight=weight,
        desired=5,
        available=4,
    )


def test_observing_a_rollout_exports_its_info_replicas_and_weight() -> None:
    telemetry = Telemetry()
    observe_web(telemetry)
    assert (
        sample(
            telemetry,
            "rollout_info",
            namespace="shop",
            name="web",
            phase="Progressing",
            strategy="canary",
        )
        == 1
    )
    assert sample(telemetry, "rollout_info_replicas_desired", namespace="shop", name="web") == 5
    assert sample(telemetry, "rollout_info_replicas_available", namespace="shop", name="web") == 4
    assert sample(telemetry, "shiftd_rollout_canary_weight", namespace="shop", name="web") == 20


def test_a_phase_change_replaces_the_info_series_instead_of_adding_one() -> None:
    telemetry = Telemetry()
    observe_web(telemetry, phase="Progressing")
    observe_web(telemetry, phase="Healthy", weight=0)
    text = telemetry.metrics_text().decode()
    assert 'phase="Progressing"' not in text
    assert (
        sample(
            telemetry,
            "rollout_info",
            namespace="shop",
            name="web",
            phase="Healthy",
            strategy="canary",
        )
        == 1
    )


def test_forgetting_a_rollout_removes_every_label_set_of_it() -> None:
    telemetry = Telemetry()
    observe_web(telemetry)
    telemetry.observe_rollout(
        namespace="shop",
        name="api",
        phase="Healthy",
        strategy="canary",
        weight=0,
        desired=2,
        available=2,
    )
    telemetry.observe_reconcile(namespace="shop", name="web", seconds=0.02)
    telemetry.count_reconcile_error("shop", "web")

    telemetry.forget_rollout("shop", "web")

    text = telemetry.metrics_text().decode()
    assert 'name="web"' not in text
    assert 'name="api"' in text


def test_forgetting_an_unknown_rollout_is_harmless() -> None:
    Telemetry().forget_rollout("nowhere", "nothing")


def test_time_reconcile_observes_the_duration_and_counts_errors_but_not_cancellation() -> None:
    clock = FakeClock()
    telemetry = Telemetry(clock=clock)
    with telemetry.time_reconcile("shop", "web"):
        clock.now += 0.3
    with pytest.raises(RuntimeError), telemetry.time_reconcile("shop", "web"):
        raise RuntimeError("boom")
    with pytest.raises(asyncio.CancelledError), telemetry.time_reconcile("shop", "web"):
        raise asyncio.CancelledError

    labels = {"namespace": "shop", "name": "web"}
    assert sample(telemetry, "rollout_reconcile_count", **labels) == 3
    assert sample(telemetry, "rollout_reconcile_sum", **labels) == pytest.approx(0.3)
    assert sample(telemetry, "rollout_reconcile_error_total", **labels) == 1


def test_requests_watch_restarts_queue_depth_and_build_info_are_counted() -> None:
    telemetry = Telemetry(version="9.9.9")
    telemetry.count_request("list", 200)
    telemetry.count_request("list", 200)
    telemetry.count_request("patch", 409)
    telemetry.count_watch_restart("Rollout")
    queued = [7]
    telemetry.report_queue_depth(lambda: queued[0])

    assert (
        sample(telemetry, "controller_clientset_k8s_request_total", verb="list", status_code="200")
        == 2
    )
    assert (
        sample(telemetry, "controller_clientset_k8s_request_total", verb="patch", status_code="409")
        == 1
    )
    assert sample(telemetry, "shiftd_watch_restarts_total", kind="Rollout") == 1
    assert sample(telemetry, "shiftd_event_queue_depth") == 7
    queued[0] = 3
    assert sample(telemetry, "shiftd_event_queue_depth") == 3
    text = telemetry.metrics_text().decode()
    assert 'shiftd_build_info{python="' in text
    assert 'version="9.9.9"' in text


def test_two_instances_do_not_share_metrics() -> None:
    first, second = Telemetry(), Telemetry()
    first.count_watch_restart("Rollout")
    assert sample(second, "shiftd_watch_restarts_total", kind="Rollout") is None


async def test_metrics_endpoint_serves_every_metric_in_prometheus_text_format() -> None:
    telemetry = Telemetry()
    observe_web(telemetry)
    telemetry.observe_reconcile(namespace="shop", name="web", seconds=0.01)
    telemetry.count_reconcile_error("shop", "web")
    telemetry.count_request("get", 200)
    telemetry.count_watch_restart("Rollout")
    async with serving(telemetry) as url:
        status, content_type, body = await get(url("/metrics"))
    assert status == 200
    assert content_type.startswith("text/plain")
    for name in (
        "rollout_info",
        "rollout_info_replicas_desired",
        "rollout_info_replicas_available",
        "shiftd_rollout_canary_weight",
        "rollout_reconcile_bucket",
        "rollout_reconcile_error_total",
        "controller_clientset_k8s_request_total",
        "shiftd_event_queue_depth",
        "shiftd_watch_restarts_total",
        "shiftd_build_info",
    ):
        assert f"\n{name}{{" in body or f"\n{name} " in body, name


async def test_readyz_is_503_until_marked_ready_and_again_when_unmarked() -> None:
    telemetry = Telemetry()
    async with serving(telemetry) as url:
        assert (await get(url("/readyz")))[0] == 503
        telemetry.set_ready(True)
        assert (await get(url("/readyz")))[0] == 200
        telemetry.set_ready(False)
        assert (await get(url("/readyz")))[0] == 503


async def test_healthz_is_200_while_the_heartbeat_is_fresh_and_503_when_stale() -> None:
    clock = FakeClock()
    # A long interval: after the first beat, only the fake clock moves.
    telemetry = Telemetry(clock=clock, heartbeat_interval=3600, stale_after=10)
    async with serving(telemetry) as url:
        assert (await get(url("/healthz")))[0] == 200
        clock.now += 11
        assert (await get(url("/healthz")))[0] == 503


async def test_serve_binds_only_the_configured_address() -> None:
    telemetry = Telemetry()
    async with serving(telemetry) as url:
        assert (await get(url("/healthz")))[0] == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(url("/healthz").replace("127.0.0.1", "127.0.0.2"))


async def test_unknown_paths_are_404() -> None:
    async with serving(Telemetry()) as url:
        assert (await get(url("/nope")))[0] == 404
