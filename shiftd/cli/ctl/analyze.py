"""``analyze``: run an AnalysisTemplate's metrics from the command line, now or over the past.

``load_analysis`` reads AnalysisTemplates, ClusterAnalysisTemplates and AnalysisRuns from the
given files (other objects are skipped), merges them into one run spec as the daemon does
(metrics concatenated, args by name, ``dryRun`` and ``measurementRetention`` carried), fills
the args from their defaults and ``--arg``, and compiles every condition: a missing arg, a
bad metric or a condition with a syntax error is a usage error (exit 2), named with its file
and path. ``run_analysis`` then drives ``shiftd.decide.analysis.backtest.replay`` — the
daemon's state
machine on a fake clock — taking each measurement with ``shiftd.providers.measure``, the
daemon's own measuring step:

* without a window, every metric is measured once, now, and that one measurement decides
  (``decide.backtest.one_shot``);
* with ``--from``/``--to`` (Prometheus metrics only), measurements fall where the daemon would
  have taken them in that window, each Prometheus query sent with ``time=<that moment>``.

The verdict's phase gives the exit code: 0 Successful, 1 anything else. The JSON shape is a
contract: see ``docs/analyze-json.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from shiftd.cli.ctl.common import EXIT_FAILED, EXIT_OK, Obj, UsageError
from shiftd.cli.ctl.files import Manifest, load_manifests
from shiftd.cli.ctl.planning import format_seconds
from shiftd.config import AnalysisSettings
from shiftd.decide.analysis.backtest import (
    Due,
    Outcome,
    one_shot,
    replay,
)
from shiftd.decide.analysis.expr import ExprSyntaxError, compile_condition, evaluate_condition
from shiftd.decide.analysis.machine import SUCCESSFUL, dry_run_metrics
from shiftd.decide.rollout.status import format_time
from shiftd.model.argo.analysis import Metric, merge_args, parse_metric, substitute_all
from shiftd.model.argo.rollout import InvalidSpecError
from shiftd.providers import ProviderSettings, provider_for
from shiftd.providers.measure import ProviderFactory, take_measurement
from shiftd.providers.registry import REPLAYABLE_PROVIDERS, provider_as_of

__all__ = [
    "ANALYSIS_KINDS",
    "Analysis",
    "Report",
    "exit_code",
    "load_analysis",
    "render_report",
    "report_document",
    "run_analysis",
]

ANALYSIS_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun")
_RETRIES = 3  # transient provider failures, as the daemon's analysis task retries them
_VALUE_WIDTH = 60  # longer values are cut in the table (never in -o json)


@dataclass(frozen=True, slots=True)
class Source:
    file: str
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Analysis:
    """One run's worth of metrics, args filled in, ready to measure."""

    sources: tuple[Source, ...]
    spec: Mapping[str, Any]  # the merged run spec: metrics (rendered), args, dryRun, ...
    metrics: tuple[Metric, ...]
    args: Mapping[str, str]
    settings: ProviderSettings


@dataclass(frozen=True, slots=True)
class Report:
    analysis: Analysis
    window: tuple[datetime, datetime] | None  # None: measured once
    outcome: Outcome


# --- loading ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Origin:
    source: Source
    path: str  # spec.metrics[i] within its file's object


def _merge(manifests: Sequence[Manifest]) -> tuple[list[Obj], list[_Origin], list[Obj], Obj]:
    metrics: list[Obj] = []
    origins: list[_Origin] = []
    declared: list[Obj] = []
    extra: Obj = {}
    for manifest in manifests:
        spec = manifest.obj.get("spec") or {}
        source = Source(manifest.source, manifest.kind, manifest.name)
        raw_metrics = spec.get("metrics")
        if not isinstance(raw_metrics, list) or not raw_metrics:
            raise UsageError(f"{source.file}: {source.kind} {source.name}: spec.metrics: at "
                             "least one metric is required")
        for index, metric in enumerate(raw_metrics):
            if not isinstance(metric, dict):
                raise UsageError(f"{source.file}: {source.kind} {source.name}: "
                                 f"spec.metrics[{index}] must be an object")
            metrics.append(copy.deepcopy(metric))
            origins.append(_Origin(source, f"spec.metrics[{index}]"))
        for arg in spec.get("args") or []:
            if isinstance(arg, dict) and all(a["name"] != arg.get("name") for a in declared):
                declared.append(dict(arg))
        for key in ("dryRun", "measurementRetention"):
            extra.setdefault(key, []).extend(spec.get(key) or [])
    return metrics, origins, declared, {k: v for k, v in extra.items() if v}


def _arg_values(declared: Sequence[Obj], given: Sequence[tuple[str, str]]) -> dict[str, str]:
    names = [str(arg.get("name")) for arg in declared]
    for name, _ in given:
        if name not in names:
            known = ", ".join(names) or "none"
            raise UsageError(f"--arg {name}: the templates declare no such arg "
                             f"(declared: {known})")
    merged = merge_args(declared, [{"name": name, "value": value} for name, value in given])
    values: dict[str, str] = {}
    for arg in merged:
        if arg.get("value") is None:
            how = " (its valueFrom is resolved only in the cluster)" if arg.get("valueFrom") \
                else ""
            raise UsageError(f"args.{arg['name']} has no value{how}: give "
                             f"--arg {arg['name']}=VALUE")
        values[str(arg["name"])] = str(arg["value"])
    return values


