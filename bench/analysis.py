"""Benchmark: N AnalysisRuns, each measuring seed 002's success rate every 10 s, real Prometheus.

Three processes besides this one, so their CPU time is not charged to the daemon:

* the cluster (``emulator_server.py``, started as ``bench/rollouts.py`` starts it);
* an exporter (this script with ``--serve-exporter``) serving ``istio_requests_total`` for
  N canary services, each with steady traffic (99 % 200s, 1 % 500s: 2N series) that grows by
  a fixed step on every scrape;
* Debian's ``/usr/bin/prometheus`` scraping it every ``--scrape-interval`` (started the way
  ``tests/support/prometheus.py`` starts it; the few lines needed are repeated here so the
  benchmark knows the process id it reads CPU time from).

The real ``shiftd.assembly.Daemon`` runs here on the wall clock (the Prometheus is real,
so time must be). The daemon measures only AnalysisRuns controlled by a Rollout it handles, so
the runs are made the way they are in production:

1. wait until Prometheus holds two samples of every series (``rate(...[2m])`` has data);
2. seed N Rollouts (``emulator_server.py``'s shape: ``bench-NNNNN`` with its ``-canary`` and
   ``-stable`` Services and VirtualService), create seed 002's AnalysisTemplate
   (``shared/examples/myapp-analysis``: its query, ``successCondition`` and ``failureLimit``
   as written; ``interval`` ``--interval``, no ``initialDelay``, the benchmark's Prometheus as
   ``address``) and give every Rollout the seed's background analysis (its ``service`` arg
   the Rollout's canary Service) and steps ``setWeight 10, pause {}``;
3. start the daemon, wait until every Rollout is Healthy, then give each a new image, spread
   evenly over ``--spread`` seconds (one interval by default, as unrelated Rollouts would
   start; ``--spread 0``: all at once). Each pauses at weight 10 with one background run that
   measures every interval for as long as the benchmark lasts;
4. once every run has two measurements and ``--warmup`` seconds have passed, measure a
   window of ``--duration`` wall seconds.

Timing. The daemon's ``AnalysisController`` is built with a provider factory that wraps
``provider_for`` (``providers=``; swapped in while the daemon starts, since ``Daemon`` takes
no factory) and records ``time.time()`` when each measurement reaches the factory (just after
the run's ``startedAt`` is read), when its query is sent (after the concurrency limiter) and
when the answer is in; the daemon's clock (a ``SystemClock`` that also notes the reading
``take_measurement`` makes for ``finishedAt``) gives the exact finish. A measurement is due
when the daemon's own schedule says so: the previous ``finishedAt`` as written (second
precision, as Kubernetes and Argo write times) plus ``interval``. Lateness = query sent - due.
A run's first measurement is reported separately (new image -> first query).

Reported: lateness p50/p99/max (and the part of it before the measurement began: timers,
queue and reconcile), measurements per second against N / interval, query time, the daemon
process's CPU over the window (seconds, % of one core, per measurement), Prometheus's, the
exporter's and the emulator's, the requests the daemon made per measurement, GC pauses, RSS,
and a check that every run's status agrees with the record (count and each ``finishedAt``).
Exits 1 when p99 lateness exceeds ``--budget-lateness`` (1 s), a run went unmeasured in the
window, a measurement was an Error, or a status disagrees.

    .venv/bin/python bench/analysis.py --runs 500
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

import aiohttp
import anyio
import orjson
import yaml
from aiohttp import web
from rollouts import GcPauses, count_requests, cpu_seconds, emulator_process, percentile, rss_mib

import shiftd.assembly as daemon_module
from shiftd.assembly import Daemon
from shiftd.config import parse_settings
from shiftd.controllers.analysisrun import AnalysisController
from shiftd.decide.rollout.observed import parse_time
from shiftd.kube.client import KubeClient
from shiftd.kube.resources import ANALYSIS_RUN, ANALYSIS_TEMPLATE, ROLLOUT
from shiftd.logs import configure_logging
from shiftd.providers.base import Clock, Measurement, MetricProvider, ProviderSettings, provider_for
from shiftd.runtime.clock import SystemClock

HERE = Path(__file__).resolve().parent
SEED = "myapp-analysis"
Obj = dict[str, Any]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SERVICE = re.compile(r"bench-(\d{5})-canary")
# The Rollouts' steps: canary at 10 %, then paused indefinitely with the background analysis
# measuring for as long as the benchmark runs.
STEPS: list[Obj] = [{"setWeight": 10}, {"pause": {}}]


def service_name(index: int) -> str:
    return f"bench-{index:05d}-canary"


def host_name(index: int, namespace: str) -> str:
    return f"{service_name(index)}.{namespace}.svc.cluster.local"


# --- the exporter subprocess -------------------------------------------------------------------


class Exporter:
    """``istio_requests_total{destination_service, reporter="source", response_code}`` for
    ``services`` canary hosts; every scrape first adds ``per_scrape[code]`` to each counter."""

    def __init__(self, hosts: Sequence[str], per_scrape: Mapping[str, float]) -> None:
        self._series = [(f'istio_requests_total{{destination_service="{host}",'
                         f'reporter="source",response_code="{code}"}}', step)
                        for host in hosts for code, step in sorted(per_scrape.items())]
        self._values = [0.0] * len(self._series)
        self.scrapes = 0

    def exposition(self) -> str:
        lines = ["# HELP istio_requests_total Requests seen by the proxies.",
                 "# TYPE istio_requests_total counter"]
        for position, (series, step) in enumerate(self._series):
            self._values[position] += step
            lines.append(f"{series} {self._values[position]:g}")
        self.scrapes += 1
        return "\n".join(lines) + "\n"

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.exposition(), content_type="text/plain", charset="utf-8")


async def serve_exporter(services: int, namespace: str) -> None:
    """``--serve-exporter``: serve until stdin closes; prints ``{"url"}`` once listening."""
    exporter = Exporter([host_name(i, namespace) for i in range(services)],
                        {"200": 99.0, "500": 1.0})
    app = web.Application()
    app.router.add_get("/metrics", exporter.metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        print(orjson.dumps({"url": f"http://{host}:{port}"}).decode(), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
    finally:
        await runner.cleanup()


@contextmanager
def child(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess stopped on exit: stdin closed, then SIGTERM, then SIGKILL."""
    process = subprocess.Popen(command, **popen)
    try:
        yield process
    finally:
        if process.stdin is not None:
            process.stdin.close()
        for stop in (None, process.terminate, process.kill):
            if stop is not None:
                stop()
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


