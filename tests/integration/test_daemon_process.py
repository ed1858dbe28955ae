"""The daemon as a process: SIGTERM stops it in order, kill -9 loses nothing.

These run ``shiftd run --config FILE`` as a child process against the test's API server, so
they use the wall clock: the Rollout's timed pauses are a second or two long.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from anyio.abc import Process

from shiftd.kube.resources import ROLLOUT, VIRTUAL_SERVICE
from tests.integration.daemon_support import weights
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]
CANARY = "istio-rollout-canary"


def write_config(cluster: Cluster, directory: Path, **extra: Any) -> Path:
    path = directory / "shiftd.yaml"
    path.write_text(yaml.safe_dump({
        "kubernetes": {"kubeconfig": str(cluster.daemon_kubeconfig_path), "qps": 200,
                       "burst": 200},
        "namespaces": [cluster.namespace],
        "listen": {"address": "127.0.0.1", "port": 0},
        "log": {"format": "text", "level": "warning"},
        "shutdownGracePeriod": "5s",
        **extra,
    }))
    return path


@asynccontextmanager
async def daemon_process(config: Path) -> AsyncIterator[Process]:
    process = await anyio.open_process(
        [sys.executable, "-m", "shiftd.cli.daemon", "run", "--config", str(config)])
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


async def drain(process: Process, into: bytearray) -> None:
    """Read the process's stderr (its log) until it closes."""
    assert process.stderr is not None
    with contextlib.suppress(anyio.EndOfStream):
        while True:
            into += await process.stderr.receive()


async def status(cluster: Cluster) -> Obj:
    return (await cluster.rollout()).get("status") or {}


async def seed_with_short_pauses(cluster: Cluster) -> None:
    await cluster.apply_example("asm-host-split")
    await cluster.client.patch(ROLLOUT, cluster.namespace, "istio-rollout", {"spec": {
        "strategy": {"canary": {"steps": [
            {"setWeight": 10}, {"pause": {"duration": "1s"}},
            {"setWeight": 20}, {"pause": {"duration": 1}},
            {"setWeight": 30}, {"pause": {"duration": "1s"}},
            {"setWeight": 40}, {"pause": {}},
        ]}}}}, patch_type="merge")


async def test_sigterm_stops_the_daemon_in_order_with_exit_code_0(tmp_path: Path) -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await cluster.apply_example("asm-host-split")
        async with daemon_process(write_config(cluster, tmp_path)) as process:
            async def healthy() -> bool:
                return (await status(cluster)).get("phase") == "Healthy"

            await cluster.wait_for(healthy, timeout=20, what="Healthy under the process")
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                code = await process.wait()
            assert code == 0


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
async def test_the_daemon_runs_a_rollout_on_the_event_loop_its_config_names(
    tmp_path: Path, event_loop: str,
) -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await seed_with_short_pauses(cluster)
        config = write_config(cluster, tmp_path, eventLoop=event_loop,
                              log={"format": "json", "level": "info"})
        log = bytearray()
        async with daemon_process(config) as process, anyio.create_task_group() as group:
            group.start_soon(drain, process, log)

            async def healthy() -> bool:
                return (await status(cluster)).get("phase") == "Healthy"

            await cluster.wait_for(healthy, timeout=20, what="Healthy")
            await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")

            async def parked() -> bool:
                current = await status(cluster)
                return current.get("phase") == "Paused" and current.get("currentStepIndex") == 7

            await cluster.wait_for(parked, timeout=30, what="paused at the last step")
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await process.wait() == 0
        vs = await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, "istio-rollout-vsvc")
        assert weights(vs)[CANARY] == 40
        ready = [record for record in map(json.loads, log.decode().splitlines())
                 if record.get("message") == "ready"]
        assert [record["event_loop"] for record in ready] == [event_loop]


async def test_a_daemon_killed_at_any_point_resumes_without_moving_weight_back(
    tmp_path: Path,
) -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await seed_with_short_pauses(cluster)
        config = write_config(cluster, tmp_path)
        seen: list[tuple[int, int]] = []  # (step index, canary weight) every time they change
        old_hash: list[str] = []

        async def record() -> tuple[int, int] | None:
            vs = await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace,
                                          "istio-rollout-vsvc")
            now = await status(cluster)
            if now.get("currentPodHash") in old_hash:
                return None  # the update has not been seen yet
            current = (int(now.get("currentStepIndex", 0)), weights(vs)[CANARY])
            if not seen or seen[-1] != current:
                seen.append(current)
            return current

        async with daemon_process(config) as process:
            async def healthy() -> bool:
                return (await status(cluster)).get("phase") == "Healthy"

            await cluster.wait_for(healthy, timeout=20, what="Healthy")
            process.kill()
            await process.wait()
        old_hash.append((await status(cluster))["currentPodHash"])
        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")

        # kill -9 it repeatedly at whatever point it has reached, and start it again
        for wanted_weight in (10, 20, 30):
            async with daemon_process(config) as process:
                async def reached(weight: int = wanted_weight) -> bool:
                    current = await record()
                    return current is not None and current[1] >= weight

                await cluster.wait_for(reached, timeout=20, what=f"weight {wanted_weight}")
                process.kill()
                await process.wait()
                await record()
        async with daemon_process(config):
            async def parked() -> bool:
                await record()
                current = await status(cluster)
                return current.get("phase") == "Paused" and current.get("currentStepIndex") == 7

            await cluster.wait_for(parked, timeout=20, what="paused at the last step")
            await record()  # the state it parked in (the last poll may have read the VS first)
        assert seen[-1] == (7, 40)
        steps = [step for step, _ in seen]
        canary_weights = [weight for _, weight in seen]
        assert steps == sorted(steps), seen
        assert canary_weights == sorted(canary_weights), seen
