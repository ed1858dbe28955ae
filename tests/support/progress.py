"""The invariant monitor's judgement over time: how Rollouts move through their steps, and
how AnalysisRuns are measured. ``invariants.InvariantMonitor`` feeds it every snapshot.

4. **Forward only.** For one revision (``status.currentPodHash``), ``currentStepIndex`` never
   goes back (a step is never repeated) and the share of the Rollout's VirtualService
   traffic sent to that revision's pods (destinations whose Service selector or subset
   labels name its pod-template hash) never goes down, except when the Rollout is aborted.
   The monitor's watches deliver the route and the Rollout independently, so a decrease is
   judged by the first Rollout state written after it (resourceVersions order the writes):
   the daemon may write the route before the status that explains it (the abort).
5. **No step skipped.** When the canary's weight goes up, it goes to the next ``setWeight``
   value of the steps (for steps whose weights only rise).
6. **Each measurement once.** No metric of an AnalysisRun has two measurements started at the
   same instant, nor more measurements than its ``count`` (Errors aside: they do not count,
   as in Argo).

A change seen across a gap (one of the monitor's watches restarted, so states in between may
have been missed) is not judged, only recorded as the new starting point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

Obj = dict[str, Any]
HASH_LABEL = "rollouts-pod-template-hash"


@dataclass(frozen=True, slots=True)
class _Seen:
    revision: str
    index: int
    weight: int | None  # the canary destination's
    share: int | None  # the weight of destinations selecting this revision's pods
    version: int  # the Rollout's resourceVersion (0 when not a number)
    route_version: int  # the newest of its VirtualService's, DestinationRule's, Services'
    aborted: bool


@dataclass(frozen=True, slots=True)
class _Decrease:
    seen: _Seen
    message: str


def _version(obj: Obj | None) -> int:
    raw = str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
    return int(raw) if raw.isdigit() else 0


def _canary(rollout: Obj) -> Obj:
    return dict(((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {})


def _steps(rollout: Obj) -> list[Obj]:
    return list(_canary(rollout).get("steps") or [])


def _weighted_routes(rollout: Obj, vs: Obj) -> list[Obj]:
    """The VirtualService's http routes other than the managed ones (setHeaderRoute /
    setMirrorRoute routes, named as in ``trafficRouting.managedRoutes``), which send a share
    of requests to the canary apart from its weight."""
    managed = {str(entry.get("name")) for entry in
               (_canary(rollout).get("trafficRouting") or {}).get("managedRoutes") or []}
    return [route for route in (vs.get("spec") or {}).get("http") or []
            if route.get("name") not in managed]


def _virtual_service(rollout: Obj, virtual_services: Mapping[str, Obj]) -> Obj | None:
    istio = (_canary(rollout).get("trafficRouting") or {}).get("istio") or {}
    reference = istio.get("virtualService") or next(iter(istio.get("virtualServices") or []),
                                                    None)
    return virtual_services.get(str(reference.get("name"))) if reference else None


def canary_weight(rollout: Obj, virtual_services: Mapping[str, Obj]) -> int | None:
    """The weight the Rollout's (first) VirtualService gives its canary, or None when it has
    no Istio route (or it is not there yet)."""
    canary = _canary(rollout)
    istio = (canary.get("trafficRouting") or {}).get("istio") or {}
    reference = istio.get("virtualService") or next(iter(istio.get("virtualServices") or []),
                                                    None)
    if not reference:
        return None
    vs = virtual_services.get(str(reference.get("name")))
    if vs is None:
        return None
    canary_host = canary.get("canaryService")
    rule = istio.get("destinationRule") or {}
    subset = rule.get("canarySubsetName")
    if (subset and subset == rule.get("stableSubsetName")) or (
            not subset and canary_host == canary.get("stableService")):
        return None  # an invalid spec: no destination is the canary's alone
    for route in _weighted_routes(rollout, vs):
        for entry in route.get("route") or []:
            destination = entry.get("destination") or {}
            host = str(destination.get("host", "")).split(".")[0]
            if (subset and destination.get("subset") == subset) or (
                    not subset and canary_host and host == canary_host):
                return int(entry.get("weight") or 0)
    return None


def _selected_hash(destination: Obj, rollout: Obj, objects: Mapping[str, Mapping[str, Obj]]
                   ) -> str | None:
    """The pod-template hash a destination selects (by its Service, or its subset)."""
    if destination.get("subset"):
        istio = (_canary(rollout).get("trafficRouting") or {}).get("istio") or {}
        rule = objects["destinationrules"].get(
            str((istio.get("destinationRule") or {}).get("name")), {})
        for subset in (rule.get("spec") or {}).get("subsets") or []:
            if subset.get("name") == destination["subset"]:
                return (subset.get("labels") or {}).get(HASH_LABEL)
        return None
    service = objects["services"].get(str(destination.get("host", "")).split(".")[0], {})
    return ((service.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)


def _routing_version(rollout: Obj, objects: Mapping[str, Mapping[str, Obj]]) -> int:
    """The newest version among what decides where the Rollout's traffic goes: its
    VirtualService, DestinationRule and Services."""
    canary = _canary(rollout)
    istio = (canary.get("trafficRouting") or {}).get("istio") or {}
    rule = objects["destinationrules"].get(
        str((istio.get("destinationRule") or {}).get("name")))
    services = [objects["services"].get(str(canary.get(key))) for key in
                ("canaryService", "stableService")]
    return max(_version(o) for o in
               [_virtual_service(rollout, objects["virtualservices"]), rule, *services])


def revision_share(rollout: Obj, revision: str,
                   objects: Mapping[str, Mapping[str, Obj]]) -> int | None:
    """The weight the Rollout's (first) VirtualService sends to ``revision``'s pods; None
    without an Istio route."""
    vs = _virtual_service(rollout, objects["virtualservices"])
    if vs is None:
        return None
    route = next(iter(_weighted_routes(rollout, vs)), {})
    return sum(int(entry.get("weight") or 0) for entry in route.get("route") or []
               if _selected_hash(entry.get("destination") or {}, rollout, objects) == revision)


def _next_weight(steps: list[Obj], weight: int) -> int | None:
    """The next setWeight after ``weight``, when the steps' weights only rise."""
    weights = [int(step["setWeight"]) for step in steps if "setWeight" in step]
    if weights != sorted(weights):
        return None
    return next((w for w in weights if w > weight), None)


