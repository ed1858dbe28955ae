"""Flagger's own Prometheus metrics, with Flagger's names, help texts and labels.

A Flagger user's dashboards and alerts read these; shiftd keeps them exactly, registered on
the daemon's registry (``Telemetry.registry``, passed in: nothing here is global):

====================================  =========  ==============================================
``flagger_info``                      gauge      ``version``, ``mesh_provider``; always 1
``flagger_canary_status``             gauge      ``name``, ``namespace``: 0 running
                                                 (Progressing), 2 Failed, 1 any other phase
``flagger_canary_weight``             gauge      ``workload`` (``<target>-primary`` and
                                                 ``<target>``), ``namespace``
``flagger_canary_total``              gauge      ``namespace``: Canaries per namespace
``flagger_canary_duration_seconds``   histogram  ``name``, ``namespace``: one analysis step;
                                                 Go's default buckets
``flagger_canary_metric_analysis``    gauge      ``name``, ``namespace``, ``metric``: the last
                                                 value of each analysis metric
``flagger_canary_successes_total``    counter    ``name``, ``namespace``,
``flagger_canary_failures_total``                ``deployment_strategy``, ``analysis_status``
====================================  =========  ==============================================

As in Flagger, ``name`` is the Canary's **target** (``spec.targetRef.name``), not the Canary's
own name. One difference the Python client brings: each counter also has a ``_created``
series.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "ANALYSIS_COMPLETED",
    "ANALYSIS_SKIPPED",
    "FlaggerMetrics",
    "deployment_strategy",
    "status_value",
]

# prometheus/client_golang's DefBuckets, which Flagger's histogram uses.
GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ANALYSIS_COMPLETED = "completed"
ANALYSIS_SKIPPED = "skipped"
FLAGGER_VERSION = "1.44.0"  # the Flagger release whose behaviour shiftd follows


def status_value(phase: str) -> int:
    """``flagger_canary_status``: 0 while Progressing, 2 when Failed, 1 for any other phase."""
    if phase == "Progressing":
        return 0
    if phase == "Failed":
        return 2
    return 1


def deployment_strategy(analysis: Mapping[str, Any] | None) -> str:
    """The ``deployment_strategy`` label: ``ab-testing`` (match and iterations),
    ``blue-green`` (iterations) or ``canary``."""
    if not analysis:
        return "canary"
    iterations = analysis.get("iterations") or 0
    if analysis.get("match") and iterations > 0:
        return "ab-testing"
    if iterations > 0:
        return "blue-green"
    return "canary"


class FlaggerMetrics:
    """Flagger's recorder on a given registry; the Canary controller calls its methods."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        version: str = FLAGGER_VERSION,
        mesh_provider: str = "istio",
    ) -> None:
        self.info = Gauge("flagger_info", "Flagger version and mesh provider information",
                          ["version", "mesh_provider"], registry=registry)
        self.duration = Histogram(
            "flagger_canary_duration_seconds", "Seconds spent performing canary analysis.",
            ["name", "namespace"], buckets=GO_DEFAULT_BUCKETS, registry=registry)
        self.total = Gauge("flagger_canary_total", "Total number of canary object",
                           ["namespace"], registry=registry)
        self.status = Gauge("flagger_canary_status", "Last canary analysis result",
                            ["name", "namespace"], registry=registry)
        self.weight = Gauge("flagger_canary_weight",
                            "The virtual service destination weight current value",
                            ["workload", "namespace"], registry=registry)
        self.analysis = Gauge("flagger_canary_metric_analysis",
                              "Last canary analysis result per metric",
                              ["name", "namespace", "metric"], registry=registry)
        outcome_labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self.successes = Counter("flagger_canary_successes_total",
                                 "Total number of canary successes", outcome_labels,
                                 registry=registry)
        self.failures = Counter("flagger_canary_failures_total",
                                "Total number of canary failures", outcome_labels,
                                registry=registry)
        self.info.labels(version=version, mesh_provider=mesh_provider).set(1)
        # (target, namespace) -> the metric names exported for it, so forget() finds them.
        self._analysed: dict[tuple[str, str], set[str]] = {}

    def set_status(self, *, target: str, namespace: str, phase: str) -> None:
        self.status.labels(name=target, namespace=namespace).set(status_value(phase))

    def set_weight(self, *, target: str, namespace: str, primary: int, canary: int) -> None:
        """The route's weights: ``<target>-primary`` gets ``primary``, ``<target>`` ``canary``."""
        self.weight.labels(workload=f"{target}-primary", namespace=namespace).set(primary)
        self.weight.labels(workload=target, namespace=namespace).set(canary)

    def set_total(self, namespace: str, count: int) -> None:
        self.total.labels(namespace=namespace).set(count)

    def set_totals(self, counts: Mapping[str, int]) -> None:
        """Canaries per namespace, as Flagger sets them on each resync. A namespace that no
        longer has any keeps its last value, as in Flagger."""
        for namespace, count in counts.items():
            self.set_total(namespace, count)

    def observe_duration(self, *, target: str, namespace: str, seconds: float) -> None:
        self.duration.labels(name=target, namespace=namespace).observe(seconds)

    def set_analysis(self, *, target: str, namespace: str, metric: str, value: float) -> None:
        """An analysis metric's value (``request-duration`` in seconds, as Flagger records it)."""
        self.analysis.labels(name=target, namespace=namespace, metric=metric).set(value)
        self._analysed.setdefault((target, namespace), set()).add(metric)

    def count_success(self, *, target: str, namespace: str, strategy: str,
                      analysis_status: str = ANALYSIS_COMPLETED) -> None:
        self.successes.labels(name=target, namespace=namespace, deployment_strategy=strategy,
                              analysis_status=analysis_status).inc()

    def count_failure(self, *, target: str, namespace: str, strategy: str,
                      analysis_status: str = ANALYSIS_COMPLETED) -> None:
        self.failures.labels(name=target, namespace=namespace, deployment_strategy=strategy,
                             analysis_status=analysis_status).inc()

    def forget(self, *, target: str, namespace: str) -> None:
        """Drop a deleted Canary's status, weight, duration and analysis series (Flagger keeps
        them until it restarts; shiftd does not export Canaries that are gone). Counters stay,
        so their rates stay right."""
        for gauge, labels in (
            (self.status, (target, namespace)),
            (self.weight, (f"{target}-primary", namespace)),
            (self.weight, (target, namespace)),
            (self.duration, (target, namespace)),
            *((self.analysis, (target, namespace, metric))
              for metric in self._analysed.pop((target, namespace), set())),
        ):
            with suppress(KeyError):  # never set
                gauge.remove(*labels)
