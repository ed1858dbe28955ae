"""Chaos scenarios: a fleet of Rollouts (``tests.support.fleet``) rolled out by the daemon, as
a process, while faults hit the API server, the daemon and Prometheus.

``run_scenario(cluster, prometheus, exporter, plan)`` seeds the fleet, starts ``shiftd run``
as a child process, waits for every first revision, rolls every Rollout to a new image and
then, concurrently, injects the plan's faults:

- ``api_restarts``: the API server stopped and started again with its data (the one at
  ``lost_history_at`` also losing its watch history, so resumed watches get 410);
- ``request_faults``: that share of the daemon's requests answered 409/429/500/503 or left
  unanswered, its watches cut, closed early, expired on resume;
- ``kills``: SIGKILL of the daemon at random moments or right after one of its writes
  (a status write, a route write, an AnalysisRun write), then a new process;
- ``prometheus_outages``: Prometheus stopped for ``outage_seconds``, then started again.

When the faults stop it waits (at most ``settle_seconds``) for every Rollout to end where it
should (Healthy on the new revision, or Degraded after its analysis failed), checking that
/healthz answers while the daemon runs. Every random choice comes from
``random.Random(plan.seed)``; the seed is in every failure message. The invariant monitor of
the test's cluster judges every state on the way.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
import yaml
from anyio.abc import Process

from shiftd.sim import ApiEmulator, RequestFaults, WatchFaults
from tests.support.fleet import Fleet
from tests.support.prometheus import IstioExporter, StoppablePrometheus, free_port

WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
KILL_MOMENTS = ("random", "status-write", "route-write", "analysis-write")
_MOMENT_PATHS = {"status-write": "/status", "route-write": "/virtualservices/",
                 "analysis-write": "/analysisruns"}
RESUME_SECONDS = 30.0  # a restarted daemon answers /healthz within this


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """One scenario's size and faults (all off by default)."""

    seed: int
    rollouts: int = 3
    failing: tuple[int, ...] = ()
    api_restarts: int = 0
    lost_history_at: int | None = None
    request_faults: float = 0.0
    watch_faults: float | None = None  # share of watches cut, and of resumes expired
    kills: int = 0
    prometheus_outages: int = 0
    outage_seconds: float = 5.0
    fault_seconds: float = 5.0  # faults are spread over this long
    settle_seconds: float = 60.0
    deploy_seconds: float = 60.0  # for every first revision to be Healthy
    request_timeout: float = 2.0
    qps: float = 100.0
    error_limit: int | None = 30  # the templates' consecutiveErrorLimit (None: Argo's 4)


@dataclass(slots=True)
class ChaosReport:
    """What a scenario did and found."""

    seed: int
    faults: Counter[str] = field(default_factory=Counter)
    unfinished: list[str] = field(default_factory=list)
    healthz_failures: list[str] = field(default_factory=list)
    daemon_writes: int = 0
    faulted_writes: int = 0  # write attempts answered with an injected fault (then retried)
    completed: int = 0
    promoted_unmeasured: list[str] = field(default_factory=list)  # see Fleet
    aborted_healthy: list[str] = field(default_factory=list)  # see Fleet
    daemon_log: str = ""


