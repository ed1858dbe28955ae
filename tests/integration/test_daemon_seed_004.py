"""Seed 004 end to end: the Tetrate/SkyWalking Rollout as written (a workloadRef to the
Deployment ``reviews``, canary/stable metadata, subset-level routing through the
DestinationRule ``reviews``, background Apdex analysis from step 2) run by the real daemon
under deploy/rbac.yaml against the API (emulator or real) and a SkyWalking-speaking server.

At every step the subsets' hash labels, the VirtualService's subset weights and the
ReplicaSets' templates are checked; the invariant monitor checks that no weighted subset ever
selects only pods that are not available.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    DEPLOYMENT,
    DESTINATION_RULE,
    ROLLOUT,
)
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import Cluster, test_cluster
from tests.support.skywalking import SkyWalkingOap, skywalking_oap

Obj = dict[str, Any]
HASH = "rollouts-pod-template-hash"
CANARY_SERVICE = "canary|reviews|bookinfo|cp-cluster-1|-"
V2 = "docker.io/istio/examples-bookinfo-reviews-v2:1.16.4"
# fields of the DestinationRule that are the user's, not shiftd's: they must survive
USER_POLICY = {"loadBalancer": {"simple": "ROUND_ROBIN"}}
LEGACY_SUBSET = {"name": "legacy", "labels": {"version": "v0"}}


async def status(cluster: Cluster) -> Obj:
    return (await cluster.rollout()).get("status") or {}


async def subsets(cluster: Cluster) -> dict[str, Obj]:
    rule = await cluster.client.get(DESTINATION_RULE, cluster.namespace, "reviews")
    return {subset["name"]: subset.get("labels") or {} for subset in rule["spec"]["subsets"]}


async def subset_weights(cluster: Cluster) -> dict[str, int]:
    vs = await cluster.vs()
    return {d["destination"]["subset"]: int(d.get("weight") or 0)
            for d in vs["spec"]["http"][0]["route"]}


async def template_labels(cluster: Cluster, pod_hash: str) -> Obj:
    (rs,) = [rs for rs in await cluster.replica_sets()
             if rs["metadata"]["labels"].get(HASH) == pod_hash]
    labels: Obj = rs["spec"]["template"]["metadata"]["labels"]
    return labels


async def install(cluster: Cluster, oap: SkyWalkingOap) -> None:
    """The seed's objects as written; the template's SkyWalking address points at the test
    server, and the DestinationRule carries fields of the user's own."""
    created = await cluster.apply_example("tsb-subset-skywalking", exclude_analysis=False)
    template = next(d for d in created if d["kind"] == "AnalysisTemplate")
    template["spec"]["metrics"][0]["provider"]["skywalking"]["address"] = oap.url
    await cluster.client.replace(ANALYSIS_TEMPLATE, cluster.namespace,
                                 template["metadata"]["name"], template)
    rule = await cluster.client.get(DESTINATION_RULE, cluster.namespace, "reviews")
    rule["spec"]["trafficPolicy"] = USER_POLICY
    rule["spec"]["subsets"].append(LEGACY_SUBSET)
    await cluster.client.replace(DESTINATION_RULE, cluster.namespace, "reviews", rule)


async def wait_phase(cluster: Cluster, phase: str, **fields: Any) -> Obj:
    async def reached() -> Obj | None:
        current = await status(cluster)
        if current.get("phase") != phase:
            return None
        return current if all(current.get(k) == v for k, v in fields.items()) else None

    found: Obj = await cluster.wait_for(reached, what=f"{phase} {fields}")
    return found


