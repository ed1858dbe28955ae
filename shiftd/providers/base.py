"""The metric-provider seam: what the analysis layer asks of Prometheus, SkyWalking and web.

The analysis layer hands one AnalysisTemplate metric (a plain dict, as in the manifest) to
:func:`provider_for`, then awaits ``measure`` on the provider it gets back, once per
measurement. A provider holds no connections between calls: every ``measure`` opens its own
HTTP session under its own deadline and closes it, so providers need no lifecycle and any
``measure`` can be cancelled at any await.

A measurement either returns a :class:`Measurement` or raises :class:`ProviderError`; the
analysis layer records either one as Argo does (``value``/``phase`` Error with the message).
``transient`` tells it whether trying again soon may help (timeouts, refused connections,
5xx, 429) or not (4xx, a query the server rejects, a response of the wrong shape, a spec
shiftd cannot use). Argo itself counts both as errors against ``consecutiveErrorLimit``.

Exceptions::

    ProviderError                 message, transient
     └── UnsupportedProvider      a provider Argo has but shiftd does not (transient=False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "SUPPORTED_PROVIDERS",
    "Clock",
    "Measurement",
    "MetricProvider",
    "ProviderError",
    "ProviderSettings",
    "UnsupportedProvider",
    "provider_for",
    "provider_name",
    "substitute_args",
]

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime (``shiftd.runtime.clock.Clock.now`` fits)."""

# The keys Argo accepts under a metric's ``provider:``, as its CRD spells them.
_ARGO_PROVIDERS = (
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
SUPPORTED_PROVIDERS = ("prometheus", "skywalking", "web")


class ProviderError(Exception):
    """A measurement could not be taken; ``transient`` says whether a retry may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, transient={self.transient})"


class UnsupportedProvider(ProviderError):
    """The metric names a provider shiftd does not implement (or none at all)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


@dataclass(frozen=True)
class Measurement:
    """One successful measurement.

    ``value`` is what success and failure conditions see as ``result`` (a Prometheus vector is
    a list of floats, a scalar a float; SkyWalking gives the GraphQL ``data`` object; web the
    value at ``jsonPath``). ``raw`` is the text Argo stores in
    ``status.metricResults[].measurements[].value`` (``"[0.95]"``, ``"[]"``, ``"NaN"``).
    ``metadata`` holds string facts worth showing: ``ResolvedPrometheusQuery`` (Argo puts it on
    the metric result) and ``warnings`` (Argo puts it on the measurement).
    """

    value: Any
    raw: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSettings:
    """Provider defaults from shiftd's configuration."""

    # Used when a Prometheus metric has no ``address`` (Argo reads
    # ARGO_ROLLOUTS_PROMETHEUS_ADDRESS for this).
    prometheus_default_address: str | None = None
    # Deadline of one Prometheus or SkyWalking measurement when the metric sets none (Argo:
    # 30 s). Web metrics keep Argo's own default of 10 s.
    timeout_seconds: float = 30.0


class MetricProvider(Protocol):
    async def measure(
        self, metric: Mapping[str, Any], *, variables: Mapping[str, str] | None = None
    ) -> Measurement:
        """Take one measurement of ``metric`` (one entry of an AnalysisTemplate's metrics).

        ``variables`` are the run's arguments by name; when given, ``{{args.name}}``
        placeholders still left in the provider's strings are filled in first (the caller
        may already have substituted them). Raises :class:`ProviderError`.
        """
        ...


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
    # Imported here because each provider module imports this one for the shared types.
    from shiftd.providers.prometheus import PrometheusProvider  # noqa: PLC0415
    from shiftd.providers.skywalking import SkyWalkingProvider  # noqa: PLC0415
    from shiftd.providers.web import WebProvider  # noqa: PLC0415

    clock = now if now is not None else _utc_now
    key = provider_name(metric)
    if key == "prometheus":
        return PrometheusProvider(settings=settings, now=clock)
    if key == "skywalking":
        return SkyWalkingProvider(settings=settings, now=clock)
    if key == "web":
        return WebProvider(settings=settings)
    name = metric.get("name", "<unnamed>")
    supported = ", ".join(SUPPORTED_PROVIDERS)
    if key in _ARGO_PROVIDERS:
        raise UnsupportedProvider(
            f"metric {name}: the {key} provider is not supported by shiftd yet "
            f"(supported: {supported})"
        )
    raise UnsupportedProvider(f"metric {name}: unknown provider {key!r} (supported: {supported})")


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Argo's argument placeholder; spaces are allowed inside the braces.
_ARG_PLACEHOLDER = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+?)\s*\}\}")


def substitute_args(value: Any, variables: Mapping[str, str] | None) -> Any:
    """``value`` with every ``{{args.name}}`` in its strings replaced from ``variables``.

    Walks dicts and lists; returns ``value`` itself when ``variables`` is None. A placeholder
    naming an argument not in ``variables`` raises a permanent :class:`ProviderError`.
    """
    if variables is None:
        return value
    if isinstance(value, str):
        return _ARG_PLACEHOLDER.sub(lambda match: _lookup(match, variables), value)
    if isinstance(value, Mapping):
        return {key: substitute_args(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_args(item, variables) for item in value]
    return value


def _lookup(match: re.Match[str], variables: Mapping[str, str]) -> str:
    name = match.group(1)
    if name not in variables:
        raise ProviderError(f"argument {name!r} has no value", transient=False)
    return variables[name]
