"""Which provider measures a metric: the key under its ``provider:`` mapped to a factory.

The one place that knows every concrete provider. ``provider_for`` is what the analysis task
and ``shiftctl analyze`` call; :mod:`shiftd.providers.base` (the seam) imports none of the
providers, so the providers can import the seam without a circle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shiftd.providers.base import Clock, MetricProvider, ProviderSettings, UnsupportedProvider
from shiftd.providers.prometheus import PrometheusProvider
from shiftd.providers.skywalking import SkyWalkingProvider
from shiftd.providers.web import WebProvider

__all__ = [
    "ARGO_PROVIDERS",
    "FACTORIES",
    "REPLAYABLE_PROVIDERS",
    "SUPPORTED_PROVIDERS",
    "provider_as_of",
    "provider_for",
    "provider_name",
]

Factory = Callable[[ProviderSettings, Clock], MetricProvider]

FACTORIES: Mapping[str, Factory] = {
    "prometheus": lambda settings, now: PrometheusProvider(settings=settings, now=now),
    "skywalking": lambda settings, now: SkyWalkingProvider(settings=settings, now=now),
    "web": lambda settings, now: WebProvider(settings=settings),
}
"""Each supported key under ``provider:``, with how to build its provider."""

SUPPORTED_PROVIDERS = tuple(FACTORIES)

REPLAYABLE_PROVIDERS = ("prometheus",)
"""The providers that can answer as of a past moment (``shiftctl analyze --from``)."""

# The keys Argo accepts under a metric's ``provider:``, as its CRD spells them.
ARGO_PROVIDERS = (
    "prometheus",
    "kayenta",
    "web",
    "datadog",
    "wavefront",
    "newRelic",
    "job",
    "cloudWatch",
    "graphite",
    "influxdb",
    "skywalking",
    "plugin",
)


def provider_name(metric: Mapping[str, Any]) -> str:
    """The one key under ``metric["provider"]``; raises :class:`UnsupportedProvider`."""
    name = metric.get("name", "<unnamed>")
    provider = metric.get("provider")
    if not isinstance(provider, Mapping) or not provider:
        raise UnsupportedProvider(f"metric {name}: provider must name exactly one provider")
    keys = [key for key, value in provider.items() if value is not None]
    if len(keys) != 1:
        listed = ", ".join(sorted(map(str, keys))) or "none"
        raise UnsupportedProvider(
            f"metric {name}: provider must name exactly one provider, got {listed}"
        )
    return str(keys[0])


def provider_for(
    metric: Mapping[str, Any],
    *,
    settings: ProviderSettings,
    now: Clock | None = None,
) -> MetricProvider:
    """The provider that measures ``metric``, chosen by the key under its ``provider:``.

    ``now`` is the clock SkyWalking durations and Prometheus range queries are computed from
    (the wall clock, UTC, by default). Raises :class:`UnsupportedProvider` for providers Argo
    has and shiftd does not (datadog, newRelic, job, ...) and for unknown keys.
    """
    key = provider_name(metric)
    factory = FACTORIES.get(key)
    if factory is not None:
        return factory(settings, now if now is not None else _utc_now)
    name = metric.get("name", "<unnamed>")
    supported = ", ".join(SUPPORTED_PROVIDERS)
    if key in ARGO_PROVIDERS:
        raise UnsupportedProvider(
            f"metric {name}: the {key} provider is not supported by shiftd yet "
            f"(supported: {supported})"
        )
    raise UnsupportedProvider(f"metric {name}: unknown provider {key!r} (supported: {supported})")


def provider_as_of(
    metric: Mapping[str, Any], *, settings: ProviderSettings, now: Clock
) -> MetricProvider:
    """The provider that measures ``metric`` as of ``now()`` rather than the server's present
    (a backtest replays the past this way). Only Prometheus can: raises
    :class:`UnsupportedProvider` for the others."""
    key = provider_name(metric)
    if key not in REPLAYABLE_PROVIDERS:
        raise UnsupportedProvider(
            f"metric {metric.get('name', '<unnamed>')}: the {key} provider cannot measure "
            f"the past (replayable: {', '.join(REPLAYABLE_PROVIDERS)})")
    return PrometheusProvider(settings=settings, now=now, at_now=True)


def _utc_now() -> datetime:
    return datetime.now(UTC)