@contextmanager
def exporter_process(services: int, namespace: str) -> Iterator[tuple[str, int]]:
    """This script with ``--serve-exporter``; yields its URL and process id."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-exporter",
               "--runs", str(services), "--namespace", namespace]
    with child(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the exporter process exited before it was ready")
        yield orjson.loads(line)["url"], process.pid


# --- Prometheus --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def prometheus_process(workdir: Path, target: str,
                       scrape_interval: str) -> Iterator[tuple[str, int, Path]]:
    """Debian's Prometheus scraping ``target``; yields its URL, process id and log path.

    As in ``tests/support/prometheus.py``: a JSON (hence YAML) configuration, storage in a
    temporary directory, a free loopback port. Readiness is awaited by the caller.
    """
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval},
        "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": [target]}]}],
    }), encoding="utf-8")
    port = free_port()
    log_path = workdir / "prometheus.log"
    with open(log_path, "wb") as log, child(
            ["/usr/bin/prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT) as process:
        yield f"http://127.0.0.1:{port}", process.pid, log_path


async def prometheus_values(session: aiohttp.ClientSession, url: str, query: str) -> list[float]:
    async with session.get(f"{url}/api/v1/query", params={"query": query}) as answer:
        document = await answer.json()
    if document.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {query!r}: {document}")
    return [float(series["value"][1]) for series in document["data"]["result"]]


async def wait_for_samples(session: aiohttp.ClientSession, url: str, series: int) -> None:
    """Until Prometheus answers and holds two samples of each of ``series`` series."""
    query = "count(count_over_time(istio_requests_total[2m]) >= 2)"
    while True:
        try:
            if await prometheus_values(session, url, query) == [float(series)]:
                return
        except (aiohttp.ClientError, ValueError, RuntimeError):
            pass  # not up yet
        await anyio.sleep(0.5)


# --- process accounting ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessUsage:
    cpu_seconds: float
    rss_mib: float


def process_usage(pid: int) -> ProcessUsage:
    """CPU time (user + system) and resident set size of another process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return ProcessUsage(cpu, rss)


