"""The I/O of a Canary's checks: webhooks called and metrics queried, turned into a
``Verdict`` for the pure state machine; the gates' webhooks (confirm-rollout,
confirm-traffic-increase, confirm-promotion, rollback) answered the same way; post-rollout
hooks once a Canary ends, and every Event posted to the ``event`` hooks.

When the analysis starts, the ``pre-rollout`` webhooks run ("Pre-rollout check … passed", or
a halt). At every later interval the ``rollout`` webhooks (a hook without a type is one: the
load test) run first, then the metric checks in Flagger's order (``metric_checks``: builtin
and inline queries, then templates), stopping at the first that fails, as Flagger's
runAnalysis does. Queries go through Flagger's own Prometheus client rules (``run_query``):
the builtin Istio queries and inline ones to the configured Prometheus (or the Canary's
``metricsServer``), a MetricTemplate's to its own address with its headers and the bearer
token or basic auth of its ``secretRef``. Each value is recorded in
``flagger_canary_metric_analysis``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from shiftd.decide.flagger.actions import CanaryEvent
from shiftd.decide.flagger.metrics import (
    BUILTIN,
    BUILTIN_METRICS,
    DEFAULT_METRIC_INTERVAL,
    INLINE,
    TEMPLATE,
    MetricCheck,
    MetricTemplate,
    MetricTemplateError,
    QueryTemplateError,
    builtin_query,
    halt_message,
    metric_checks,
    parse_metric_template,
    prometheus_credentials,
    query_failed_message,
    recorded_value,
    render_template_query,
    template_namespace,
)
from shiftd.decide.flagger.observed import Verdict
from shiftd.decide.flagger.routes import service_names
from shiftd.kube.errors import KubeError
from shiftd.kube.resources import METRIC_TEMPLATE
from shiftd.model.flagger.canary import Canary
from shiftd.providers.base import ProviderError
from shiftd.providers.flagger_prometheus import NoValuesFound, is_online, run_query
from shiftd.providers.flagger_webhooks import call_webhook, event_payload, webhook_payload
from shiftd.runtime.caches import Caches
from shiftd.runtime.flagger_telemetry import FlaggerMetrics

logger = logging.getLogger(__name__)
JsonObject = dict[str, Any]


class _Halt(Exception):
    """A check failed; the message is the Event."""


class CanaryChecks:
    def __init__(self, *, caches: Caches, metrics: FlaggerMetrics,
                 prometheus_address: str | None,
                 read_secret: Callable[[str, str], Awaitable[JsonObject]] | None = None
                 ) -> None:
        self._caches = caches
        self._metrics = metrics
        self._prometheus_address = prometheus_address
        self._read_secret = read_secret  # (namespace, name) -> the Secret

    async def run(self, canary: Canary, which: str) -> Verdict:
        try:
            async with aiohttp.ClientSession() as session:
                if which == "pre-rollout":
                    return await self._hooks(session, canary, "pre-rollout")
                if which != "analysis":
                    return await self._gate(session, canary, which)
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
            result = await call_webhook(session, hook, self._payload(canary, hook, hook_type))
            name = hook.get("name", "")
            if not result.ok:
                check = "pre-rollout" if hook_type == "pre-rollout" else "external"
                raise _Halt(f"Halt {canary.path} advancement {check} check {name} failed "
                            f"{result.error}")
            passed.append(CanaryEvent(f"Pre-rollout check {name} passed"))
        return Verdict(passed=True, events=tuple(passed) if hook_type == "pre-rollout" else ())

    async def _gate(self, session: aiohttp.ClientSession, canary: Canary,
                    hook_type: str) -> Verdict:
        """A confirm gate passes when every hook of its type answers OK (the first refusal
        names the hook); the rollback gate "passes" (asks for a rollback) when any does."""
        last = ""
        for hook in canary.spec.analysis.webhooks:
            if hook.get("type") != hook_type:
                continue
            last = str(hook.get("name", ""))
            result = await call_webhook(session, hook, self._payload(canary, hook, hook_type))
            if hook_type == "rollback" and result.ok:
                return Verdict(passed=True, hook=last)
            if hook_type != "rollback" and not result.ok:
                return Verdict(passed=False, hook=last)
        return Verdict(passed=hook_type != "rollback", hook=last)

    def _payload(self, canary: Canary, hook: Mapping[str, Any], hook_type: str,
                 phase: str | None = None) -> JsonObject:
        return webhook_payload(
            name=canary.name, namespace=canary.namespace, phase=phase or canary.phase,
            hook_type=hook_type, metadata=hook.get("metadata"),
            checksum=str(canary.status.get("lastAppliedSpec") or ""))

    async def providers_available(self, canary: Canary) -> CanaryEvent:
        """Flagger's checkMetricProviderAvailability, as the Event it records."""
        default = canary.spec.metrics_server or self._prometheus_address or ""
        async with aiohttp.ClientSession() as session:
            for metric in canary.spec.analysis.metrics:
                try:
                    if metric.template_ref is None:
                        if metric.name in BUILTIN_METRICS:
                            await is_online(session, address=default)
                        continue
                    namespace = metric.template_ref.namespace or canary.namespace
                    found = self._caches.get(METRIC_TEMPLATE, namespace,
                                             metric.template_ref.name)
                    if found is None:
                        return CanaryEvent(
                            f"Error checking metric providers: metric template "
                            f"{metric.template_ref.name}.{namespace} not found", warning=True)
                    template = parse_metric_template(found)
                    await is_online(session, address=template.provider.address,
                                    headers=template.provider.headers)
                except (ProviderError, MetricTemplateError) as error:
                    return CanaryEvent(f"Error checking metric providers: {error}",
                                       warning=True)
        return CanaryEvent("all the metrics providers are available!")

    async def post_rollout(self, canary: Canary, phase: str) -> tuple[CanaryEvent, ...]:
        """The post-rollout hooks once a Canary Succeeded or Failed, and their Events."""
        events: list[CanaryEvent] = []
        async with aiohttp.ClientSession() as session:
            for hook in canary.spec.analysis.webhooks:
                if hook.get("type") != "post-rollout":
                    continue
                name = hook.get("name", "")
                result = await call_webhook(session, hook, self._payload(
                    canary, hook, "post-rollout", phase))
                if not result.ok:
                    events.append(CanaryEvent(f"Post-rollout hook {name} failed {result.error}",
                                              warning=True))
                    break
                events.append(CanaryEvent(f"Post-rollout check {name} passed"))
        return tuple(events)

    async def notify(self, canary: Canary, events: tuple[CanaryEvent, ...], *,
                     timestamp_ms: int) -> None:
        """Each Event posted to the Canary's ``event`` hooks (failures only logged)."""
        hooks = [h for h in canary.spec.analysis.webhooks if h.get("type") == "event"]
        if not hooks or not events:
            return
        async with aiohttp.ClientSession() as session:
            for event in events:
                for hook in hooks:
                    payload = event_payload(
                        name=canary.name, namespace=canary.namespace, phase=canary.phase,
                        checksum=str(canary.status.get("lastAppliedSpec") or ""),
                        metadata=hook.get("metadata"), message=event.message,
                        event_type="Warning" if event.warning else "Normal",
                        timestamp_ms=timestamp_ms)
                    result = await call_webhook(session, hook, payload)
                    if not result.ok:
                        logger.info("event webhook %s failed: %s", hook.get("name"),
                                    result.error)

    async def _request(self, canary: Canary, check: MetricCheck, metric: Mapping[str, Any]
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
                "authorization": await self._credentials(template),
                "insecure_skip_verify": template.provider.insecure_skip_verify}

    async def _credentials(self, template: MetricTemplate) -> dict[str, str]:
        """The Authorization header from the template's ``secretRef`` (in its namespace)."""
        if not template.provider.secret_ref:
            return {}
        if self._read_secret is None:
            raise MetricTemplateError("secretRef given but no Secret can be read")
        try:
            secret = await self._read_secret(template.namespace, template.provider.secret_ref)
        except KubeError as error:
            raise MetricTemplateError(f"secret {template.provider.secret_ref}."
                                      f"{template.namespace} get query error: {error}") from None
        data = {key: base64.b64decode(value)
                for key, value in (secret.get("data") or {}).items()}
        return prometheus_credentials(
            data, provider_type=template.provider.effective_type).headers()

    async def _check(self, session: aiohttp.ClientSession, canary: Canary,
                     check: MetricCheck, metric: Mapping[str, Any]) -> None:
        failed = {"target": canary.spec.target_ref.name, "namespace": canary.namespace,
                  "mesh_provider": canary.spec.provider or "istio"}
        try:
            value = await run_query(session, **await self._request(canary, check, metric))
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
