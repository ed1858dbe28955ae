"""A Canary's checks against a stand-in Prometheus and webhook receiver: which query is sent
where (builtin, inline, MetricTemplate with its variables and address), Flagger's Events for
a halt, and the gates' answers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from shiftd.controllers.canary_checks import CanaryChecks
from shiftd.kube.resources import METRIC_TEMPLATE, ResourceKind
from shiftd.model.flagger.canary import Canary, parse_canary
from shiftd.runtime.flagger_telemetry import FlaggerMetrics
from tests.support.prometheus import serve

Obj = dict[str, Any]


class FakePrometheus:
    """Answers every instant query with ``value``; remembers the queries."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.queries: list[str] = []
        self.authorizations: list[str | None] = []

    async def query(self, request: web.Request) -> web.Response:
        self.queries.append(request.query["query"])
        self.authorizations.append(request.headers.get("Authorization"))
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [0, str(self.value)]}]}})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/query", self.query)
        app.router.add_post("/gate", _refuse)
        app.router.add_post("/ok", _accept)
        return app


async def _refuse(request: web.Request) -> web.Response:
    return web.Response(status=403)


async def _accept(request: web.Request) -> web.Response:
    return web.Response(status=200)


class Templates:
    def __init__(self, *objects: Obj) -> None:
        self._objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}

    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> Obj | None:
        assert kind is METRIC_TEMPLATE
        return self._objects.get((namespace or "", name))


def canary(metrics: list[Obj], webhooks: list[Obj] | None = None) -> Canary:
    return parse_canary({"metadata": {"name": "podinfo", "namespace": "test", "uid": "u"},
                         "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo"},
                                  "service": {"port": 9898},
                                  "analysis": {"metrics": metrics,
                                               "webhooks": webhooks or []}}})


async def read_secret(namespace: str, name: str) -> Obj:
    assert (namespace, name) == ("test", "prom-auth")
    return {"data": {"token": base64.b64encode(b"s3cret").decode()}}


@asynccontextmanager
async def checks(value: float, *templates: Obj) -> AsyncIterator[tuple[CanaryChecks,
                                                                       FakePrometheus, str]]:
    prometheus = FakePrometheus(value)
    async with serve(prometheus.app()) as url:
        yield CanaryChecks(caches=Templates(*templates),  # type: ignore[arg-type]
                           metrics=FlaggerMetrics(CollectorRegistry()),
                           prometheus_address=url, read_secret=read_secret), prometheus, url


async def test_a_template_query_is_rendered_with_its_variables_and_sent_to_its_address() -> None:
    template = {"metadata": {"name": "errors", "namespace": "test"}, "spec": {
        "provider": {"type": "prometheus", "address": "http://127.0.0.1:1"},
        "query": 'sum(rate(x{ns="{{ namespace }}",app="{{ target }}",'
                 'code="{{ variables.code }}"}[{{ interval }}]))'}}
    async with checks(3.0, template) as (subject, prometheus, url):
        template["spec"]["provider"]["address"] = url
        verdict = await subject.run(canary([{
            "name": "errors", "interval": "2m", "thresholdRange": {"max": 5},
            "templateRef": {"name": "errors"}, "templateVariables": {"code": "500"}}]),
            "analysis")
    assert verdict.passed
    assert prometheus.queries == ['sum(rate(x{ns="test",app="podinfo",code="500"}[2m]))']


async def test_a_value_outside_the_threshold_halts_with_flaggers_event() -> None:
    async with checks(97.5) as (subject, prometheus, _):
        verdict = await subject.run(canary([{"name": "request-success-rate",
                                             "thresholdRange": {"min": 99}}]), "analysis")
    assert not verdict.passed
    assert [e.message for e in verdict.events] == [
        "Halt podinfo.test advancement success rate 97.50% < 99%"]
    assert 'destination_workload=~"podinfo"' in prometheus.queries[0]


async def test_a_missing_template_fails_the_check() -> None:
    async with checks(1.0) as (subject, _, _):
        verdict = await subject.run(canary([{"name": "x", "templateRef": {"name": "gone"}}]),
                                    "analysis")
    assert not verdict.passed and "gone" in verdict.events[0].message


async def test_a_refusing_confirm_hook_names_itself_and_an_answering_rollback_hook_asks() -> None:
    async with checks(1.0) as (subject, _, url):
        gate = canary([], [{"name": "approval", "type": "confirm-promotion",
                            "url": url + "/gate"}])
        refused = await subject.run(gate, "confirm-promotion")
        manual = canary([], [{"name": "abort", "type": "rollback", "url": url + "/ok"}])
        asked = await subject.run(manual, "rollback")
    assert (refused.passed, refused.hook) == (False, "approval")
    assert (asked.passed, asked.hook) == (True, "abort")


async def test_a_template_secret_ref_sends_its_bearer_token() -> None:
    template = {"metadata": {"name": "guarded", "namespace": "test"}, "spec": {
        "provider": {"type": "prometheus", "address": "", "secretRef": {"name": "prom-auth"}},
        "query": "vector(1)"}}
    async with checks(1.0, template) as (subject, prometheus, url):
        template["spec"]["provider"]["address"] = url
        verdict = await subject.run(canary([{"name": "guarded", "thresholdRange": {"min": 1},
                                             "templateRef": {"name": "guarded"}}]), "analysis")
    assert verdict.passed
    assert prometheus.authorizations == ["Bearer s3cret"]


async def test_post_rollout_hooks_are_called_in_order_and_stop_at_the_first_failure() -> None:
    async with checks(1.0) as (subject, _, url):
        ended = canary([], [
            {"name": "notify", "type": "post-rollout", "url": url + "/ok"},
            {"name": "gate", "type": "confirm-rollout", "url": url + "/gate"},
            {"name": "cleanup", "type": "post-rollout", "url": url + "/gate"},
            {"name": "never", "type": "post-rollout", "url": url + "/ok"}])
        events = await subject.post_rollout(ended, "Succeeded")
    assert [(e.message.split(" failed")[0], e.warning) for e in events] == [
        ("Post-rollout check notify passed", False), ("Post-rollout hook cleanup", True)]