# --- recording measurements --------------------------------------------------------------------


@dataclass
class Call:
    """One measurement of one run as the provider saw it (``time.time()`` seconds)."""

    began: float  # the provider factory was called: just after ``startedAt`` was taken
    sent: float = math.nan  # the first query went out (after the concurrency limiter)
    done: float = math.nan  # the last answer was in
    finished: float = math.nan  # the daemon's clock read for ``finishedAt`` (before rounding)
    error: str = ""


class RecordingClock:
    """The wall clock (``SystemClock``), noting for a measurement the moment its
    ``finishedAt`` is read: the first ``now()`` in the measuring task after the provider's
    answer (``take_measurement`` reads no other time in between)."""

    def __init__(self) -> None:
        self._system = SystemClock()
        self._waiting: dict[asyncio.Task[Any], Call] = {}

    def now(self) -> datetime:
        moment = self._system.now()
        if self._waiting:
            task = asyncio.current_task()
            call = self._waiting.pop(task, None) if task is not None else None
            if call is not None:
                call.finished = moment.timestamp()
        return moment

    async def sleep_until(self, when: datetime) -> None:
        await self._system.sleep_until(when)

    def expect_finish(self, call: Call) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._waiting[task] = call


class Recorder:
    """A ``ProviderFactory`` wrapping ``provider_for`` that timestamps every measurement."""

    def __init__(self, clock: RecordingClock) -> None:
        self.calls: dict[int, list[Call]] = {}
        self.clock = clock

    def factory(self, metric: Mapping[str, Any], *, settings: ProviderSettings,
                now: Clock | None = None) -> MetricProvider:
        call = Call(began=time.time())
        inner = provider_for(metric, settings=settings, now=now)
        query = str(((metric.get("provider") or {}).get("prometheus") or {}).get("query"))
        found = _SERVICE.search(query)
        if found is not None:
            self.calls.setdefault(int(found.group(1)), []).append(call)
        return TimedProvider(inner, call, self.clock)

    def measurements(self, index: int, interval: float) -> tuple[list[Call], int]:
        """Run ``index``'s measurements as its status holds them, and how many were dropped.

        When a run is created the daemon may measure it twice in a row: the second reconcile
        reads the cached run before the watch brings the first one's status back, and its
        status write is refused (409, resourceVersion), so the status keeps the first. A
        measurement beginning less than half an interval after the one before is such a
        duplicate.
        """
        kept: list[Call] = []
        dropped = 0
        for call in self.calls.get(index, []):
            if kept and call.began - kept[-1].began < interval / 2:
                dropped += 1
            else:
                kept.append(call)
        return kept, dropped


class TimedProvider:
    def __init__(self, inner: MetricProvider, call: Call, clock: RecordingClock) -> None:
        self._inner = inner
        self._call = call
        self._clock = clock

    async def measure(self, metric: Mapping[str, Any], *,
                      variables: Mapping[str, str] | None = None) -> Measurement:
        if math.isnan(self._call.sent):
            self._call.sent = time.time()
        try:
            return await self._inner.measure(metric, variables=variables)
        except Exception as error:
            self._call.error = str(error)
            raise
        finally:
            self._call.done = time.time()
            self._clock.expect_finish(self._call)


@contextmanager
def recorded_providers(recorder: Recorder) -> Iterator[None]:
    """While the daemon starts, its AnalysisController gets ``recorder.factory``."""
    factory = functools.partial(AnalysisController, providers=recorder.factory)
    with mock.patch.object(daemon_module, "AnalysisController", factory):
        yield


# --- the run -----------------------------------------------------------------------------------


def seed_documents(path: Path) -> tuple[Obj, Obj]:
    """The seed's AnalysisTemplate and its Rollout's ``strategy.canary.analysis``."""
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    template = next(d for d in documents if d.get("kind") == "AnalysisTemplate")
    rollout = next(d for d in documents if d.get("kind") == "Rollout")
    return template, rollout["spec"]["strategy"]["canary"]["analysis"]


def bench_template(template: Obj, namespace: str, *, address: str, interval: float) -> Obj:
    """The seed's template with ``interval``, no ``initialDelay`` and the bench's Prometheus."""
    template = json.loads(json.dumps(template))
    template["metadata"] = {"name": template["metadata"]["name"], "namespace": namespace}
    for metric in template["spec"]["metrics"]:
        metric.pop("initialDelay", None)
        metric["interval"] = f"{interval:g}s"
        metric["provider"]["prometheus"]["address"] = address
    return template


