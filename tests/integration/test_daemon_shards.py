"""Three shards split the Rollouts: each Rollout is written by the one live shard that owns
it; when a shard is killed (no orderly stop) its Rollouts are carried on by the others once
its Lease lapses, and every Rollout finishes exactly once. The emulator's request log (the
User-Agent names each daemon) proves that no Rollout's objects are ever written by two shards
in turn. ``SHIFTD_TEST_SHARD_ROLLOUTS`` sets how many Rollouts (default 60; the issue's figure
is 300)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus

from shiftd import __version__
from shiftd.assembly import Daemon
from shiftd.cli.ctl import main as shiftctl_main
from shiftd.kube.resources import ROLLOUT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import (
    LEASE_NAMESPACE,
    basic_rollout,
    daemon_settings,
    ensure_lease_namespace,
)
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]
STEPS: list[Obj] = [{"setWeight": 50}, {"pause": {"duration": "30s"}}]
ROLLOUTS = int(os.environ.get("SHIFTD_TEST_SHARD_ROLLOUTS", "60"))
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Shard:
    def __init__(self, cluster: Cluster, clock: ManualClock, identity: str) -> None:
        election = {"leaseNamespace": LEASE_NAMESPACE, "identity": identity}
        sharding = {"replicas": 3, "leasePrefix": f"shard-{cluster.namespace}-"}
        settings = daemon_settings(cluster, leaderElection=election, sharding=sharding)
        self.agent = f"shiftd/{__version__} ({identity})"
        self.daemon = Daemon(settings, clock=clock)
        self.scope = anyio.CancelScope()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            await self.daemon.run(task_status=task_status)

    @property
    def held(self) -> str | None:
        parts = self.daemon.parts
        return parts.elector.held if parts is not None else None


@asynccontextmanager
async def shards(cluster: Cluster, clock: ManualClock) -> AsyncIterator[list[Shard]]:
    await ensure_lease_namespace(cluster)
    started = [Shard(cluster, clock, identity) for identity in ("a", "b", "c")]
    async with anyio.create_task_group() as group:
        for shard in started:
            with anyio.fail_after(30):  # a daemon that cannot start must fail the test
                await group.start(shard.run)
        await cluster.wait_for(lambda: all(shard.held for shard in started),
                               what="every shard holding a Lease")
        yield started
        group.cancel_scope.cancel()


async def phases(cluster: Cluster) -> dict[str, tuple[str | None, str | None]]:
    items, _ = await cluster.client.list(ROLLOUT, cluster.namespace)
    return {item["metadata"]["name"]: ((item.get("status") or {}).get("phase"),
                                       item["spec"]["template"]["spec"]["containers"][0][
                                           "image"]) for item in items}


def writers_in_turn(cluster: Cluster, name: str) -> list[str]:
    """The User-Agents that wrote this Rollout's status and ReplicaSets, consecutive repeats
    folded, in the order the emulator answered them."""
    assert cluster.api is not None
    turns: list[str] = []
    for request in cluster.api.request_log:
        if request.method not in WRITE_METHODS or not request.user_agent.startswith("shiftd/"):
            continue  # the tests' and the fake kubelet's own writes
        if not (request.path.endswith(f"/rollouts/{name}/status")
                or f"/replicasets/{name}-" in request.path):
            continue
        if not turns or turns[-1] != request.user_agent:
            turns.append(request.user_agent)
    return turns


async def test_three_shards_finish_every_rollout_once_when_one_of_them_is_killed(
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock()
    async with test_cluster() as cluster:
        if cluster.api is None:
            pytest.skip("the emulator's request log tells the shards apart")
        async with cluster.kubelet(), shards(cluster, clock) as (first, *_rest):
            clock.advance(2)  # every shard past the join delay
            names = [f"app-{index}" for index in range(ROLLOUTS)]
            for name in names:
                await cluster.client.create(ROLLOUT, cluster.namespace,
                                            basic_rollout(name, steps=STEPS))

            async def all_at(phase: str, image: str) -> bool:
                return set((await phases(cluster)).values()) == {(phase, image)}

            await cluster.wait_for(lambda: all_at("Healthy", "nginx:1.15.4"), timeout=60,
                                   what="every Rollout deployed")
            for name in names:
                await cluster.set_image(name, "nginx:1.16.0")
            await cluster.wait_for(lambda: all_at("Paused", "nginx:1.16.0"), timeout=60,
                                   what="every Rollout paused at its timed step")
            first.scope.cancel()  # killed: no release, no grace period

            async def finished_as_time_passes() -> bool:
                if not await all_at("Healthy", "nginx:1.16.0"):
                    clock.advance(1)
                    return False
                return True

            await cluster.wait_for(finished_as_time_passes, timeout=120,
                                   what="every Rollout finished by the surviving shards")

            # shiftctl names the shard whose holder wrote the Rollout last
            for name in names[:5]:
                argv = ["--kubeconfig", str(cluster.kubeconfig_path), "-n", cluster.namespace,
                        "shard", name, "--lease-namespace", LEASE_NAMESPACE,
                        "--lease-prefix", f"shard-{cluster.namespace}-",
                        "--at", clock.now().isoformat()]  # the daemons' (manual) time
                code = await anyio.to_thread.run_sync(shiftctl_main, argv)
                said = capsys.readouterr().out
                last_writer = writers_in_turn(cluster, name)[-1]
                assert code == 0 and said.startswith(f"rollout '{cluster.namespace}/{name}' "
                                                     "is owned by shard shard-"), said
                assert said.strip().endswith(f"(held by {last_writer.split('(')[1]}"), said

        moved = 0
        for name in names:
            turns = writers_in_turn(cluster, name)
            assert 1 <= len(turns) <= 2, (name, turns)
            if len(turns) == 2:
                assert turns[0] == first.agent, (name, turns)  # handed over once, by death
                moved += 1
        assert moved > 0  # the killed shard's Rollouts were carried on by the others
