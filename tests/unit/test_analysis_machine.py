"""The AnalysisRun state machine, driven measurement by measurement on a manual timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shiftd.decide.analysis.machine import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    RUNNING,
    SUCCESSFUL,
    assess_run,
    due_metrics,
    measurement_phase,
    next_measurement_at,
    record_measurement,
)
from shiftd.decide.rollout.status import format_time
from shiftd.model.argo.analysis import Metric, parse_metric

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def truthy(condition: str, result: Any) -> bool:
    """A stand-in evaluator for a handful of fixed conditions (the real one is tested apart)."""
    table = {
        "result > 0.9": lambda r: r > 0.9,
        "result < 0.5": lambda r: r < 0.5,
        "broken": lambda r: 1 / 0,
    }
    return bool(table[condition](result))


def metric(**fields: Any) -> Metric:
    raw = {"name": "success-rate", "provider": {"prometheus": {"query": "q"}}, **fields}
    return parse_metric(raw, path="spec.metrics[0]")


@pytest.mark.parametrize(
    ("success", "failure", "value", "expected"),
    [
        (None, None, 0.1, SUCCESSFUL),
        ("result > 0.9", None, 0.95, SUCCESSFUL),
        ("result > 0.9", None, 0.5, FAILED),
        (None, "result < 0.5", 0.4, FAILED),
        (None, "result < 0.5", 0.7, SUCCESSFUL),
        ("result > 0.9", "result < 0.5", 0.95, SUCCESSFUL),
        ("result > 0.9", "result < 0.5", 0.3, FAILED),
        ("result > 0.9", "result < 0.5", 0.7, INCONCLUSIVE),
        ("broken", None, 0.7, ERROR),
    ],
)
def test_one_measurement_is_judged_like_argo(success: str | None, failure: str | None,
                                             value: float, expected: str) -> None:
    fields: dict[str, Any] = {}
    if success:
        fields["successCondition"] = success
    if failure:
        fields["failureCondition"] = failure
    phase, message = measurement_phase(value, metric(**fields), evaluate=truthy)
    assert phase == expected
    assert (message != "") == (expected == ERROR)


def test_an_evaluation_error_on_empty_data_says_so() -> None:
    phase, message = measurement_phase([], metric(successCondition="broken"), evaluate=truthy)
    assert phase == ERROR
    assert "no data returned from the metric provider" in message


class Run:
    """An AnalysisRun's spec and status, advanced the way the analysis task advances it."""

    def __init__(self, *metrics: Metric, dry_run: tuple[str, ...] = ()) -> None:
        self.metrics = metrics
        self.spec: dict[str, Any] = {}
        self.status: dict[str, Any] = {"phase": RUNNING, "startedAt": format_time(T0)}
        self.dry_run = dry_run
        self.now = T0

    def due(self) -> list[str]:
        return [m.name for m in due_metrics(spec=self.spec, status=self.status,
                                            metrics=self.metrics, now=self.now)]

    def measure(self, name: str, value: Any, *, error: str | None = None) -> str:
        metric = next(m for m in self.metrics if m.name == name)
        phase, message = (ERROR, error) if error else measurement_phase(value, metric,
                                                                         evaluate=truthy)
        stamp = format_time(self.now)
        measurement = {"phase": phase, "value": str(value), "startedAt": stamp,
                       "finishedAt": stamp, **({"message": message} if message else {})}
        results = [r for r in self.status.get("metricResults") or [] if r["name"] != name]
        previous = next((r for r in self.status.get("metricResults") or []
                         if r["name"] == name), None)
        results.append(record_measurement(previous, measurement, metric=metric,
                                          dry_run=name in self.dry_run, retention=10))
        self.status["metricResults"] = results
        return self.assess()

    def assess(self) -> str:
        assessment = assess_run(spec=self.spec, status=self.status, metrics=self.metrics,
                                dry_run=self.dry_run)
        self.status.update(phase=assessment.phase, metricResults=assessment.metric_results,
                           message=assessment.message)
        return assessment.phase

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_seed_002_fails_after_more_failures_than_the_failure_limit() -> None:
    run = Run(metric(initialDelay="60s", interval="20s", successCondition="result > 0.9",
                     failureLimit=3))
    assert run.due() == []
    assert next_measurement_at(spec=run.spec, status=run.status, metrics=run.metrics,
                               now=run.now) == T0 + timedelta(seconds=60)
    run.advance(60)
    assert run.due() == ["success-rate"]
    assert run.measure("success-rate", 0.99) == RUNNING
    for failures in range(1, 4):
        run.advance(20)
        assert run.due() == ["success-rate"]
        assert run.measure("success-rate", 0.35) == RUNNING, failures
    run.advance(10)
    assert run.due() == []
    run.advance(10)
    assert run.measure("success-rate", 0.35) == FAILED
    assert run.status["message"] == (
        'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)')
    run.advance(20)
    assert run.due() == []