def analysed_steps(index: int, analysis: Obj) -> Obj:
    """A merge patch giving Rollout ``index`` the seed's background analysis (its canary
    service as the ``service`` arg) and steps ``setWeight 10, pause {}``."""
    analysis = json.loads(json.dumps(analysis))
    for arg in analysis.get("args") or []:
        if arg["name"] == "service":
            arg["value"] = service_name(index)
    return {"spec": {"strategy": {"canary": {"analysis": analysis, "steps": STEPS}}}}


def default_seed() -> Path | None:
    for directory in (HERE, *HERE.parents):
        candidate = directory / "shared" / "examples" / SEED / "all.yaml"
        if candidate.is_file():
            return candidate
    return None


@dataclass
class Results:
    runs: int
    interval: float
    concurrency: int
    workers: int
    qps: float
    burst: int
    spread: float
    scrape_interval: str
    series: int = 0
    window_seconds: float = 0.0
    measurements: int = 0
    measurements_per_second: float = 0.0
    expected_per_second: float = 0.0
    runs_unmeasured: int = 0
    errors: int = 0
    error_sample: str = ""
    lateness_p50: float = 0.0
    lateness_p99: float = 0.0
    lateness_max: float = 0.0
    begin_lateness_p99: float = 0.0
    begin_lateness_max: float = 0.0
    limiter_wait_p99: float = 0.0
    query_p50: float = 0.0
    query_p99: float = 0.0
    query_max: float = 0.0
    gap_mean: float = 0.0
    first_lateness_p50: float = 0.0
    first_lateness_max: float = 0.0
    update_seconds: float = 0.0
    warmup_seconds: float = 0.0
    daemon_cpu_seconds: float = 0.0
    daemon_cpu_percent: float = 0.0
    daemon_cpu_ms_per_measurement: float = 0.0
    prometheus_cpu_seconds: float = 0.0
    prometheus_cpu_percent: float = 0.0
    exporter_cpu_seconds: float = 0.0
    emulator_cpu_seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    conflicts_total: int = 0
    duplicates: int = 0
    rollout_phases: dict[str, int] = field(default_factory=dict)
    window_gc: str = ""
    rss_baseline_mib: float = 0.0
    rss_mib: float = 0.0
    rss_peak_mib: float = 0.0
    prometheus_rss_mib: float = 0.0
    phases: dict[str, int] = field(default_factory=dict)
    status_mismatches: int = 0
    mismatch_sample: str = ""
    failures: list[str] = field(default_factory=list)
    stage: str = "starting"


async def emulator_usage(session: aiohttp.ClientSession, control: str) -> float:
    async with session.get(control + "/usage") as response:
        return float(orjson.loads(await response.read())["cpu_seconds"])


async def emulator_requests(session: aiohttp.ClientSession, control: str,
                            since: int) -> tuple[list[list[Any]], int]:
    async with session.get(f"{control}/requests?since={since}") as response:
        page = orjson.loads(await response.read())
    return page["rows"], int(page["next"])


async def control(session: aiohttp.ClientSession, url: str, body: Obj | None = None) -> Any:
    """GET (or POST ``body`` to) the emulator's control API."""
    method = "GET" if body is None else "POST"
    async with session.request(method, url, json=body) as response:
        response.raise_for_status()
        return orjson.loads(await response.read())


async def wait_for(session: aiohttp.ClientSession, url: str,
                   predicate: Callable[[Obj], bool]) -> Obj:
    """Poll the emulator's summary until ``predicate`` holds (callers bound the wait)."""
    while True:
        summary: Obj = await control(session, url + "/summary")
        if predicate(summary):
            return summary
        await anyio.sleep(0.2)


async def update_images(client: KubeClient, namespace: str, names: Sequence[str],
                        spread: float, updated: dict[int, float]) -> None:
    """A new image for every Rollout, the i-th at ``i * spread / N`` s from now (0: at once)."""
    start = time.monotonic()
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
              "value": "bench/app:green"}]

    async def update(index: int, name: str) -> None:
        updated[index] = time.time()
        await client.patch(ROLLOUT, namespace, name, patch, patch_type="json")

    async with anyio.create_task_group() as group:
        for index, name in enumerate(names):
            delay = start + index * spread / len(names) - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            group.start_soon(update, index, name)


