"""Metric providers misbehaving under a running daemon: Prometheus, SkyWalking and a web
endpoint down, slow (answering after the provider timeout), answering malformed JSON, NaN
or an empty result — each on its own Rollout's analysis step, all at once, the daemon on the
injected clock, the invariant monitor watching.

What must hold, as Argo runs it: a provider that cannot answer (or whose answer cannot be
read or judged: malformed, empty where the condition indexes the result) gives an Error
measurement; Errors count towards ``consecutiveErrorLimit`` (4 when the template leaves it
out), past which the run is Error and the Rollout aborted (Degraded). NaN goes through the
condition (``result[0] > 0.9`` is false: Failed, aborted at once); an empty SkyWalking answer
passes seed 004's ``all(...)`` condition, as in Argo. Errors below the limit are forgiven when
the provider comes back. The daemon neither crashes nor hangs: every Rollout ends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from shiftd.decide.rollout.observed import parse_time
from shiftd.kube.resources import ANALYSIS_RUN, ANALYSIS_TEMPLATE, ROLLOUT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import basic_rollout, running_daemon
from tests.integration.harness import Cluster, test_cluster
from tests.support.faulty_provider import FaultyProvider, faulty_provider
from tests.support.fleet import NEXT_IMAGE

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
ERROR_RETRY = 10  # seconds, Argo's DefaultErrorRetryInterval
_APDEX_QUERY = (
    "query queryData($duration: Duration!) { service_apdex: readMetricsValues(condition: "
    '{ name: "service_apdex", entity: { scope: Service, serviceName: "canary", normal: true } '
    "}, duration: $duration) { label values { values { value } } } }")


@dataclass(frozen=True)
class Case:
    """One Rollout: its provider, the fault it plays, what the run and the Rollout end as, and
    a fragment of the message its last measurement records."""

    provider: str
    fault: str
    run_phase: str
    message: str = ""
    recovers_after: int | None = None  # Error measurements, then the provider is healthy

    @property
    def name(self) -> str:
        return f"{self.provider[:4]}-{self.fault}" + ("-back" if self.recovers_after else "")

    @property
    def rollout_phase(self) -> str:
        return "Healthy" if self.run_phase == "Successful" else "Degraded"


CASES = (
    Case("prometheus", "healthy", "Successful"),
    Case("prometheus", "down", "Error", "Cannot connect"),
    Case("prometheus", "slow", "Error", "timed out"),
    Case("prometheus", "malformed", "Error", "no JSON object"),
    Case("prometheus", "nan", "Failed"),
    Case("prometheus", "empty", "Error", "metric result is nil or empty"),
    Case("prometheus", "down", "Successful", recovers_after=2),
    Case("skywalking", "down", "Error", "Cannot connect"),
    Case("skywalking", "slow", "Error", "timed out"),
    Case("skywalking", "malformed", "Error", "no JSON object"),
    Case("skywalking", "nan", "Error", "no JSON object"),
    Case("skywalking", "empty", "Successful"),
    Case("web", "down", "Error", "Cannot connect"),
    Case("web", "slow", "Error", "timed out"),
    Case("web", "malformed", "Error", ""),
    Case("web", "nan", "Error", "could not evaluate"),
    Case("web", "empty", "Error", "could not evaluate"),
)


def metric(case: Case, url: str) -> Obj:
    """Measured twice, 5 s apart, with Argo's default limits."""
    base: Obj = {"name": "m", "count": 2, "interval": "5s"}
    if case.provider == "prometheus":
        return {**base, "successCondition": "result[0] > 0.9",
                "provider": {"prometheus": {"address": url, "query": "success_rate"}}}
    if case.provider == "skywalking":
        return {**base, "successCondition":
                "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
                "provider": {"skywalking": {"address": url, "interval": "3m",
                                            "query": _APDEX_QUERY}}}
    return {**base, "successCondition": "result > 0.9",
            "provider": {"web": {"url": f"{url}/metric", "jsonPath": "{$.value}",
                                 "timeoutSeconds": 1}}}


def objects(case: Case, url: str) -> list[tuple[Any, Obj]]:
    template = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                "metadata": {"name": case.name}, "spec": {"metrics": [metric(case, url)]}}
    rollout = basic_rollout(case.name, steps=[
        {"setWeight": 50}, {"analysis": {"templates": [{"templateName": case.name}]}}])
    rollout["spec"]["replicas"] = 1
    # the test drives the clock through many error retries; no progress deadline meanwhile
    rollout["spec"]["progressDeadlineSeconds"] = 86400
    return [(ANALYSIS_TEMPLATE, template), (ROLLOUT, rollout)]


