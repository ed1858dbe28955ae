"""The compact per-label-set gauge and histogram expose what prometheus_client's do."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

from shiftd.runtime.labelled_metrics import LabelledGauge, LabelledHistogram

BUCKETS = (0.005, 0.01, 0.025, 0.1, 1.0, 10.0)
OBSERVED = [("shop", "web", 0.004), ("shop", "web", 0.005), ("shop", "web", 0.3),
            ("shop", "api", 12.0), ("lab", "web", 0.01)]


def _samples(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {(sample.name, tuple(sorted(sample.labels.items())), sample.value)
            for family in registry.collect() for sample in family.samples
            if not sample.name.endswith("_created")}


def test_the_samples_are_those_of_the_client_histogram() -> None:
    reference, compact = CollectorRegistry(), CollectorRegistry()
    client = Histogram("rollout_reconcile", "help", ["namespace", "name"], buckets=BUCKETS,
                       registry=reference)
    ours = LabelledHistogram("rollout_reconcile", "help", labelnames=["namespace", "name"],
                             buckets=BUCKETS, registry=compact)
    for namespace, name, value in OBSERVED:
        client.labels(namespace, name).observe(value)
        ours.observe(namespace, name, value=value)
    assert _samples(compact) == _samples(reference)
    client.remove("shop", "web")
    ours.remove("shop", "web")
    ours.remove("nowhere", "none")
    assert _samples(compact) == _samples(reference)
    assert any(name == "rollout_reconcile_bucket" for name, _, _ in _samples(compact))


def test_the_family_is_described_without_series() -> None:
    registry = CollectorRegistry()
    LabelledHistogram("rollout_reconcile", "help", labelnames=["namespace", "name"],
                      buckets=BUCKETS, registry=registry)
    families = list(registry.collect())
    assert [(family.name, family.type, family.samples) for family in families] == [
        ("rollout_reconcile", "histogram", [])]


def test_the_gauge_samples_are_those_of_the_client_gauge() -> None:
    reference, compact = CollectorRegistry(), CollectorRegistry()
    client = Gauge("rollout_info", "help", ["namespace", "name", "phase"], registry=reference)
    ours = LabelledGauge("rollout_info", "help", labelnames=["namespace", "name", "phase"],
                         registry=compact)
    for phase, value in (("Progressing", 1), ("Paused", 2.5), ("Progressing", 3)):
        client.labels("shop", "web", phase).set(value)
        ours.set("shop", "web", phase, value=value)
    assert _samples(compact) == _samples(reference)
    assert ("rollout_info", (("name", "web"), ("namespace", "shop"), ("phase", "Progressing")),
            3.0) in _samples(compact)
    client.remove("shop", "web", "Paused")
    ours.remove("shop", "web", "Paused")
    assert _samples(compact) == _samples(reference)
