"""A fleet of Rollouts in the seeds' shapes, with analysis against a real Prometheus, for the
chaos scenarios (``tests/integration/test_chaos.py``, ``bench/chaos.py``).

Rollout ``i`` takes shape ``SHAPES[i % 3]``:

- ``host-split`` (seeds 000 and 002): canary and stable Services, a VirtualService splitting
  by host, background analysis from step 1;
- ``subset-split`` (seed 003): one Service, a DestinationRule with stable and canary subsets,
  a VirtualService splitting by subset, an analysis step;
- ``basic`` (seed 001): no traffic routing, an analysis step.

Every analysis asks Prometheus for the canary's success rate (seed 000's query over the
exporter's ``istio_requests_total``); the Rollouts ``failing`` names get 65 % errors, so
their analysis fails and they are aborted (Degraded); the others end Healthy on the new
revision. Steps pause for a second, so a fleet finishes in seconds of wall time.

Where a Rollout ends is judged by Argo's semantics for what its analysis actually measured
(``expected_phase``): a run of the new revision that ended Failed or Error (past its
``consecutiveErrorLimit``, a provider down) aborts it, whatever its traffic; a failing canary
whose analysis never measured anything (background analysis while the provider was down, its
steps done first) is promoted, as Argo would, and named in ``promoted_unmeasured``; a healthy
canary aborted by a run that ended Error or Failed is named in ``aborted_healthy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shiftd.kube.client import KubeClient
from shiftd.kube.errors import KubeError
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    DESTINATION_RULE,
    ROLLOUT,
    SERVICE,
    VIRTUAL_SERVICE,
    ResourceKind,
)
from tests.support.prometheus import IstioExporter

Obj = dict[str, Any]
SHAPES = ("host-split", "subset-split", "basic")
HEALTHY_TRAFFIC = {"200": 100.0}
FAILING_TRAFFIC = {"200": 35.0, "500": 65.0}
FIRST_IMAGE, NEXT_IMAGE = "argoproj/rollouts-demo:blue", "argoproj/rollouts-demo:yellow"
TEMPLATE = "success-rate"  # background analysis: measured every second until the end
STEP_TEMPLATE = "success-rate-twice"  # an analysis step: measured twice, a second apart
STEP_COUNT = 2
HASH_LABEL = "rollouts-pod-template-hash"
_QUERY = (
    'sum(irate(istio_requests_total{{reporter="source",destination_service=~"{host}",'
    'response_code!~"5.*"}}[10s])) / sum(irate(istio_requests_total{{reporter="source",'
    'destination_service=~"{host}"}}[10s]))'
)


def analysis_template(name: str, prometheus_url: str, *, error_limit: int | None,
                      count: int | None = None) -> Obj:
    """One metric, measured every second (``count`` times, or until the Rollout ends);
    ``error_limit`` consecutive errors (Prometheus down) are tolerated before it gives up
    (None: Argo's default, 4)."""
    host = "{{args.service}}.{{args.namespace}}.svc.cluster.local"
    metric: Obj = {
        "name": "success-rate", "interval": "1s", "successCondition": "result[0] > 0.90",
        "provider": {"prometheus": {"address": prometheus_url,
                                    "query": _QUERY.format(host=host)}},
    }
    if count is not None:
        metric["count"] = count
    if error_limit is not None:
        metric["consecutiveErrorLimit"] = error_limit
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"args": [{"name": "service"}, {"name": "namespace"}], "metrics": [metric]},
    }


def _service(name: str, app: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def _route(stable: Obj, canary: Obj) -> list[Obj]:
    return [{"destination": stable, "weight": 100}, {"destination": canary, "weight": 0}]


def _virtual_service(name: str, route: list[Obj]) -> Obj:
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": f"{name}-vsvc"},
            "spec": {"hosts": [name], "http": [{"name": "primary", "route": route}]}}


