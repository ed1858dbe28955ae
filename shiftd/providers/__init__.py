"""Metric providers for analysis, one module per provider behind a small Protocol.

``provider_for(metric, settings=...)`` (:mod:`shiftd.providers.registry`) picks the provider
named under the metric's ``provider:`` (``prometheus``, ``skywalking`` or ``web``); its
``measure`` returns a ``Measurement`` or raises ``ProviderError`` (see
:mod:`shiftd.providers.base`, which imports no provider).
"""

from shiftd.providers.base import (
    Measurement,
    MetricProvider,
    ProviderError,
    ProviderSettings,
    UnsupportedProvider,
)
from shiftd.providers.registry import provider_for

__all__ = [
    "Measurement",
    "MetricProvider",
    "ProviderError",
    "ProviderSettings",
    "UnsupportedProvider",
    "provider_for",
]
