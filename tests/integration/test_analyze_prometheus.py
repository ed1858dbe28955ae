"""``shiftctl analyze`` against a real Prometheus scraping an exporter the test drives.

Seed 002's AnalysisTemplate is used as written, its ``address`` pointed at the test's
Prometheus (or left alone with ``--prometheus-address``). For the backtest a copy measures
every 2 s from the start of the window (``initialDelay: 0``), and Prometheus is given a real
history: healthy traffic for some scrapes, then seed 002's 65 % errors. Prometheus keeps real
time, so the tests wait (polling under a deadline) for the samples they need; ``main`` runs in
a worker thread, as it starts its own event loop.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from shiftd.cli.ctl import main
from shiftd.model.argo.analysis import substitute
from tests.support.prometheus import PrometheusServer, istio_prometheus, prometheus_binary
from tests.support.world import EXAMPLES

pytestmark = pytest.mark.skipif(prometheus_binary() is None,
                                reason="Debian's prometheus is not installed")

Obj = dict[str, Any]
SEED = EXAMPLES / "myapp-analysis" / "all.yaml"
ARGS = {"service": "myapp-canary-svc", "namespace": "rollouts-demo"}
ARG_FLAGS = [flag for name, value in ARGS.items() for flag in ("--arg", f"{name}={value}")]
HOST = "myapp-canary-svc.rollouts-demo.svc.cluster.local"
OK_SERIES = f'istio_requests_total{{destination_service="{HOST}",response_code="200"}}'
HEALTHY = {"200": 100}
FAILING = {"200": 35, "500": 65}  # seed 002's 65% errors


def seed_template() -> Obj:
    documents = yaml.safe_load_all(SEED.read_text(encoding="utf-8"))
    template: Obj = next(d for d in documents if d and d["kind"] == "AnalysisTemplate")
    return template


def template_copy(tmp_path: Path, prometheus: PrometheusServer, **metric_fields: Any) -> str:
    """Seed 002's template with its address pointed at ``prometheus`` (and ``metric_fields``)."""
    template = seed_template()
    metric = template["spec"]["metrics"][0]
    metric["provider"]["prometheus"]["address"] = prometheus.url
    metric.update(metric_fields)
    path = tmp_path / "istio-success-rate.yaml"
    path.write_text(yaml.safe_dump(template), encoding="utf-8")
    return str(path)


def seed_query() -> str:
    query: str = seed_template()["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    return substitute(query, ARGS)


async def shiftctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["analyze", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def success_rate_at(prometheus: PrometheusServer, at: datetime) -> list[float]:
    """The seed's query as Prometheus answers it for ``at`` (asked directly, not by shiftd)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
            session.get(f"{prometheus.url}/api/v1/query",
                        params={"query": seed_query(), "time": str(at.timestamp())}) as answer:
        document = await answer.json()
    return [float(series["value"][1]) for series in document["data"]["result"]]


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def whole_second_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def test_seed_002_on_a_healthy_canary_succeeds_with_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    async with istio_prometheus() as (prometheus, exporter):
        exporter.traffic(destination_service=HOST, per_scrape=HEALTHY)
        await prometheus.wait_for_samples(OK_SERIES, 3)
        code, out, err = await shiftctl(capsys, "-f", template_copy(tmp_path, prometheus),
                                        *ARG_FLAGS)
    assert (code, err) == (0, "")
    assert "success-rate  prometheus  Successful  [1]" in out
    assert out.endswith("Verdict: Successful\n")


async def test_seed_002_on_a_canary_with_65_percent_errors_fails_with_exit_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    async with istio_prometheus() as (prometheus, exporter):
        exporter.traffic(destination_service=HOST, per_scrape=FAILING)
        await prometheus.wait_for_samples(OK_SERIES, 3)
        code, out, _ = await shiftctl(capsys, "-f", template_copy(tmp_path, prometheus),
                                      *ARG_FLAGS, "-o", "json")
        verbatim, text, _ = await shiftctl(capsys, "-f", str(SEED), *ARG_FLAGS,
                                           "--prometheus-address", prometheus.url)
    document = json.loads(out)
    (measurement,) = document["measurements"]
    assert code == verbatim == 1
    assert measurement["phase"] == "Failed"
    assert 0.3 < float(measurement["value"].strip("[]")) < 0.4
    assert document["verdict"]["message"] == \
        'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
    assert 'Verdict: Failed: Metric "success-rate" assessed Failed' in text


async def test_a_backtest_reports_the_moment_a_canary_that_turned_bad_would_have_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    async with istio_prometheus() as (prometheus, exporter):
        exporter.traffic(destination_service=HOST, per_scrape=HEALTHY)
        await prometheus.wait_for_samples(OK_SERIES, 3)
        start = whole_second_now()
        await prometheus.wait_for_more_samples(OK_SERIES, 6)
        turned = datetime.now(UTC)
        exporter.traffic(destination_service=HOST, per_scrape=FAILING)
        # The 2m rate falls below the threshold some scrapes later; then let four more
        # 2 s measurements' worth of failing samples be stored.
        await prometheus.wait_for(seed_query(), lambda values: bool(values) and values[0] < 0.9,
                                  timeout=60, what="the success rate to fall below 0.9")
        await prometheus.wait_for_more_samples(OK_SERIES, 10)
        end = whole_second_now()
        path = template_copy(tmp_path, prometheus, initialDelay="0s", interval="2s")
        code, out, _ = await shiftctl(capsys, "-f", path, *ARG_FLAGS, "--from", rfc3339(start),
                                      "--to", rfc3339(end), "-o", "json")
        healthy_code, healthy_out, _ = await shiftctl(
            capsys, "-f", path, *ARG_FLAGS, "--from", rfc3339(start),
            "--to", rfc3339(turned - timedelta(seconds=1)))
        document = json.loads(out)
        moments = [parse(m["at"]) for m in document["measurements"]]
        failed = [parse(m["at"]) for m in document["measurements"] if m["phase"] == "Failed"]
        assert failed, document
        as_of_first_failure = await success_rate_at(prometheus, failed[0])
        as_of_just_before = await success_rate_at(prometheus, failed[0] - timedelta(seconds=2))

    assert code == 1
    verdict = document["verdict"]
    assert (verdict["phase"], verdict["endedBy"]) == ("Failed", "run")
    assert verdict["message"] == \
        'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'
    # Measured as the daemon would have: from the window's start, every 2 s, until the 4th
    # failure; Prometheus answered each as of its moment.
    assert moments[0] == start
    assert all(b - a == timedelta(seconds=2) for a, b in pairwise(moments))
    assert parse(verdict["at"]) == moments[-1] == failed[3] < end
    assert all(m["phase"] == "Successful" for m in document["measurements"]
               if parse(m["at"]) < turned)
    assert failed[0] > turned
    assert as_of_first_failure[0] < 0.9
    assert not as_of_just_before or as_of_just_before[0] > 0.9
    # The same window cut before the errors began: still measuring, so Successful.
    assert healthy_code == 0
    assert "Verdict: Successful (still measuring when the window ended at" in healthy_out
