"""Seed 003 end to end: Flagger's podinfo Canary run by shiftd on the API (emulator, or a real
server), its builtin Istio metrics measured by a real Prometheus scraping a test exporter of
Istio's telemetry (``tests/support/istio_exporter.py``),
its webhooks posted to a stand-in loadtester.

Canary time runs on a manual clock moved one analysis interval at a time; Prometheus keeps
real time, so the test waits (polling under a deadline) until it answers what a check needs
before moving the clock. ``FakeDeployments`` plays the Deployment controller's status.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import pytest

from shiftd.decide.flagger.metrics import builtin_query
from shiftd.kube.errors import NotFound
from shiftd.kube.resources import (
    CANARY,
    DEPLOYMENT,
    DESTINATION_RULE,
    EVENT,
    HORIZONTAL_POD_AUTOSCALER,
    ROLLOUT,
    SERVICE,
    VIRTUAL_SERVICE,
)
from shiftd.runtime.clock import ManualClock
from shiftd.sim import FakeDeployments
from tests.integration.daemon_support import basic_rollout, running_daemon, writes
from tests.integration.harness import Cluster, example_documents, flagger_crds, test_cluster
from tests.support.istio_exporter import IstioTelemetryExporter, istio_telemetry_prometheus
from tests.support.loadtester import FakeLoadTester, loadtester
from tests.support.prometheus import prometheus_binary

Obj = dict[str, Any]
INTERVAL = 60.0  # the seed's analysis.interval
NEW_IMAGE = "stefanprodan/podinfo:3.1.1"


# A VirtualService the user had before the Canary: taken over, and restored on deletion.
USERS_VS: Obj = {
    "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
    "metadata": {"name": "podinfo"},
    "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]},
}


def seed(kind: str) -> Obj:
    (found,) = [copy.deepcopy(d) for d in example_documents("flagger-podinfo")
                if d["kind"] == kind]
    found["metadata"].pop("namespace", None)
    return found


async def canary_status(cluster: Cluster, name: str = "podinfo") -> Obj:
    return (await cluster.client.get(CANARY, cluster.namespace, name)).get("status") or {}


async def image_of(cluster: Cluster, name: str) -> str:
    deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, name)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


async def replicas_of(cluster: Cluster, name: str) -> int:
    deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, name)
    return int(deployment["spec"].get("replicas", 1))


async def canary_events(cluster: Cluster) -> list[str]:
    items, _ = await cluster.client.list(EVENT, cluster.namespace)
    mine = [e for e in items if e["involvedObject"]["kind"] == "Canary"]
    return [e["message"] for e in sorted(mine, key=lambda e: e["metadata"]["creationTimestamp"])]


async def install(cluster: Cluster, tester: FakeLoadTester, **spec: Any) -> None:
    """Seed 003's Deployment and Canary, its webhooks pointed at the stand-in loadtester."""
    await cluster.client.create(DEPLOYMENT, cluster.namespace, seed("Deployment"))
    await cluster.client.create(HORIZONTAL_POD_AUTOSCALER, cluster.namespace,
                                seed("HorizontalPodAutoscaler"))
    canary = seed("Canary")
    for hook in canary["spec"]["analysis"]["webhooks"]:
        hook["url"] = tester.url + "/"
    canary["spec"].update(spec)
    await cluster.client.create(CANARY, cluster.namespace, canary)


async def install_unchecked(cluster: Cluster, tester: FakeLoadTester) -> None:
    """Seed 003 without metrics or webhooks: every interval passes its (no) checks."""
    await install(cluster, tester)
    canary = await cluster.client.get(CANARY, cluster.namespace, "podinfo")
    canary["spec"]["analysis"].update(metrics=[], webhooks=[])
    await cluster.client.replace(CANARY, cluster.namespace, "podinfo", canary)


async def set_image(cluster: Cluster, image: str) -> None:
    await cluster.client.patch(DEPLOYMENT, cluster.namespace, "podinfo", {"spec": {"template": {
        "spec": {"containers": [{"name": "podinfod", "image": image}]}}}},
        patch_type="strategic")


