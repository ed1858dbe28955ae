"""One measurement as the daemon takes it: provider, arguments (secrets included) and the
condition language together — SkyWalking's Apdex for seed 004 and a web metric with a secret."""

from __future__ import annotations

import base64
import copy
from typing import Any

from aiohttp import web

from shiftd.controllers.analysisrun import SECRET, AnalysisController
from shiftd.decide.analysis.expr import evaluate_condition
from shiftd.model.argo.analysis import parse_metric
from shiftd.providers import ProviderSettings
from shiftd.runtime.clock import ManualClock
from shiftd.runtime.telemetry import Telemetry
from tests.integration.harness import test_cluster
from tests.support.prometheus import serve
from tests.unit.test_providers_skywalking import CANARY, DEGRADED, apdex_metric, fake_oap

Obj = dict[str, Any]


def controller(cluster: Any, telemetry: Telemetry) -> AnalysisController:
    return AnalysisController(
        client=cluster.client, read=lambda kind, namespace, name: None, clock=ManualClock(),
        telemetry=telemetry, evaluate=evaluate_condition, provider_settings=ProviderSettings())


def run_with(args: list[Obj], namespace: str) -> Obj:
    return {"metadata": {"name": "run", "namespace": namespace}, "spec": {"args": args}}


async def test_seed_004_apdex_condition_passes_for_a_healthy_canary_and_fails_otherwise() -> None:
    telemetry = Telemetry()
    async with test_cluster() as cluster, fake_oap() as (url, _):
        raw = apdex_metric()
        raw["provider"]["skywalking"]["address"] = url
        metric = parse_metric(raw, path="spec.metrics[0]")
        analysis = controller(cluster, telemetry)
        healthy = await analysis.measure(run_with([{"name": "service-name", "value": CANARY}],
                                                  cluster.namespace), metric, raw)
        degraded = await analysis.measure(run_with(
            [{"name": "service-name", "value": DEGRADED}], cluster.namespace), metric, raw)
    assert healthy["phase"] == "Successful", healthy
    assert degraded["phase"] == "Failed", degraded
    assert "9120" in degraded["value"]
    assert b'shiftd_analysis_measurement_duration_seconds_count{provider="skywalking"} 2.0' \
        in telemetry.metrics_text()


async def test_a_secret_argument_is_read_when_measuring_and_never_stored() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"data": {"ok": True, "errors": 0}})

    app = web.Application()
    app.router.add_get("/health", handler)
    async with test_cluster() as cluster, serve(app) as url:
        await cluster.client.create(SECRET, cluster.namespace, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe"},
            "data": {"token": base64.b64encode(b"s3cret").decode()}})
        raw = {"name": "health", "successCondition": "result == true",
               "provider": {"web": {"url": f"{url}/health", "jsonPath": "{$.data.ok}",
                                    "headers": [{"key": "Authorization",
                                                 "value": "Bearer {{ args.token }}"}]}}}
        metric = parse_metric(raw, path="spec.metrics[0]")
        run = run_with([{"name": "token", "valueFrom": {"secretKeyRef": {
            "name": "probe", "key": "token"}}}], cluster.namespace)
        before = copy.deepcopy(run)
        measurement = await controller(cluster, Telemetry()).measure(run, metric, raw)
        missing = await controller(cluster, Telemetry()).measure(run_with(
            [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "t"}}}],
            cluster.namespace), metric, raw)
    assert measurement["phase"] == "Successful", measurement
    assert seen == ["Bearer s3cret"]
    assert run == before
    assert "s3cret" not in repr(measurement)
    assert missing["phase"] == "Error" and "secret 'nope'" in missing["message"]