@asynccontextmanager
async def seed_004_canary(clock: ManualClock, *, apdex: list[int]
                          ) -> AsyncIterator[tuple[Cluster, SkyWalkingOap, str, str]]:
    """Seed 004 Healthy on v1, then the Deployment's image set to v2: paused at 10 %."""
    async with skywalking_oap() as oap, test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        oap.apdex[CANARY_SERVICE] = apdex
        await install(cluster, oap)
        first = await wait_phase(cluster, "Healthy")
        stable = first["stableRS"]
        assert first["workloadObservedGeneration"] == "1"
        assert (await subsets(cluster))["stable"] == {"version": "stable", HASH: stable}
        assert await subset_weights(cluster) == {"stable": 100, "canary": 0}
        labels = await template_labels(cluster, stable)
        assert labels["version"] == "stable"
        assert labels["service.istio.io/canonical-revision"] == "stable"
        deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, "reviews")
        assert deployment["spec"]["replicas"] == 5  # scaleDown: never (the default)

        # the seed's `kubectl argo rollouts set image reviews-rollout reviews=...v2`, which
        # edits the Deployment the workloadRef names
        await cluster.set_image(None, V2, container="reviews")
        deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, "reviews")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == V2
        paused = await wait_phase(cluster, "Paused", currentStepIndex=1)
        canary = paused["currentPodHash"]
        assert canary != stable
        assert paused["workloadObservedGeneration"] == "2"

        async def annotated() -> bool:
            annotations = (await cluster.rollout())["metadata"].get("annotations") or {}
            return annotations.get("rollout.argoproj.io/workload-generation") == "2"

        await cluster.wait_for(annotated, what="Argo's workload-generation annotation")
        assert await subsets(cluster) == {
            "stable": {"version": "stable", HASH: stable},
            "canary": {"version": "canary", HASH: canary},
            "legacy": LEGACY_SUBSET["labels"]}
        assert await subset_weights(cluster) == {"stable": 90, "canary": 10}
        canary_labels = await template_labels(cluster, canary)
        assert canary_labels["version"] == "canary"
        assert canary_labels["service.istio.io/canonical-revision"] == "canary"
        yield cluster, oap, stable, canary


async def test_seed_004_walks_its_subsets_to_promotion_with_a_passing_apdex() -> None:
    clock = ManualClock()
    async with seed_004_canary(clock, apdex=[9950, 10000, 9980]) as (cluster, oap, stable,
                                                                      canary):
        for step, weight in ((3, 20), (5, 40), (7, 60), (9, 80)):
            clock.advance(600)
            await wait_phase(cluster, "Paused", currentStepIndex=step)
            assert await subset_weights(cluster) == {"stable": 100 - weight, "canary": weight}
            assert (await subsets(cluster))["canary"][HASH] == canary
            assert (await subsets(cluster))["stable"][HASH] == stable
        runs, _ = await cluster.client.list(ANALYSIS_RUN, cluster.namespace)
        (run,) = runs
        assert run["metadata"]["labels"]["rollout-type"] == "Background"
        assert set(oap.services_queried()) == {CANARY_SERVICE}
        first = oap.requests[0]
        assert "service_apdex: readMetricsValues" in first["query"]
        assert first["variables"]["duration"]["step"] == "MINUTE"
        measurements = run["status"]["metricResults"][0]["measurements"]
        assert measurements and all(m["phase"] == "Successful" for m in measurements)

        clock.advance(600)
        promoted = await wait_phase(cluster, "Healthy", stableRS=canary)

        async def switched() -> bool:
            return (await subsets(cluster))["stable"] == {"version": "stable", HASH: canary}

        # traffic left the canary subset, then the new pods became the stable's, then the
        # stable subset moved onto them
        await cluster.wait_for(switched, what="the stable subset on the new pods")
        assert await subset_weights(cluster) == {"stable": 100, "canary": 0}
        assert (await template_labels(cluster, canary))["version"] == "stable"
        rule = await cluster.client.get(DESTINATION_RULE, cluster.namespace, "reviews")
        assert rule["spec"]["trafficPolicy"] == USER_POLICY
        assert rule["spec"]["subsets"][2] == LEGACY_SUBSET
        assert rule["spec"]["host"] == "reviews"
        assert promoted["workloadObservedGeneration"] == "2"