async def tick_until(cluster: Cluster, clock: ManualClock, what: str,
                     predicate: Callable[[Obj], bool], *, ticks: int = 12) -> Obj:
    """Move the clock one interval at a time until the Canary's status satisfies
    ``predicate``. After each move the daemon's status write for that interval is waited
    for (generously: moving the clock again before the daemon has taken its step would let
    it take two at once)."""
    for _ in range(ticks):
        found = await canary_status(cluster)
        if predicate(found):
            return found
        clock.advance(INTERVAL)
        try:
            await cluster.wait_for(
                functools.partial(_moved, cluster, found.get("lastTransitionTime"), predicate),
                timeout=30, what=what)
        except AssertionError:
            continue  # this interval changed nothing (waiting for readiness): tick again
    raise AssertionError(f"{what}: not reached after {ticks} intervals; "
                         f"status {await canary_status(cluster)}")


async def _moved(cluster: Cluster, previous: Any, predicate: Callable[[Obj], bool]) -> bool:
    found = await canary_status(cluster)
    return predicate(found) or found.get("lastTransitionTime") != previous


async def healthy_metrics(prometheus: Any, namespace: str) -> None:
    query = builtin_query("request-success-rate", namespace=namespace, target="podinfo",
                          interval="1m")
    await prometheus.wait_for(query, lambda values: bool(values) and values[0] >= 99)


pytestmark = pytest.mark.skipif(prometheus_binary() is None,
                                reason="Debian's prometheus is not installed")


async def test_seed_003_initialises_promotes_rolls_back_and_reverts_on_deletion() -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, \
            cluster.deployments() as deployments, loadtester() as tester, \
            istio_telemetry_prometheus() as (prometheus, exporter):
        deployments.hold(cluster.namespace, "podinfo-primary")
        exporter.traffic(workload="podinfo", namespace=cluster.namespace,
                         per_scrape={"200": 20}, latency_ms=20)
        await cluster.client.create(VIRTUAL_SERVICE, cluster.namespace, USERS_VS)
        await install(cluster, tester, revertOnDeletion=True)
        async with running_daemon(cluster, clock=clock,
                                  analysis={"prometheusAddress": prometheus.url}) as daemon:
            await primary_awaited(cluster, deployments)
            await initialised(cluster, clock)
            await healthy_metrics(prometheus, cluster.namespace)
            await promoted_step_by_step(cluster, clock, tester)
            assert_no_idle_writes(cluster)
            exposed = daemon.telemetry.metrics_text().decode()
            namespace = cluster.namespace
            assert (f'flagger_canary_successes_total{{analysis_status="completed",'
                    f'deployment_strategy="canary",name="podinfo",namespace="{namespace}"}} 1.0'
                    in exposed)
            assert f'flagger_canary_status{{name="podinfo",namespace="{namespace}"}} 1.0' \
                in exposed
            await rolled_back(cluster, clock, exporter, prometheus)
            await reverted_on_deletion(cluster, clock)


def assert_no_idle_writes(cluster: Cluster) -> None:
    """Every write the daemon made changed something: the VirtualService is written once
    when taken over and once per weight move (emulator only: a real server keeps no log)."""
    vs_writes = [r for r in writes(cluster) if "/virtualservices/" in r.path
                 and "shiftd" in r.user_agent and r.method in ("PUT", "PATCH")]
    if cluster.api is not None:
        # taken over, 5 steps to 50 %, all back to the primary at promotion
        assert len(vs_writes) == 7, [(r.method, r.status) for r in vs_writes]
        rewritten = [r.path for r in writes(cluster) if r.method == "PUT" and (
            "/services/" in r.path or "/destinationrules/" in r.path)]
        assert rewritten == []  # made once, never drifting


async def primary_awaited(cluster: Cluster, deployments: FakeDeployments) -> None:
    """Until the primary is ready, the user's VirtualService keeps routing as it did."""
    waiting = (f"podinfo-primary.{cluster.namespace} not ready: waiting for rollout to "
               f"finish: observed deployment generation less than desired generation")

    async def warned() -> bool:
        return waiting in await canary_events(cluster)

    await cluster.wait_for(warned, what="the primary's readiness warning")
    vs = await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, "podinfo")
    assert vs["spec"] == USERS_VS["spec"]
    assert (await canary_status(cluster))["phase"] == "Initializing"
    deployments.release(cluster.namespace, "podinfo-primary")


