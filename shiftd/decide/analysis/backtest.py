"""Replaying an AnalysisRun on a fake clock, once or over a window: ``analyze``'s core. Pure.

``replay`` is a generator that walks the daemon's own state machine
(``shiftd.decide.analysis.machine``: ``due_metrics``, ``record_measurement``, ``assess_run``,
``next_measurement_at``) through time without sleeping. It yields a ``Due`` — a moment and
the metrics to measure then — and is sent back the measurements taken (``{metric name:
measurement}``, as Argo stores one); when the run reaches a terminal phase, or the next
measurement would fall after ``end``, it returns the ``Outcome``. So a backtest measures
first at ``start + initialDelay``, then every ``interval`` (an Error retried after 10 s), as
the daemon would have; the caller takes each measurement as of its moment.

A run still going at ``end`` is concluded as if terminated there (what a promotion does to a
background run): its phase is the worst of its metrics so far, Successful if none failed.

``one_shot`` turns metrics into their single-measurement form for ``analyze`` without a
window: measured at once, count 1, limits 0, so the one measurement decides (a
``failureLimit: -1`` metric still never fails). Times here are whole seconds, as Argo
stores them. ``parse_instant`` reads the ``--from``/``--to`` syntax.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftd.decide.analysis.machine import (
    COMPLETED,
    advance_run,
    assess_run,
    dry_run_metrics,
    due_metrics,
    next_measurement_at,
)
from shiftd.decide.rollout.status import format_time
from shiftd.model.argo.analysis import Metric
from shiftd.model.durations import parse_duration

__all__ = [
    "Due",
    "Outcome",
    "Recorded",
    "one_shot",
    "parse_instant",
    "replay",
]

_MIN_STEP = timedelta(seconds=1)  # stored times have whole seconds: never stand still


@dataclass(frozen=True, slots=True)
class Due:
    """Measure these metrics as of ``at``, then send their measurements back."""

    at: datetime
    metrics: tuple[Metric, ...]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One measurement in the timeline, with the run's phase right after it."""

    at: datetime
    metric: str
    measurement: Mapping[str, Any]
    run_phase: str


@dataclass(frozen=True, slots=True)
class Outcome:
    phase: str  # Successful, Failed, Error or Inconclusive
    message: str
    at: datetime  # when the run reached ``phase`` (``end`` when the window ran out)
    ended_by: str  # "run": the run completed by itself; "window": concluded at ``end``
    timeline: tuple[Recorded, ...]
    metric_results: tuple[Mapping[str, Any], ...]


def one_shot(metrics: Sequence[Metric]) -> tuple[Metric, ...]:
    """Each metric as a single measurement taken now that decides on its own."""
    return tuple(dataclasses.replace(
        metric, interval_seconds=None, initial_delay_seconds=0.0, count=1,
        failure_limit=-1 if metric.failure_limit < 0 else 0, inconclusive_limit=0,
        consecutive_error_limit=0) for metric in metrics)


def replay(*, spec: Mapping[str, Any], metrics: Sequence[Metric], start: datetime,
           end: datetime) -> Generator[Due, Mapping[str, Mapping[str, Any]], Outcome]:
    """Drive one AnalysisRun from ``start`` to its verdict or ``end`` (see the module doc)."""
    start = start.replace(microsecond=0)
    dry_run = dry_run_metrics(spec, metrics)
    status: dict[str, Any] = {"startedAt": format_time(start), "phase": "Running"}
    timeline: list[Recorded] = []
    now = start
    while True:
        due = due_metrics(spec=spec, status=status, metrics=metrics, now=now)
        if due:
            measured = yield Due(at=now, metrics=tuple(due))
        assessment = advance_run(spec=spec, status=status, metrics=metrics,
                                 measured=measured if due else {})
        if due:
            timeline.extend(Recorded(at=now, metric=m.name, measurement=measured[m.name],
                                     run_phase=assessment.phase) for m in due)
        if assessment.phase in COMPLETED:
            return Outcome(phase=assessment.phase, message=assessment.message, at=now,
                           ended_by="run", timeline=tuple(timeline),
                           metric_results=tuple(assessment.metric_results))
        wake = next_measurement_at(spec=spec, status=status, metrics=metrics, now=now)
        if wake is None or wake > end:
            return _conclude(spec=spec, status=status, metrics=metrics, dry_run=dry_run,
                             at=max(now, end), timeline=timeline)
        now = max(wake, now + _MIN_STEP)


def _conclude(*, spec: Mapping[str, Any], status: Mapping[str, Any], metrics: Sequence[Metric],
              dry_run: frozenset[str], at: datetime, timeline: Sequence[Recorded]) -> Outcome:
    """The run terminated at ``at``, as a promotion ends a background run."""
    assessment = assess_run(spec={**spec, "terminate": True}, status=status, metrics=metrics,
                            dry_run=dry_run)
    message = assessment.message.removeprefix("Run Terminated").strip()
    return Outcome(phase=assessment.phase, message=message, at=at, ended_by="window",
                   timeline=tuple(timeline), metric_results=tuple(assessment.metric_results))


# --- --from / --to -------------------------------------------------------------------------------

_UNITS = {"d": 86400.0, "w": 7 * 86400.0}
_RELATIVE = re.compile(r"now\s*(?:([+-])\s*(\S+))?")
_DAYS = re.compile(r"(\d+(?:\.\d+)?)([dw])")


def _relative_seconds(text: str) -> float:
    """A Go duration that may also use ``d`` (24h) and ``w`` (7d) terms: ``7d``, ``1d12h``."""
    days = sum(float(n) * _UNITS[u] for n, u in _DAYS.findall(text))
    rest = _DAYS.sub("", text)
    if not rest and days:
        return days
    return days + parse_duration(rest)


def parse_instant(text: str, *, now: datetime) -> datetime:
    """``--from``/``--to``: RFC 3339 (``2024-05-01T12:00:00Z``; no offset means UTC), or
    ``now``, ``now-7d``, ``now-90m``, ``now-1d12h``, ``now+30s``; whole seconds, UTC.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    stripped = text.strip()
    relative = _RELATIVE.fullmatch(stripped)
    try:
        if relative is not None:
            sign, amount = relative.groups()
            seconds = _relative_seconds(amount) if amount else 0.0
            moment = now + timedelta(seconds=-seconds if sign == "-" else seconds)
        else:
            moment = datetime.fromisoformat(stripped.replace("z", "Z").replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"invalid time {text!r}: expected RFC 3339 (2024-05-01T12:00:00Z) or now, now-7d, "
            "now-90m, now-1d12h (units w, d, h, m, s, ms)") from None
    return moment.astimezone(UTC).replace(microsecond=0)