async def test_seed_004_is_aborted_by_a_failing_apdex() -> None:
    clock = ManualClock()
    async with seed_004_canary(clock, apdex=[9950, 9120, 8800]) as (cluster, oap, stable,
                                                                     canary):
        clock.advance(600)  # step 2: 20 %, the background analysis starts
        await wait_phase(cluster, "Paused", currentStepIndex=3)
        async def recorded() -> bool:
            """No measurement in flight: the run's first one (due when it starts) has been
            taken, and each answered query is in the run's status. The next one is due an
            interval after the last one *finished*, so none starts before the clock moves.
            (Without the first condition, 0 == 0 held while the first query was still on
            its way: the clock moved under it, and its finishedAt put the next one an
            interval past the test's advance.)"""
            runs, _ = await cluster.client.list(ANALYSIS_RUN, cluster.namespace)
            results = [result for run in runs
                       for result in (run.get("status") or {}).get("metricResults") or []]
            taken = sum(len(result.get("measurements") or []) for result in results)
            return taken > 0 and taken == len(oap.requests)

        for _ in range(8):
            await cluster.wait_for(recorded, what="the last measurement recorded")
            if (await status(cluster)).get("phase") == "Degraded":
                break
            taken = len(oap.requests)
            clock.advance(300)  # the metric's interval

            async def measured_or_aborted(count: int = taken) -> bool:
                current = await status(cluster)
                return len(oap.requests) > count or current.get("phase") == "Degraded"

            await cluster.wait_for(measured_or_aborted, what="one more Apdex measurement")
        aborted = await wait_phase(cluster, "Degraded")
        assert aborted["abort"] is True
        assert aborted["stableRS"] == stable
        assert "RolloutAborted" in aborted["message"]
        assert await subset_weights(cluster) == {"stable": 100, "canary": 0}
        # the canary subset, at weight 0, stays on the canary's pods: the stable's do not
        # carry its version label, so pointing it there would select nothing
        assert await subsets(cluster) == {
            "stable": {"version": "stable", HASH: stable},
            "canary": {"version": "canary", HASH: canary},
            "legacy": LEGACY_SUBSET["labels"]}
        runs, _ = await cluster.client.list(ANALYSIS_RUN, cluster.namespace)
        (run,) = runs
        assert run["status"]["phase"] == "Failed"
        failed = [m for m in run["status"]["metricResults"][0]["measurements"]
                  if m["phase"] == "Failed"]
        assert len(failed) == 4  # failureLimit 3: the fourth failure fails the run
        rule = await cluster.client.get(DESTINATION_RULE, cluster.namespace, "reviews")
        assert rule["spec"]["trafficPolicy"] == USER_POLICY
        assert rule["spec"]["subsets"][2] == LEGACY_SUBSET


async def test_seed_004_with_scale_down_onsuccess_retires_the_deployment() -> None:
    clock = ManualClock()
    async with skywalking_oap() as oap, test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        await install(cluster, oap)
        await cluster.client.patch(ROLLOUT, cluster.namespace, "reviews-rollout",
                                   {"spec": {"workloadRef": {"scaleDown": "onsuccess"}}},
                                   patch_type="merge")

        async def retired() -> bool:
            deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, "reviews")
            return bool(deployment["spec"]["replicas"] == 0)

        await cluster.wait_for(retired, what="the Deployment scaled to 0")
        # scaling bumped the Deployment's generation: the status follows it (as Argo's
        # workload-generation does); the template is the same, so no new revision
        deployment = await cluster.client.get(DEPLOYMENT, cluster.namespace, "reviews")
        generation = str(deployment["metadata"]["generation"])
        healthy = await wait_phase(cluster, "Healthy", workloadObservedGeneration=generation)
        assert healthy["currentPodHash"] == healthy["stableRS"]
        assert len(await cluster.replica_sets()) == 1