def _analysis_args(name: str) -> list[Obj]:
    return [{"name": "service", "value": f"{name}-canary"},
            {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]


def _rollout(name: str, canary: Obj) -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
        "spec": {
            "replicas": 2, "revisionHistoryLimit": 2, "minReadySeconds": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": "app", "image": FIRST_IMAGE,
                "ports": [{"name": "http", "containerPort": 8080}]}]}},
            "strategy": {"canary": canary},
        },
    }


def shape_objects(name: str, shape: str) -> list[tuple[ResourceKind, Obj]]:
    """The objects of one Rollout of ``shape`` (Rollout last)."""
    step_analysis = {"analysis": {"templates": [{"templateName": STEP_TEMPLATE}],
                                  "args": _analysis_args(name)}}
    steps: list[Obj] = [{"setWeight": 20}, {"pause": {"duration": "1s"}}, step_analysis,
                        {"setWeight": 60}, {"pause": {"duration": "1s"}}]
    if shape == "host-split":
        canary = {
            "canaryService": f"{name}-canary", "stableService": f"{name}-stable",
            "trafficRouting": {"istio": {"virtualService": {"name": f"{name}-vsvc",
                                                            "routes": ["primary"]}}},
            "analysis": {"templates": [{"templateName": TEMPLATE}], "startingStep": 1,
                         "args": _analysis_args(name)},
            "steps": [step for step in steps if step is not step_analysis],
        }
        return [(SERVICE, _service(f"{name}-stable", name)),
                (SERVICE, _service(f"{name}-canary", name)),
                (VIRTUAL_SERVICE, _virtual_service(name, _route(
                    {"host": f"{name}-stable"}, {"host": f"{name}-canary"}))),
                (ROLLOUT, _rollout(name, canary))]
    if shape == "subset-split":
        rule = {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
                "metadata": {"name": f"{name}-dr"},
                "spec": {"host": name, "subsets": [{"name": "stable", "labels": {"app": name}},
                                                   {"name": "canary", "labels": {"app": name}}]}}
        canary = {"trafficRouting": {"istio": {
            "virtualService": {"name": f"{name}-vsvc", "routes": ["primary"]},
            "destinationRule": {"name": f"{name}-dr", "canarySubsetName": "canary",
                                "stableSubsetName": "stable"}}}, "steps": steps}
        return [(SERVICE, _service(name, name)), (DESTINATION_RULE, rule),
                (VIRTUAL_SERVICE, _virtual_service(name, _route(
                    {"host": name, "subset": "stable"}, {"host": name, "subset": "canary"}))),
                (ROLLOUT, _rollout(name, {**canary}))]
    return [(ROLLOUT, _rollout(name, {"steps": steps}))]


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    shape: str
    failing: bool


