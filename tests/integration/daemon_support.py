"""Running the real daemon inside an integration test, and reading what it wrote.

``async with running_daemon(cluster, clock=clock) as daemon:`` starts ``Daemon`` against the
test's API server (emulator or real), watching only the test's namespace; leaving the block
cancels it. The task group lives inside the test's own task (never across a fixture's yield).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from shiftd.assembly import Daemon
from shiftd.common.tasks import running
from shiftd.config import Settings, parse_settings
from shiftd.kube.errors import Conflict
from shiftd.kube.resources import NAMESPACE
from shiftd.runtime.clock import Clock, ManualClock
from tests.integration.harness import Cluster, example_documents

Obj = dict[str, Any]


LEASE_NAMESPACE = "shiftd"  # where deploy/rbac.yaml lets the daemon hold Leases


async def ensure_lease_namespace(cluster: Cluster) -> None:
    """The namespace shiftd runs in (and keeps its Leases in), as deploy/ creates it."""
    with suppress(Conflict):  # already there
        await cluster.client.create(NAMESPACE, None, {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}})


def basic_rollout(name: str, *, steps: list[Obj]) -> Obj:
    """Seed 001's Rollout as a basic canary (no traffic routing, no Services) named ``name``,
    ready as soon as its pods are (``minReadySeconds: 0``), with these canary steps."""
    (source,) = [copy.deepcopy(doc) for doc in example_documents("imesh-host-split")
                 if doc["kind"] == "Rollout"]
    source["metadata"] = {"name": name}
    source["spec"]["minReadySeconds"] = 0
    source["spec"]["strategy"]["canary"] = {"steps": steps}
    return source


def daemon_settings(cluster: Cluster, *, workers: int = 4, **extra: Any) -> Settings:
    """The settings a test daemon runs with: the test's namespace, any free port."""
    return parse_settings({
        "kubernetes": {"kubeconfig": str(cluster.daemon_kubeconfig_path), "qps": 500,
                       "burst": 500},
        "namespaces": [cluster.namespace],
        "listen": {"address": "127.0.0.1", "port": 0},
        "workers": workers,
        "shutdownGracePeriod": 1,
        **extra,
    })


@asynccontextmanager
async def running_daemon(cluster: Cluster, *, clock: Clock | None = None,
                         workers: int = 4, **extra: Any) -> AsyncIterator[Daemon]:
    daemon = Daemon(daemon_settings(cluster, workers=workers, **extra),
                    clock=clock or ManualClock())
    async with running(daemon.run):
        yield daemon


def weights(vs: Obj, route: int = 0) -> dict[str, int]:
    """Weight by destination host in one http route (a missing weight reads as 0)."""
    return {entry["destination"]["host"]: int(entry.get("weight") or 0)
            for entry in vs["spec"]["http"][route]["route"]}


def replicas_by_image(replica_sets: list[Obj]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rs in replica_sets:
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        counts[image] = counts.get(image, 0) + int(rs["spec"].get("replicas", 0))
    return counts


def selector_hash(service: Obj) -> str | None:
    return (service["spec"].get("selector") or {}).get("rollouts-pod-template-hash")


def writes(cluster: Cluster) -> list[Any]:
    """The emulator's logged write requests (empty on a real server)."""
    if cluster.api is None:
        return []
    return [r for r in cluster.api.request_log if r.method in ("POST", "PUT", "PATCH", "DELETE")]
