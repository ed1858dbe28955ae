"""``shiftctl analyze``: arguments, exit codes, the table and the JSON contract.

Seed 002's AnalysisTemplate (``myapp-analysis/all.yaml``, read in place) measures against a
fake Prometheus HTTP API on a loopback port whose success rate depends on the ``time`` the
query asks about (or on the test, for queries without one). Golden files pin the table and
``-o json`` (docs/analyze-json.md) for a fixed clock; ``main`` runs in a worker thread
(it starts its own event loop) for the exit codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from shiftd.cli.ctl import main
from shiftd.cli.ctl.analyze import load_analysis, render_report, report_document, run_analysis
from shiftd.providers import ProviderSettings
from shiftd.providers.prometheus import PrometheusProvider
from tests.golden import assert_golden
from tests.support.prometheus import serve
from tests.support.world import EXAMPLES

SEED = "myapp-analysis/all.yaml"
ARGS = [("service", "myapp-canary-svc"), ("namespace", "rollouts-demo")]
ARG_FLAGS = ["--arg", "service=myapp-canary-svc", "--arg", "namespace=rollouts-demo"]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class RatePrometheus:
    """Answers instant queries with a one-series vector: ``rate(time)``; remembers the times
    asked about (``None`` for a query without one)."""

    rate: Callable[[datetime | None], float]
    times: list[datetime | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = request.query.get("time")
        at = datetime.fromtimestamp(float(raw), UTC) if raw is not None else None
        self.times.append(at)
        value = self.rate(at)
        return web.json_response({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [0, repr(value)]}]}})


@asynccontextmanager
async def fake_prometheus(rate: Callable[[datetime | None], float]
                          ) -> AsyncIterator[tuple[str, RatePrometheus]]:
    fake = RatePrometheus(rate)
    app = web.Application()
    app.router.add_get("/api/v1/query", fake.handle)
    async with serve(app) as url:
        yield url, fake


def degrading(at: datetime | None) -> float:
    """Healthy until T0+100s, then seed 002's 65 % errors."""
    assert at is not None, "a backtest query carries its time"
    return 0.99 if at < T0 + timedelta(seconds=100) else 0.35


