"""The daemon runs a canary on an API server that knows Argo's kinds only through shiftd's own
CRDs (deploy/crds/): nothing it writes into a Rollout's status is pruned away."""

from __future__ import annotations

from typing import Any

from shiftd.crds import crd_documents
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon, weights
from tests.integration.harness import Cluster, default_crds, test_cluster

Obj = dict[str, Any]


def shiftds_crds_and_istios() -> list[Obj]:
    istio = [crd for crd in default_crds() if crd["spec"]["group"] != "argoproj.io"]
    return [*crd_documents(), *istio]


async def status_when(cluster: Cluster, phase: str, step: int) -> Obj | None:
    status: Obj = (await cluster.rollout()).get("status") or {}
    if status.get("phase") == phase and status.get("currentStepIndex") == step:
        return status
    return None


async def test_a_canary_runs_to_promotion_on_shiftds_own_crds() -> None:
    clock = ManualClock()
    async with test_cluster(crds=shiftds_crds_and_istios()) as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        await cluster.apply_example("asm-host-split")
        await cluster.wait_for(lambda: status_when(cluster, "Healthy", 18), what="Healthy")
        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
        paused = await cluster.wait_for(lambda: status_when(cluster, "Paused", 1),
                                        what="paused at step 1")
        # Status fields the daemon wrote, kept by the schema.
        assert paused["canary"]["weights"]["canary"]["weight"] == 10
        assert paused["pauseConditions"][0]["reason"] == "CanaryPauseStep"
        assert {c["type"] for c in paused["conditions"]} >= {"Progressing", "Available"}
        assert weights(await cluster.vs()) == {"istio-rollout-stable": 90,
                                               "istio-rollout-canary": 10}
        await cluster.promote(full=True)
        healthy = await cluster.wait_for(lambda: status_when(cluster, "Healthy", 18),
                                         what="fully promoted")
        assert healthy["stableRS"] == healthy["currentPodHash"] == paused["currentPodHash"]
