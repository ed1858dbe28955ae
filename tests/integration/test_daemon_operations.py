"""Operator actions, bad specs, conflicts and broken watches, against the running daemon."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.kube.resources import ROLLOUT, VIRTUAL_SERVICE
from shiftd.runtime.clock import ManualClock
from shiftd.runtime.keys import ObjectKey
from tests.integration.daemon_support import (
    replicas_by_image,
    running_daemon,
    selector_hash,
    weights,
    writes,
)
from tests.integration.harness import Cluster, test_cluster

Obj = dict[str, Any]
STABLE, CANARY = "istio-rollout-stable", "istio-rollout-canary"


async def status_of(cluster: Cluster, name: str | None = None) -> Obj:
    return (await cluster.rollout(name)).get("status") or {}


async def at(cluster: Cluster, phase: str, step: int | None = None,
             name: str | None = None) -> Obj | None:
    status = await status_of(cluster, name)
    if status.get("phase") != phase:
        return None
    if step is not None and status.get("currentStepIndex") != step:
        return None
    return status


async def canary_weight(cluster: Cluster) -> int:
    return weights(await cluster.vs())[CANARY]


async def started_canary(cluster: Cluster) -> None:
    """Seed 000 Healthy on blue, then updated to yellow and paused at 10%."""
    await cluster.apply_example("asm-host-split")
    await cluster.wait_for(lambda: at(cluster, "Healthy"), what="Healthy")
    await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
    await cluster.wait_for(lambda: at(cluster, "Paused", 1), what="paused at 10%")


async def test_abort_moves_the_weight_to_zero_and_degrades_then_retry_restarts() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        await started_canary(cluster)
        await cluster.promote()
        await cluster.wait_for(lambda: at(cluster, "Paused", 3), what="paused at 20%")
        assert await canary_weight(cluster) == 20

        await cluster.abort()
        status = await cluster.wait_for(lambda: at(cluster, "Degraded"), what="Degraded")
        assert status["message"] == "RolloutAborted: Rollout aborted update to revision 2"
        assert status["currentStepIndex"] == 0
        assert status["abort"] is True
        assert await canary_weight(cluster) == 0
        assert selector_hash(await cluster.service(CANARY)) == status["stableRS"]
        assert replicas_by_image(await cluster.replica_sets())[
            "argoproj/rollouts-demo:yellow"] == 1  # until abortScaleDownDelaySeconds
        clock.advance(30)

        async def canary_gone() -> bool:
            return replicas_by_image(await cluster.replica_sets())[
                "argoproj/rollouts-demo:yellow"] == 0

        await cluster.wait_for(canary_gone, what="canary scaled down after the abort delay")

        await cluster.retry()
        await cluster.wait_for(lambda: at(cluster, "Paused", 1), what="steps restarted")
        assert await canary_weight(cluster) == 10
        assert selector_hash(await cluster.service(CANARY)) == (
            await status_of(cluster))["currentPodHash"]


async def test_promote_full_skips_every_remaining_step() -> None:
    async with test_cluster() as cluster, cluster.kubelet(), running_daemon(cluster):
        await started_canary(cluster)
        await cluster.promote(full=True)
        status = await cluster.wait_for(lambda: at(cluster, "Healthy"), what="promoted")
        assert status["stableRS"] == status["currentPodHash"]
        assert status["currentStepIndex"] == 18
        assert await canary_weight(cluster) == 0
        assert selector_hash(await cluster.service(STABLE)) == status["currentPodHash"]


async def test_pause_holds_a_timed_step_until_resumed() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        await started_canary(cluster)
        await cluster.promote()
        await cluster.wait_for(lambda: at(cluster, "Paused", 3), what="paused at 20%")
        await cluster.pause()
        status = await cluster.wait_for(
            lambda: _message(cluster, "manually paused"), what="manually paused")
        assert status["phase"] == "Paused"
        clock.advance(120)
        await cluster.wait_for(lambda: _message(cluster, "manually paused"), what="still held")
        assert (await status_of(cluster))["currentStepIndex"] == 3
        assert await canary_weight(cluster) == 20
        await cluster.resume()
        await cluster.wait_for(lambda: at(cluster, "Paused", 5), what="moved on to 30%")
        assert await canary_weight(cluster) == 30


async def _message(cluster: Cluster, message: str) -> Obj | None:
    status = await status_of(cluster)
    return status if status.get("message") == message else None


@pytest.mark.parametrize(
    ("spec_change", "message"),
    [
        ({"strategy": {"canary": {"trafficRouting": {"istio": {"virtualService": {
            "name": "no-such-vsvc", "routes": ["primary"]}}}}}},
         "VirtualService 'no-such-vsvc' not found"),
        ({"strategy": {"canary": {"trafficRouting": {"istio": {"virtualService": {
            "name": "istio-rollout-vsvc", "routes": ["nope"]}}}}}},
         "HTTP route 'nope' not found"),
        ({"strategy": {"canary": {"canaryService": STABLE}}}, "must differ"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 150}]}}},
         "setWeight must be between 0 and 100"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "5x"}}]}}},
         "invalid duration"),
    ],
)
async def test_an_invalid_spec_degrades_patches_nothing_and_recovers_when_fixed(
    spec_change: Obj, message: str
) -> None:
    async with test_cluster() as cluster, cluster.kubelet(), running_daemon(cluster):
        await cluster.apply_example("asm-host-split")
        healthy = await cluster.wait_for(lambda: at(cluster, "Healthy"), what="Healthy")
        original_spec = (await cluster.rollout())["spec"]
        vs_before = await cluster.vs()
        replica_sets_before = await cluster.replica_sets()

        spec_change = {**spec_change}
        spec_change.setdefault("template", {"spec": {"containers": [
            {"name": "istio-rollout", "image": "argoproj/rollouts-demo:yellow"}]}})
        await cluster.client.patch(ROLLOUT, cluster.namespace, "istio-rollout",
                                   {"spec": spec_change}, patch_type="merge")
        status = await cluster.wait_for(lambda: at(cluster, "Degraded"), what="Degraded")
        assert message in status["message"]
        invalid = [c for c in status["conditions"] if c["type"] == "InvalidSpec"]
        assert invalid[0]["status"] == "True" and message in invalid[0]["message"]
        assert (await cluster.vs())["spec"] == vs_before["spec"]
        assert [rs["metadata"]["name"] for rs in await cluster.replica_sets()] == [
            rs["metadata"]["name"] for rs in replica_sets_before]

        fixed = await cluster.rollout()
        fixed["spec"]["strategy"] = original_spec["strategy"]
        fixed["spec"]["template"] = original_spec["template"]
        await cluster.client.replace(ROLLOUT, cluster.namespace, "istio-rollout", fixed)
        recovered = await cluster.wait_for(lambda: at(cluster, "Healthy"), what="recovered")
        assert recovered["stableRS"] == healthy["stableRS"]
        assert not [c for c in recovered["conditions"] if c["type"] == "InvalidSpec"]


async def test_one_invalid_rollout_does_not_hold_up_another() -> None:
    async with test_cluster() as cluster, cluster.kubelet(), running_daemon(cluster):
        await cluster.apply_example("asm-host-split")
        await cluster.wait_for(lambda: at(cluster, "Healthy"), what="first Healthy")
        broken = await cluster.rollout()
        broken = {"apiVersion": broken["apiVersion"], "kind": "Rollout",
                  "metadata": {"name": "broken", "namespace": cluster.namespace},
                  "spec": {**broken["spec"], "selector": {"matchLabels": {"app": "other"}}}}
        await cluster.client.create(ROLLOUT, cluster.namespace, broken)
        status = await cluster.wait_for(lambda: at(cluster, "Degraded", name="broken"),
                                        what="broken degraded")
        assert "spec.selector does not match" in status["message"]
        await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
        await cluster.wait_for(lambda: at(cluster, "Paused", 1), what="the good one progresses")


async def test_a_conflicting_write_is_replanned_from_fresh_objects() -> None:
    async with test_cluster() as cluster:
        if cluster.api is None:
            pytest.skip("injecting a 409 needs the emulator")
        async with cluster.kubelet(), running_daemon(cluster):
            await cluster.apply_example("asm-host-split")
            await cluster.wait_for(lambda: at(cluster, "Healthy"), what="Healthy")
            cluster.api.fail_next("PATCH", r"/rollouts/istio-rollout/status$", 409)
            cluster.api.fail_next("PATCH", r"/virtualservices/istio-rollout-vsvc$", 409)
            await cluster.set_image("istio-rollout", "argoproj/rollouts-demo:yellow")
            await cluster.wait_for(lambda: at(cluster, "Paused", 1), what="paused at 10%")
            assert await canary_weight(cluster) == 10
            conflicts = [r for r in cluster.api.request_log if r.status == 409]
            assert len(conflicts) == 2


async def test_user_edits_to_the_virtual_service_survive_weight_changes() -> None:
    async with test_cluster() as cluster, cluster.kubelet(), running_daemon(cluster):
        await started_canary(cluster)
        await cluster.client.patch(VIRTUAL_SERVICE, cluster.namespace, "istio-rollout-vsvc", [
            {"op": "add", "path": "/spec/http/0/timeout", "value": "5s"},
            {"op": "add", "path": "/metadata/labels", "value": {"team": "shop"}},
        ], patch_type="json")
        await cluster.promote()
        await cluster.wait_for(lambda: at(cluster, "Paused", 3), what="paused at 20%")
        vs = await cluster.vs()
        assert weights(vs) == {STABLE: 80, CANARY: 20}
        assert vs["spec"]["http"][0]["timeout"] == "5s"
        assert vs["metadata"]["labels"] == {"team": "shop"}
        assert vs["spec"]["gateways"] == ["istio-rollout-gateway"]


async def test_a_watch_broken_by_the_server_is_resumed() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster:
        if cluster.api is None:
            pytest.skip("breaking watches needs the emulator")
        async with cluster.kubelet(), running_daemon(cluster, clock=clock) as daemon:
            await started_canary(cluster)
            cluster.api.drop_watches()
            await cluster.promote()
            await cluster.wait_for(lambda: at(cluster, "Paused", 3), what="20% after a drop")
            cluster.api.compact()
            cluster.api.drop_watches()
            clock.advance(20)
            await cluster.wait_for(lambda: at(cluster, "Paused", 5), what="30% after a 410")
            assert await canary_weight(cluster) == 30
            assert b"shiftd_watch_restarts_total" in daemon.telemetry.metrics_text()


async def test_a_settled_rollout_makes_no_writes() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster:
        if cluster.api is None:
            pytest.skip("counting requests needs the emulator's log")
        async with cluster.kubelet(), running_daemon(cluster, clock=clock) as daemon:
            await started_canary(cluster)
            await cluster.wait_for(lambda: daemon.quiet, what="nothing left to do or write")
            before = len(writes(cluster))
            clock.advance(3600)  # the indefinite pause ignores time
            assert daemon.parts is not None
            for key in [ObjectKey("Rollout", cluster.namespace, "istio-rollout")] * 3:
                daemon.parts.engine.enqueue(key)  # as a resync would
            await cluster.wait_for(lambda: daemon.quiet, what="quiet again")
            assert writes(cluster)[before:] == []
