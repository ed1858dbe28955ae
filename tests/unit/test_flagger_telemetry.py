"""Flagger's own metrics, read back from the exposition text a scrape of /metrics returns."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shiftd.runtime.flagger_telemetry import (
    ANALYSIS_SKIPPED,
    FlaggerMetrics,
    deployment_strategy,
    status_value,
)
from shiftd.runtime.telemetry import Telemetry


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition(registry))
        for sample in family.samples
    }


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return samples(registry).get((metric, tuple(sorted(labels.items()))))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_names_help_and_types_are_flaggers(registry: CollectorRegistry) -> None:
    metrics = FlaggerMetrics(registry)
    metrics.set_status(target="podinfo", namespace="test", phase="Progressing")
    metrics.set_weight(target="podinfo", namespace="test", primary=90, canary=10)
    metrics.set_total("test", 1)
    metrics.observe_duration(target="podinfo", namespace="test", seconds=0.3)
    text = exposition(registry)
    for line in (
        "# HELP flagger_info Flagger version and mesh provider information",
        "# TYPE flagger_info gauge",
        "# HELP flagger_canary_status Last canary analysis result",
        "# TYPE flagger_canary_status gauge",
        "# HELP flagger_canary_weight The virtual service destination weight current value",
        "# HELP flagger_canary_total Total number of canary object",
        "# TYPE flagger_canary_total gauge",
        "# HELP flagger_canary_duration_seconds Seconds spent performing canary analysis.",
        "# TYPE flagger_canary_duration_seconds histogram",
        "# HELP flagger_canary_successes_total Total number of canary successes",
        "# HELP flagger_canary_failures_total Total number of canary failures",
    ):
        assert line in text.splitlines()


def test_info_names_the_version_and_mesh_provider(registry: CollectorRegistry) -> None:
    FlaggerMetrics(registry, version="1.44.0", mesh_provider="istio")
    assert value(registry, "flagger_info", version="1.44.0", mesh_provider="istio") == 1


@pytest.mark.parametrize(("phase", "status"), [
    ("Progressing", 0), ("Failed", 2), ("Succeeded", 1), ("Initialized", 1),
    ("Initializing", 1), ("Waiting", 1), ("WaitingPromotion", 1), ("Promoting", 1),
    ("Finalising", 1), ("Terminating", 1),
])
def test_status_is_zero_while_running_two_when_failed_and_one_otherwise(
        registry: CollectorRegistry, phase: str, status: int) -> None:
    FlaggerMetrics(registry).set_status(target="podinfo", namespace="test", phase=phase)
    assert status_value(phase) == status
    assert value(registry, "flagger_canary_status", name="podinfo", namespace="test") == status


def test_weight_is_exported_for_the_primary_and_the_canary_workloads(
        registry: CollectorRegistry) -> None:
    metrics = FlaggerMetrics(registry)
    metrics.set_weight(target="podinfo", namespace="test", primary=70, canary=30)
    assert value(registry, "flagger_canary_weight", workload="podinfo-primary",
                 namespace="test") == 70
    assert value(registry, "flagger_canary_weight", workload="podinfo", namespace="test") == 30


def test_totals_are_per_namespace_and_a_namespace_emptied_keeps_its_last_value(
        registry: CollectorRegistry) -> None:
    metrics = FlaggerMetrics(registry)
    metrics.set_totals({"test": 2, "prod": 1})
    metrics.set_totals({"test": 3})
    assert value(registry, "flagger_canary_total", namespace="test") == 3
    assert value(registry, "flagger_canary_total", namespace="prod") == 1


def test_durations_fall_into_go_default_buckets(registry: CollectorRegistry) -> None:
    metrics = FlaggerMetrics(registry)
    for seconds in (0.003, 0.2, 4.0, 30.0):
        metrics.observe_duration(target="podinfo", namespace="test", seconds=seconds)
    buckets = {labels: count for (name, labels), count in samples(registry).items()
               if name == "flagger_canary_duration_seconds_bucket"}
    les = sorted({dict(labels)["le"] for labels in buckets}, key=float)
    assert les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0",
                   "10.0", "+Inf"]

    def bucket(le: str) -> float:
        return buckets[(("le", le), ("name", "podinfo"), ("namespace", "test"))]

    assert (bucket("0.005"), bucket("0.25"), bucket("5.0"), bucket("+Inf")) == (1, 2, 3, 4)
    assert value(registry, "flagger_canary_duration_seconds_count", name="podinfo",
                 namespace="test") == 4


def test_outcomes_are_counted_by_strategy_and_analysis_status(
        registry: CollectorRegistry) -> None:
    metrics = FlaggerMetrics(registry)
    metrics.count_success(target="podinfo", namespace="test", strategy="canary")
    metrics.count_success(target="podinfo", namespace="test", strategy="canary")
    metrics.count_success(target="podinfo", namespace="test", strategy="canary",
                          analysis_status=ANALYSIS_SKIPPED)
    metrics.count_failure(target="podinfo", namespace="test", strategy="ab-testing")
    labels = {"name": "podinfo", "namespace": "test"}
    assert value(registry, "flagger_canary_successes_total", deployment_strategy="canary",
                 analysis_status="completed", **labels) == 2
    assert value(registry, "flagger_canary_successes_total", deployment_strategy="canary",
                 analysis_status="skipped", **labels) == 1
    assert value(registry, "flagger_canary_failures_total", deployment_strategy="ab-testing",
                 analysis_status="completed", **labels) == 1


@pytest.mark.parametrize(("analysis", "strategy"), [
    (None, "canary"),
    ({"maxWeight": 50, "stepWeight": 10}, "canary"),
    ({"iterations": 10}, "blue-green"),
    ({"iterations": 10, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]},
     "ab-testing"),
    ({"iterations": 0, "match": [{"headers": {}}]}, "canary"),
])
def test_the_deployment_strategy_label_follows_the_analysis(
        analysis: dict[str, Any] | None, strategy: str) -> None:
    assert deployment_strategy(analysis) == strategy


def test_a_forgotten_canary_leaves_no_gauges_behind_but_keeps_its_counters(
        registry: CollectorRegistry) -> None:
    metrics = FlaggerMetrics(registry)
    for target in ("podinfo", "other"):
        metrics.set_status(target=target, namespace="test", phase="Progressing")
        metrics.set_weight(target=target, namespace="test", primary=50, canary=50)
        metrics.observe_duration(target=target, namespace="test", seconds=1)
        metrics.set_analysis(target=target, namespace="test", metric="request-success-rate",
                             value=99.5)
    metrics.count_success(target="podinfo", namespace="test", strategy="canary")
    metrics.forget(target="podinfo", namespace="test")
    metrics.forget(target="never-seen", namespace="test")
    left = {labels for labels in samples(registry) if ("name", "podinfo") in labels[1]
            or ("workload", "podinfo") in labels[1] or ("workload", "podinfo-primary") in labels[1]}
    assert {name for name, _ in left} == {"flagger_canary_successes_total",
                                          "flagger_canary_successes_created"}
    assert value(registry, "flagger_canary_metric_analysis", name="other", namespace="test",
                 metric="request-success-rate") == 99.5


def test_the_metrics_live_on_the_daemons_registry_beside_its_own() -> None:
    telemetry = Telemetry()
    FlaggerMetrics(telemetry.registry).set_total("test", 4)
    text = telemetry.metrics_text().decode()
    assert 'flagger_canary_total{namespace="test"} 4.0' in text
    assert "rollout_info" in text or "shiftd_build_info" in text