@asynccontextmanager
async def servers() -> AsyncIterator[dict[str, FaultyProvider]]:
    async with AsyncExitStack() as stack:
        yield {case.name: await stack.enter_async_context(faulty_provider()) for case in CASES}


def measurements(run: Obj) -> list[Obj]:
    return [m for result in (run.get("status") or {}).get("metricResults") or []
            for m in result.get("measurements") or []]


class Driver:
    """Moves the injected clock on only when no running analysis has a measurement due (the
    daemon is idle), so each Error retry and each interval happens once; flips recovering
    providers back to healthy after their Errors."""

    def __init__(self, cluster: Cluster, clock: ManualClock,
                 faulty: dict[str, FaultyProvider]) -> None:
        self.cluster, self.clock, self.faulty = cluster, clock, faulty
        self.runs: dict[str, Obj] = {}

    async def settled(self) -> bool:
        items, _ = await self.cluster.client.list(ANALYSIS_RUN, self.cluster.namespace)
        self.runs = {run["metadata"]["ownerReferences"][0]["name"]: run for run in items}
        for case in CASES:
            run = self.runs.get(case.name)
            errors = sum(m["phase"] == "Error" for m in measurements(run or {}))
            if case.recovers_after and errors >= case.recovers_after \
                    and self.faulty[case.name].fault != "healthy":
                await self.faulty[case.name].set_fault("healthy")
        rollouts, _ = await self.cluster.client.list(ROLLOUT, self.cluster.namespace)
        if all(ended(case, rollout) for case in CASES for rollout in rollouts
               if rollout["metadata"]["name"] == case.name):
            return True
        if len(self.runs) == len(CASES) and not any(map(self.due, self.runs.values())):
            self.clock.advance(ERROR_RETRY + 1)
        return False

    def due(self, run: Obj) -> bool:
        status = run.get("status") or {}
        if status.get("phase") in ("Successful", "Failed", "Error", "Inconclusive"):
            return False
        taken = measurements(run)
        if not taken:
            return True
        last = taken[-1]
        finished = parse_time(str(last.get("finishedAt", "")))
        if finished is None:
            return True  # in flight
        wait = ERROR_RETRY if last["phase"] == "Error" else 5
        return finished + timedelta(seconds=wait) <= self.clock.now()


def ended(case: Case, rollout: Obj) -> bool:
    status = rollout.get("status") or {}
    if case.rollout_phase == "Healthy":
        return status.get("phase") == "Healthy" and \
            status.get("stableRS") == status.get("currentPodHash") and \
            status.get("currentStepIndex") == 2
    return status.get("phase") == "Degraded" and bool(status.get("abort"))


async def test_provider_faults_end_each_analysis_and_rollout_as_argo_would(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="shiftd")
    clock = ManualClock()
    async with servers() as faulty, test_cluster() as cluster, cluster.kubelet():
        for case in CASES:
            for kind, obj in objects(case, faulty[case.name].url):
                await cluster.client.create(kind, cluster.namespace, obj)
        async with running_daemon(cluster, clock=clock, analysis={
                "providerTimeout": "500ms", "measurementTimeout": "3s"}):
            await cluster.wait_for(lambda: all_healthy(cluster), timeout=30,
                                   what="every first revision Healthy")
            for case in CASES:
                await faulty[case.name].set_fault(case.fault)
                await cluster.set_image(case.name, NEXT_IMAGE)
            driver = Driver(cluster, clock, faulty)
            await cluster.wait_for(driver.settled, timeout=60,
                                   what="every Rollout where Argo would end it")
    crashes = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert crashes == []
    # what each run ended as, and whether its last measurement says why
    recorded = {case.name: (run["status"]["phase"],
                            case.message in measurements(run)[-1].get("message", ""))
                for case in CASES for run in [driver.runs[case.name]]}
    assert recorded == {case.name: (case.run_phase, True) for case in CASES}, {
        name: measurements(run)[-1] for name, run in driver.runs.items()}
    for case in CASES:
        taken = measurements(run := driver.runs[case.name])
        if case.run_phase == "Error":  # the default consecutiveErrorLimit, 4, then Error
            assert [m["phase"] for m in taken] == ["Error"] * 5, (case, taken)
            assert "consecutiveErrorLimit (4)" in run["status"]["message"], run["status"]
        if case.recovers_after:
            assert [m["phase"] for m in taken] == ["Error", "Error", "Successful",
                                                   "Successful"], taken


async def all_healthy(cluster: Cluster) -> bool:
    rollouts, _ = await cluster.client.list(ROLLOUT, cluster.namespace)
    return len(rollouts) == len(CASES) and all(
        (r.get("status") or {}).get("phase") == "Healthy" for r in rollouts)
