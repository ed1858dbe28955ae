"""A gauge and a histogram whose series per label set cost a few hundred bytes.

``prometheus_client``'s ``Histogram`` gives every label set a child object holding a value
object (with its own lock) per bucket, plus the sum and the creation time: about 4 KiB per
series. ``rollout_reconcile`` has a series per Rollout, so at 10,000 Rollouts that alone took
~40 MiB. This collector exposes the same metric family (name, help, labels, buckets:
``_bucket``, ``_count`` and ``_sum`` as the client writes them; no ``_created`` sample) from a
dictionary of ``array('d')`` rows: the bucket counts, then the sum (~200 bytes a series).
``LabelledGauge`` does the same for a gauge (a float per label set, not a child object with a
lock: ~1 KiB less per series; the Rollout's four gauges have a series per Rollout too).
Observations and collection happen on the event loop's thread, so no lock is needed.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric


class LabelledGauge:
    """``set(*labels, value=...)`` and ``remove(*labels)``, registered in ``registry``."""

    def __init__(self, name: str, documentation: str, *, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def set(self, *labels: str, value: float) -> None:
        self._series[labels] = float(value)

    def remove(self, *labels: str) -> None:
        self._series.pop(labels, None)

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, value in self._series.items():
            family.add_metric(list(labels), value)
        yield family


class LabelledHistogram:
    """``observe(*labels, seconds)`` and ``remove(*labels)``, registered in ``registry``."""

    def __init__(self, name: str, documentation: str, *, labelnames: Sequence[str],
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(buckets))  # finite bounds; their ``le`` as the client writes
        self._bucket_names = (*(repr(float(bound)) for bound in self._bounds), "+Inf")
        # label values -> per-bucket counts (not cumulative), the +Inf bucket's, then the sum
        self._series: dict[tuple[str, ...], array[float]] = {}
        registry.register(self)

    def observe(self, *labels: str, value: float) -> None:
        row = self._series.get(labels)
        if row is None:
            row = self._series[labels] = array("d", bytes(8 * (len(self._bounds) + 2)))
        row[bisect.bisect_left(self._bounds, value)] += 1
        row[-1] += value

    def remove(self, *labels: str) -> None:
        self._series.pop(labels, None)

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation,
                                      labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation,
                                       labels=self._labelnames)
        for labels, row in self._series.items():
            cumulative, buckets = 0.0, []
            for bucket_name, count in zip(self._bucket_names, row[:-1], strict=True):
                cumulative += count
                buckets.append((bucket_name, cumulative))
            family.add_metric(list(labels), buckets, row[-1])
        yield family
