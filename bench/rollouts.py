"""Benchmark: N canary Rollouts whose timed pauses all end at the same instant.

The cluster (``ApiEmulator`` + ``FakeKubelet``) runs in a subprocess (``emulator_server.py``);
the real ``shiftd.assembly.Daemon`` runs here on a ``ManualClock``, so "every pause
ends now" is one exact instant. The run:

1. seed N Rollouts (each with its own canary/stable Service and VirtualService, one replica,
   steps ``setWeight 10, pause 60s, setWeight 20, pause {}, ...``), start the daemon, wait
   until every Rollout is Healthy;
2. change every Rollout's image; wait until all are Paused at step 1 with weight 10, and check
   that their pauses all started at the same clock instant;
3. advance the clock by the pause's 60 s and time, per Rollout, the delay from that moment to
   the emulator answering its VirtualService PATCH (the emulator logs ``time.monotonic()``,
   which every process on the host shares);
4. with everything paused indefinitely, advance the clock 60 s more and watch ``--idle``
   seconds of wall time: the daemon must write nothing;
5. read the daemon process's RSS.

The emulator serves HTTPS (``--no-tls`` for HTTP) and stores every object with managedFields
(and the seeded ones with kubectl's last-applied annotation), as a real API server does.

Prints a table and exits 1 if a budget is missed (issue 13's):

* memory: at most ``--budget-kib-per-rollout`` (40) KiB of RSS per Rollout over the
  interpreter's before the daemon started, and RSS under ``--budget-rss-mb`` (512);
* CPU: at most ``--budget-cpu-ms`` (0.5) ms of the daemon process's CPU per Rollout for the
  step, from the pause end to the step's last weight or status write (the emulator's time of
  it; the process's CPU is sampled every 5 ms); every new weight written within
  ``--budget-latency`` seconds (default: 1 s up to 1,000 Rollouts, rising linearly to 6 s at
  10,000); no GC pause over ``--budget-gc-ms`` (50) of CPU time during the step;
* writes at the floor: per Rollout and step one VirtualService patch and one status patch,
  and nothing else but Events (this step changes no ReplicaSet's scale); no write when idle
  (nor during ``--soak``, whose RSS must stay flat).

    .venv/bin/python bench/rollouts.py --rollouts 1000
    .venv/bin/python bench/rollouts.py --rollouts 1000 --memory-report /tmp/memory.txt \
        --tracemalloc
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import anyio
import orjson
from memory import report as memory_report

from shiftd.assembly import Daemon
from shiftd.cli.eventloop import backend_options, running_loop_name
from shiftd.config import parse_settings
from shiftd.logs import configure_logging
from shiftd.runtime.clock import ManualClock

HERE = Path(__file__).resolve().parent
PAUSE_SECONDS = 60.0
Summary = dict[str, Any]
Row = list[Any]  # [method, path, status, watch, at]


# --- the emulator subprocess -------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    api: str
    control: str
    kubeconfig: Path
    process: subprocess.Popen[bytes]


@contextmanager
def emulator_process(workdir: Path, namespace: str, *, tls: bool) -> Iterator[Cluster]:
    """Start ``emulator_server.py``; it stops when its stdin closes."""
    kubeconfig = workdir / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "emulator_server.py"), "--kubeconfig", str(kubeconfig),
         "--namespace", namespace, "--tls" if tls else "--no-tls"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process exited before it was ready")
        ready = orjson.loads(line)
        yield Cluster(ready["api"], ready["control"], kubeconfig, process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Control:
    """The emulator process's control API."""

    def __init__(self, session: aiohttp.ClientSession, url: str, results: Results) -> None:
        self._session = session
        self._url = url
        self._results = results

    async def _get(self, path: str) -> Any:
        async with self._session.get(self._url + path) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    async def _post(self, path: str, body: Any) -> Any:
        async with self._session.post(self._url + path, json=body) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    async def seed(self, *, count: int, namespace: str, image: str) -> None:
        await self._post("/seed", {"count": count, "namespace": namespace, "image": image})

    async def set_image(self, image: str) -> None:
        await self._post("/set-image", {"image": image})

    async def summary(self) -> Summary:
        result: Summary = await self._get("/summary")
        self._results.last_summary = result  # reported if a wait times out
        return result

    async def requests(self, since: int) -> tuple[list[Row], int]:
        page = await self._get(f"/requests?since={since}")
        return page["rows"], int(page["next"])

    async def profile(self, *, dump: Path | None) -> None:
        await self._post("/profile", {"dump": str(dump)} if dump else {"start": True})

    async def usage(self) -> dict[str, float]:
        result: dict[str, float] = await self._get("/usage")
        return result


