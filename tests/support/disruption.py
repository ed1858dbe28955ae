"""A stand-in for kube-controller-manager's disruption controller, for tests on a bare
kube-apiserver.

A real server answers an eviction from a PodDisruptionBudget's ``status`` (it refuses with 429
while ``disruptionsAllowed`` is 0 or ``observedGeneration`` is behind, and on a grant
decrements ``disruptionsAllowed`` and records the pod in ``disruptedPods``). A cluster keeps that
status with its disruption controller; a bare kube-apiserver (no controller-manager) never does,
so every eviction would be refused. ``DisruptionController.run`` keeps it: it reads each
budget, then the namespace's pods, and writes the status with the budget's resourceVersion,
so a grant made in between makes the write conflict and the next round start over.

Healthy pods are Ready, not being deleted and not recorded as disrupted; the expected count is
every selected pod; ``minAvailable`` or ``maxUnavailable`` counts as the emulator counts it
(``shiftd.sim.eviction``). The emulator works this out at each request and needs none of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.common.tasks import running
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import Conflict, NotFound
from shiftd.kube.resources import POD, ResourceKind
from shiftd.sim.eviction import desired_healthy, healthy_pod, selects

Obj = dict[str, Any]
POD_DISRUPTION_BUDGET = ResourceKind("policy", "v1", "PodDisruptionBudget",
                                     "poddisruptionbudgets")
_ROUND_SECONDS = 0.1


def budget_status(budget: Mapping[str, Any], pods: list[Obj]) -> Obj:
    """The status the disruption controller writes for ``budget`` over the namespace's
    ``pods``: disrupted pods still present and not being deleted stay disrupted (and
    unhealthy); the rest are forgotten."""
    spec = budget.get("spec") or {}
    selected = [p for p in pods if selects(spec.get("selector"),
                                           (p.get("metadata") or {}).get("labels") or {})]
    recorded = (budget.get("status") or {}).get("disruptedPods") or {}
    live = {p["metadata"]["name"] for p in selected
            if not p["metadata"].get("deletionTimestamp")}
    disrupted = {name: when for name, when in recorded.items() if name in live}
    healthy = sum(1 for p in selected
                  if healthy_pod(p) and p["metadata"]["name"] not in disrupted)
    desired = desired_healthy(spec, len(selected))
    return {"observedGeneration": budget["metadata"].get("generation", 1),
            "disruptedPods": disrupted,
            "disruptionsAllowed": max(0, healthy - desired),
            "currentHealthy": healthy, "desiredHealthy": desired,
            "expectedPods": len(selected)}


class DisruptionController:
    """Keeps the status of one namespace's PodDisruptionBudgets, polling every 0.1 s."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            budgets, _ = await self._client.list(POD_DISRUPTION_BUDGET, self._namespace)
            for budget in budgets:
                with suppress(Conflict, NotFound):
                    await self._keep(budget)
            await anyio.sleep(_ROUND_SECONDS)

    async def _keep(self, budget: Obj) -> None:
        pods, _ = await self._client.list(POD, self._namespace)  # read after the budget
        status = budget_status(budget, pods)
        current = dict(budget.get("status") or {})
        recorded = current.get("disruptedPods") or {}
        if {**current, "disruptedPods": recorded} == {**current, **status}:
            return
        # a merge patch merges maps: a pod no longer disrupted is removed by a null
        forgotten = {name: None for name in recorded if name not in status["disruptedPods"]}
        patch = {**status, "disruptedPods": {**forgotten, **status["disruptedPods"]} or None}
        await self._client.patch(
            POD_DISRUPTION_BUDGET, self._namespace, budget["metadata"]["name"],
            {"metadata": {"resourceVersion": budget["metadata"]["resourceVersion"]},
             "status": patch},
            patch_type="merge", subresource="status")


@asynccontextmanager
async def keeping_budgets(client: KubeClient, namespace: str, *,
                          bare_server: bool) -> AsyncIterator[None]:
    """``async with keeping_budgets(...):`` runs a ``DisruptionController`` on the namespace
    for the block when ``bare_server`` (a real kube-apiserver, which may have no
    controller-manager); on the emulator it does nothing."""
    if not bare_server:
        yield
        return
    async with running(DisruptionController(client, namespace).run):
        yield