def _checked(raw: Obj, origin: _Origin) -> Metric:
    where = f"{origin.source.file}: {origin.source.kind} {origin.source.name}: {origin.path}"
    try:
        metric = parse_metric(raw, path=origin.path)
    except InvalidSpecError as error:
        raise UsageError(f"{origin.source.file}: {origin.source.kind} {origin.source.name}: "
                         f"{error}") from None
    for key, source in (("successCondition", metric.success_condition),
                        ("failureCondition", metric.failure_condition)):
        if source is None:
            continue
        try:
            compile_condition(source)
        except ExprSyntaxError as error:
            raise UsageError(f"{where}.{key}: invalid condition {source!r}: {error}") from None
    return metric


def load_analysis(paths: Sequence[str], *, args: Sequence[tuple[str, str]],
                  prometheus_address: str | None) -> Analysis:
    """The run ``paths`` describe with ``args`` filled in; ``UsageError`` if it cannot run.

    ``prometheus_address`` replaces every Prometheus metric's ``address`` (a port-forward to
    the cluster's Prometheus, say) and serves metrics that have none.
    """
    manifests = [m for m in load_manifests(paths) if m.kind in ANALYSIS_KINDS]
    if not manifests:
        raise UsageError(f"no {', '.join(ANALYSIS_KINDS[:-1])} or {ANALYSIS_KINDS[-1]} in "
                         "the given files")
    raw_metrics, origins, declared, extra = _merge(manifests)
    values = _arg_values(declared, args)
    rendered: list[Obj] = []
    for raw, origin in zip(raw_metrics, origins, strict=True):
        try:
            metric = substitute_all(raw, values)
        except InvalidSpecError as error:
            raise UsageError(f"{origin.source.file}: {origin.source.kind} "
                             f"{origin.source.name}: {origin.path}: {error}") from None
        prometheus = (metric.get("provider") or {}).get("prometheus")
        if prometheus_address and isinstance(prometheus, dict):
            prometheus["address"] = prometheus_address
        rendered.append(metric)
    metrics = tuple(_checked(raw, origin) for raw, origin in zip(rendered, origins,
                                                                 strict=True))
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"duplicate metric names across the given files: "
                         f"{', '.join(duplicates)}")
    spec: Obj = {"metrics": rendered,
                 "args": [{"name": k, "value": v} for k, v in values.items()], **extra}
    defaults = AnalysisSettings()
    settings = ProviderSettings(prometheus_default_address=prometheus_address,
                                timeout_seconds=defaults.provider_timeout)
    return Analysis(sources=tuple(Source(m.source, m.kind, m.name) for m in manifests),
                    spec=spec, metrics=metrics, args=values, settings=settings)


def check_backtest(analysis: Analysis, window: tuple[datetime, datetime]) -> None:
    """A backtest replays Prometheus only (other providers cannot answer for the past), over
    a window long enough for a first measurement."""
    others = [f"{m.name} ({m.provider_name})" for m in analysis.metrics
              if m.provider_name not in REPLAYABLE_PROVIDERS]
    if others:
        raise UsageError("--from/--to replays Prometheus metrics only (they can be asked "
                         f"about the past); not: {', '.join(others)}")
    start, end = window
    first = min(m.initial_delay_seconds for m in analysis.metrics)
    if (end - start).total_seconds() < first:
        raise UsageError(f"the window ({format_seconds((end - start).total_seconds())}) ends "
                         f"before any metric's first measurement (initialDelay "
                         f"{format_seconds(first)})")


# --- running ----------------------------------------------------------------------------------

async def _measure_all(analysis: Analysis, due: Due, *, providers: ProviderFactory,
                       clock: Callable[[], datetime]) -> dict[str, Obj]:
    by_name: dict[str, Mapping[str, Any]] = {str(m["name"]): m
                                             for m in analysis.spec["metrics"]}
    measured: dict[str, Obj] = {}
    timeout = AnalysisSettings().measurement_timeout

    async def one(metric: Metric) -> None:
        raw = by_name[metric.name]

        async def render() -> Mapping[str, Any]:
            return raw

        taken = await take_measurement(
            metric, render, providers=providers, settings=analysis.settings, now=clock,
            evaluate=evaluate_condition, time_limit=timeout, retries=_RETRIES)
        measured[metric.name] = taken.measurement

    async with anyio.create_task_group() as group:
        for metric in due.metrics:
            group.start_soon(one, metric)
    return measured


def _fixed(moment: datetime) -> Callable[[], datetime]:
    """The clock of a replayed moment: it stands still while the moment is measured."""
    return lambda: moment


