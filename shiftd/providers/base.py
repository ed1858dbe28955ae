"""The metric-provider seam: what the analysis layer asks of Prometheus, SkyWalking and web.

The analysis layer hands one AnalysisTemplate metric (a plain dict, as in the manifest, its
``{{args.x}}`` already filled in) to :func:`shiftd.providers.registry.provider_for`, then
awaits ``measure`` on the provider it gets back, once per measurement. This module holds only
the seam's values and Protocol; it imports no concrete provider (they import it).

A provider holds no connections between calls: every ``measure`` opens its own
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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "Clock",
    "Measurement",
    "MetricProvider",
    "ProviderError",
    "ProviderSettings",
    "UnsupportedProvider",
]

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime (``shiftd.runtime.clock.Clock.now`` fits)."""

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
    async def measure(self, metric: Mapping[str, Any]) -> Measurement:
        """Take one measurement of ``metric`` (one entry of an AnalysisTemplate's metrics,
        its arguments already substituted). Raises :class:`ProviderError`."""
        ...
