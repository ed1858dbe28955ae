"""shiftd's memory and CPU per Rollout against a real kube-apiserver, as a user runs it.

``bench/rollouts.py`` measures the step on the emulator, whose control API it needs. This
script needs only a cluster: it runs ``shiftd run`` as its own process under the daemon's
kubeconfig (bound to ``deploy/rbac.yaml``), in a fresh namespace where it

1. reads the daemon's RSS once it is ready with nothing to do (the baseline);
2. creates ``--rollouts`` Rollouts shaped like the benchmark's (two Services and a
   VirtualService each; written with kubectl's last-applied annotation, and the server adds
   its ``managedFields``), with a ``FakeKubelet`` of this process (the administrator's
   kubeconfig) marking their ReplicaSets ready; waits until every one is Healthy and the
   daemon is quiet; reads its RSS;
3. changes every Rollout's image and waits until every one is Paused at its first step with
   the canary at 10 %; reads the daemon's RSS and the CPU it spent on that update;
4. deletes the namespace (without a controller-manager it stays Terminating).

    python bench/real_server.py --kubeconfig ADMIN --daemon-kubeconfig SHIFTD --rollouts 1000

KiB per Rollout is (RSS - baseline) / Rollouts. Nothing here is timed by an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient, Configuration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulator_server as shapes  # the benchmark's object shapes

from shiftd.common.tasks import running
from shiftd.kube.client import KubeClient
from shiftd.kube.resources import (
    NAMESPACE,
    ROLLOUT,
    SERVICE,
    SERVICE_ACCOUNT,
    VIRTUAL_SERVICE,
)
from shiftd.sim import FakeKubelet

Obj = dict[str, Any]
STEPS = [{"setWeight": 10}, {"pause": {}}]
CONCURRENCY = 64


def usage(pid: int) -> tuple[float, float]:
    """RSS (MiB) and CPU seconds (user + system) of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return rss / 1024, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def poll(check: Callable[[], Awaitable[bool]], *, what: str, limit: float) -> float:
    """Seconds until ``check`` holds, polled every second under a deadline."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > limit:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(1.0)
    return time.monotonic() - started


async def quiet(pid: int, *, limit: float) -> None:
    """Until the daemon used under 20 ms of CPU in a second."""
    last = [usage(pid)[1]]

    async def still() -> bool:
        now = usage(pid)[1]
        spent, last[0] = now - last[0], now
        return spent < 0.02

    await poll(still, what="the daemon to go quiet", limit=limit)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def seed(client: KubeClient, namespace: str, count: int) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        name = shapes.rollout_name(index)
        rollout = shapes._rollout(name, "bench/app:blue")
        rollout["spec"]["strategy"]["canary"]["steps"] = STEPS
        async with limit:
            for suffix in ("canary", "stable"):
                await client.create(SERVICE, namespace,
                                    shapes.applied(shapes._service(f"{name}-{suffix}", name)))
            await client.create(VIRTUAL_SERVICE, namespace,
                                shapes.applied(shapes._virtual_service(name)))
            await client.create(ROLLOUT, namespace, shapes.applied(rollout))

    await asyncio.gather(*(one(index) for index in range(count)))


async def set_images(client: KubeClient, namespace: str, image: str) -> None:
    items, _ = await client.list(ROLLOUT, namespace)
    limit = asyncio.Semaphore(CONCURRENCY)
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
              "value": image}]

    async def one(name: str) -> None:
        async with limit:
            await client.patch(ROLLOUT, namespace, name, patch, patch_type="json")

    await asyncio.gather(*(one(item["metadata"]["name"]) for item in items))


def counting(client: KubeClient, namespace: str, count: int,
             done: Callable[[Obj], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        items, _ = await client.list(ROLLOUT, namespace)
        return sum(1 for item in items if done(item.get("status") or {})) >= count
    return check


def start_daemon(args: argparse.Namespace, namespace: str, port: int,
                 workdir: Path) -> subprocess.Popen[bytes]:
    config = workdir / "shiftd.yaml"
    config.write_text(json.dumps({
        "kubernetes": {"kubeconfig": str(args.daemon_kubeconfig), "qps": 2000, "burst": 4000},
        "namespaces": [namespace], "listen": {"address": "127.0.0.1", "port": port},
        "workers": 32, "log": {"level": "warning"}}), encoding="utf-8")
    log = (workdir / "shiftd.log").open("wb")
    command = [str(Path(sys.executable).with_name("shiftd")), "run", "--config", str(config)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


async def ready(port: int) -> bool:
    def get() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False
    return await asyncio.to_thread(get)


async def measure(args: argparse.Namespace, client: KubeClient, namespace: str,
                  workdir: Path) -> dict[str, float]:
    port, n = free_port(), args.rollouts
    daemon = start_daemon(args, namespace, port, workdir)
    try:
        await poll(lambda: ready(port), what="/readyz", limit=60)
        await quiet(daemon.pid, limit=60)
        baseline, _ = usage(daemon.pid)
        started = time.monotonic()
        await seed(client, namespace, n)
        seeded = time.monotonic() - started
        healthy = await poll(counting(client, namespace, n,
                                      lambda s: s.get("phase") == "Healthy"),
                             what="every Rollout Healthy", limit=60 + n * 0.2)
        await quiet(daemon.pid, limit=120)
        rss_healthy, cpu_before = usage(daemon.pid)
        await set_images(client, namespace, "bench/app:green")
        paused = await poll(counting(client, namespace, n, lambda s: (
            s.get("phase") == "Paused" and s.get("currentStepIndex") == 1)),
            what="every Rollout Paused at 10 %", limit=60 + n * 0.2)
        await quiet(daemon.pid, limit=120)
        rss_paused, cpu_after = usage(daemon.pid)
    finally:
        daemon.terminate()
        daemon.wait(30)
    return {"rollouts": n, "baseline_mib": baseline, "seed_seconds": seeded,
            "healthy_seconds": healthy, "rss_healthy_mib": rss_healthy,
            "kib_per_rollout_healthy": (rss_healthy - baseline) * 1024 / n,
            "update_seconds": paused, "rss_paused_mib": rss_paused,
            "kib_per_rollout_paused": (rss_paused - baseline) * 1024 / n,
            "update_cpu_ms_per_rollout": (cpu_after - cpu_before) * 1000 / n}


async def main(args: argparse.Namespace) -> None:
    namespace = f"shiftd-bench-{secrets.token_hex(3)}"
    client = await KubeClient.from_settings(kubeconfig=str(args.kubeconfig), context=None,
                                            in_cluster=False, qps=2000.0, burst=4000)
    configuration = Configuration()
    await k8s_config.load_kube_config(config_file=str(args.kubeconfig),
                                      client_configuration=configuration, persist_config=False)
    async with client, ApiClient(configuration) as api:
        await client.create(NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": namespace}})
        await client.create(SERVICE_ACCOUNT, namespace, {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        try:
            with tempfile.TemporaryDirectory(prefix="shiftd-bench-") as directory:
                async with running(FakeKubelet(api, namespaces=[namespace]).run):
                    results = await measure(args, client, namespace, Path(directory))
        finally:
            if not args.keep:
                await client.delete(NAMESPACE, None, namespace)
    for key, value in results.items():
        print(f"{key:28} {value:10.2f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True,
                        help="an administrator's: seeds, plays the kubelet")
    parser.add_argument("--daemon-kubeconfig", type=Path, required=True,
                        help="shiftd's identity (deploy/rbac.yaml)")
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="leave the namespace")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