@pytest.fixture
def in_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the examples folder, so file names in the output are the same everywhere."""
    monkeypatch.chdir(EXAMPLES)


async def shiftctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["analyze", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def usage(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["analyze", *argv])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def template_file(tmp_path: Path, **metric_fields: Any) -> str:
    """A one-metric AnalysisTemplate with ``metric_fields`` over a plain Prometheus metric."""
    metric = {"name": "rate", "successCondition": "result[0] > 0.9",
              "provider": {"prometheus": {"address": "http://127.0.0.1:1", "query": "q"}},
              **metric_fields}
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "t"}, "spec": {"metrics": [metric]}}), encoding="utf-8")
    return str(path)


# --- output, pinned -----------------------------------------------------------------------------

@pytest.mark.usefixtures("in_examples")
@pytest.mark.parametrize(("name", "rate"), [("healthy", 0.99), ("failing", 0.35)])
async def test_a_one_shot_analysis_prints_the_measurement_and_verdict_of_its_golden_file(
    name: str, rate: float,
) -> None:
    async with fake_prometheus(lambda at: rate) as (url, fake):
        analysis = load_analysis([SEED], args=ARGS, prometheus_address=url)
        report = await run_analysis(analysis, window=None, clock=lambda: T0)
    assert fake.times == [None]  # the live answer: no time pinned
    assert_golden(f"analyze-002-{name}.txt", render_report(report))
    assert_golden(f"analyze-002-{name}.json",
                  json.dumps(report_document(report), indent=2) + "\n")


@pytest.mark.usefixtures("in_examples")
async def test_a_backtest_prints_the_timeline_and_when_the_run_would_have_failed() -> None:
    async with fake_prometheus(degrading) as (url, fake):
        analysis = load_analysis([SEED], args=ARGS, prometheus_address=url)
        report = await run_analysis(analysis, window=(T0, T0 + timedelta(hours=1)),
                                    clock=lambda: T0)
    seconds = [(at - T0).total_seconds() for at in fake.times if at is not None]
    assert seconds == [60, 80, 100, 120, 140, 160]  # initialDelay 60s, interval 20s
    document = report_document(report)
    assert document["verdict"] == {
        "phase": "Failed", "at": "2026-01-01T12:02:40Z", "endedBy": "run",
        "message": 'Metric "success-rate" assessed Failed due to failed (4) > '
                   "failureLimit (3)"}
    assert document["exitCode"] == 1
    assert_golden("analyze-002-backtest.txt", render_report(report))
    assert_golden("analyze-002-backtest.json", json.dumps(document, indent=2) + "\n")


@pytest.mark.usefixtures("in_examples")
async def test_a_backtest_that_stays_healthy_ends_successful_with_the_window() -> None:
    async with fake_prometheus(degrading) as (url, _):
        analysis = load_analysis([SEED], args=ARGS, prometheus_address=url)
        report = await run_analysis(analysis, window=(T0, T0 + timedelta(seconds=90)),
                                    clock=lambda: T0)
    text = render_report(report)
    assert "Verdict: Successful (still measuring when the window ended at " \
        "2026-01-01T12:01:30Z; concluded as if terminated there)" in text
    assert report_document(report)["exitCode"] == 0


async def test_the_prometheus_provider_asks_about_its_clocks_moment_only_when_told() -> None:
    async with fake_prometheus(lambda at: 1.0) as (url, fake):
        spec = {"name": "m", "provider": {"prometheus": {"address": url, "query": "up"}}}
        for at_now in (False, True):
            provider = PrometheusProvider(settings=ProviderSettings(), now=lambda: T0,
                                          at_now=at_now)
            await provider.measure(spec)
    assert fake.times == [None, T0]


# --- exit codes ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("in_examples")
@pytest.mark.parametrize(("rate", "code"), [(0.99, 0), (0.35, 1)])
async def test_the_exit_code_is_zero_only_for_a_successful_verdict(
    rate: float, code: int, capsys: pytest.CaptureFixture[str],
) -> None:
    async with fake_prometheus(lambda at: rate) as (url, _):
        got, out, err = await shiftctl(capsys, "-f", SEED, *ARG_FLAGS,
                                       "--prometheus-address", url)
    assert (got, err) == (code, "")
    assert ("Verdict: Successful" if code == 0 else "Verdict: Failed") in out


@pytest.mark.usefixtures("in_examples")
async def test_json_output_carries_the_exit_code_and_the_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with fake_prometheus(lambda at: 0.35) as (url, _):
        code, out, _ = await shiftctl(capsys, "-f", SEED, *ARG_FLAGS,
                                      "--prometheus-address", url, "-o", "json")
    document = json.loads(out)
    assert code == document["exitCode"] == 1
    assert document["measurements"][0]["phase"] == "Failed"
    assert document["verdict"]["phase"] == "Failed"


@pytest.mark.usefixtures("in_examples")
async def test_an_unreachable_prometheus_gives_an_error_measurement_and_exit_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = await shiftctl(capsys, "-f", SEED, *ARG_FLAGS,
                                  "--prometheus-address", "http://127.0.0.1:1", "-o", "json")
    document = json.loads(out)
    assert code == 1
    assert document["measurements"][0]["phase"] == "Error"
    assert "127.0.0.1:1" in document["measurements"][0]["message"]
    assert document["verdict"]["phase"] == "Error"


async def test_a_web_metric_is_measured_once_like_any_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/health", health)
    async with serve(app) as url:
        path = template_file(tmp_path, successCondition="result == true",
                             provider={"web": {"url": f"{url}/health", "jsonPath": "{$.ok}"}})
        code, out, _ = await shiftctl(capsys, "-f", path)
    assert code == 0
    assert "rate    web       Successful  true" in out


async def test_a_backtest_over_a_window_in_the_past_asks_prometheus_as_of_each_moment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    async with fake_prometheus(lambda at: 0.99) as (url, fake):
        path = template_file(tmp_path, interval="20s", count=3)
        code, out, _ = await shiftctl(capsys, "-f", path, "--prometheus-address", url,
                                      "--from", "now-10m", "--to", "now-5m", "-o", "json")
    document = json.loads(out)
    assert code == 0
    start = datetime.fromisoformat(document["window"]["from"])
    assert [(at - start).total_seconds() for at in fake.times if at] == [0, 20, 40]
    assert document["verdict"]["endedBy"] == "run"


# --- bad input: exit 2 --------------------------------------------------------------------------

@pytest.mark.usefixtures("in_examples")
def test_a_required_arg_without_a_value_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", SEED, "--arg", "service=myapp-canary-svc")
    assert code == 2
    assert err == "error: args.namespace has no value: give --arg namespace=VALUE\n"


@pytest.mark.usefixtures("in_examples")
def test_an_arg_no_template_declares_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", SEED, *ARG_FLAGS, "--arg", "servce=x")
    assert code == 2
    assert "--arg servce: the templates declare no such arg (declared: service, namespace)" in err


@pytest.mark.parametrize("flag", ["novalue", "=value"])
def test_an_arg_that_is_not_name_equals_value_is_a_usage_error(
    flag: str, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", "x.yaml", "--arg", flag)
    assert code == 2
    assert "expected NAME=VALUE" in err


def test_a_condition_with_a_syntax_error_is_a_usage_error_with_its_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", template_file(tmp_path, successCondition="result[0] >"))
    assert code == 2
    assert "AnalysisTemplate t: spec.metrics[0].successCondition: invalid condition " \
        "'result[0] >'" in err
    assert "line 1, column" in err


def test_files_without_any_analysis_object_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", str(EXAMPLES / "asm-host-split" / "rollout.yaml"))
    assert code == 2
    assert "no AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun" in err


def test_an_unreadable_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read" in err


@pytest.mark.parametrize(("window", "message"), [
    (["--to", "now"], "--to needs --from"),
    (["--from", "now-1h", "--to", "now-2h"], "must be before --to"),
    (["--from", "last tuesday"], "invalid time 'last tuesday'"),
    (["--from", "now-1h", "--to", "now+1h"], "--to is in the future"),
    (["--from", "now-10s"], "ends before any metric's first measurement (initialDelay 1m)"),
])
def test_a_window_that_cannot_be_replayed_is_a_usage_error(
    window: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = usage(capsys, "-f", str(EXAMPLES / SEED), *ARG_FLAGS, *window)
    assert code == 2
    assert message in err


def test_a_backtest_refuses_metrics_that_cannot_answer_for_the_past(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = template_file(tmp_path, provider={"web": {"url": "http://127.0.0.1:1/"}})
    code, err = usage(capsys, "-f", path, "--from", "now-1h")
    assert code == 2
    assert "--from/--to replays Prometheus metrics only" in err
    assert "rate (web)" in err


def test_several_templates_merge_into_one_run_and_their_metric_names_must_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first = template_file(tmp_path)
    second = tmp_path / "second.yaml"
    second.write_text(Path(first).read_text(encoding="utf-8").replace("name: t", "name: u"),
                      encoding="utf-8")
    code, err = usage(capsys, "-f", first, "-f", str(second))
    assert code == 2
    assert "duplicate metric names across the given files: rate" in err


def test_an_analysis_run_file_is_read_with_its_own_args(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "myapp-6d5f-2"},
        "spec": {"args": [{"name": "svc", "value": "canary"}],
                 "metrics": [{"name": "m", "successCondition": "true",
                              "provider": {"prometheus": {"query": 'up{svc="{{args.svc}}"}'}}}]},
        "status": {"phase": "Running"}}), encoding="utf-8")
    analysis = load_analysis([str(path)], args=[], prometheus_address="http://p:9090")
    assert analysis.args == {"svc": "canary"}
    assert analysis.spec["metrics"][0]["provider"]["prometheus"] == {
        "query": 'up{svc="canary"}', "address": "http://p:9090"}