async def run_analysis(analysis: Analysis, *, window: tuple[datetime, datetime] | None,
                       clock: Callable[[], datetime]) -> Report:
    """Measure once (``window`` None, at ``clock()``), or replay ``window`` (see the module
    doc). Provider trouble becomes Error measurements, never an exception."""
    if window is None:
        now = clock()
        metrics, start, end = one_shot(analysis.metrics), now, now
        providers: ProviderFactory = provider_for
    else:
        check_backtest(analysis, window)
        (start, end), metrics, providers = window, analysis.metrics, provider_as_of
    steps = replay(spec=analysis.spec, metrics=metrics, start=start, end=end)
    try:
        due = next(steps)
        while True:
            at = clock if window is None else _fixed(due.at)
            measured = await _measure_all(analysis, due, providers=providers, clock=at)
            due = steps.send(measured)
    except StopIteration as done:
        outcome: Outcome = done.value
    return Report(analysis=analysis, window=window, outcome=outcome)


def exit_code(report: Report) -> int:
    return EXIT_OK if report.outcome.phase == SUCCESSFUL else EXIT_FAILED


# --- output -----------------------------------------------------------------------------------

def _metric_document(result: Mapping[str, Any], dry: frozenset[str]) -> Obj:
    document: Obj = {"name": result["name"], "phase": result.get("phase")}
    for key in ("count", "successful", "failed", "inconclusive", "error", "consecutiveError"):
        document[key] = int(result.get(key, 0))
    document["dryRun"] = result["name"] in dry
    document["message"] = result.get("message")
    return document


def report_document(report: Report) -> Obj:
    """The ``-o json`` document (docs/analyze-json.md)."""
    analysis, outcome = report.analysis, report.outcome
    dry = dry_run_metrics(analysis.spec, analysis.metrics)
    providers = {m.name: m.provider_name for m in analysis.metrics}
    return {
        "mode": "once" if report.window is None else "backtest",
        "window": None if report.window is None else {
            "from": format_time(report.window[0]), "to": format_time(report.window[1])},
        "sources": [{"file": s.file, "kind": s.kind, "name": s.name}
                    for s in analysis.sources],
        "args": dict(analysis.args),
        "measurements": [{
            "at": format_time(step.at),
            "metric": step.metric,
            "provider": providers[step.metric],
            "dryRun": step.metric in dry,
            "phase": step.measurement["phase"],
            "value": step.measurement.get("value"),
            "message": step.measurement.get("message"),
            "metadata": dict(step.measurement.get("metadata") or {}),
            "runPhase": step.run_phase,
        } for step in outcome.timeline],
        "metrics": [_metric_document(r, dry) for r in outcome.metric_results],
        "verdict": {"phase": outcome.phase, "message": outcome.message or None,
                    "at": format_time(outcome.at), "endedBy": outcome.ended_by},
        "exitCode": exit_code(report),
    }


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _VALUE_WIDTH else text[:_VALUE_WIDTH - 1] + "…"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(rows[0]))]
    return ["".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            for row in rows]


def render_report(report: Report) -> str:
    """The default (table) output."""
    document = report_document(report)
    analysis, outcome = report.analysis, report.outcome
    names = ", ".join(f"{s.kind} {s.name}" for s in analysis.sources)
    lines: list[str] = []
    if report.window is None:
        lines.append(f"{names}: each metric measured once; that one measurement decides "
                     "(count 1, limits 0)")
        header: tuple[str, ...] = ("METRIC", "PROVIDER", "PHASE", "VALUE", "MESSAGE")
    else:
        lines.append(f"{names}: backtest from {document['window']['from']} to "
                     f"{document['window']['to']}, Prometheus asked as of each measurement")
        header = ("TIME", "AFTER", "METRIC", "PHASE", "VALUE", "RUN", "MESSAGE")
    lines.append("")
    rows: list[tuple[str, ...]] = [header]
    for entry, step in zip(document["measurements"], outcome.timeline, strict=True):
        metric = entry["metric"] + (" (dry run)" if entry["dryRun"] else "")
        value, message = _cut(entry["value"] or "-"), _cut(entry["message"] or "-")
        if report.window is None:
            rows.append((metric, entry["provider"], entry["phase"], value, message))
        else:
            after = format_seconds((step.at - report.window[0]).total_seconds())
            rows.append((entry["at"], f"+{after}", metric, entry["phase"], value,
                         entry["runPhase"], message))
    if len(rows) == 1:
        lines.append("No measurement was due in the window.")
    else:
        lines.extend(_table(rows))
    lines.append("")
    lines.append(_verdict_line(report))
    return "\n".join(lines) + "\n"


def _verdict_line(report: Report) -> str:
    outcome = report.outcome
    reason = f": {outcome.message}" if outcome.message else ""
    if report.window is None:
        return f"Verdict: {outcome.phase}{reason}"
    after = format_seconds((outcome.at - report.window[0]).total_seconds())
    if outcome.ended_by == "run":
        return f"Verdict: {outcome.phase} at {format_time(outcome.at)} (+{after}){reason}"
    return (f"Verdict: {outcome.phase} (still measuring when the window ended at "
            f"{format_time(outcome.at)}; concluded as if terminated there){reason}")
