"""``plan``: what shiftd will do with a Rollout, computed offline by the daemon's own planner.

Without a state file, ``decide.timeline.rollout_timeline`` drives ``plan_rollout`` through the
whole update; with one, the objects in it (the Rollout with its status, ReplicaSets, and
optionally Services, VirtualService, DestinationRule, AnalysisRuns, and Pods for a
``restartAt`` restart, as ``kubectl get -o yaml`` prints them) become the ``Observed`` the
daemon would build — traffic read by the same ``IstioRouter.observe`` — and one
``plan_rollout`` call says what happens next and why. Nothing is contacted. The JSON shape
is a contract: see ``docs/plan-json.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shiftd.cli.ctl.common import CommandError, Obj, UsageError
from shiftd.cli.ctl.files import Manifest
from shiftd.decide.analysis.runs import AnalysisRunView, merge_run_spec
from shiftd.decide.rollout.analysis import background_key, step_key
from shiftd.decide.rollout.observed import (
    Observed,
    PodView,
    ReplicaSetView,
    ServiceView,
    WorkloadView,
)
from shiftd.decide.rollout.steps import describe_step
from shiftd.decide.rollout.timeline import (
    NextAction,
    StepPlan,
    Timeline,
    TimelineError,
    action_json,
    next_action,
    rollout_timeline,
)
from shiftd.kube.resources import DESTINATION_RULE, VIRTUAL_SERVICE, ResourceKind
from shiftd.model.argo.rollout import AnalysisStep, InvalidSpecError, Rollout, parse_rollout
from shiftd.model.argo.routes import describe_route_step, parse_route_step
from shiftd.model.argo.workload import inline_workload, template_source
from shiftd.traffic.istio.router import IstioRouter

__all__ = ["PlannedNext", "format_seconds", "next_document", "plan_next", "plan_timeline",
           "render_next", "render_timeline", "timeline_document"]

_TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")


def format_seconds(seconds: float) -> str:
    """A duration as Go prints one, shortened: ``0s``, ``20s``, ``2m40s``, ``1h``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{secs}s" if secs else "")
    return text or "0s"


def _one_rollout(manifests: Sequence[Manifest]) -> Manifest:
    rollouts = [m for m in manifests if m.kind == "Rollout"]
    if not rollouts:
        raise UsageError("no Rollout in the given files")
    if len(rollouts) > 1:
        names = ", ".join(f"{m.source}: {m.name}" for m in rollouts)
        raise UsageError(f"several Rollouts in the given files ({names}): give one")
    return rollouts[0]


# --- the whole timeline --------------------------------------------------------------------------

def _workload_of(rollout: Obj, manifests: Sequence[Manifest]) -> Obj | None:
    """The Deployment the Rollout's workloadRef names, from the given files (None: absent)."""
    source = template_source(rollout)
    if source is None:
        return None
    kind, _, name = source.partition("/")
    return next((m.obj for m in reversed(manifests) if m.kind == kind and m.name == name),
                None)


def plan_timeline(manifests: Sequence[Manifest]) -> tuple[Obj, Timeline]:
    """The whole update of the one Rollout in ``manifests`` (a workloadRef's Deployment must
    be among them: its template is the one planned)."""
    rollout = _one_rollout(manifests)
    source = template_source(rollout.obj)
    workload = _workload_of(rollout.obj, manifests)
    if source is not None and workload is None:
        raise CommandError(f"{rollout.source}: Rollout {rollout.name}: spec.workloadRef names "
                           f"{source}, which is in no given file: pass it with -f")
    try:
        inlined = inline_workload(rollout.obj, workload)
        return rollout.obj, rollout_timeline(inlined)
    except InvalidSpecError as error:
        raise CommandError(f"{rollout.source}: Rollout {rollout.name}: {error}") from None
    except TimelineError as error:
        raise CommandError(f"Rollout {rollout.name}: {error}") from None


def _step_document(step: StepPlan) -> Obj:
    return {
        "index": step.index,
        "step": step.step,
        "canaryWeight": step.canary_weight,
        "canaryReplicas": step.canary_replicas,
        "stableReplicas": step.stable_replicas,
        "pause": step.pause_seconds,
        "manualPromotion": step.manual,
        "analysis": [{"kind": ref.kind, "templates": list(ref.templates)}
                     for ref in step.analysis],
        "at": step.at_seconds,
    }


