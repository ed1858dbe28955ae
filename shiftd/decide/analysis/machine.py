"""The AnalysisRun state machine, as Argo Rollouts runs it (``analysis/analysis.go``). Pure.

* ``due_metrics``: which metrics need a measurement now (initialDelay, interval, count, and a
  10 s retry after an Error);
* ``measurement_phase``: one value judged by the success/failure conditions;
* ``record_measurement``: a metric result's counters after one more measurement;
* ``assess_metric`` / ``assess_run``: a metric's phase from its counters and limits, and the
  run's phase as the worst of its metrics (Successful < Running < Pending < Inconclusive <
  Error < Failed), dry-run metrics excluded;
* ``next_measurement_at``: when the run wants its next measurement.

Measurements already taken live in the run's status, so a restarted daemon repeats none and
takes the next on schedule.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiftd.decide.rollout.observed import parse_time
from shiftd.model.argo.analysis import (
    DEFAULT_ERROR_RETRY_SECONDS,
    DEFAULT_MEASUREMENT_HISTORY_LIMIT,
    Metric,
)

SUCCESSFUL = "Successful"
RUNNING = "Running"
PENDING = "Pending"
INCONCLUSIVE = "Inconclusive"
ERROR = "Error"
FAILED = "Failed"
PHASE_ORDER = (SUCCESSFUL, RUNNING, PENDING, INCONCLUSIVE, ERROR, FAILED)
COMPLETED = frozenset({SUCCESSFUL, INCONCLUSIVE, ERROR, FAILED})

Evaluator = Callable[[str, Any], bool]  # (condition, result) -> bool; raises on error


def is_worse(current: str, new: str) -> bool:
    return PHASE_ORDER.index(new) > PHASE_ORDER.index(current)


def measurement_phase(value: Any, metric: Metric, *, evaluate: Evaluator) -> tuple[str, str]:
    """Argo's EvaluateResult: (phase, message). An evaluation error is an Error measurement."""
    success = failure = False
    for which, condition in (("successCondition", metric.success_condition),
                             ("failureCondition", metric.failure_condition)):
        if not condition:
            continue
        try:
            verdict = evaluate(condition, value)
        except Exception as error:  # the evaluator's errors are data here
            empty = value is None or (isinstance(value, list) and not value)
            reason = ("metric result is nil or empty: no data returned from the metric "
                      "provider" if empty else str(error))
            return ERROR, f'could not evaluate {which} "{condition}": {reason}'
        if which == "successCondition":
            success = verdict
        else:
            failure = verdict
    if not metric.success_condition and not metric.failure_condition:
        return SUCCESSFUL, ""
    if metric.success_condition and not metric.failure_condition:
        failure = not success
    elif metric.failure_condition and not metric.success_condition:
        success = not failure
    if failure:
        return FAILED, ""
    if not success:
        return INCONCLUSIVE, ""
    return SUCCESSFUL, ""