async def initialised(cluster: Cluster, clock: ManualClock) -> None:
    await cluster.wait_for(lambda: _phase_is(cluster, "Initialized"), what="Initialized")
    namespace, get = cluster.namespace, cluster.client.get
    primary = await get(DEPLOYMENT, namespace, "podinfo-primary")
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    selectors = {name: (await get(SERVICE, namespace, name))["spec"]["selector"]
                 for name in ("podinfo", "podinfo-primary", "podinfo-canary")}
    assert selectors == {"podinfo": {"app": "podinfo-primary"},
                         "podinfo-primary": {"app": "podinfo-primary"},
                         "podinfo-canary": {"app": "podinfo"}}
    vs = await get(VIRTUAL_SERVICE, namespace, "podinfo")
    assert vs["spec"]["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    assert vs["spec"]["http"][0]["retries"]["attempts"] == 3
    assert [r["destination"]["host"] for r in vs["spec"]["http"][0]["route"]] == [
        "podinfo-primary", "podinfo-canary"]
    hpa = await get(HORIZONTAL_POD_AUTOSCALER, namespace, "podinfo-primary")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    rule = await get(DESTINATION_RULE, namespace, "podinfo-canary")
    assert rule["spec"]["trafficPolicy"] == {"tls": {"mode": "DISABLE"}}
    assert await cluster.wait_for(lambda: _replicas_are(cluster, "podinfo", 0),
                                  what="the target scaled to zero")
    events = await canary_events(cluster)
    assert "Initialization done! podinfo." + namespace in events
    assert "all the metrics providers are available!" in events


async def _phase_is(cluster: Cluster, phase: str) -> bool:
    return (await canary_status(cluster)).get("phase") == phase


async def _replicas_are(cluster: Cluster, name: str, count: int) -> bool:
    return await replicas_of(cluster, name) == count


async def promoted_step_by_step(cluster: Cluster, clock: ManualClock,
                                tester: FakeLoadTester) -> None:
    await set_image(cluster, NEW_IMAGE)
    await tick_until(cluster, clock, "Progressing", lambda s: s.get("phase") == "Progressing")
    assert await replicas_of(cluster, "podinfo") == 2  # the HPA's minReplicas
    seen: list[int] = []
    for weight in (10, 20, 30, 40, 50):
        found = await tick_until(cluster, clock, f"weight {weight}",
                                 lambda s, w=weight: s.get("canaryWeight") == w)
        seen.append(found["canaryWeight"])
        vs = await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, "podinfo")
        routed = {r["destination"]["host"]: r.get("weight", 0)
                  for r in vs["spec"]["http"][0]["route"]}
        assert routed == {"podinfo-primary": 100 - weight, "podinfo-canary": weight}
    assert seen == [10, 20, 30, 40, 50]
    await tick_until(cluster, clock, "Succeeded", lambda s: s.get("phase") == "Succeeded")
    assert await image_of(cluster, "podinfo-primary") == NEW_IMAGE
    assert await replicas_of(cluster, "podinfo") == 0
    status = await canary_status(cluster)
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Promoted": "True"}
    events = await canary_events(cluster)
    path = f"podinfo.{cluster.namespace}"
    assert f"New revision detected! Scaling up {path}" in events
    assert "Pre-rollout check acceptance-test passed" in events
    assert f"Promotion completed! Scaling down {path}" in events
    kinds = [task.cmd for task in tester.tasks]
    assert any("token" in cmd for cmd in kinds) and any(cmd.startswith("hey") for cmd in kinds)


