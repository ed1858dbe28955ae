"""The daemon under a storm of 500s: it keeps retrying, within its configured request rate,
and finishes the Rollout once the storm passes.

Only the daemon's own identity gets the errors (the emulator's fault injection, by user); the
test's client and the invariant monitor are spared. On a real API server there is no fault
control, so the test is skipped there.
"""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.assembly import Daemon
from shiftd.common.tasks import running
from shiftd.config import Settings, parse_settings
from shiftd.kube.resources import ROLLOUT
from shiftd.runtime.clock import ManualClock
from shiftd.sim import RequestFaults
from shiftd.sim.server import LoggedRequest
from tests.integration.daemon_support import basic_rollout
from tests.integration.harness import DAEMON_USER, Cluster, test_cluster

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
QPS, BURST = 5.0, 5
STORM_FAULTS = 25  # 500s the daemon must have met (and retried) before the storm ends
# ``at`` is logged when the answer is ready, so two requests sent 1/qps apart may be logged a
# little closer together; this much skew is forgiven.
ANSWER_SKEW = 0.25


def slow_daemon_settings(cluster: Cluster) -> Settings:
    return parse_settings({
        "kubernetes": {"kubeconfig": str(cluster.daemon_kubeconfig_path), "qps": QPS,
                       "burst": BURST},
        "namespaces": [cluster.namespace],
        "listen": {"address": "127.0.0.1", "port": 0},
        "shutdownGracePeriod": 1,
    })


def rate_excesses(requests: list[LoggedRequest]) -> list[str]:
    """Every stretch of requests more than a token bucket of QPS/BURST lets through."""
    times = sorted(r.at for r in requests)
    excesses = []
    for first in range(len(times)):
        for last in range(first + BURST, len(times)):
            allowed = BURST + QPS * (times[last] - times[first] + ANSWER_SKEW)
            if last - first + 1 > allowed:
                excesses.append(f"{last - first + 1} requests in "
                                f"{times[last] - times[first]:.3f} s")
    return excesses


async def rollout_status(cluster: Cluster) -> Obj:
    rollout = await cluster.client.get(ROLLOUT, cluster.namespace, "storm")
    status: Obj = rollout.get("status") or {}
    return status


async def rollout_healthy_on(cluster: Cluster, image: str, *, not_revision: str = "") -> bool:
    """Healthy on ``image``: its status is that of a revision other than ``not_revision``
    (right after an image change, the status still describes the old revision, Healthy)."""
    rollout = await cluster.client.get(ROLLOUT, cluster.namespace, "storm")
    status = rollout.get("status") or {}
    containers = rollout["spec"]["template"]["spec"]["containers"]
    return status.get("phase") == "Healthy" and containers[0]["image"] == image and \
        status.get("stableRS") == status.get("currentPodHash") != not_revision


async def paused_on_a_new_revision(cluster: Cluster, old: str) -> bool:
    status = await rollout_status(cluster)
    return status.get("currentPodHash") not in (None, old) and bool(status.get("pauseConditions"))


async def test_under_a_500_storm_the_daemon_retries_within_its_qps_and_then_finishes() -> None:
    async with test_cluster() as cluster:
        if cluster.api is None:
            pytest.skip("a real API server has no fault injection")
        api = cluster.api
        rollout = basic_rollout("storm", steps=[{"setWeight": 50}, {"pause": {}}])
        rollout["metadata"]["namespace"] = cluster.namespace
        await cluster.client.create(ROLLOUT, cluster.namespace, rollout)
        async with cluster.kubelet(), running(
                Daemon(slow_daemon_settings(cluster), clock=ManualClock()).run):
            await cluster.wait_for(lambda: rollout_healthy_on(cluster, "nginx:1.15.4"),
                                   timeout=30, what="the first revision Healthy")
            first_revision = str((await rollout_status(cluster))["stableRS"])
            started = len(api.request_log)
            api.faults.configure(RequestFaults(1.0, errors=("500",),
                                               users=frozenset({DAEMON_USER.name})), seed=5)
            await cluster.set_image("storm", "nginx:1.20")
            await cluster.wait_for(lambda: len(api.faults.injected) >= STORM_FAULTS,
                                   timeout=60, what=f"{STORM_FAULTS} injected 500s")
            api.faults.clear()
            # a promote before the daemon paused the new revision would be a no-op on the
            # old revision's status, leaving the new one paused at its `pause: {}` for good
            await cluster.wait_for(lambda: paused_on_a_new_revision(cluster, first_revision),
                                   timeout=60, what="the new revision paused after the storm")
            await cluster.promote("storm")
            await cluster.wait_for(
                lambda: rollout_healthy_on(cluster, "nginx:1.20", not_revision=first_revision),
                timeout=60, what="the new revision Healthy after the storm")
        daemon_requests = [r for r in api.request_log[started:]
                           if r.user_agent.startswith("shiftd/") and not r.watch]
        assert sum(r.status == 500 for r in daemon_requests) >= STORM_FAULTS
        assert {r.method for r in daemon_requests if r.status == 500} & {"POST", "PUT", "PATCH"}
        assert rate_excesses(daemon_requests) == []