def analyse(results: Results, recorder: Recorder, updated: Mapping[int, float], *,
            window: tuple[float, float]) -> None:
    """Lateness, throughput and query times of the measurements sent within ``window``."""
    start, end = window
    lateness: list[float] = []
    begin_lateness: list[float] = []
    waits: list[float] = []
    queries: list[float] = []
    gaps: list[float] = []
    first: list[float] = []
    errors: list[str] = []
    measured_runs = set()
    duplicates = 0
    for index in recorder.calls:
        calls, dropped = recorder.measurements(index, results.interval)
        duplicates += dropped
        if calls:
            first.append(calls[0].sent - updated[index])
        for position, call in enumerate(calls):
            if not start <= call.sent < end:
                continue
            measured_runs.add(index)
            waits.append(call.sent - call.began)
            queries.append(call.done - call.sent)
            if call.error:
                errors.append(call.error)
            if position == 0:
                continue  # due when the daemon created the run: reported as ``first``
            previous = calls[position - 1]
            # finishedAt is written at second precision; the schedule starts from it.
            due = math.floor(previous.finished) + results.interval
            gaps.append(call.sent - previous.done)
            lateness.append(call.sent - due)
            begin_lateness.append(call.began - due)
    results.window_seconds = end - start
    results.duplicates = duplicates
    results.measurements = len(queries)
    results.measurements_per_second = len(queries) / (end - start)
    results.expected_per_second = results.runs / results.interval
    results.runs_unmeasured = results.runs - len(measured_runs)
    results.errors = len(errors)
    results.error_sample = errors[0] if errors else ""
    results.lateness_p50 = percentile(lateness, 0.50)
    results.lateness_p99 = percentile(lateness, 0.99)
    results.lateness_max = max(lateness, default=math.nan)
    results.begin_lateness_p99 = percentile(begin_lateness, 0.99)
    results.begin_lateness_max = max(begin_lateness, default=math.nan)
    results.limiter_wait_p99 = percentile(waits, 0.99)
    results.query_p50 = percentile(queries, 0.50)
    results.query_p99 = percentile(queries, 0.99)
    results.query_max = max(queries, default=math.nan)
    results.gap_mean = sum(gaps) / len(gaps) if gaps else math.nan
    results.first_lateness_p50 = percentile(first, 0.50)
    results.first_lateness_max = max(first, default=math.nan)


def check_statuses(results: Results, recorder: Recorder, runs: Sequence[Obj]) -> None:
    """Every run's status agrees with what was recorded: measurement count, and the
    ``finishedAt`` of each retained measurement is the recorded clock reading, rounded."""
    phases: Counter[str] = Counter()
    mismatches: list[str] = []
    for run in runs:
        status = run.get("status") or {}
        phases[str(status.get("phase"))] += 1
        name = run["metadata"]["name"]
        args = {arg["name"]: arg.get("value") for arg in run["spec"].get("args") or []}
        found = _SERVICE.search(str(args.get("service")))
        calls, _ = recorder.measurements(int(found.group(1)) if found else -1,
                                         results.interval)
        (result,) = status.get("metricResults") or [{}]
        taken = int(result.get("count", 0)) + int(result.get("error", 0))
        # The daemon may be measuring right now: its latest call need not be written yet.
        if taken not in (len(calls), len(calls) - 1):
            mismatches.append(f"{name}: status counts {taken}, recorded {len(calls)}")
            continue
        stored = result.get("measurements") or []
        for measurement, call in zip(reversed(stored), reversed(calls[:taken]), strict=False):
            finished = parse_time(str(measurement.get("finishedAt")))
            if finished is None or finished.timestamp() != math.floor(call.finished):
                mismatches.append(f"{name}: finishedAt {measurement.get('finishedAt')} vs "
                                  f"recorded {call.finished:.3f}")
                break
    results.phases = dict(phases)
    results.status_mismatches = len(mismatches)
    results.mismatch_sample = mismatches[0] if mismatches else ""