async def rolled_back(cluster: Cluster, clock: ManualClock,
                      exporter: IstioTelemetryExporter, prometheus: Any) -> None:
    exporter.traffic(workload="podinfo", namespace=cluster.namespace,
                     per_scrape={"200": 35, "500": 65}, latency_ms=20)
    query = builtin_query("request-success-rate", namespace=cluster.namespace,
                          target="podinfo", interval="1m")
    await prometheus.wait_for(query, lambda values: bool(values) and values[0] < 99)
    await set_image(cluster, "stefanprodan/podinfo:3.1.2")
    await tick_until(cluster, clock, "weight 10", lambda s: s.get("canaryWeight") == 10)
    found = await tick_until(cluster, clock, "Failed", lambda s: s.get("phase") == "Failed")
    assert found["canaryWeight"] == 0
    assert await image_of(cluster, "podinfo-primary") == NEW_IMAGE
    assert await replicas_of(cluster, "podinfo") == 0
    events = await canary_events(cluster)
    path = f"podinfo.{cluster.namespace}"
    assert f"Rolling back {path} failed checks threshold reached 5" in events
    halts = [e for e in events if e.startswith(f"Halt {path} advancement success rate ")]
    assert halts and all(e.endswith("% < 99%") for e in halts), events


async def reverted_on_deletion(cluster: Cluster, clock: ManualClock) -> None:
    canary = await cluster.client.get(CANARY, cluster.namespace, "podinfo")
    assert canary["metadata"]["finalizers"] == ["finalizer.flagger.app"]
    await cluster.client.delete(CANARY, cluster.namespace, "podinfo")

    async def gone() -> bool:
        try:
            await cluster.client.get(CANARY, cluster.namespace, "podinfo")
        except NotFound:
            return True
        clock.advance(INTERVAL)  # the finalizer waits on the target's readiness by interval
        return False

    await cluster.wait_for(gone, timeout=20, what="the Canary to be finalised and deleted")
    assert await replicas_of(cluster, "podinfo") == 1  # the target serves again
    vs = await cluster.client.get(VIRTUAL_SERVICE, cluster.namespace, "podinfo")
    assert vs["spec"] == USERS_VS["spec"]
    assert not vs["metadata"].get("ownerReferences")


async def test_a_rollout_and_a_canary_of_the_same_name_both_progress() -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, cluster.deployments(), \
            cluster.kubelet(), loadtester() as tester:
        await install_unchecked(cluster, tester)
        rollout = basic_rollout("podinfo", steps=[{"setWeight": 50}, {"pause": {}}])
        await cluster.client.create(ROLLOUT, cluster.namespace, rollout)
        async with running_daemon(cluster, clock=clock):
            await cluster.wait_for(lambda: _phase_is(cluster, "Initialized"),
                                   what="the Canary Initialized")
            await cluster.set_image("podinfo", "argoproj/rollouts-demo:yellow")
            await set_image(cluster, NEW_IMAGE)
            await tick_until(cluster, clock, "canary weight 10",
                             lambda s: s.get("canaryWeight") == 10)

            async def rollout_paused() -> bool:
                status = (await cluster.rollout("podinfo")).get("status") or {}
                return bool(status.get("pauseConditions"))

            await cluster.wait_for(rollout_paused, what="the Rollout at its pause")


async def test_a_daemon_restarted_mid_analysis_carries_on_from_the_canarys_status() -> None:
    clock = ManualClock()
    async with test_cluster(crds=flagger_crds()) as cluster, cluster.deployments(), \
            loadtester() as tester:
        await install_unchecked(cluster, tester)
        async with running_daemon(cluster, clock=clock):
            await cluster.wait_for(lambda: _phase_is(cluster, "Initialized"),
                                   what="the Canary Initialized")
            await set_image(cluster, NEW_IMAGE)
            await tick_until(cluster, clock, "weight 20", lambda s: s.get("canaryWeight") == 20)
        async with running_daemon(cluster, clock=clock):  # a new daemon, the same cluster
            await tick_until(cluster, clock, "weight 30", lambda s: s.get("canaryWeight") == 30)
        events = await canary_events(cluster)
        path = f"podinfo.{cluster.namespace}"
        assert events.count(f"New revision detected! Scaling up {path}") == 1
        assert events.count(f"Starting canary analysis for {path}") == 1
        assert not any("Restarting" in event for event in events)