# --- measuring -------------------------------------------------------------------------------


class GcPauses:
    """Collector pauses of this process while active (``gc.callbacks``), as the CPU time
    the collection took (``thread_time``: on a shared machine a collection's wall time also
    counts the time the process waited for a core); the wall time is kept too. For each
    collection, how many objects it freed, and for those of generation 1 how many objects
    the collected generations held (counted before it starts, outside its time, but in the
    process's CPU: not counted for generation 2, where listing every object would cost more
    than the collection)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.longest_wall = 0.0
        # (time.monotonic() at its start, CPU seconds, generation, objects scanned, freed)
        # of every collection
        self.timeline: list[tuple[float, float, int, int, int]] = []
        self._started = (0.0, 0.0)
        self._scanned = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            # gen 1 only: listing every object for a full collection (millions at 10,000
            # Rollouts) would cost the daemon's process more CPU than the collection itself
            self._scanned = len(gc.get_objects(0)) + len(gc.get_objects(1)) \
                if generation == 1 else -1
            self._started = (time.thread_time(), time.perf_counter())
        else:
            cpu = time.thread_time() - self._started[0]
            wall = time.perf_counter() - self._started[1]
            self.pauses[generation].append(cpu)
            self.longest_wall = max(self.longest_wall, wall)
            self.timeline.append((time.monotonic() - wall, cpu, generation, self._scanned,
                                  info["collected"]))

    def longest_before(self, moment: float) -> float:
        """The longest collection (CPU) that started before ``moment`` (monotonic)."""
        return max((cpu for started, cpu, *_ in self.timeline if started < moment),
                   default=0.0)

    def describe_longest_before(self, moment: float) -> str:
        """Generation, objects scanned and freed of the longest collection before
        ``moment``, and the same for the generation-1 collections before it (median)."""
        before = [entry for entry in self.timeline if entry[0] < moment]
        if not before:
            return ""
        _, cpu, generation, scanned, freed = max(before, key=lambda entry: entry[1])
        middle = sorted(entry[3] for entry in before if entry[2] == 1)
        median = middle[len(middle) // 2] if middle else 0
        objects = "not counted" if scanned < 0 else str(scanned)
        return (f"gen{generation} {cpu * 1000:.0f} ms: {objects} objects in the collected "
                f"generations, {freed} freed; gen1 median {median} objects")

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    @property
    def longest(self) -> float:
        return max((max(times, default=0.0) for times in self.pauses.values()), default=0.0)

    def describe(self) -> str:
        total = sum(sum(times) for times in self.pauses.values())
        return ", ".join(
            f"gen{generation} {len(times)}x max {max(times, default=0.0) * 1000:.0f} ms"
            for generation, times in self.pauses.items()
        ) + f" CPU, {total * 1000:.0f} ms in all (longest {self.longest_wall * 1000:.0f} ms wall)"


def rss_mib() -> tuple[float, float]:
    """This process's resident set size now and at its peak (VmRSS, VmHWM), in MiB."""
    values: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def system_cpu_seconds() -> float:
    """The part of ``cpu_seconds`` spent in the kernel (socket sends and receives, epoll)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


class CpuTimeline:
    """This process's CPU time sampled every ``interval`` seconds of wall time (while the
    step runs), so the CPU spent up to a given instant (the emulator's time of the step's
    last write, on the same monotonic clock) can be read afterwards: the benchmark notices
    that last write only at its next poll, and by then the daemon may have begun its
    idle-time work (the collection, the Events). ``getrusage`` costs about a microsecond."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), cpu_seconds()))
            await anyio.sleep(self.interval)

    def at(self, moment: float) -> float:
        """The CPU seconds of the first sample at or after ``moment`` (else the last)."""
        return next((cpu for when, cpu in self.samples if when >= moment),
                    self.samples[-1][1] if self.samples else cpu_seconds())


