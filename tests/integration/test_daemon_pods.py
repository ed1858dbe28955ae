"""What the daemon does to a Rollout's existing pods, on the API server under deploy/rbac.yaml:
``restartAt`` (pods evicted in batches within maxUnavailable, stable first, a disruption
budget's 429 waited out, ``status.restartedAt`` recorded) and canary/stable metadata moved onto
the pods in place at a role change (same pod UIDs).

Pods are followed with the test's own watch, so every state the API server went through is
judged, not only the ones a poll happens to see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.cli.ctl import restart_rollout
from shiftd.common.tasks import running
from shiftd.kube.resources import POD, ROLLOUT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import basic_rollout, running_daemon
from tests.integration.harness import Cluster, test_cluster
from tests.support.disruption import POD_DISRUPTION_BUDGET, keeping_budgets

Obj = dict[str, Any]
NAME = "web"
PDB = POD_DISRUPTION_BUDGET


def ready(pod: Obj) -> bool:
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ())


class PodWatch:
    """Every pod of the namespace as the watch last showed it, and the fewest ready pods seen
    at any moment since ``start_counting``."""

    def __init__(self) -> None:
        self.pods: dict[str, Obj] = {}
        self.fewest_ready: int | None = None

    def start_counting(self) -> None:
        self.fewest_ready = self.ready_count()

    def ready_count(self) -> int:
        return sum(1 for pod in self.pods.values() if ready(pod))

    def seen(self, event_type: str, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        if event_type == "DELETED":
            self.pods.pop(name, None)
        else:
            self.pods[name] = pod
        if self.fewest_ready is not None:
            self.fewest_ready = min(self.fewest_ready, self.ready_count())


@asynccontextmanager
async def watching_pods(cluster: Cluster) -> AsyncIterator[PodWatch]:
    watch = PodWatch()
    items, version = await cluster.client.list(POD, cluster.namespace)
    for item in items:
        watch.seen("ADDED", item)

    async def follow(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        nonlocal version
        task_status.started()
        while True:
            async for event in cluster.client.watch(POD, cluster.namespace,
                                                    resource_version=version):
                if event.type in ("ADDED", "MODIFIED", "DELETED"):
                    watch.seen(event.type, event.object)
                version = event.object["metadata"].get("resourceVersion", version)

    async with running(follow):
        yield watch


async def status_of(cluster: Cluster) -> Obj:
    return (await cluster.rollout(NAME)).get("status") or {}


async def healthy_with_ready_pods(cluster: Cluster, watch: PodWatch, count: int) -> bool:
    return (await status_of(cluster)).get("phase") == "Healthy" and watch.ready_count() == count


def rollout_of(replicas: int, **canary: Any) -> Obj:
    rollout = basic_rollout(NAME, steps=[{"setWeight": 50}, {"pause": {}}])
    rollout["spec"]["replicas"] = replicas
    rollout["spec"]["strategy"]["canary"].update(canary)
    return rollout


def created(pod: Obj) -> datetime:
    return datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


async def test_restart_at_evicts_every_pod_in_batches_within_max_unavailable_and_waits_out_a_budget(
) -> None:
    clock = ManualClock(datetime.now(UTC))
    async with test_cluster() as cluster, watching_pods(cluster) as pods, \
            cluster.kubelet(ready_after=0.2, create_pods=True), \
            keeping_budgets(cluster.client, cluster.namespace, bare_server=cluster.api is None), \
            running_daemon(cluster, clock=clock):
        rollout = await cluster.client.create(ROLLOUT, cluster.namespace, rollout_of(4))
        await cluster.wait_for(lambda: healthy_with_ready_pods(cluster, pods, 4),
                               what="Healthy with 4 ready pods")
        original = {pod["metadata"]["uid"] for pod in pods.pods.values()}
        # A budget that allows no disruption: evictions are refused (429) and waited out.
        budget = await cluster.client.create(PDB, cluster.namespace, {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": NAME},
            "spec": {"minAvailable": 4, "selector": rollout["spec"]["selector"]}})
        # restartAt (whole seconds) after every pod's creation second
        newest = max(created(pod) for pod in pods.pods.values())
        await cluster.wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > newest,
                               what="a second after the pods' creation")
        restart_at = datetime.now(UTC).replace(microsecond=0)
        pods.start_counting()
        await restart_rollout(cluster.client, namespace=cluster.namespace, name=NAME,
                              at=restart_at)
        clock.set(max(clock.now(), restart_at) + timedelta(seconds=1))

        def refused() -> bool:
            clock.advance(10)  # the planner looks again every 30 s while waiting
            return cluster.api is None or any(
                r.method == "POST" and r.path.endswith("/eviction") and r.status == 429
                for r in cluster.api.request_log)

        await cluster.wait_for(refused, what="an eviction refused by the budget")
        assert {pod["metadata"]["uid"] for pod in pods.pods.values()} == original
        assert "restartedAt" not in await status_of(cluster)

        await cluster.client.patch(PDB, cluster.namespace, budget["metadata"]["name"],
                                   {"spec": {"minAvailable": 3}}, patch_type="merge")

        async def restarted() -> bool:
            clock.advance(1)
            status = await status_of(cluster)
            fresh = {pod["metadata"]["uid"] for pod in pods.pods.values()}
            return (status.get("restartedAt") == restart_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                    and status.get("phase") == "Healthy" and not fresh & original
                    and pods.ready_count() == 4)

        await cluster.wait_for(restarted, timeout=30, what="every pod restarted, Healthy")
        # maxUnavailable 25% of 4: never more than one pod down at once
        assert pods.fewest_ready is not None and pods.fewest_ready >= 3
        assert len(pods.pods) == 4
        assert all(created(pod) >= restart_at for pod in pods.pods.values())
        if cluster.api is not None:
            granted = [r for r in cluster.api.request_log if r.method == "POST"
                       and r.path.endswith("/eviction") and r.status == 201]
            assert len(granted) == 4


def pods_of(watch: PodWatch, replica_set: str) -> dict[str, Obj]:
    """The pods a ReplicaSet controls, by UID."""
    return {pod["metadata"]["uid"]: pod for pod in watch.pods.values()
            if any(ref.get("name") == replica_set and ref.get("controller")
                   for ref in pod["metadata"].get("ownerReferences") or ())}


def roles(pods: dict[str, Obj]) -> set[str | None]:
    return {(pod["metadata"].get("labels") or {}).get("role") for pod in pods.values()}


async def test_canary_and_stable_metadata_move_onto_existing_pods_at_promotion() -> None:
    async with test_cluster() as cluster, watching_pods(cluster) as pods, \
            cluster.kubelet(create_pods=True), running_daemon(cluster, clock=ManualClock()):
        rollout = rollout_of(2, canaryMetadata={"labels": {"role": "canary"}},
                             stableMetadata={"labels": {"role": "stable"},
                                             "annotations": {"team": "blue"}})
        await cluster.client.create(ROLLOUT, cluster.namespace, rollout)
        await cluster.wait_for(lambda: healthy_with_ready_pods(cluster, pods, 2),
                               what="Healthy with 2 ready pods")
        first = (await status_of(cluster))["stableRS"]
        await cluster.set_image(NAME, "nginx:1.27")

        async def paused() -> Obj | None:
            status = await status_of(cluster)
            stable = pods_of(pods, f"{NAME}-{first}")
            canary = pods_of(pods, f"{NAME}-{status.get('currentPodHash')}")
            done = (status.get("phase") == "Paused" and len(canary) == 1 and len(stable) == 1
                    and pods.ready_count() == 2)
            return status if done else None

        status = await cluster.wait_for(paused, what="paused at 50% with one pod each")
        stable = pods_of(pods, f"{NAME}-{first}")
        canary = pods_of(pods, f"{NAME}-{status['currentPodHash']}")
        assert roles(stable) == {"stable"} and roles(canary) == {"canary"}
        assert all(pod["metadata"]["annotations"].get("team") == "blue"
                   for pod in stable.values())
        assert not any("team" in (pod["metadata"].get("annotations") or {})
                       for pod in canary.values())

        await cluster.promote(NAME)

        async def relabelled() -> bool:
            now = pods_of(pods, f"{NAME}-{status['currentPodHash']}")
            return ((await status_of(cluster)).get("phase") == "Healthy"
                    and set(canary) <= set(now) and roles(now) == {"stable"})

        await cluster.wait_for(relabelled, what="the promoted pods relabelled in place")
        promoted = pods_of(pods, f"{NAME}-{status['currentPodHash']}")
        for uid, before in canary.items():  # the very same pods, not recreated
            labels = promoted[uid]["metadata"]["labels"]
            assert labels == {**before["metadata"]["labels"], "role": "stable"}
            assert promoted[uid]["metadata"]["annotations"].get("team") == "blue"