class DaemonProcess:
    """``shiftd run`` as a child process, killable with SIGKILL and started again."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.log = config.with_name("shiftd.log")  # every run's output, appended
        self.healthz = f"http://127.0.0.1:{port}/healthz"
        self.process: Process | None = None
        self.starts = 0

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await anyio.open_process(
                [sys.executable, "-m", "shiftd.cli.daemon", "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    async def kill(self) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            if process.returncode is None:
                with suppress(ProcessLookupError):  # it died in the meantime
                    process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
                await process.aclose()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    async def healthy(self) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    self.healthz, timeout=aiohttp.ClientTimeout(total=5)) as answer:
                return answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


def write_config(directory: Path, *, kubeconfig: Path, namespace: str, port: int,
                 plan: ChaosPlan) -> Path:
    path = directory / "shiftd.yaml"
    path.write_text(yaml.safe_dump({
        "kubernetes": {"kubeconfig": str(kubeconfig), "qps": plan.qps, "burst": int(plan.qps),
                       "requestTimeout": plan.request_timeout},
        "namespaces": [namespace],
        "listen": {"address": "127.0.0.1", "port": port},
        "log": {"format": "text", "level": "error"},
        "shutdownGracePeriod": "2s",
    }))
    return path


@asynccontextmanager
async def daemon_process(*, kubeconfig: Path, namespace: str,
                         plan: ChaosPlan) -> AsyncIterator[DaemonProcess]:
    with tempfile.TemporaryDirectory(prefix="shiftd-chaos-") as directory:
        port = free_port()
        daemon = DaemonProcess(write_config(Path(directory), kubeconfig=kubeconfig,
                                            namespace=namespace, port=port, plan=plan), port)
        await daemon.start()
        try:
            yield daemon
        finally:
            await daemon.kill()


async def wait_until(predicate: Callable[[], Awaitable[object]], *, seconds: float,
                     what: str, seed: int) -> None:
    """Poll the async ``predicate`` until truthy; AssertionError naming the seed if not."""
    last: object = None
    with anyio.move_on_after(seconds):
        while True:
            last = await predicate()
            if last:
                return
            await anyio.sleep(0.1)
    raise AssertionError(f"seed {seed}: timed out after {seconds}s waiting for {what}; "
                         f"last: {last!r}")


class FaultDriver:
    """Injects one plan's faults, drawing every choice from its seed."""

    def __init__(self, *, api: ApiEmulator, daemon: DaemonProcess,
                 prometheus: StoppablePrometheus, plan: ChaosPlan, daemon_user: str) -> None:
        self.api, self.daemon, self.prometheus, self.plan = api, daemon, prometheus, plan
        self.random = random.Random(plan.seed)
        self.counts: Counter[str] = Counter()
        self.healthz_failures: list[str] = []
        self._user = daemon_user

    def _instants(self, count: int) -> list[float]:
        return sorted(self.random.uniform(0, self.plan.fault_seconds) for _ in range(count))

    async def run(self) -> None:
        plan = self.plan
        restarts = self._instants(plan.api_restarts)
        kills = [(at, self.random.choice(KILL_MOMENTS)) for at in self._instants(plan.kills)]
        outages = self._instants(plan.prometheus_outages)
        if plan.request_faults:
            users = frozenset({self._user})
            watch_share = plan.request_faults if plan.watch_faults is None else plan.watch_faults
            self.api.faults.configure(
                RequestFaults(plan.request_faults, verbs=frozenset(), users=users,
                              hang_seconds=plan.request_timeout * 3),
                watches=WatchFaults(cut_share=watch_share, expire_share=watch_share,
                                    users=users),
                seed=plan.seed)
            # watches opened before now follow no plan: break them, so that the daemon's
            # new ones do (the monitor's reconnect too, unharmed)
            self.api.drop_watches()
            self.counts["watches-dropped"] += 1
        async with anyio.create_task_group() as group:
            group.start_soon(self._restarts, restarts)
            group.start_soon(self._kills, kills)
            group.start_soon(self._outages, outages)
            if plan.request_faults:
                await anyio.sleep(plan.fault_seconds)
        self.api.faults.clear()
        self.counts.update(self.api.faults.counts())

    async def _at(self, started: float, offset: float) -> None:
        await anyio.sleep(max(0.0, started + offset - anyio.current_time()))

    async def _restarts(self, instants: list[float]) -> None:
        started = anyio.current_time()
        for number, at in enumerate(instants):
            await self._at(started, at)
            lose = number == self.plan.lost_history_at
            await self.api.restart(lose_history=lose, downtime=self.random.uniform(0.1, 1.0))
            self.counts["api-restart-history-lost" if lose else "api-restart"] += 1

    async def _kills(self, kills: list[tuple[float, str]]) -> None:
        started = anyio.current_time()
        for at, moment in kills:
            await self._at(started, at)
            if moment != "random":
                await self._after_write(_MOMENT_PATHS[moment])
            await self.daemon.kill()
            self.counts[f"sigkill-{moment}"] += 1
            await self.daemon.start()
            try:
                await wait_until(self.daemon.healthy, seconds=RESUME_SECONDS,
                                 what="/healthz after a restart", seed=self.plan.seed)
            except AssertionError as failure:
                self.healthz_failures.append(str(failure))

    async def _after_write(self, fragment: str) -> None:
        """Until the daemon's next write to a path containing ``fragment`` (at most 3 s)."""
        seen = len(self.api.request_log)
        with anyio.move_on_after(3):
            while True:
                log = self.api.request_log
                if any(r.user_agent.startswith("shiftd/") and fragment in r.path
                       and r.method in ("PATCH", "PUT", "POST") for r in log[seen:]):
                    return
                seen = len(log)
                await anyio.sleep(0.005)

    async def _outages(self, instants: list[float]) -> None:
        started = anyio.current_time()
        for at in instants:
            await self._at(started, at)
            await self.prometheus.stop()
            self.counts["prometheus-down"] += 1
            await anyio.sleep(self.plan.outage_seconds)
            await self.prometheus.start()


async def run_scenario(*, api: ApiEmulator, fleet: Fleet, daemon_kubeconfig: Path,
                       daemon_user: str, prometheus: StoppablePrometheus,
                       exporter: IstioExporter, plan: ChaosPlan) -> ChaosReport:
    """One scenario from seeding to settling (see the module docstring)."""
    report = ChaosReport(plan.seed)
    fleet.send_traffic(exporter)
    await prometheus.server.wait_for_samples("istio_requests_total", 3)
    await fleet.create(prometheus.server.url, error_limit=plan.error_limit)
    async with daemon_process(kubeconfig=daemon_kubeconfig, namespace=fleet.namespace,
                              plan=plan) as daemon:
        try:
            await wait_until(fleet.all_deployed, seconds=plan.deploy_seconds,
                             what="every first revision Healthy", seed=plan.seed)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\ndaemon log:\n{daemon.log_tail()}") from None
        logged = len(api.request_log)
        await fleet.update()
        driver = FaultDriver(api=api, daemon=daemon, prometheus=prometheus, plan=plan,
                             daemon_user=daemon_user)
        await driver.run()
        report.faults = driver.counts
        report.healthz_failures.extend(driver.healthz_failures)

        async def settled() -> bool:
            unfinished = await fleet.unfinished()
            if unfinished is not None:
                report.unfinished = unfinished
            return unfinished == []

        with suppress(AssertionError):  # what is left is reported as unfinished
            await wait_until(settled, seconds=plan.settle_seconds,
                             what="every Rollout where its scenario ends", seed=plan.seed)
        if not await daemon.healthy():
            report.healthz_failures.append(f"{daemon.healthz} did not answer 200")
        report.completed = len(fleet.members) - len(report.unfinished)
        report.promoted_unmeasured = list(fleet.promoted_unmeasured)
        report.aborted_healthy = list(fleet.aborted_healthy)
        if report.unfinished or report.healthz_failures:
            report.daemon_log = daemon.log_tail()
        log = api.request_log[logged:]
        report.daemon_writes = sum(1 for r in log if r.user_agent.startswith("shiftd/")
                                   and r.method in ("POST", "PUT", "PATCH", "DELETE"))
        report.faulted_writes = sum(1 for f in api.faults.injected if f.verb in WRITE_VERBS)
    return report