async def run(args: argparse.Namespace, results: Results, workdir: Path,
              log_stream: TextIO) -> None:
    """Fill ``results`` in; ``results.stage`` says how far it got if a wait times out."""
    n, namespace = args.runs, args.namespace
    results.rss_baseline_mib = rss_mib()[0]
    template, analysis = seed_documents(args.seed)
    names = [f"bench-{i:05d}" for i in range(n)]  # as emulator_server.py seeds them
    timeout = max(120.0, n * 0.2)
    with emulator_process(workdir, namespace) as cluster, \
            exporter_process(n, namespace) as (exporter_url, exporter_pid), \
            prometheus_process(workdir, exporter_url.removeprefix("http://"),
                               args.scrape_interval) as (prometheus, prometheus_pid, _):
        async with aiohttp.ClientSession() as session:
            results.stage = "waiting for Prometheus to hold two samples of every series"
            results.series = 2 * n
            with anyio.fail_after(120):
                await wait_for_samples(session, prometheus, results.series)

            # N Rollouts with the seed's background analysis, created before the daemon runs.
            results.stage = "seeding"
            await control(session, cluster.control + "/seed",
                          {"count": n, "namespace": namespace, "image": "bench/app:blue"})
            creator = await KubeClient.from_settings(
                kubeconfig=str(cluster.kubeconfig), context=None, in_cluster=False,
                qps=10_000, burst=10_000)
            try:
                await creator.create(ANALYSIS_TEMPLATE, namespace, bench_template(
                    template, namespace, address=prometheus, interval=args.interval))
                async with anyio.create_task_group() as group:
                    for index, name in enumerate(names):
                        group.start_soon(functools.partial(
                            creator.patch, ROLLOUT, namespace, name,
                            analysed_steps(index, analysis), patch_type="merge"))

                settings = parse_settings({
                    "kubernetes": {"kubeconfig": str(cluster.kubeconfig), "qps": args.qps,
                                   "burst": args.burst},
                    "namespaces": [namespace],
                    "listen": {"port": 0},
                    "workers": args.workers,
                    "log": {"level": args.log_level},
                    "analysis": {"concurrency": args.concurrency},
                })
                configure_logging(args.log_level, "json", stream=log_stream)
                clock = RecordingClock()
                recorder = Recorder(clock)
                daemon = Daemon(settings, clock=clock)
                async with anyio.create_task_group() as group:
                    with recorded_providers(recorder):
                        await group.start(daemon.run)
                    results.stage = "waiting for every Rollout to be Healthy"
                    with anyio.fail_after(timeout):
                        await wait_for(session, cluster.control,
                                       lambda s: s["phases"].get("Healthy") == n)

                    # A new revision per Rollout, spread over --spread seconds: each pauses at
                    # weight 10 and its background analysis measures from then on.
                    results.stage = "updating the Rollouts"
                    updated: dict[int, float] = {}
                    began = time.monotonic()
                    await update_images(creator, namespace, names, args.spread, updated)
                    results.update_seconds = time.monotonic() - began
                    results.stage = "warming up"
                    with anyio.fail_after(timeout):
                        while (time.monotonic() - began < args.warmup  # noqa: ASYNC110
                               or min(len(recorder.measurements(i, args.interval)[0])
                                      for i in range(n)) < 2):
                            await anyio.sleep(0.5)
                    results.warmup_seconds = time.monotonic() - began

                    # The window.
                    results.stage = "measuring"
                    emulator_before = await emulator_usage(session, cluster.control)
                    prometheus_before = process_usage(prometheus_pid)
                    exporter_before = process_usage(exporter_pid)
                    profiler = cProfile.Profile() if args.profile else None
                    cpu_before = cpu_seconds()
                    start, monotonic_start = time.time(), time.monotonic()
                    if profiler is not None:
                        profiler.enable()
                    with GcPauses() as collector:
                        await anyio.sleep(args.duration)
                    if profiler is not None:
                        profiler.disable()
                    end, monotonic_end = time.time(), time.monotonic()
                    daemon_cpu = cpu_seconds() - cpu_before
                    prometheus_after = process_usage(prometheus_pid)
                    exporter_after = process_usage(exporter_pid)
                    emulator_after = await emulator_usage(session, cluster.control)
                    rows, _ = await emulator_requests(session, cluster.control, 0)
                    results.rss_mib, results.rss_peak_mib = rss_mib()
                    if profiler is not None:
                        profiler.dump_stats(args.profile)

                    window = end - start
                    results.window_gc = collector.describe()
                    results.daemon_cpu_seconds = daemon_cpu
                    results.daemon_cpu_percent = 100 * daemon_cpu / window
                    results.prometheus_cpu_seconds = (prometheus_after.cpu_seconds
                                                      - prometheus_before.cpu_seconds)
                    results.prometheus_cpu_percent = 100 * results.prometheus_cpu_seconds / window
                    results.prometheus_rss_mib = prometheus_after.rss_mib
                    results.exporter_cpu_seconds = (exporter_after.cpu_seconds
                                                    - exporter_before.cpu_seconds)
                    results.emulator_cpu_seconds = emulator_after - emulator_before
                    in_window = [row for row in rows
                                 if monotonic_start <= row[4] < monotonic_end and not row[3]]
                    results.requests = {f"{verb} {kind}": count for (verb, kind), count
                                        in sorted(count_requests(in_window).items())}
                    results.conflicts = sum(1 for row in in_window if row[2] == 409)
                    results.conflicts_total = sum(
                        1 for row in rows if row[2] == 409 and "/analysisruns/" in row[1])
                    analyse(results, recorder, updated, window=(start, end))
                    if results.measurements:
                        results.daemon_cpu_ms_per_measurement = (
                            1000 * daemon_cpu / results.measurements)

                    results.stage = "checking the runs' statuses"
                    summary = await control(session, cluster.control + "/summary")
                    results.rollout_phases = dict(summary["phases"])
                    daemon.stop()
                    items, _ = await creator.list(ANALYSIS_RUN, namespace)
                    check_statuses(results, recorder, items)
                    group.cancel_scope.cancel()
            finally:
                await creator.close()