def test_errors_retry_every_ten_seconds_and_fail_the_run_past_the_limit() -> None:
    run = Run(metric(interval="1m", successCondition="result > 0.9"))
    for attempt in range(5):
        assert run.due() == ["success-rate"], attempt
        phase = run.measure("success-rate", None, error="connection refused")
        run.advance(10)
    assert phase == ERROR
    assert "consecutiveErrors (5) > consecutiveErrorLimit (4)" in run.status["message"]
    assert "connection refused" in run.status["message"]


def test_a_success_resets_the_consecutive_errors() -> None:
    run = Run(metric(interval="10s", successCondition="result > 0.9"))
    for _ in range(4):
        run.measure("success-rate", None, error="timeout")
        run.advance(10)
    assert run.measure("success-rate", 0.95) == RUNNING
    run.advance(10)
    assert run.measure("success-rate", None, error="timeout") == RUNNING


def test_count_reached_makes_the_metric_successful() -> None:
    run = Run(metric(interval="5s", count=3, successCondition="result > 0.9"))
    assert run.measure("success-rate", 0.95) == RUNNING
    run.advance(5)
    assert run.measure("success-rate", 0.95) == RUNNING
    run.advance(5)
    assert run.measure("success-rate", 0.95) == SUCCESSFUL


def test_without_an_interval_one_measurement_decides() -> None:
    run = Run(metric(successCondition="result > 0.9"))
    assert run.measure("success-rate", 0.95) == SUCCESSFUL
    assert run.due() == []


def test_inconclusive_past_its_limit_makes_the_run_inconclusive() -> None:
    run = Run(metric(interval="5s", successCondition="result > 0.9",
                     failureCondition="result < 0.5", inconclusiveLimit=1))
    assert run.measure("success-rate", 0.7) == RUNNING
    run.advance(5)
    assert run.measure("success-rate", 0.7) == INCONCLUSIVE


def test_termination_ends_an_endless_metric_successfully() -> None:
    run = Run(metric(interval="5s", successCondition="result > 0.9"))
    run.measure("success-rate", 0.95)
    run.spec["terminate"] = True
    assert run.assess() == SUCCESSFUL
    assert run.status["message"] == "Run Terminated"
    run.advance(60)
    assert run.due() == []


def test_a_dry_run_metric_never_fails_the_run() -> None:
    dry = parse_metric({"name": "latency", "successCondition": "result > 0.9",
                        "provider": {"prometheus": {"query": "q"}}}, path="m")
    run = Run(metric(successCondition="result > 0.9"), dry, dry_run=("latency",))
    run.measure("latency", 0.1)
    assert run.measure("success-rate", 0.95) == SUCCESSFUL
    latency = next(r for r in run.status["metricResults"] if r["name"] == "latency")
    assert latency["dryRun"] is True and latency["phase"] == FAILED


def test_only_the_newest_measurements_are_retained() -> None:
    result: dict[str, Any] | None = None
    m = metric(interval="1s")
    for i in range(15):
        result = record_measurement(result, {"phase": SUCCESSFUL, "value": str(i)}, metric=m,
                                    dry_run=False, retention=10)
    assert result is not None
    assert [x["value"] for x in result["measurements"]] == [str(i) for i in range(5, 15)]
    assert result["count"] == 15
