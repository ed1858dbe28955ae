"""High availability: two daemons with leader election on one API server. Only the leader
writes; the standby keeps warm caches and reports ready; when the leader dies without
releasing its lease (as under kill -9) the standby takes over within the lease duration and
carries the Rollout on from the step it was at; an orderly stop hands over at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from shiftd.assembly import Daemon
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import (
    LEASE_NAMESPACE,
    daemon_settings,
    ensure_lease_namespace,
    weights,
)
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]
WRITES = ("create", "patch", "update", "delete")
LEASE = {"enabled": True, "leaseNamespace": None, "leaseDuration": 15, "renewDeadline": 10,
         "retryPeriod": 2}


def writes(daemon: Daemon) -> float:
    """The daemon's own count of write requests (its k8s request counter)."""
    total = 0.0
    for metric in daemon.telemetry.k8s_requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels["verb"] in WRITES:
                total += sample.value
    return total


class Replica:
    """One daemon in its own task, killable without an orderly stop."""

    def __init__(self, cluster: Cluster, clock: ManualClock, identity: str) -> None:
        # the Lease where deploy/rbac.yaml allows it, named per test (a real cluster is shared)
        election = {**LEASE, "leaseNamespace": LEASE_NAMESPACE,
                    "leaseName": f"leader-{cluster.namespace}", "identity": identity}
        self.daemon = Daemon(daemon_settings(cluster, leaderElection=election), clock=clock)
        self.scope = anyio.CancelScope()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            await self.daemon.run(task_status=task_status)

    @property
    def leading(self) -> bool:
        parts = self.daemon.parts
        return parts is not None and parts.elector.is_leader

    def kill(self) -> None:
        """Gone at once: no release of the lease, no grace period (as under kill -9)."""
        self.scope.cancel()


@asynccontextmanager
async def replicas(cluster: Cluster, clock: ManualClock,
                   *identities: str) -> AsyncIterator[tuple[TaskGroup, list[Replica]]]:
    await ensure_lease_namespace(cluster)
    started = [Replica(cluster, clock, identity) for identity in identities]
    async with anyio.create_task_group() as group:
        for replica in started:
            await group.start(replica.run)
            await cluster.wait_for(lambda: any(r.leading for r in started), what="a leader")
        yield group, started
        group.cancel_scope.cancel()


async def readyz(daemon: Daemon) -> str:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{daemon.port}/readyz") as response:
        assert response.status == 200
        return await response.text()


async def status(cluster: Cluster) -> Obj:
    return (await cluster.rollout()).get("status") or {}


async def healthy(cluster: Cluster) -> Obj | None:
    current = await status(cluster)
    return current if current.get("phase") == "Healthy" else None


async def updated(cluster: Cluster) -> Obj:
    """Seed 000 deployed, then a new image: paused at step 1 with 10 % to the canary."""
    await cluster.apply_example("asm-host-split")
    await cluster.wait_for(lambda: healthy(cluster), what="Healthy")
    await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
    paused: Obj = await cluster.wait_for(lambda: paused_at(cluster, 1), what="paused at 1")
    return paused


async def paused_at(cluster: Cluster, index: int) -> Obj | None:
    current = await status(cluster)
    return current if current.get("phase") == "Paused" and current.get(
        "currentStepIndex") == index else None


async def test_only_the_leader_writes_and_the_standby_is_ready() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            replicas(cluster, clock, "a", "b") as (_, (first, second)):
        assert first.leading and not second.leading
        assert await readyz(first.daemon) == "ready: leader\n"
        assert await readyz(second.daemon) == "ready: standby\n"
        await updated(cluster)
        assert writes(first.daemon) > 0
        assert writes(second.daemon) == 0


async def test_a_killed_leader_is_replaced_within_the_lease_and_the_rollout_carries_on(
) -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            replicas(cluster, clock, "a", "b") as (_, (first, second)):
        paused = await updated(cluster)
        first.kill()
        before = writes(second.daemon)
        killed_at = clock.now()

        def standby_leads_as_time_passes() -> bool:
            if not second.leading:
                clock.advance(0.5)  # drive the injected clock, half a second per look
            return second.leading

        await cluster.wait_for(standby_leads_as_time_passes, timeout=30,
                               what="the standby leading")
        took = (clock.now() - killed_at).total_seconds()
        # not before the lease lapsed, and within the lease duration (plus one retry period,
        # the standby's polling granularity)
        assert LEASE["leaseDuration"] <= took <= LEASE["leaseDuration"] + LEASE["retryPeriod"] + 1
        # it carries on from step 1, repeating nothing: the paused status is left as it was
        assert await paused_at(cluster, 1) is not None
        assert (await status(cluster))["canary"]["weights"] == paused["canary"]["weights"]
        assert weights(await cluster.vs())["istio-rollout-canary"] == 10
        await cluster.promote()

        async def moved_on() -> Obj | None:
            current = await status(cluster)
            return current if current.get("currentStepIndex", 0) > 1 else None

        await cluster.wait_for(moved_on, what="the next step, taken by the new leader")
        assert writes(second.daemon) > before


async def test_an_orderly_stop_hands_the_lease_over_at_once() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, \
            replicas(cluster, clock, "a", "b") as (_, (first, second)):
        first.daemon.stop()
        await cluster.wait_for(lambda: not first.leading, what="the lease released")
        clock.advance(LEASE["retryPeriod"])  # the standby's next try, far inside the lease
        await cluster.wait_for(lambda: second.leading, what="the standby leading")