def _result(status: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for result in status.get("metricResults") or []:
        if result.get("name") == name:
            return dict(result)
    return None


def _last(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    measurements = (result or {}).get("measurements") or []
    return dict(measurements[-1]) if measurements else None


def is_terminating(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    if spec.get("terminate"):
        return True
    return any(not r.get("dryRun") and r.get("phase") in (FAILED, ERROR, INCONCLUSIVE)
               for r in status.get("metricResults") or [])


def due_metrics(*, spec: Mapping[str, Any], status: Mapping[str, Any],
                metrics: Sequence[Metric], now: datetime) -> list[Metric]:
    """Argo's generateMetricTasks: the metrics to measure now."""
    if is_terminating(spec, status):
        return []
    started = parse_time(str(status.get("startedAt", ""))) or now
    due: list[Metric] = []
    for metric in metrics:
        result = _result(status, metric.name)
        if result is not None and result.get("phase") in COMPLETED:
            continue
        last = _last(result)
        if last is None:
            if started + timedelta(seconds=metric.initial_delay_seconds) <= now:
                due.append(metric)
            continue
        count = metric.effective_count
        if count is not None and int((result or {}).get("count", 0)) >= count:
            continue
        finished = parse_time(str(last.get("finishedAt", ""))) or now
        if now >= finished + timedelta(seconds=_interval_after(metric, last)):
            due.append(metric)
    return due


def _interval_after(metric: Metric, last: Mapping[str, Any]) -> float:
    if last.get("phase") == ERROR or metric.interval_seconds is None:
        return DEFAULT_ERROR_RETRY_SECONDS
    return metric.interval_seconds


def next_measurement_at(*, spec: Mapping[str, Any], status: Mapping[str, Any],
                        metrics: Sequence[Metric], now: datetime) -> datetime | None:
    """Argo's calculateNextReconcileTime: the earliest time any metric is due."""
    if status.get("phase") in COMPLETED or is_terminating(spec, status):
        return None
    started = parse_time(str(status.get("startedAt", ""))) or now
    earliest: datetime | None = None
    for metric in metrics:
        result = _result(status, metric.name)
        if result is not None and result.get("phase") in COMPLETED:
            continue
        last = _last(result)
        if last is None:
            when = started + timedelta(seconds=metric.initial_delay_seconds)
        else:
            count = metric.effective_count
            if count is not None and int((result or {}).get("count", 0)) >= count:
                continue
            if last.get("phase") != ERROR and metric.interval_seconds is None:
                continue
            finished = parse_time(str(last.get("finishedAt", ""))) or now
            when = finished + timedelta(seconds=_interval_after(metric, last))
        if earliest is None or when < earliest:
            earliest = when
    return earliest


def record_measurement(result: Mapping[str, Any] | None, measurement: Mapping[str, Any], *,
                       metric: Metric, dry_run: bool, retention: int) -> dict[str, Any]:
    """The metric result after one more measurement (counters as Argo keeps them)."""
    updated: dict[str, Any] = copy.deepcopy(dict(result)) if result else {
        "name": metric.name, "phase": RUNNING}
    if dry_run:
        updated["dryRun"] = True
    phase = measurement["phase"]
    counters = {SUCCESSFUL: "successful", FAILED: "failed", INCONCLUSIVE: "inconclusive"}
    if phase in counters:
        updated[counters[phase]] = int(updated.get(counters[phase], 0)) + 1
        updated["count"] = int(updated.get("count", 0)) + 1
        updated["consecutiveError"] = 0
    elif phase == ERROR:
        updated["error"] = int(updated.get("error", 0)) + 1
        updated["consecutiveError"] = int(updated.get("consecutiveError", 0)) + 1
    measurements = [*(updated.get("measurements") or []), dict(measurement)]
    updated["measurements"] = measurements[-max(1, retention):]
    if measurement.get("metadata"):
        updated["metadata"] = dict(measurement["metadata"])
    return updated


def limits_exceeded(metric: Metric, result: Mapping[str, Any]) -> tuple[str, str]:
    """Argo's assessMetricFailureInconclusiveOrError: ("", "") when no limit is exceeded."""
    phase = message = ""
    failed = int(result.get("failed", 0))
    if metric.failure_limit >= 0 and failed > metric.failure_limit:
        phase, message = FAILED, f"failed ({failed}) > failureLimit ({metric.failure_limit})"
    inconclusive = int(result.get("inconclusive", 0))
    if inconclusive > metric.inconclusive_limit:
        phase = INCONCLUSIVE
        message = (f"inconclusive ({inconclusive}) > inconclusiveLimit "
                   f"({metric.inconclusive_limit})")
    errors = int(result.get("consecutiveError", 0))
    if errors > metric.consecutive_error_limit:
        phase = ERROR
        message = (f"consecutiveErrors ({errors}) > consecutiveErrorLimit "
                   f"({metric.consecutive_error_limit})")
    return phase, message


def assess_metric(metric: Metric, result: Mapping[str, Any], *, terminating: bool) -> str:
    """Argo's assessMetricStatus (without consecutiveSuccessLimit)."""
    if result.get("phase") in COMPLETED:
        return str(result["phase"])
    last = _last(result)
    if last is None:
        return SUCCESSFUL if terminating else PENDING
    if last.get("phase") not in COMPLETED:
        return RUNNING
    phase, _ = limits_exceeded(metric, result)
    if phase:
        return phase
    count = metric.effective_count
    if count is not None and int(result.get("count", 0)) >= count:
        return SUCCESSFUL
    return SUCCESSFUL if terminating else RUNNING


@dataclass(frozen=True, slots=True)
class RunAssessment:
    phase: str
    message: str
    metric_results: list[dict[str, Any]]
    run_summary: dict[str, int]
    dry_run_summary: dict[str, int]


def assess_run(*, spec: Mapping[str, Any], status: Mapping[str, Any], metrics: Sequence[Metric],
               dry_run: Collection[str]) -> RunAssessment:
    """Argo's assessRunStatus: every metric's phase, then the run's (the worst one)."""
    terminating = is_terminating(spec, status)
    worst = ""
    message = "Run Terminated" if spec.get("terminate") else ""
    everything_completed = True
    run_summary = {"count": 0, "successful": 0, "failed": 0, "inconclusive": 0, "error": 0}
    dry_summary = dict(run_summary)
    results: list[dict[str, Any]] = []
    for metric in metrics:
        is_dry = metric.name in dry_run
        summary = dry_summary if is_dry else run_summary
        summary["count"] += 1
        result = _result(status, metric.name)
        if result is None:
            everything_completed = False
            continue
        phase = assess_metric(metric, result, terminating=terminating)
        if result.get("phase") != phase:
            last = _last(result)
            if last is not None and last.get("message"):
                result["message"] = last["message"]
            result["phase"] = phase
        results.append(result)
        if phase not in COMPLETED:
            everything_completed = False
            continue
        exceeded, reason = limits_exceeded(metric, result)
        summary[{ERROR: "error", FAILED: "failed", INCONCLUSIVE: "inconclusive"}.get(
            exceeded, "successful")] += 1
        if is_dry:
            worst = worst or SUCCESSFUL
            continue
        if not worst or is_worse(worst, phase):
            worst = phase
            if reason:
                message = f'Metric "{metric.name}" assessed {phase} due to {reason}'
                if result.get("message"):
                    message += f': "Error Message: {result["message"]}"'
    by_name = {r["name"]: r for r in results}
    ordered = [by_name.get(r.get("name"), r) for r in status.get("metricResults") or []]
    if terminating:
        return RunAssessment(worst or SUCCESSFUL, message.strip(), ordered, run_summary,
                             dry_summary)
    if not everything_completed or not worst:
        return RunAssessment(RUNNING, "", ordered, run_summary, dry_summary)
    return RunAssessment(worst, message.strip(), ordered, run_summary, dry_summary)


def rule_for(rules: Sequence[Mapping[str, Any]] | None, name: str) -> Mapping[str, Any] | None:
    """The first ``{metricName: regex}`` rule (``dryRun``, ``measurementRetention``) matching
    ``name``."""
    for rule in rules or []:
        pattern = str(rule.get("metricName", ""))
        if pattern == "*" or re.fullmatch(pattern, name):
            return rule
    return None


def dry_run_metrics(spec: Mapping[str, Any], metrics: Sequence[Metric]) -> frozenset[str]:
    """The metrics the run's ``dryRun`` rules name: measured, never failing the run."""
    return frozenset(m.name for m in metrics if rule_for(spec.get("dryRun"), m.name))


def retention_for(spec: Mapping[str, Any], name: str) -> int:
    """How many measurements of ``name`` the run keeps (``measurementRetention``, else 10)."""
    rule = rule_for(spec.get("measurementRetention"), name)
    return int(rule.get("limit", DEFAULT_MEASUREMENT_HISTORY_LIMIT)) if rule \
        else DEFAULT_MEASUREMENT_HISTORY_LIMIT


def advance_run(*, spec: Mapping[str, Any], status: dict[str, Any], metrics: Sequence[Metric],
                measured: Mapping[str, Mapping[str, Any]]) -> RunAssessment:
    """Record new measurements (by metric name) into ``status`` and assess the run; the
    status's metric results, summaries and phase are updated in place."""
    dry_run = dry_run_metrics(spec, metrics)
    if measured:
        results = {r["name"]: r for r in status.get("metricResults") or []}
        for metric in metrics:
            if metric.name in measured:
                results[metric.name] = record_measurement(
                    results.get(metric.name), measured[metric.name], metric=metric,
                    dry_run=metric.name in dry_run, retention=retention_for(spec, metric.name))
        status["metricResults"] = [results[m.name] for m in metrics if m.name in results]
    assessment = assess_run(spec=spec, status=status, metrics=metrics, dry_run=dry_run)
    status["metricResults"] = assessment.metric_results
    status["runSummary"] = assessment.run_summary
    status["dryRunSummary"] = assessment.dry_run_summary
    status["phase"] = assessment.phase
    return assessment