# --- reporting -------------------------------------------------------------------------------


def check_budgets(results: Results, args: argparse.Namespace) -> list[str]:
    missed = list(results.failures)
    if not results.lateness_p99 <= args.budget_lateness:
        missed.append(f"p99 lateness {results.lateness_p99:.3f}s > {args.budget_lateness}s")
    if results.runs_unmeasured:
        missed.append(f"{results.runs_unmeasured} runs not measured in the window")
    if results.errors:
        missed.append(f"{results.errors} Error measurements ({results.error_sample})")
    if results.status_mismatches:
        missed.append(f"{results.status_mismatches} run statuses disagree with the record "
                      f"({results.mismatch_sample})")
    return missed


def render(results: Results, missed: Sequence[str]) -> str:
    r = results
    lines = [
        f"shiftd analysis benchmark: {r.runs} AnalysisRuns every {r.interval:g} s, "
        f"concurrency {r.concurrency}, workers {r.workers}, qps {r.qps:g}, burst {r.burst}, "
        f"spread {r.spread:g} s, "
        f"{r.series} series scraped every {r.scrape_interval}",
        "",
        f"{'metric':<52}{'value':>16}",
        f"{'-' * 68}",
    ]

    def row(name: str, value: str) -> None:
        lines.append(f"{name:<52}{value:>16}")

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    row("Rollouts updated in", f"{r.update_seconds:.2f} s")
    row("new image -> first query, p50", ms(r.first_lateness_p50))
    row("new image -> first query, max", ms(r.first_lateness_max))
    row("warm-up (first update -> window)", f"{r.warmup_seconds:.1f} s")
    row("window (wall)", f"{r.window_seconds:.1f} s")
    row("measurements in the window", f"{r.measurements}")
    row("measurements per second (N / interval)",
        f"{r.measurements_per_second:.1f} ({r.expected_per_second:.1f})")
    row("runs not measured in the window", f"{r.runs_unmeasured}")
    row("Error measurements", f"{r.errors}")
    row("lateness (query sent - due), p50", ms(r.lateness_p50))
    row("lateness, p99", ms(r.lateness_p99))
    row("lateness, max", ms(r.lateness_max))
    row("  of which before the measurement began, p99", ms(r.begin_lateness_p99))
    row("  of which before the measurement began, max", ms(r.begin_lateness_max))
    row("  concurrency limiter wait, p99", ms(r.limiter_wait_p99))
    row("previous end -> next query sent, mean", f"{r.gap_mean:.2f} s")
    row("query time, p50 / p99 / max",
        f"{r.query_p50 * 1000:.0f}/{r.query_p99 * 1000:.0f}/{r.query_max * 1000:.0f} ms")
    row("daemon CPU in the window", f"{r.daemon_cpu_seconds:.2f} s")
    row("daemon CPU, % of one core", f"{r.daemon_cpu_percent:.1f} %")
    row("daemon CPU per measurement", f"{r.daemon_cpu_ms_per_measurement:.2f} ms")
    row("Prometheus CPU in the window", f"{r.prometheus_cpu_seconds:.2f} s")
    row("Prometheus CPU, % of one core", f"{r.prometheus_cpu_percent:.1f} %")
    row("exporter CPU in the window", f"{r.exporter_cpu_seconds:.2f} s")
    row("emulator CPU in the window", f"{r.emulator_cpu_seconds:.2f} s")
    row("requests in the window answered 409", f"{r.conflicts}")
    row("duplicate measurements at run start (409s)", f"{r.duplicates} ({r.conflicts_total})")
    lines.append(f"  daemon GC in the window: {r.window_gc}")
    row("daemon RSS before start / end / peak",
        f"{r.rss_baseline_mib:.0f}/{r.rss_mib:.0f}/{r.rss_peak_mib:.0f} MiB")
    row("Prometheus RSS at end", f"{r.prometheus_rss_mib:.0f} MiB")
    row("run phases at end", ", ".join(f"{k} {v}" for k, v in sorted(r.phases.items())))
    row("Rollout phases at end",
        ", ".join(f"{k} {v}" for k, v in sorted(r.rollout_phases.items())))
    row("run statuses disagreeing with the record", f"{r.status_mismatches}")
    lines += ["", "requests in the window, per measurement"]
    for name, count in r.requests.items():
        row(f"  {name}", f"{count / max(1, r.measurements):.2f}")
    lines += ["", "budgets: " + ("all met" if not missed else "MISSED")]
    lines += [f"  - {reason}" for reason in missed]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--interval", type=float, default=10.0,
                        help="each metric's interval in seconds (default 10)")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="wall seconds measured (default 120)")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="wall seconds from the first run created to the window "
                             "(default 30)")
    parser.add_argument("--spread", type=float, default=None,
                        help="create the runs evenly over this many seconds (default: one "
                             "interval; 0: all at once)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="analysis.concurrency (default 32, the daemon's default)")
    parser.add_argument("--workers", type=int, default=16,
                        help="reconcile workers (default 16, the daemon's default)")
    parser.add_argument("--qps", type=float, default=2000.0,
                        help="kubernetes.qps (default 2000, as bench/rollouts.py; the "
                             "daemon's own default of 50 is too few for 500 runs)")
    parser.add_argument("--burst", type=int, default=4000)
    parser.add_argument("--scrape-interval", default="5s")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--seed", type=Path, default=default_seed(),
                        help=f"the seed's manifest (default: shared/examples/{SEED}/all.yaml)")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="the daemon's JSON log (default: a temporary file)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the benchmark process over the window; pstats here")
    parser.add_argument("--budget-lateness", type=float, default=1.0,
                        help="p99 lateness budget in seconds (default 1)")
    parser.add_argument("--serve-exporter", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.spread is None:
        args.spread = args.interval
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_exporter:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        asyncio.run(serve_exporter(args.runs, args.namespace))
        return 0
    if args.seed is None or not Path(args.seed).is_file():
        print(f"cannot find shared/examples/{SEED}/all.yaml; pass --seed", file=sys.stderr)
        return 2
    results = Results(runs=args.runs, interval=args.interval, concurrency=args.concurrency,
                      workers=args.workers,
                      qps=args.qps, burst=args.burst, spread=args.spread,
                      scrape_interval=args.scrape_interval)
    with tempfile.TemporaryDirectory(prefix="shiftd-bench-analysis-") as tmp:
        workdir = Path(tmp)
        log_path = args.log_file or workdir / "daemon.log"
        with open(log_path, "w", encoding="utf-8") as log_stream:
            timed_out = False
            try:
                anyio.run(run, args, results, workdir, log_stream)
            except* TimeoutError:
                timed_out = True
            if timed_out:
                print(f"timed out {results.stage}", file=sys.stderr)
                return 2
    missed = check_budgets(results, args)
    print(render(results, missed))
    if args.json is not None:
        args.json.write_text(json.dumps({**asdict(results), "missed": missed}, indent=2) + "\n",
                             encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
