"""The daemon runs the seeds' canaries step by step against the API (emulator or real).

Each test seeds a namespace from ``shared/examples``, runs the real daemon with a manual
clock and a fake kubelet, and checks the VirtualService weights, ReplicaSet replicas, Service
selectors and Rollout status at every step.
"""

from __future__ import annotations

from typing import Any

from shiftd.kube.resources import EVENT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import (
    replicas_by_image,
    running_daemon,
    selector_hash,
    weights,
)
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]


async def phase_is(cluster: Cluster, phase: str, **fields: Any) -> Obj | None:
    rollout = await cluster.rollout()
    status = rollout.get("status") or {}
    if status.get("phase") != phase:
        return None
    if any(status.get(key) != value for key, value in fields.items()):
        return None
    return rollout


async def weights_are(cluster: Cluster, expected: dict[str, int]) -> bool:
    return weights(await cluster.vs()) == expected


async def test_seed_000_canary_walks_every_step_to_full_promotion() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock) as daemon:
        await cluster.apply_example("asm-host-split")
        first = await cluster.wait_for(lambda: phase_is(cluster, "Healthy"), what="Healthy")
        stable_hash = first["status"]["stableRS"]
        assert first["status"]["currentStepIndex"] == 18
        assert await weights_are(cluster, {"istio-rollout-stable": 100,
                                           "istio-rollout-canary": 0})

        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
        paused = await cluster.wait_for(
            lambda: phase_is(cluster, "Paused", currentStepIndex=1), what="paused at step 1")
        canary_hash = paused["status"]["currentPodHash"]
        assert paused["status"]["message"] == "CanaryPauseStep"
        assert paused["status"]["pauseConditions"][0]["reason"] == "CanaryPauseStep"
        assert paused["status"]["canary"]["weights"]["canary"]["weight"] == 10
        assert await weights_are(cluster, {"istio-rollout-stable": 90, "istio-rollout-canary": 10})
        assert selector_hash(await cluster.service("istio-rollout-canary")) == canary_hash
        assert selector_hash(await cluster.service("istio-rollout-stable")) == stable_hash
        assert replicas_by_image(await cluster.replica_sets()) == {
            "argoproj/rollouts-demo:blue": 1, "argoproj/rollouts-demo:yellow": 1}

        await cluster.promote()
        for index, weight in enumerate((20, 30, 40, 50, 60, 70, 80, 90)):
            step = 3 + 2 * index
            await cluster.wait_for(lambda step=step: phase_is(cluster, "Paused",
                                                              currentStepIndex=step),
                                   what=f"paused at step {step}")
            assert await weights_are(cluster, {"istio-rollout-stable": 100 - weight,
                                               "istio-rollout-canary": weight})
            clock.advance(20)

        promoted = await cluster.wait_for(
            lambda: phase_is(cluster, "Healthy", stableRS=canary_hash), what="promoted")
        assert promoted["status"]["currentStepIndex"] == 18
        assert await weights_are(cluster, {"istio-rollout-stable": 100, "istio-rollout-canary": 0})
        assert selector_hash(await cluster.service("istio-rollout-stable")) == canary_hash
        assert selector_hash(await cluster.service("istio-rollout-canary")) == canary_hash
        # the old stable keeps its pod for scaleDownDelaySeconds (30 s), then goes
        assert replicas_by_image(await cluster.replica_sets())["argoproj/rollouts-demo:blue"] == 1
        clock.advance(30)

        async def blue_scaled_down() -> bool:
            return replicas_by_image(await cluster.replica_sets())[
                "argoproj/rollouts-demo:blue"] == 0

        await cluster.wait_for(blue_scaled_down, what="old stable scaled down")

        await cluster.wait_for(lambda: daemon.quiet, what="every Event written")
        events, _ = await cluster.client.list(EVENT, cluster.namespace)
        messages = {event["message"] for event in events
                    if event["involvedObject"]["name"] == "istio-rollout"}
        for expected in ("Set weight to 10", "Set weight to 20", "Paused at step 1",
                         "Rollout updated to revision 2"):
            assert expected in messages
        assert any(m.startswith("Promoted: revision 2") for m in messages)
        assert any(m.startswith("Scaled down old ReplicaSet") for m in messages)
        assert daemon.telemetry.metrics_text().count(b'rollout_info{') >= 1


async def test_seed_001_waits_an_hour_at_fifty_percent_then_promotes() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        await cluster.apply_example("imesh-host-split")
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy"), what="Healthy")
        replica_sets = await cluster.replica_sets()
        assert [rs["spec"]["minReadySeconds"] for rs in replica_sets] == [30]
        assert [rs["spec"]["replicas"] for rs in replica_sets] == [2]

        await cluster.set_image("imesh-rollout", "nginx:1.15.5")
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", currentStepIndex=1),
                               what="paused for an hour")
        assert await weights_are(cluster, {"stable-svc": 50, "canary-svc": 50})
        assert replicas_by_image(await cluster.replica_sets()) == {"nginx:1.15.4": 2,
                                                                   "nginx:1.15.5": 1}
        rollout = await cluster.rollout()
        assert rollout["status"]["replicas"] == 3
        assert rollout["status"]["updatedReplicas"] == 1

        clock.advance(3599)
        await cluster.wait_for(lambda: phase_is(cluster, "Paused"), what="still paused")
        clock.advance(1)
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy", currentStepIndex=2),
                               what="promoted after the hour")
        assert await weights_are(cluster, {"stable-svc": 100, "canary-svc": 0})
        assert replicas_by_image(await cluster.replica_sets())["nginx:1.15.5"] == 2


async def test_seed_002_steps_through_twenty_forty_sixty_eighty() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        await cluster.apply_example("myapp-analysis")
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy"), what="Healthy")
        await cluster.set_image("myapp", "argoproj/rollouts-demo:yellow")
        await cluster.wait_for(lambda: phase_is(cluster, "Paused", currentStepIndex=1),
                               what="paused at 20%")
        assert await weights_are(cluster, {"myapp-stable-svc": 80, "myapp-canary-svc": 20})
        await cluster.promote()
        for step, weight in ((3, 40), (5, 60), (7, 80)):
            await cluster.wait_for(lambda step=step: phase_is(cluster, "Paused",
                                                              currentStepIndex=step),
                                   what=f"paused at {weight}%")
            assert await weights_are(cluster, {"myapp-stable-svc": 100 - weight,
                                               "myapp-canary-svc": weight})
            clock.advance(60)
        await cluster.wait_for(lambda: phase_is(cluster, "Healthy", currentStepIndex=8),
                               what="promoted")
        assert await weights_are(cluster, {"myapp-stable-svc": 100, "myapp-canary-svc": 0})
