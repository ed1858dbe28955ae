"""The client's CPU per request: the same status PATCHes sent three ways to the emulator.

``bench/rollouts.py`` measures a whole Rollout step; this isolates the request. It starts
``emulator_server.py`` (TLS unless ``--no-tls``), seeds ``--objects`` Rollouts, and PATCHes
each one's status ``--rounds`` times from ``--concurrency`` worker tasks, three ways:

* ``KubeClient.patch``: the daemon's path (retry loop, rate limiter with no limit, headers,
  the keep-alive pool of ``shiftd.kube.connections``, the answer parsed with orjson);
* ``aiohttp``: the same request bytes through an aiohttp session with kubernetes_asyncio's
  TLS settings (what ``KubeClient`` used before the pool), the answer read but not parsed;
* ``pool``: the same bytes through ``ConnectionPool.request`` alone, the answer not parsed.

It prints this process's CPU (user + system) and the wall time per request, per way and
round; the first round of each way opens its connections.

    SHIFTD_CRDS_DIR=../shared/crds .venv/bin/python bench/request_cost.py --objects 1000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import aiohttp
import anyio
import orjson
from rollouts import Control, Results, cpu_seconds, emulator_process

from shiftd.cli.eventloop import backend_options
from shiftd.kube.client import KubeClient
from shiftd.kube.connections import ConnectionPool, http1_request, tls_context
from shiftd.kube.resources import ROLLOUT
from shiftd.kube.wire import RequestHeaders, load_configuration

NAMESPACE = "bench"
PATCH = "application/merge-patch+json"
Send = Callable[[str, bytes], Awaitable[None]]


def status_path(name: str) -> str:
    return ROLLOUT.object_path(NAMESPACE, name, "status") + "?fieldManager=shiftd"


async def measure(label: str, send: Send, names: Sequence[str], *, rounds: int,
                  concurrency: int) -> None:
    async def worker(pending: Iterator[str], message: str) -> None:
        for name in pending:
            await send(name, orjson.dumps({"status": {"message": message}}))

    for round_number in range(rounds):
        pending = iter(names)
        cpu, wall = cpu_seconds(), time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(worker, pending, f"{label} {round_number}")
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        print(f"{label:18} round {round_number}: {cpu * 1e6 / len(names):6.1f} us CPU, "
              f"{wall * 1e6 / len(names):6.1f} us wall per request", flush=True)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir, \
            emulator_process(Path(workdir), NAMESPACE, tls=args.tls) as cluster:
        async with aiohttp.ClientSession() as session:
            control = Control(session, cluster.control,
                              Results(rollouts=args.objects, workers=0, qps=0, burst=1))
            await control.seed(count=args.objects, namespace=NAMESPACE, image="bench:1")
        configuration = await load_configuration(kubeconfig=str(cluster.kubeconfig),
                                                 context=None, in_cluster=False)
        async with KubeClient(configuration, qps=0, burst=1) as client:
            names = [r["metadata"]["name"] for r in (await client.list(ROLLOUT, NAMESPACE))[0]]

            async def via_client(name: str, body: bytes) -> None:
                await client.patch(ROLLOUT, NAMESPACE, name, orjson.loads(body),
                                   patch_type="merge", subresource="status")

            await measure("KubeClient.patch", via_client, names, rounds=args.rounds,
                          concurrency=args.concurrency)
        headers = RequestHeaders(configuration, {"User-Agent": "shiftd-bench"})
        fields = await headers.for_content_type(PATCH)
        secure = str(configuration.host).startswith("https")
        connector = aiohttp.TCPConnector(limit=100,
                                         ssl=tls_context(configuration) if secure else False)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def via_aiohttp(name: str, body: bytes) -> None:
                async with session.patch(str(configuration.host) + status_path(name),
                                         headers=fields, data=body) as response:
                    await response.read()

            await measure("aiohttp", via_aiohttp, names, rounds=args.rounds,
                          concurrency=args.concurrency)
        pool = ConnectionPool.for_configuration(configuration, server_hostname=None,
                                                request_timeout=30.0)
        host = str(configuration.host).split("://", 1)[1]
        head = f"Host: {host}\r\n".encode() + await headers.block_for_content_type(PATCH)

        async def via_pool(name: str, body: bytes) -> None:
            await pool.request(http1_request("PATCH", status_path(name), head, body))

        await measure("pool", via_pool, names, rounds=args.rounds,
                      concurrency=args.concurrency)
        pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    anyio.run(run, args, backend_options=backend_options("auto"))  # uvloop, as shiftd runs
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
