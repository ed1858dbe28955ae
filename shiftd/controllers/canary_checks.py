"""The I/O of a Canary's checks: webhooks called and metrics queried, turned into a
``Verdict`` for the pure state machine.

When the analysis starts, the ``pre-rollout`` webhooks run ("Pre-rollout check … passed", or
a halt). At every later interval the ``rollout`` webhooks (a hook without a type is one: the
load test) run first, then the metric checks in Flagger's order (``metric_checks``: builtin
and inline queries, then templates), stopping at the first that fails, as Flagger's
runAnalysis does. Queries go through Flagger's own Prometheus client rules (``run_query``):
the builtin Istio queries and inline ones to the configured Prometheus (or the Canary's
``metricsServer``), a MetricTemplate's to its own address with its headers. Each value is
recorded in ``flagger_canary_metric_analysis``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from shiftd.decide.flagger.actions import CanaryEvent
from shiftd.decide.flagger.metrics import (
    BUILTIN,
    DEFAULT_METRIC_INTERVAL,
    INLINE,
    TEMPLATE,
    MetricCheck,
    MetricTemplateError,
    QueryTemplateError,
    builtin_query,
    halt_message,
    metric_checks,
    parse_metric_template,
    query_failed_message,
    recorded_value,
    render_template_query,
    template_namespace,
)
from shiftd.decide.flagger.observed import Verdict
from shiftd.decide.flagger.routes import service_names
from shiftd.kube.resources import METRIC_TEMPLATE
from shiftd.model.flagger.canary import Canary
from shiftd.providers.base import ProviderError
from shiftd.providers.flagger_prometheus import NoValuesFound, run_query
from shiftd.providers.flagger_webhooks import call_webhook, webhook_payload
from shiftd.runtime.caches import Caches
from shiftd.runtime.flagger_telemetry import FlaggerMetrics

JsonObject = dict[str, Any]


class _Halt(Exception):
    """A check failed; the message is the Event."""


class CanaryChecks:
    def __init__(self, *, caches: Caches, metrics: FlaggerMetrics,
                 prometheus_address: str | None) -> None:
        self._caches = caches
        self._metrics = metrics
        self._prometheus_address = prometheus_address

    async def run(self, canary: Canary, which: str) -> Verdict:
        try:
            async with aiohttp.ClientSession() as session:
                if which == "pre-rollout":
                    return await self._hooks(session, canary, "pre-rollout")
                await self._hooks(session, canary, "rollout")
                raw = [metric.model_dump(by_alias=True, exclude_none=True)
                       for metric in canary.spec.analysis.metrics]
                for check in metric_checks(raw):
                    await self._check(session, canary, check, raw[check.index])
        except _Halt as halt:
            return Verdict(passed=False, events=(CanaryEvent(str(halt), warning=True),))
        return Verdict(passed=True)

    async def _hooks(self, session: aiohttp.ClientSession, canary: Canary,
                     hook_type: str) -> Verdict:
        passed = []
        for hook in canary.spec.analysis.webhooks:
            if (hook.get("type") or "rollout") != hook_type:
                continue
            payload = webhook_payload(
                name=canary.name, namespace=canary.namespace, phase=canary.phase,
                hook_type=hook_type, metadata=hook.get("metadata"),
                checksum=str(canary.status.get("lastAppliedSpec") or ""))
            result = await call_webhook(session, hook, payload)
            name = hook.get("name", "")
            if not result.ok:
                check = "pre-rollout" if hook_type == "pre-rollout" else "external"
                raise _Halt(f"Halt {canary.path} advancement {check} check {name} failed "
                            f"{result.error}")
            passed.append(CanaryEvent(f"Pre-rollout check {name} passed"))
        return Verdict(passed=True, events=tuple(passed) if hook_type == "pre-rollout" else ())

    def _request(self, canary: Canary, check: MetricCheck, metric: Mapping[str, Any]
                 ) -> JsonObject:
        """run_query's arguments for one check (address, query, template headers)."""
        interval = str(metric.get("interval") or DEFAULT_METRIC_INTERVAL)
        target = canary.spec.target_ref.name
        default = canary.spec.metrics_server or self._prometheus_address or ""
        if check.kind == BUILTIN:
            return {"address": default, "query": builtin_query(
                check.name, namespace=canary.namespace, target=target, interval=interval)}
        if check.kind == INLINE:
            return {"address": default, "query": str(metric["query"])}
        if check.kind != TEMPLATE:
            raise _Halt(query_failed_message(check, no_values=False))
        ref = metric.get("templateRef") or {}
        namespace = template_namespace(ref, canary.namespace)
        found = self._caches.get(METRIC_TEMPLATE, namespace, str(ref.get("name", "")))
        if found is None:
            raise _Halt(f"Metric template {ref.get('name')}.{namespace} error: "
                        f"metrictemplates.flagger.app \"{ref.get('name')}\" not found")
        template = parse_metric_template(found)
        if not template.provider.supported:
            raise _Halt(f"Metric template {template.name}.{namespace} error: provider "
                        f"{template.provider.type} is not supported by shiftd")
        query = render_template_query(
            template.query, namespace=canary.namespace, target=target, interval=interval,
            variables=metric.get("templateVariables") or {}, name=canary.name,
            service=service_names(canary)[0])
        return {"address": template.provider.address, "query": query,
                "headers": template.provider.headers,
                "insecure_skip_verify": template.provider.insecure_skip_verify}

    async def _check(self, session: aiohttp.ClientSession, canary: Canary,
                     check: MetricCheck, metric: Mapping[str, Any]) -> None:
        failed = {"target": canary.spec.target_ref.name, "namespace": canary.namespace,
                  "mesh_provider": canary.spec.provider or "istio"}
        try:
            value = await run_query(session, **self._request(canary, check, metric))
        except (QueryTemplateError, MetricTemplateError) as error:
            raise _Halt(query_failed_message(check, no_values=False, error=str(error),
                                             **failed)) from None
        except NoValuesFound:
            raise _Halt(query_failed_message(check, no_values=True, **failed)) from None
        except ProviderError as error:
            raise _Halt(query_failed_message(check, no_values=False, error=str(error),
                                             **failed)) from None
        self._metrics.set_analysis(target=canary.spec.target_ref.name,
                                   namespace=canary.namespace, metric=check.name,
                                   value=recorded_value(check.name, value))
        message = halt_message(canary=canary.name, namespace=canary.namespace,
                               metric=check.name, value=value,
                               threshold_range=metric.get("thresholdRange"),
                               threshold=float(metric.get("threshold") or 0.0))
        if message is not None:
            raise _Halt(message)
