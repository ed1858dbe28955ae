"""Metric providers for analysis, one module per provider behind a small Protocol.

``provider_for(metric, settings=...)`` picks the provider named under the metric's
``provider:`` (``prometheus``, ``skywalking`` or ``web``); its ``measure`` returns a
``Measurement`` or raises ``ProviderError`` (see :mod:`shiftd.providers.base`).
"""

from shiftd.providers.base import (
    Measurement,
    MetricProvider,
    ProviderError,
    ProviderSettings,
    UnsupportedProvider,
    provider_for,
)

__all__ = [
    "Measurement",
    "MetricProvider",
    "ProviderError",
    "ProviderSettings",
    "UnsupportedProvider",
    "provider_for",
]