def timeline_document(timeline: Timeline, *, rollout: Obj | None = None) -> Obj:
    source = template_source(rollout) if rollout is not None else None
    return {
        **({"templateFrom": source} if source else {}),
        "steps": [_step_document(step) for step in timeline.steps],
        "promotion": {"replicas": timeline.replicas, "at": timeline.promoted_at_seconds,
                      "previousScaledDownAt": timeline.settled_at_seconds},
        "trafficRouted": timeline.traffic_routed,
    }


def _describe_raw(raw: Mapping[str, Any]) -> str:
    try:
        (kind, value), = raw.items()
        if kind in ("setHeaderRoute", "setMirrorRoute"):  # needs traffic routing to parse
            return describe_route_step(parse_route_step(kind, value, path="step"))
        parsed = parse_rollout({"metadata": {"name": "x"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{}]}},
            "strategy": {"canary": {"steps": [dict(raw)]}}}})
        return describe_step(parsed.canary.steps[0])
    except (InvalidSpecError, ValueError):
        return str(dict(raw))


def render_timeline(rollout: Obj, timeline: Timeline) -> str:
    metadata = rollout.get("metadata") or {}
    routing = "traffic routed by Istio" if timeline.traffic_routed else \
        "basic canary (pod counts approximate the weight)"
    lines = [f"Rollout {metadata.get('name', '')}: {timeline.replicas} "
             f"replica{'s' if timeline.replicas != 1 else ''}, {routing}"]
    source = template_source(rollout)
    if source is not None:
        lines.append(f"Pod template from {source} (workloadRef): a change to its template "
                     "starts an update")
    lines.append("")
    header = ("STEP", "ACTION", "WEIGHT", "CANARY", "STABLE", "PAUSE", "DONE AT", "ANALYSIS")
    rows: list[tuple[str, ...]] = [header]
    for step in timeline.steps:
        if step.manual:
            pause = "until promoted"
        elif step.pause_seconds is not None:
            pause = format_seconds(step.pause_seconds)
        else:
            pause = "-"
        analysis = "; ".join(f"{ref.kind}: {', '.join(ref.templates)}" for ref in step.analysis)
        rows.append((str(step.index), _describe_raw(step.step), str(step.canary_weight),
                     str(step.canary_replicas), str(step.stable_replicas), pause,
                     f"+{format_seconds(step.at_seconds)}", analysis or "-"))
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(header))]
    for row in rows:
        lines.append("".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines += [
        "",
        f"Promoted at +{format_seconds(timeline.promoted_at_seconds)}: the new revision "
        f"becomes stable with {timeline.replicas} "
        f"replica{'s' if timeline.replicas != 1 else ''}"
        + (", all traffic on it." if timeline.traffic_routed else "."),
        f"Previous revision scaled down at +{format_seconds(timeline.settled_at_seconds)}.",
        "Timed pauses are waited out, pauses without a duration are promoted, analysis "
        "succeeds, pods are ready at once.",
    ]
    return "\n".join(lines) + "\n"


# --- the next action from a state file -----------------------------------------------------------

class _Objects:
    """The given objects as the daemon's caches: found by kind and name (files often carry
    no namespace, so it is not compared)."""

    def __init__(self, manifests: Sequence[Manifest]) -> None:
        self._by_key: dict[tuple[str, str], Obj] = {}
        for manifest in manifests:  # later files (the state) win
            self._by_key[(manifest.kind, manifest.name)] = manifest.obj

    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> Obj | None:
        return self._by_key.get((kind.kind, name))

    def served(self, kind: ResourceKind) -> bool:
        return True  # offline, every kind counts as installed

    def listed(self, kind: ResourceKind) -> bool:
        return True  # offline, the files are all there is

    def named(self, kind: str, name: str) -> Obj | None:
        return self._by_key.get((kind, name))


class _NoWrites:
    """``plan`` never writes; the router's writer must not be reached."""

    async def patch(self, kind: ResourceKind, namespace: str | None, name: str, patch: Any, *,
                    patch_type: Any, subresource: str | None = None) -> Obj:
        raise AssertionError("plan does not write")


@dataclass(frozen=True, slots=True)
class PlannedNext:
    rollout: Rollout | None  # None: the Rollout itself is invalid
    next: NextAction | None
    invalid: str | None  # the InvalidSpec message, when the daemon would stop there
    notes: tuple[str, ...]


def _with_state(rollout: Manifest, state: Sequence[Manifest]) -> Obj:
    obj = copy.deepcopy(rollout.obj)
    for manifest in state:
        if manifest.kind == "Rollout" and manifest.name == rollout.name:
            observed = manifest.obj
            obj["status"] = copy.deepcopy(observed.get("status") or {})
            metadata = obj.setdefault("metadata", {})
            for key in ("uid", "generation", "resourceVersion", "namespace"):
                value = (observed.get("metadata") or {}).get(key)
                if value is not None:
                    metadata[key] = value
    return obj


def _rollout_uid(obj: Obj, replica_sets: Sequence[Obj]) -> str:
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    if uid:
        return uid
    name = (obj.get("metadata") or {}).get("name")
    for rs in replica_sets:  # a Rollout file without its uid: take it from its ReplicaSets
        for ref in (rs.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == "Rollout" and ref.get("name") == name and ref.get("uid"):
                return str(ref["uid"])
    return ""


def _analysis_specs(rollout: Rollout, obj: Obj, objects: Sequence[Manifest]) -> dict[str, Obj]:
    templates = {(m.kind, m.name): m.obj for m in objects if m.kind in _TEMPLATE_KINDS}
    specs: dict[str, Obj] = {}
    background = rollout.canary.background_analysis
    if background:
        specs[background_key()] = merge_run_spec(background, templates=templates,
                                                 rollout_obj=obj,
                                                 path="spec.strategy.canary.analysis")
    for index, step in enumerate(rollout.canary.steps):
        if isinstance(step, AnalysisStep):
            specs[step_key(index)] = merge_run_spec(
                step.raw, templates=templates, rollout_obj=obj,
                path=f"spec.strategy.canary.steps[{index}].analysis")
    return specs


def plan_next(manifests: Sequence[Manifest], state: Sequence[Manifest], *,
              now: datetime) -> PlannedNext:
    """One reconcile of the Rollout in ``manifests`` against the state in ``state``."""
    source = _one_rollout(manifests)
    everything = [*manifests, *state]
    objects = _Objects(everything)
    replica_sets = [m.obj for m in state if m.kind == "ReplicaSet"]
    obj = _with_state(source, state)
    obj.setdefault("metadata", {})["uid"] = _rollout_uid(obj, replica_sets)
    notes: list[str] = []
    workload = _workload_of(obj, everything)
    try:
        rollout = parse_rollout(obj, workload=workload)
        specs = _analysis_specs(rollout, obj, everything)
    except InvalidSpecError as error:
        return PlannedNext(rollout=None, next=None, invalid=str(error), notes=())
    services: dict[str, ServiceView | None] = {}
    for name in (rollout.canary.canary_service, rollout.canary.stable_service):
        if not name:
            continue
        found = objects.named("Service", name)
        if found is None:
            notes.append(f"Service {name!r} is in no given file: assumed to exist, selecting "
                         "the Rollout's pods")
            found = {"metadata": {"name": name},
                     "spec": {"selector": dict(rollout.selector.get("matchLabels") or {})}}
        services[name] = ServiceView.from_object(found)
    traffic = None
    if rollout.canary.istio is not None:
        router = IstioRouter(reader=objects, writer=_NoWrites())
        missing = [ref.name for ref in rollout.canary.istio.virtual_services
                   if objects.named(VIRTUAL_SERVICE.kind, ref.name) is None]
        rule = rollout.canary.istio.destination_rule
        if rule is not None and objects.named(DESTINATION_RULE.kind,
                                              rule["name"].partition(".")[0]) is None:
            missing.append(rule["name"])
        traffic = router.observe(rollout)
        if missing:
            notes.append(f"{', '.join(missing)} in no given file: the daemon would stop with "
                         "InvalidSpec; pass them with -f or --state")
    observed = Observed(
        replica_sets=tuple(ReplicaSetView.from_object(rs, rollout_uid=rollout.uid)
                           for rs in replica_sets),
        services=services,
        traffic=traffic,
        analysis_runs=tuple(AnalysisRunView.from_object(m.obj) for m in state
                            if m.kind == "AnalysisRun"),
        analysis_specs=specs,
        workload=WorkloadView.from_object(workload) if workload is not None else None,
        pods=_pods(rollout, state, now=now),
    )
    if workload is not None:
        notes.append(f"pod template from {template_source(obj)} (generation "
                     f"{rollout.workload_ref.generation if rollout.workload_ref else 0})")
    resource_version = (obj.get("metadata") or {}).get("resourceVersion")
    result = next_action(rollout, observed, now=now,
                         resource_version=str(resource_version) if resource_version else None)
    return PlannedNext(rollout=rollout, next=result, invalid=None, notes=tuple(notes))


def _pods(rollout: Rollout, state: Sequence[Manifest], *,
          now: datetime) -> tuple[PodView, ...] | None:
    """The pods in the state (a ``restartAt`` restart evicts them); None if none is given, as
    the daemon lists pods only for a restart."""
    given = [m.obj for m in state if m.kind == "Pod"]
    if not given:
        return None
    views = (PodView.from_object(pod, min_ready_seconds=rollout.min_ready_seconds, now=now)
             for pod in given)
    return tuple(view for view in views if view is not None)


def next_document(planned: PlannedNext) -> Obj:
    if planned.next is None or planned.rollout is None:
        return {"next": {"canaryWeight": None, "canaryReplicas": None, "stableReplicas": None,
                         "actions": [], "reason": f"InvalidSpec: {planned.invalid}"}}
    result = planned.next
    document: Obj = {
        "canaryWeight": result.canary_weight,
        "canaryReplicas": result.canary_replicas,
        "stableReplicas": result.stable_replicas,
        "actions": [action_json(action, rollout=planned.rollout)
                    for action in result.plan.actions],
        "reason": result.reason,
        "phase": result.plan.phase,
        "requeueAt": result.plan.requeue_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if result.plan.requeue_at else None,
    }
    if planned.notes:
        document["notes"] = list(planned.notes)
    return {"next": document}


def _action_line(action: Obj) -> str:
    kind, target = action["kind"], action["target"]
    if kind == "SetTraffic":
        return f"{kind} {target}: canary {action['canaryWeight']}, stable {action['stableWeight']}"
    if "replicas" in action:
        return f"{kind} {target}: replicas {action['replicas']}"
    if "patch" in action:
        keys = ", ".join(_leaves(action["patch"]))
        return f"{kind} {target}: {keys}"
    return f"{kind} {target}"


def _leaves(patch: Any, prefix: str = "") -> list[str]:
    if not isinstance(patch, Mapping) or not patch:
        return [prefix.rstrip(".") or "(empty)"]
    found: list[str] = []
    for key, value in patch.items():
        if isinstance(value, Mapping) and value and key not in ("labels", "annotations",
                                                                "selector"):
            found.extend(_leaves(value, f"{prefix}{key}."))
        else:
            found.append(f"{prefix}{key}")
    return found


def render_next(planned: PlannedNext) -> str:
    document = next_document(planned)["next"]
    lines = []
    if planned.invalid is not None:
        return f"The daemon would mark the Rollout InvalidSpec: {planned.invalid}\n"
    lines.append(f"Next:    {len(document['actions'])} "
                 f"write{'s' if len(document['actions']) != 1 else ''}")
    lines.append(f"Why:     {document['reason']}")
    lines.append(f"Then:    canary weight {document['canaryWeight']}, canary replicas "
                 f"{document['canaryReplicas']}, stable replicas {document['stableReplicas']}"
                 f" (phase {document['phase']})")
    if document["requeueAt"]:
        lines.append(f"Wakes:   {document['requeueAt']}")
    for index, action in enumerate(document["actions"], start=1):
        lines.append(f"  {index}. {_action_line(action)}")
    for note in planned.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
