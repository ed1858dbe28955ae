"""The I/O of a Canary's checks: webhooks called and metrics measured, turned into a
``Verdict`` for the pure state machine.

When the analysis starts, the ``pre-rollout`` webhooks run ("Pre-rollout check … passed", or
a halt). At every later interval the ``rollout`` webhooks (a hook without a type is one: the
load test) run first, then each metric, in order, stopping at the first that fails, as
Flagger's runAnalysis does. A metric's query is the builtin Istio one, a MetricTemplate's
(rendered with ``templateVariables``, sent to the template's Prometheus) or the inline
``query``; other providers than Prometheus fail the check with a message saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import aiohttp

from shiftd.decide.flagger.actions import CanaryEvent
from shiftd.decide.flagger.metrics import (
    BUILTIN_METRICS,
    DEFAULT_METRIC_INTERVAL,
    MetricTemplateError,
    QueryTemplateError,
    builtin_query,
    collapse_whitespace,
    halt_message,
    parse_metric_template,
    render_template_query,
    template_namespace,
)
from shiftd.decide.flagger.observed import Verdict
from shiftd.decide.flagger.routes import service_names
from shiftd.kube.resources import METRIC_TEMPLATE
from shiftd.model.flagger.canary import Canary, CanaryMetric
from shiftd.providers.base import ProviderError, ProviderSettings
from shiftd.providers.flagger_webhooks import call_webhook, webhook_payload
from shiftd.providers.prometheus import PrometheusProvider
from shiftd.runtime.caches import Caches
from shiftd.runtime.clock import Clock

JsonObject = dict[str, Any]
_NO_VALUES = "no values found"


class _Halt(Exception):
    """A check failed; the message is the Event."""


class CanaryChecks:
    def __init__(self, *, caches: Caches, clock: Clock, settings: ProviderSettings) -> None:
        self._caches = caches
        self._clock = clock
        self._settings = settings

    async def run(self, canary: Canary, which: str) -> Verdict:
        try:
            async with aiohttp.ClientSession() as session:
                if which == "pre-rollout":
                    return await self._hooks(session, canary, "pre-rollout")
                await self._hooks(session, canary, "rollout")
            for metric in canary.spec.analysis.metrics:
                await self._metric(canary, metric)
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

    def _query(self, canary: Canary, metric: CanaryMetric) -> tuple[str, str | None]:
        """(query, Prometheus address or None for the default)."""
        interval = metric.interval or DEFAULT_METRIC_INTERVAL
        target = canary.spec.target_ref.name
        try:
            if metric.template_ref is not None:
                ref = metric.template_ref.model_dump(exclude_none=True)
                found = self._caches.get(METRIC_TEMPLATE,
                                         template_namespace(ref, canary.namespace),
                                         metric.template_ref.name)
                if found is None:
                    raise _Halt(f"Metric template {metric.template_ref.name}."
                                f"{template_namespace(ref, canary.namespace)} error: not found")
                template = parse_metric_template(found)
                if not template.provider.supported:
                    raise _Halt(f"Metric template {template.name}.{template.namespace} error: "
                                f"provider {template.provider.type} is not supported")
                query = render_template_query(
                    template.query, namespace=canary.namespace, target=target,
                    interval=interval, variables=metric.template_variables, name=canary.name,
                    service=service_names(canary)[0])
                return collapse_whitespace(query), template.provider.address
            if metric.query:
                return collapse_whitespace(metric.query), None
            if metric.name in BUILTIN_METRICS:
                return builtin_query(metric.name, namespace=canary.namespace, target=target,
                                     interval=interval), None
        except (QueryTemplateError, MetricTemplateError) as error:
            raise _Halt(f"Metric query failed for {metric.name}: {error}") from None
        raise _Halt(f"Metric query failed for {metric.name}: no query, builtin metric or "
                    f"templateRef")

    async def _metric(self, canary: Canary, metric: CanaryMetric) -> None:
        query, address = self._query(canary, metric)
        spec: JsonObject = {"query": query}
        address = address or canary.spec.metrics_server
        if address:
            spec["address"] = address
        provider = PrometheusProvider(settings=self._settings, now=self._clock.now)
        try:
            measured = await provider.measure({"name": metric.name,
                                               "provider": {"prometheus": spec}})
            value = _first(measured.value)
        except ProviderError as error:
            raise _Halt(f"Metric query failed for {metric.name}: {error}") from None
        if value is None:
            raise _Halt(f"Halt advancement no values found for prometheus metric "
                        f"{metric.name} probably {canary.spec.target_ref.name}."
                        f"{canary.namespace} is not receiving traffic: {_NO_VALUES}")
        message = halt_message(canary=canary.name, namespace=canary.namespace,
                               metric=metric.name, value=value,
                               threshold_range=_bounds(metric.threshold_range),
                               threshold=metric.threshold or 0.0)
        if message is not None:
            raise _Halt(message)


def _bounds(threshold_range: Mapping[str, float] | None) -> dict[str, float] | None:
    return None if threshold_range is None else dict(threshold_range)


def _first(value: Any) -> float | None:
    """Flagger's Prometheus client: the first sample; none (or NaN) is "no values found"."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)
