"""A cluster without Istio's CRDs: the daemon starts, becomes ready and runs basic canaries;
a Rollout that asks for Istio is told, by an InvalidSpec condition and Event, that the API
server does not serve VirtualServices. (Emulator only: a real test cluster has the CRDs.)"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from shiftd.kube.resources import EVENT, ROLLOUT, SERVICE
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import basic_rollout, running_daemon
from tests.integration.harness import Cluster, default_crds, example_documents, test_cluster

Obj = dict[str, Any]


def argo_crds_only() -> list[Obj]:
    return [crd for crd in default_crds() if crd["spec"]["group"] == "argoproj.io"]


async def phase(cluster: Cluster, name: str) -> str | None:
    status = (await cluster.client.get(ROLLOUT, cluster.namespace, name)).get("status") or {}
    return status.get("phase")


async def test_without_istio_crds_the_daemon_is_ready_and_runs_basic_canaries() -> None:
    async with test_cluster(crds=argo_crds_only()) as cluster:
        if cluster.api is None:
            pytest.skip("a real test cluster has Istio's CRDs installed")
        async with cluster.kubelet(), running_daemon(cluster, clock=ManualClock()) as daemon:
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{daemon.port}/readyz") as response:
                assert response.status == 200
            await cluster.client.create(ROLLOUT, cluster.namespace, basic_rollout(
                "basic", steps=[{"setWeight": 50}, {"pause": {"duration": "1h"}}]))

            async def healthy() -> bool:
                return await phase(cluster, "basic") == "Healthy"

            assert await cluster.wait_for(healthy, what="the basic canary Healthy")


async def test_a_rollout_asking_for_istio_there_is_told_the_kind_is_not_served() -> None:
    async with test_cluster(crds=argo_crds_only()) as cluster:
        if cluster.api is None:
            pytest.skip("a real test cluster has Istio's CRDs installed")
        async with cluster.kubelet(), running_daemon(cluster, clock=ManualClock()):
            for doc in example_documents("imesh-host-split"):
                if doc["kind"] == "Service":
                    doc["metadata"].pop("namespace", None)
                    await cluster.client.create(SERVICE, cluster.namespace, doc)
            (rollout,) = [doc for doc in example_documents("imesh-host-split")
                          if doc["kind"] == "Rollout"]
            rollout["metadata"].pop("namespace", None)
            await cluster.client.create(ROLLOUT, cluster.namespace, rollout)

            async def invalid() -> Obj | None:
                got = await cluster.client.get(ROLLOUT, cluster.namespace, "imesh-rollout")
                conditions = (got.get("status") or {}).get("conditions") or []
                found = [c for c in conditions if c["type"] == "InvalidSpec"]
                return found[0] if found else None

            condition = await cluster.wait_for(invalid, what="an InvalidSpec condition")
            assert "does not serve VirtualService" in condition["message"]
            assert "is Istio installed?" in condition["message"]

            async def event() -> list[Obj]:
                items, _ = await cluster.client.list(EVENT, cluster.namespace)
                return [e for e in items if e.get("reason") == "InvalidSpec"
                        and "does not serve VirtualService" in e.get("message", "")]

            assert await cluster.wait_for(event, what="an InvalidSpec Event")