class Fleet:
    """``count`` Rollouts in one namespace, each to end Healthy, or Degraded when failing."""

    def __init__(self, client: KubeClient, namespace: str, *, count: int,
                 failing: Sequence[int] = ()) -> None:
        self.client = client
        self.namespace = namespace
        self.members = [Member(f"chaos-{index:03d}", SHAPES[index % len(SHAPES)],
                               index in failing) for index in range(count)]
        self.first_hashes: dict[str, str] = {}
        self.promoted_unmeasured: list[str] = []  # failing canaries promoted, never measured
        self.aborted_healthy: list[str] = []  # healthy canaries a run (Error, Failed) aborted

    def canary_host(self, member: Member) -> str:
        return f"{member.name}-canary.{self.namespace}.svc.cluster.local"

    async def create(self, prometheus_url: str, *, error_limit: int | None) -> None:
        for template in (
                analysis_template(TEMPLATE, prometheus_url, error_limit=error_limit),
                analysis_template(STEP_TEMPLATE, prometheus_url, error_limit=error_limit,
                                  count=STEP_COUNT)):
            await self.client.create(ANALYSIS_TEMPLATE, self.namespace, template)
        for member in self.members:
            for kind, obj in shape_objects(member.name, member.shape):
                obj["metadata"]["namespace"] = self.namespace
                await self.client.create(kind, self.namespace, obj)

    def send_traffic(self, exporter: IstioExporter) -> None:
        for member in self.members:
            exporter.traffic(destination_service=self.canary_host(member),
                             per_scrape=FAILING_TRAFFIC if member.failing else HEALTHY_TRAFFIC)

    async def statuses(self) -> dict[str, Obj] | None:
        """Every Rollout's status, or None if the API server did not answer."""
        try:
            items, _ = await self.client.list(ROLLOUT, self.namespace)
        except KubeError:
            return None
        return {item["metadata"]["name"]: item.get("status") or {} for item in items}

    async def all_deployed(self) -> bool:
        """Whether every Rollout's first revision is Healthy (remembering its hash)."""
        statuses = await self.statuses()
        if statuses is None or len(statuses) < len(self.members):
            return False
        if not all(s.get("phase") == "Healthy" and s.get("stableRS") for s in statuses.values()):
            return False
        self.first_hashes = {name: str(s["stableRS"]) for name, s in statuses.items()}
        return True

    async def update(self) -> None:
        """The new image on every Rollout: the rollout the faults will hit."""
        for member in self.members:
            await self.client.patch(ROLLOUT, self.namespace, member.name, {"spec": {"template": {
                "spec": {"containers": [{"name": "app", "image": NEXT_IMAGE}]}}}},
                patch_type="merge")

    def outcome(self, member: Member, status: Obj, runs: list[Obj]) -> bool:
        """Whether ``member`` ended in the phase Argo gives it for what was measured."""
        revision = status.get("currentPodHash")
        if not revision or revision == self.first_hashes.get(member.name):
            return False
        if expected_phase(member, revision_runs(runs, member.name, revision)) == "Degraded":
            return status.get("phase") == "Degraded" and bool(status.get("abort"))
        return status.get("phase") == "Healthy" and status.get("stableRS") == revision

    async def unfinished(self) -> list[str] | None:
        """The Rollouts not (yet) where they are expected to end; None if unreadable."""
        statuses = await self.statuses()
        try:
            runs, _ = await self.client.list(ANALYSIS_RUN, self.namespace)
        except KubeError:
            return None
        if statuses is None:
            return None
        unfinished = [m for m in self.members
                      if not self.outcome(m, statuses.get(m.name, {}), runs)]
        ended = {m.name: statuses.get(m.name, {}).get("phase") for m in self.members
                 if m not in unfinished}
        self.promoted_unmeasured = [m.name for m in self.members
                                    if m.failing and ended.get(m.name) == "Healthy"]
        self.aborted_healthy = [m.name for m in self.members
                                if not m.failing and ended.get(m.name) == "Degraded"]
        return [f"{m.name} ({m.shape}{', failing' if m.failing else ''}): "
                f"{statuses.get(m.name, {}).get('phase')} "
                f"{statuses.get(m.name, {}).get('message', '')}".strip()
                for m in unfinished]


def revision_runs(runs: list[Obj], rollout: str, revision: str) -> list[Obj]:
    """The AnalysisRuns ``rollout`` started for its pod-template hash ``revision``."""
    return [run for run in runs
            if (run["metadata"].get("labels") or {}).get(HASH_LABEL) == revision
            and any(owner.get("name") == rollout
                    for owner in run["metadata"].get("ownerReferences") or [])]


def expected_phase(member: Member, runs: list[Obj]) -> str:
    """Argo's outcome for what the analysis measured: a run that ended Failed or Error aborts
    the Rollout (Degraded); a failing canary is aborted only once a measurement judged it (an
    analysis that could not measure before the steps ran out does not hold it back)."""
    phases = {str((run.get("status") or {}).get("phase")) for run in runs}
    if phases & {"Failed", "Error"}:
        return "Degraded"
    measured = any(m.get("phase") in ("Successful", "Failed")
                   for run in runs for result in (run.get("status") or {}).get(
                       "metricResults") or [] for m in result.get("measurements") or [])
    return "Degraded" if member.failing and measured else "Healthy"