class ProgressJudge:
    """Remembers each Rollout's last observed progress and judges the next."""

    def __init__(self) -> None:
        self._caught_up: Mapping[str, int] = {}
        self._last: dict[str, _Seen] = {}
        self._unjudged: set[str] = set()
        self._pending: dict[str, _Decrease] = {}

    def gap(self) -> None:
        """A watch restarted: the next observation of every Rollout is a new start."""
        self._unjudged = set(self._last)

    def judge(self, rollouts: Iterable[Obj], objects: Mapping[str, Mapping[str, Obj]],
              analysis_runs: Iterable[Obj], *, caught_up: Mapping[str, int] | None = None
              ) -> list[str]:
        """``objects``: virtualservices, services, destinationrules, each by name;
        ``caught_up``: the version each of those kinds' caches is at (absent: current). A
        Rollout's traffic share is read only when they have all caught up with its routing
        objects: each kind has its own watch, and one lagging would mix old and new."""
        self._caught_up = caught_up or {}
        found: list[str] = []
        for rollout in rollouts:
            found.extend(self._judge_rollout(rollout, objects))
        for run in analysis_runs:
            found.extend(_judge_run(run))
        return found

    def _observe(self, rollout: Obj, objects: Mapping[str, Mapping[str, Obj]]) -> _Seen | None:
        status = rollout.get("status") or {}
        revision = str(status.get("currentPodHash") or "")
        if not revision or not _steps(rollout):
            return None
        index = int(status.get("currentStepIndex") or 0)
        virtual_services = objects["virtualservices"]
        routing_version = _routing_version(rollout, objects)
        consistent = all(self._caught_up.get(kind, routing_version) >= routing_version
                         for kind in objects)
        return _Seen(revision, index, canary_weight(rollout, virtual_services),
                     revision_share(rollout, revision, objects) if consistent else None,
                     _version(rollout), routing_version,
                     aborted=bool(status.get("abort")))

    def _judge_rollout(self, rollout: Obj, objects: Mapping[str, Mapping[str, Obj]]
                       ) -> list[str]:
        name = str(rollout["metadata"]["name"])
        now = self._observe(rollout, objects)
        if now is None:
            return []
        before = self._last.get(name)
        if now.share is None and before is not None and before.revision == now.revision:
            now = replace(now, share=before.share)  # unknown now: the last one read stands
        self._last[name] = now
        found = self._settle_decrease(name, now)
        if before is None or before.revision != now.revision or name in self._unjudged:
            self._unjudged.discard(name)
            self._pending.pop(name, None)
            return found
        if now.aborted or before.aborted:
            return found
        where = f"Rollout {name} revision {now.revision}"
        if now.index < before.index:
            found.append(f"{where}: step index went back from {before.index} to {now.index}")
        if now.share is not None and before.share is not None and now.share < before.share:
            self._pending[name] = _Decrease(now, (
                f"{where}: its traffic went back from {before.share} to {now.share} at "
                f"step {now.index}"))
        if (now.weight is not None and before.weight is not None
                and now.weight > before.weight):
            wanted = _next_weight(_steps(rollout), before.weight)
            if wanted is not None and now.weight > wanted:
                found.append(f"{where}: canary weight jumped from {before.weight} to "
                             f"{now.weight}, skipping the step to {wanted}")
        return found

    def _settle_decrease(self, name: str, now: _Seen) -> list[str]:
        """Judge a pending decrease by the first Rollout state written after the route."""
        pending = self._pending.get(name)
        if pending is None:
            return []
        explained = now.revision != pending.seen.revision or now.aborted
        if not explained and now.version <= pending.seen.route_version:
            return []  # this state was written before the route: wait for a later one
        del self._pending[name]
        return [] if explained else [pending.message]

    def unresolved(self) -> list[str]:
        """Decreases no later status explained (judged when the monitor stops)."""
        return [pending.message for name, pending in self._pending.items()
                if not self._last[name].aborted]


def _judge_run(run: Obj) -> Iterable[str]:
    counts = {str(metric.get("name")): int(metric.get("count") or 0)
              for metric in (run.get("spec") or {}).get("metrics") or []
              if isinstance(metric.get("count"), int)}
    name = run["metadata"]["name"]
    for result in (run.get("status") or {}).get("metricResults") or []:
        metric = str(result.get("name"))
        measurements = [m for m in result.get("measurements") or []
                        if m.get("phase") != "Error"]
        starts = [m.get("startedAt") for m in measurements if m.get("startedAt")]
        for instant in sorted({s for s in starts if starts.count(s) > 1}):
            yield f"AnalysisRun {name} metric {metric}: measured twice at {instant}"
        limit = counts.get(metric, 0)
        if limit and len(measurements) > limit:
            yield (f"AnalysisRun {name} metric {metric}: {len(measurements)} measurements, "
                   f"count is {limit}")
