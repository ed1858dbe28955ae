"""``decide.backtest``: the daemon's state machine replayed on a fake clock, and the window syntax.

A scripted measurer answers the ``replay`` generator: each metric's value is a function of
the moment it is measured at, judged by the real condition language, so these tests show
when a replayed run measures and where it stops.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shiftd.decide.analysis.backtest import Outcome, one_shot, parse_instant, replay
from shiftd.decide.analysis.expr import evaluate_condition
from shiftd.decide.analysis.machine import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    measurement_phase,
)
from shiftd.decide.rollout.status import format_time
from shiftd.model.argo.analysis import Metric, parse_metric

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
Value = Callable[[datetime], Any]  # the value a metric reads at a moment; None: an Error


def metric(name: str = "success-rate", **fields: Any) -> Metric:
    raw = {"name": name, "successCondition": "result[0] > 0.9",
           "provider": {"prometheus": {"query": "q"}}, **fields}
    return parse_metric(raw, path="spec.metrics[0]")


def drive(metrics: Sequence[Metric], values: Mapping[str, Value], *, end: datetime,
          start: datetime = T0, spec: Mapping[str, Any] | None = None) -> Outcome:
    steps = replay(spec=spec or {}, metrics=metrics, start=start, end=end)
    by_name = {m.name: m for m in metrics}
    try:
        due = next(steps)
        while True:
            measured = {}
            for m in due.metrics:
                value = values[m.name](due.at)
                if value is None:
                    measurement = {"phase": ERROR, "message": "connection refused"}
                else:
                    phase, _ = measurement_phase(value, by_name[m.name],
                                                 evaluate=evaluate_condition)
                    measurement = {"phase": phase, "value": str(value)}
                measured[m.name] = {**measurement, "startedAt": format_time(due.at),
                                    "finishedAt": format_time(due.at)}
            due = steps.send(measured)
    except StopIteration as done:
        outcome: Outcome = done.value
    return outcome


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def offsets(outcome: Outcome, name: str | None = None) -> list[float]:
    return [(r.at - T0).total_seconds() for r in outcome.timeline
            if name is None or r.metric == name]


def failing_from(seconds: float) -> Value:
    return lambda at: [0.99] if at < after(seconds) else [0.35]


def test_measurements_start_after_the_initial_delay_and_follow_the_interval() -> None:
    outcome = drive([metric(initialDelay="60s", interval="20s", failureLimit=3)],
                    {"success-rate": failing_from(10_000)}, end=after(150))
    assert offsets(outcome) == [60, 80, 100, 120, 140]
    assert all(r.measurement["phase"] == SUCCESSFUL for r in outcome.timeline)


def test_a_run_still_measuring_at_the_end_of_the_window_is_concluded_successful() -> None:
    outcome = drive([metric(interval="20s")], {"success-rate": failing_from(10_000)},
                    end=after(100))
    assert (outcome.phase, outcome.ended_by, outcome.at) == (SUCCESSFUL, "window", after(100))
    assert outcome.message == ""


def test_failures_beyond_the_failure_limit_fail_the_run_at_that_measurement() -> None:
    outcome = drive([metric(initialDelay="60s", interval="20s", failureLimit=3)],
                    {"success-rate": failing_from(100)}, end=after(3600))
    assert offsets(outcome) == [60, 80, 100, 120, 140, 160]
    assert [r.measurement["phase"] for r in outcome.timeline] == \
        [SUCCESSFUL, SUCCESSFUL, FAILED, FAILED, FAILED, FAILED]
    assert [r.run_phase for r in outcome.timeline][-2:] == ["Running", FAILED]
    assert (outcome.phase, outcome.ended_by, outcome.at) == (FAILED, "run", after(160))
    assert outcome.message == \
        'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'


def test_failures_within_the_limit_do_not_fail_a_run_the_window_ends() -> None:
    outcome = drive([metric(interval="20s", failureLimit=3)],
                    {"success-rate": failing_from(30)}, end=after(60))
    assert offsets(outcome) == [0, 20, 40, 60]
    assert (outcome.phase, outcome.ended_by) == (SUCCESSFUL, "window")


def test_errors_are_retried_every_ten_seconds_until_the_consecutive_error_limit() -> None:
    outcome = drive([metric(interval="1m")], {"success-rate": lambda at: None},
                    end=after(3600))
    assert offsets(outcome) == [0, 10, 20, 30, 40]
    assert (outcome.phase, outcome.at) == (ERROR, after(40))
    assert "consecutiveErrors (5) > consecutiveErrorLimit (4)" in outcome.message
    assert 'Error Message: connection refused' in outcome.message


def test_a_run_whose_every_metric_reached_its_count_ends_successful_by_itself() -> None:
    outcome = drive([metric(interval="10s", count=3)], {"success-rate": failing_from(10_000)},
                    end=after(3600))
    assert offsets(outcome) == [0, 10, 20]
    assert (outcome.phase, outcome.ended_by, outcome.at) == (SUCCESSFUL, "run", after(20))


def test_metrics_with_different_intervals_are_measured_on_their_own_schedules() -> None:
    fast, slow = metric("fast", interval="10s"), metric("slow", interval="25s",
                                                        initialDelay="5s")
    outcome = drive([fast, slow], {"fast": failing_from(10_000), "slow": failing_from(10_000)},
                    end=after(60))
    assert offsets(outcome, "fast") == [0, 10, 20, 30, 40, 50, 60]
    assert offsets(outcome, "slow") == [5, 30, 55]


def test_an_inconclusive_measurement_beyond_its_limit_makes_the_run_inconclusive() -> None:
    undecided = metric(interval="10s", failureCondition="result[0] < 0.5")
    outcome = drive([undecided], {"success-rate": lambda at: [0.7]}, end=after(60))
    assert (outcome.phase, outcome.at) == (INCONCLUSIVE, T0)


def test_a_failing_dry_run_metric_does_not_fail_the_run() -> None:
    outcome = drive([metric(interval="10s")], {"success-rate": failing_from(0)},
                    end=after(60), spec={"dryRun": [{"metricName": "success-.*"}]})
    assert all(r.measurement["phase"] == FAILED for r in outcome.timeline)
    assert outcome.phase == SUCCESSFUL
    assert outcome.metric_results[0]["dryRun"] is True


@pytest.mark.parametrize(("value", "failure_limit", "phase"), [
    pytest.param([0.99], 3, SUCCESSFUL, id="a passing measurement succeeds"),
    pytest.param([0.35], 3, FAILED, id="one failure fails whatever the limit"),
    pytest.param([0.35], -1, SUCCESSFUL, id="failureLimit -1 never fails"),
    pytest.param(None, 3, ERROR, id="one error is an Error"),
])
def test_one_shot_metrics_are_decided_by_a_single_measurement_taken_at_once(
    value: Any, failure_limit: int, phase: str,
) -> None:
    metrics = one_shot([metric(initialDelay="60s", interval="20s", failureLimit=failure_limit)])
    outcome = drive(metrics, {"success-rate": lambda at: value}, end=T0)
    assert offsets(outcome) == [0]
    assert (outcome.phase, outcome.ended_by) == (phase, "run")


def test_the_replay_starts_on_a_whole_second() -> None:
    outcome = drive([metric(count=1)], {"success-rate": failing_from(10_000)},
                    start=T0 + timedelta(milliseconds=700), end=after(5))
    assert outcome.timeline[0].at == T0


NOW = datetime(2026, 3, 10, 8, 30, 15, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("2026-03-01T14:00:00+02:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("2026-03-01T12:00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("2026-03-01T12:00:00.900Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("now", NOW.replace(microsecond=0)),
    ("now-7d", NOW.replace(microsecond=0) - timedelta(days=7)),
    ("now-2w", NOW.replace(microsecond=0) - timedelta(days=14)),
    ("now-1d12h", NOW.replace(microsecond=0) - timedelta(hours=36)),
    ("now-90m", NOW.replace(microsecond=0) - timedelta(minutes=90)),
    ("now - 30s", NOW.replace(microsecond=0) - timedelta(seconds=30)),
    ("now+1h", NOW.replace(microsecond=0) + timedelta(hours=1)),
])
def test_window_times_read_rfc3339_and_now_relative_forms(text: str, expected: datetime) -> None:
    assert parse_instant(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "now-", "now-7x", "now*2", "2026-13-01", ""])
def test_other_window_times_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339 .* now-7d"):
        parse_instant(text, now=NOW)