def cpu_per_event_by_backlog(timeline: CpuTimeline,
                             written_at: Sequence[float]) -> tuple[float, float]:
    """Daemon CPU per Event from the first Event written to the middle one, and from there to
    the last (``written_at``: when the emulator answered each Event's write): the first half
    are written with the whole backlog waiting, the second with it draining. Equal halves mean
    an Event costs the same whatever the backlog."""
    times = sorted(written_at)
    if len(times) < 4:
        return 0.0, 0.0
    half = len(times) // 2
    first, middle, last = (timeline.at(times[0]), timeline.at(times[half]),
                           timeline.at(times[-1]))
    return (middle - first) / half, (last - middle) / (len(times) - 1 - half)


def start_spy(output: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy (on PATH) sampling this process into ``output`` (collapsed stacks)."""
    if output is None:
        return None
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(os.getpid()), "--rate", "500",
                            "--format", "raw", "-o", str(output)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches before the step starts
    return spy


def callgrind_instrumentation(on: bool) -> None:
    """Turn callgrind's counting in this process on or off (``--callgrind``: the benchmark
    runs under ``valgrind --tool=callgrind --instr-atstart=no``; see bench/instructions.sh)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def stop_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def request_kind(method: str, path: str) -> tuple[str, str]:
    """(verb, resource) of a logged request: ``("patch", "rollouts/status")``."""
    segments = path.strip("/").split("/")
    segments = segments[2:] if segments[0] == "api" else segments[3:]
    if len(segments) >= 2 and segments[0] == "namespaces" and len(segments) != 2:
        segments = segments[2:]
    plural = segments[0] if segments else "?"
    named = len(segments) >= 2
    subresource = f"/{segments[2]}" if len(segments) >= 3 else ""
    verb = {"GET": "get" if named else "list", "POST": "create", "PUT": "update",
            "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
    return verb, plural + subresource


def count_requests(rows: Sequence[Row]) -> Counter[tuple[str, str]]:
    """Requests by (verb, resource), watches excluded."""
    return Counter(request_kind(row[0], row[1]) for row in rows if not row[3])


def writes(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if not row[3] and row[0] not in ("GET", "HEAD")]


@dataclass
class Results:
    rollouts: int
    workers: int
    qps: float
    burst: int
    event_loop: str = ""
    startup_seconds: float = 0.0
    healthy_seconds: float = 0.0
    first_pause_seconds: float = 0.0
    latency_p50: float = 0.0
    latency_p99: float = 0.0
    latency_max: float = 0.0
    status_latency_max: float = 0.0
    step_daemon_cpu_seconds: float = 0.0
    step_daemon_cpu_seen_seconds: float = 0.0  # until the benchmark saw the last write
    step_daemon_system_seconds: float = 0.0  # of which in the kernel
    after_step_cpu_seconds: float = 0.0  # from the last write until quiet (Events, idle GC)
    step_events: int = 0  # Events written in the step (after its last write)
    after_step_emulator_cpu_seconds: float = 0.0  # the emulator's, in that window
    after_step_wall_seconds: float = 0.0  # from the step's last write to its last Event's
    # daemon CPU per Event while the first half of the step's Events were written (the
    # backlog at its longest) and while the second half were
    event_cpu_by_backlog: tuple[float, float] = (0.0, 0.0)
    step_emulator_cpu_seconds: float = 0.0
    step_gc: str = ""
    step_gc_max_ms: float = 0.0  # the longest collection before the last weight was written
    step_gc_longest: str = ""  # what that collection scanned and freed
    requests_to_pause: dict[str, float] = field(default_factory=dict)
    requests_per_step: dict[str, float] = field(default_factory=dict)
    idle_writes: int = 0
    idle_requests: int = 0
    idle_seconds: float = 0.0
    soak_rss_mib: list[float] = field(default_factory=list)  # one sample per --soak-every
    soak_writes: int = 0
    rss_baseline_mib: float = 0.0
    kib_per_rollout: float = 0.0
    cpu_ms_per_rollout: float = 0.0
    api_url: str = ""
    managed_fields: int = 0
    rss_mib: float = 0.0
    rss_peak_mib: float = 0.0
    emulator_cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    stage: str = "starting"
    last_summary: Summary = field(default_factory=dict)


# --- the run ---------------------------------------------------------------------------------


async def wait_for(control: Control, predicate: Callable[[Summary], bool], *,
                   interval: float = 0.05) -> Summary:
    """Poll the emulator's summary until ``predicate`` holds (callers bound the wait)."""
    while True:
        summary = await control.summary()
        if predicate(summary):
            return summary
        await anyio.sleep(interval)


async def step_writes(control: Control, position: int, n: int) -> dict[str, float]:
    """Follow the request log (cheap for the emulator) until every VirtualService and Rollout
    status was written: the first successful PATCH of each path, with the emulator's time."""
    written: dict[str, float] = {}
    while len(written) < 2 * n:
        await anyio.sleep(0.05)
        new, position = await control.requests(position)
        written.update(
            (path, at) for method, path, status, watch, at in new
            if method == "PATCH" and status < 400 and path not in written
            and ("/virtualservices/" in path or "/rollouts/" in path))
    return written


async def quiesce(control: Control, since: int, *,
                  quiet: float = 0.5) -> tuple[list[Row], int]:
    """Collect requests from ``since`` until none but watches came for ``quiet`` seconds."""
    rows: list[Row] = []
    position = since
    last_activity = time.monotonic()
    while time.monotonic() - last_activity < quiet:
        await anyio.sleep(0.1)
        new, position = await control.requests(position)
        if any(not row[3] for row in new):
            last_activity = time.monotonic()
        rows.extend(new)
    return rows, position


def per_rollout(counts: Counter[tuple[str, str]], rollouts: int) -> dict[str, float]:
    return {f"{verb} {kind}": n / rollouts for (verb, kind), n in sorted(counts.items())}


async def run(args: argparse.Namespace, results: Results, workdir: Path,
              log_stream: TextIO) -> None:
    """Fill ``results`` in; ``results.stage`` says how far it got if a wait times out."""
    n = results.rollouts
    results.rss_baseline_mib = rss_mib()[0]
    with emulator_process(workdir, args.namespace, tls=args.tls) as cluster:
        results.api_url = cluster.api
        async with aiohttp.ClientSession() as session:
            control = Control(session, cluster.control, results)
            await control.seed(count=n, namespace=args.namespace, image="bench/app:blue")
            results.managed_fields = int((await control.summary())["managed_fields"])
            if args.tracemalloc:
                tracemalloc.start()
            settings = parse_settings({
                "kubernetes": {"kubeconfig": str(cluster.kubeconfig), "qps": args.qps,
                               "burst": args.burst},
                "namespaces": [args.namespace],
                "listen": {"port": 0},
                "workers": args.workers,
                "log": {"level": args.log_level},
            })
            configure_logging(args.log_level, "json", stream=log_stream)
            clock = ManualClock()
            daemon = Daemon(settings, clock=clock)
            results.event_loop = running_loop_name()
            timeout = max(60.0, n * 0.2)
            async with anyio.create_task_group() as group:
                started = time.monotonic()
                await group.start(daemon.run)
                results.startup_seconds = time.monotonic() - started
                results.stage = "waiting for every Rollout to be Healthy"
                with anyio.fail_after(timeout):
                    await wait_for(control, lambda s: s["phases"].get("Healthy") == n)
                results.healthy_seconds = time.monotonic() - started
                # The request log's rows are the benchmark's, kept in the daemon's process:
                # each list is dropped once counted, so it does not count as the daemon's
                # RSS (at 10,000 Rollouts, ~70,000 rows from before Healthy and ~110,000
                # from the new image, ~300 bytes each, were alive until the end and during
                # the step).
                with anyio.fail_after(timeout):
                    position = (await quiesce(control, 0))[1]

                # A new revision: every Rollout goes to weight 10 and pauses for 60 s.
                updated = time.monotonic()
                await control.set_image("bench/app:green")
                results.stage = "waiting for every Rollout to pause at weight 10"
                with anyio.fail_after(timeout):
                    paused = await wait_for(control, lambda s: (
                        s["paused_at"].get("1") == n and s["canary_weights"].get("10") == n))
                results.first_pause_seconds = time.monotonic() - updated
                with anyio.fail_after(timeout):
                    rows, position = await quiesce(control, position)
                results.requests_to_pause = per_rollout(count_requests(rows), n)
                del rows
                if len(paused["pause_starts"]) != 1:
                    results.failures.append(
                        f"pauses started at {len(paused['pause_starts'])} different instants")

                # Every pause ends at this instant.
                emulator_cpu_before = (await control.usage())["cpu_seconds"]
                profiler = cProfile.Profile(time.process_time) if args.profile else None
                cpu_before, system_before = cpu_seconds(), system_cpu_seconds()
                pause_end = time.monotonic()
                if args.profile_emulator is not None:
                    await control.profile(dump=None)
                if profiler is not None:
                    profiler.enable()
                spy = start_spy(args.spy)
                if args.callgrind:
                    callgrind_instrumentation(True)
                clock.advance(PAUSE_SECONDS)
                results.stage = "waiting for every Rollout to reach weight 20"
                timeline = CpuTimeline()
                with anyio.fail_after(timeout), GcPauses() as collector:
                    async with anyio.create_task_group() as sampling:
                        sampling.start_soon(timeline.run)
                        written = await step_writes(control, position, n)
                        sampling.cancel_scope.cancel()
                if args.callgrind:
                    callgrind_instrumentation(False)
                results.step_gc = collector.describe()
                stop_spy(spy)
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                if args.profile_emulator is not None:
                    await control.profile(dump=args.profile_emulator)
                # up to the step's last weight or status write (as the emulator timed it), and
                # up to when the benchmark noticed it (its polls lag by up to 50 ms, in which
                # the idle-time collection and the first Events may have run)
                results.step_daemon_cpu_seconds = timeline.at(max(written.values())) - cpu_before
                results.step_daemon_cpu_seen_seconds = cpu_seconds() - cpu_before
                results.step_daemon_system_seconds = system_cpu_seconds() - system_before
                emulator_cpu_at_step_end = (await control.usage())["cpu_seconds"]
                results.step_emulator_cpu_seconds = emulator_cpu_at_step_end - emulator_cpu_before
                with anyio.fail_after(timeout):
                    await wait_for(control, lambda s: (
                        s["canary_weights"].get("20") == n and s["paused_at"].get("3") == n))
                spy_after = start_spy(args.spy_after)
                after_timeline = CpuTimeline(interval=0.02)
                with anyio.fail_after(timeout):
                    async with anyio.create_task_group() as sampling:
                        sampling.start_soon(after_timeline.run)
                        rows, position = await quiesce(control, position)
                        sampling.cancel_scope.cancel()
                stop_spy(spy_after)
                # after the last weight: the Events (written once the queue is idle) and the
                # idle-time collection, until no request but watches came for 0.5 s
                results.after_step_cpu_seconds = (
                    cpu_seconds() - cpu_before - results.step_daemon_cpu_seconds)
                results.step_events = sum(1 for row in writes(rows) if "/events" in row[1])
                results.after_step_emulator_cpu_seconds = (
                    (await control.usage())["cpu_seconds"] - emulator_cpu_at_step_end)
                results.event_cpu_by_backlog = cpu_per_event_by_backlog(
                    after_timeline, [row[4] for row in writes(rows) if "/events" in row[1]])
                results.after_step_wall_seconds = max(
                    (row[4] for row in writes(rows) if "/events" in row[1]),
                    default=max(written.values())) - max(written.values())
                results.requests_per_step = per_rollout(count_requests(rows), n)
                if args.step_log is not None:
                    args.step_log.write_bytes(orjson.dumps(
                        [[m, path, status, watch, at - pause_end]
                         for m, path, status, watch, at in rows]))
                delays = first_write_delays(rows, "/virtualservices/", pause_end)
                status_delays = first_write_delays(rows, "/status", pause_end, "/rollouts/")
                if len(delays) != n:
                    results.failures.append(f"{len(delays)} VirtualService writes, expected {n}")
                results.latency_p50 = percentile(delays, 0.50)
                results.latency_p99 = percentile(delays, 0.99)
                results.latency_max = max(delays, default=math.nan)
                # A collection after the last weight (the daemon collects when it goes idle)
                # delays no weight.
                results.step_gc_max_ms = collector.longest_before(
                    pause_end + results.latency_max) * 1000
                results.step_gc_longest = collector.describe_longest_before(
                    pause_end + results.latency_max)
                results.status_latency_max = max(status_delays, default=math.nan)

                # Idle: everything paused indefinitely; clock and wall both move 60 s.
                idle_started = time.monotonic()
                clock.advance(PAUSE_SECONDS)
                await anyio.sleep(args.idle)
                rows, position = await control.requests(position)
                results.idle_seconds = time.monotonic() - idle_started
                results.idle_writes = len(writes(rows))
                results.idle_requests = sum(1 for row in rows if not row[3])

                await soak(args, clock, control, results, position)
                results.rss_mib, results.rss_peak_mib = rss_mib()
                results.kib_per_rollout = (
                    (results.rss_mib - results.rss_baseline_mib) * 1024 / n)
                results.cpu_ms_per_rollout = results.step_daemon_cpu_seconds * 1000 / n
                if args.memory_report is not None:
                    snapshot = tracemalloc.take_snapshot() if args.tracemalloc else None
                    tracemalloc.stop()
                    args.memory_report.write_text(
                        memory_report(daemon, snapshot, rollouts=n) + "\n", encoding="utf-8")
                results.emulator_cpu_seconds = (await control.usage())["cpu_seconds"]
                group.cancel_scope.cancel()


async def soak(args: argparse.Namespace, clock: ManualClock, control: Control,
               results: Results, position: int) -> None:
    """Idle for ``--soak`` wall seconds, the clock moving as fast as the wall, sampling RSS
    every ``--soak-every`` seconds; writes meanwhile are counted."""
    if not args.soak:
        return
    started = time.monotonic()
    results.soak_rss_mib.append(rss_mib()[0])
    while time.monotonic() - started < args.soak:
        await anyio.sleep(args.soak_every)
        clock.advance(args.soak_every)
        results.soak_rss_mib.append(rss_mib()[0])
    rows, _ = await control.requests(position)
    results.soak_writes = len(writes(rows))


def first_write_delays(rows: Sequence[Row], marker: str, since: float,
                       also: str = "") -> list[float]:
    """Seconds from ``since`` to the first successful write of each object matching."""
    first: dict[str, float] = {}
    for method, path, status, watch, at in rows:
        if watch or method not in ("PATCH", "PUT") or status >= 400:
            continue
        if marker in path and also in path and path not in first:
            first[path] = at - since
    return list(first.values())


# --- reporting -------------------------------------------------------------------------------


# Per Rollout and step, the writes the step needs (Events aside): its weight and its status.
FLOOR = {"patch virtualservices": 1.0, "patch rollouts/status": 1.0}


def latency_budget(rollouts: int) -> float:
    """1 s up to 1,000 Rollouts, then linearly to 6 s at 10,000 (issue 13)."""
    return 1.0 + max(0, rollouts - 1000) * 5.0 / 9000


def check_budgets(results: Results, args: argparse.Namespace) -> list[str]:
    missed = list(results.failures)
    latency = args.budget_latency or latency_budget(results.rollouts)
    if results.managed_fields != results.rollouts:
        missed.append(f"{results.managed_fields} of {results.rollouts} Rollouts carry "
                      f"managedFields: the emulator is not behaving as a real server")
    if not results.latency_max <= latency:
        missed.append(f"slowest weight write {results.latency_max:.3f}s > {latency:.2f}s "
                      f"(wall clock)")
    if not results.cpu_ms_per_rollout <= args.budget_cpu_ms:
        missed.append(f"daemon CPU {results.cpu_ms_per_rollout:.2f} ms per Rollout step > "
                      f"{args.budget_cpu_ms} ms")
    if not results.step_gc_max_ms <= args.budget_gc_ms:
        missed.append(f"a GC pause of {results.step_gc_max_ms:.0f} ms during the step > "
                      f"{args.budget_gc_ms:g} ms")
    if results.idle_writes or results.soak_writes:
        missed.append(f"{results.idle_writes + results.soak_writes} writes while idle")
    if results.soak_rss_mib and not (
            max(results.soak_rss_mib) <= results.soak_rss_mib[0] * (1 + args.soak_growth)):
        missed.append(f"RSS grew while idle: {results.soak_rss_mib[0]:.0f} -> "
                      f"{max(results.soak_rss_mib):.0f} MiB")
    # writes only: the reads of the window (a discovery GET now and then) are not writes
    beyond = {name: count for name, count in results.requests_per_step.items()
              if not name.startswith(("create events", "patch events", "get ", "list "))
              and count > FLOOR.get(name, 0.0)}
    if beyond:
        missed.append(f"writes per Rollout step above the floor {FLOOR}: {beyond}")
    if not results.rss_mib < args.budget_rss_mb:
        missed.append(f"RSS {results.rss_mib:.0f} MiB >= {args.budget_rss_mb} MiB")
    if not results.kib_per_rollout <= args.budget_kib_per_rollout:
        missed.append(f"{results.kib_per_rollout:.1f} KiB of RSS per Rollout > "
                      f"{args.budget_kib_per_rollout:g} KiB")
    return missed


def render(results: Results, missed: Sequence[str]) -> str:
    r = results
    lines = [
        f"shiftd benchmark: {r.rollouts} Rollouts, workers {r.workers}, "
        f"qps {r.qps:g}, burst {r.burst}, API {r.api_url}",
        "",
        f"{'metric':<44}{'value':>14}",
        f"{'-' * 58}",
    ]

    def row(name: str, value: str) -> None:
        lines.append(f"{name:<44}{value:>14}")

    row("event loop", r.event_loop)
    row("daemon start (caches synced)", f"{r.startup_seconds:.2f} s")
    row("seeded -> all Healthy", f"{r.healthy_seconds:.2f} s")
    row("new image -> all paused at weight 10", f"{r.first_pause_seconds:.2f} s")
    row("pause end -> VirtualService write, p50", f"{r.latency_p50 * 1000:.0f} ms")
    row("pause end -> VirtualService write, p99", f"{r.latency_p99 * 1000:.0f} ms")
    row("pause end -> VirtualService write, max", f"{r.latency_max * 1000:.0f} ms")
    row("pause end -> last status write", f"{r.status_latency_max * 1000:.0f} ms")
    row("daemon CPU for that step (to its last write)", f"{r.step_daemon_cpu_seconds:.2f} s")
    row("  per Rollout", f"{r.cpu_ms_per_rollout:.3f} ms")
    row("  until the benchmark saw that write", f"{r.step_daemon_cpu_seen_seconds:.2f} s")
    row("  of which in the kernel (system time)", f"{r.step_daemon_system_seconds:.2f} s")
    row("emulator CPU for that step", f"{r.step_emulator_cpu_seconds:.2f} s")
    row(f"daemon CPU after it ({r.step_events} Events, idle GC)",
        f"{r.after_step_cpu_seconds:.2f} s")
    row("  per Event", f"{r.after_step_cpu_seconds * 1e6 / max(r.step_events, 1):.0f} us")
    row("  emulator CPU in that window, per Event",
        f"{r.after_step_emulator_cpu_seconds * 1e6 / max(r.step_events, 1):.0f} us")
    first_half, second_half = r.event_cpu_by_backlog
    row("  per Event, first half of them / second half",
        f"{first_half * 1e6:.0f} / {second_half * 1e6:.0f} us")
    row("  last write -> last Event written, per Event",
        f"{r.after_step_wall_seconds * 1e6 / max(r.step_events, 1):.0f} us")
    lines.append(f"  daemon GC in that step: {r.step_gc}")
    row("  longest GC before the last weight (CPU)", f"{r.step_gc_max_ms:.0f} ms")
    if r.step_gc_longest:
        lines.append(f"    that collection: {r.step_gc_longest}")
    row(f"writes while idle ({r.idle_seconds:.0f} s wall, 60 s clock)", f"{r.idle_writes}")
    row("requests while idle (non-watch)", f"{r.idle_requests}")
    if r.soak_rss_mib:
        row(f"idle soak RSS first/max/last, {len(r.soak_rss_mib)} samples",
            f"{r.soak_rss_mib[0]:.0f}/{max(r.soak_rss_mib):.0f}/{r.soak_rss_mib[-1]:.0f} MiB")
        row("idle soak: writes", f"{r.soak_writes}")
    row("daemon RSS before start", f"{r.rss_baseline_mib:.0f} MiB")
    row("daemon RSS at end", f"{r.rss_mib:.0f} MiB")
    row("daemon RSS peak", f"{r.rss_peak_mib:.0f} MiB")
    row("  RSS per Rollout (end - before start)", f"{r.kib_per_rollout:.1f} KiB")
    row("Rollouts seeded with managedFields", f"{r.managed_fields}")
    row("emulator process CPU (whole run)", f"{r.emulator_cpu_seconds:.1f} s")
    for title, table in (("requests per Rollout: new image -> paused", r.requests_to_pause),
                         ("requests per Rollout: pause end -> next pause",
                          r.requests_per_step)):
        lines += ["", title]
        for name, value in table.items():
            row(f"  {name}", f"{value:.2f}")
    lines += ["", "budgets: " + ("all met" if not missed else "MISSED")]
    lines += [f"  - {reason}" for reason in missed]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--qps", type=float, default=2000.0)
    parser.add_argument("--burst", type=int, default=4000)
    parser.add_argument("--idle", type=float, default=60.0,
                        help="wall seconds to watch for idle writes (default 60)")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="the daemon's JSON log (default: a temporary file)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--step-log", type=Path, default=None,
                        help="write the emulator's requests of the measured step here (JSON: "
                             "method, path, status, watch, seconds after the pause end)")
    parser.add_argument("--profile-emulator", type=Path, default=None,
                        help="the same for the emulator process")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the daemon process (CPU time, not wall: the machine "
                             "may be shared) from the pause end until every weight is written; "
                             "pstats written here (slows the step)")
    parser.add_argument("--spy", type=Path, default=None,
                        help="sample the daemon process with py-spy (on PATH) over the step; "
                             "collapsed stacks written here (pausing it to sample: slows the step)")
    parser.add_argument("--spy-after", type=Path, default=None,
                        help="the same, from the step's last write until quiet (its Events, "
                             "the idle-time housekeeping)")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions only from the pause end to the step's last "
                             "write (run under callgrind: bench/instructions.sh)")
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="the daemon's event loop, as its eventLoop setting (default auto: "
                             "uvloop when installed, as `shiftd run`)")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                        help="talk HTTPS to the emulator (default) or plain HTTP")
    parser.add_argument("--memory-report", type=Path, default=None,
                        help="write where memory goes here (what each part of the daemon "
                             "holds, by kind and type)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="with --memory-report: also trace allocations (tracemalloc, from "
                             "the daemon's start; slows the run and adds to RSS)")
    parser.add_argument("--budget-latency", type=float, default=None,
                        help="seconds; default 1 s up to 1,000 Rollouts, 6 s at 10,000")
    parser.add_argument("--budget-cpu-ms", type=float, default=0.5,
                        help="daemon CPU per Rollout for the step, ms")
    parser.add_argument("--budget-gc-ms", type=float, default=50.0)
    parser.add_argument("--budget-rss-mb", type=float, default=512.0)
    parser.add_argument("--budget-kib-per-rollout", type=float, default=40.0)
    parser.add_argument("--soak", type=float, default=0.0,
                        help="after the idle check, idle this many more wall seconds (the "
                             "clock following) sampling RSS; it must not grow")
    parser.add_argument("--soak-every", type=float, default=10.0)
    parser.add_argument("--soak-growth", type=float, default=0.02,
                        help="RSS growth over the soak's first sample tolerated (fraction)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results(rollouts=args.rollouts, workers=args.workers, qps=args.qps,
                      burst=args.burst)
    with tempfile.TemporaryDirectory(prefix="shiftd-bench-") as tmp:
        workdir = Path(tmp)
        log_path = args.log_file or workdir / "daemon.log"
        with open(log_path, "w", encoding="utf-8") as log_stream:
            timed_out = False
            try:
                anyio.run(run, args, results, workdir, log_stream,
                          backend_options=backend_options(args.event_loop))
            except* TimeoutError:
                timed_out = True
            if timed_out:
                print(f"timed out {results.stage}; emulator summary: {results.last_summary}",
                      file=sys.stderr)
                return 2
    missed = check_budgets(results, args)
    print(render(results, missed))
    if args.json is not None:
        args.json.write_text(json.dumps({**asdict(results), "missed": missed}, indent=2) + "\n",
                             encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
