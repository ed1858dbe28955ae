"""``get rollout`` and ``list rollouts`` as text: the plugin's summary and tree, from plain objects.

Pure: everything is computed from the objects as the API returned them and an explicit
``now`` (ages are relative to it), so the output is deterministic and golden-testable. The
layout is the Argo plugin's (``pkg/kubectl-argo-rollouts/cmd/get``): a ``%-17s`` summary, then
the tree ``Rollout -> revision -> ReplicaSet -> Pod`` (and ``AnalysisRun`` beside the
ReplicaSets of its revision) aligned like Go's tabwriter with two spaces of padding. Colours
are only added when asked (a TTY); widths are measured on the plain text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shiftd.cli.ctl.common import Obj
from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.rollout.operator import current_set_weight, rollout_phase, step_progress
from shiftd.model.argo.rollout import (
    DEFAULT_REPLICAS,
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    SCALE_DOWN_DEADLINE_ANNOTATION,
)

__all__ = ["RolloutView", "human_duration", "render_list", "render_rollout", "rollout_icon"]

# Icons of the plugin (``info/info.go`` and ``cmd/get/get.go``).
ICON_WAITING, ICON_PROGRESSING, ICON_WARNING, ICON_UNKNOWN = "◷", "◌", "⚠", "?"
ICON_OK, ICON_BAD, ICON_PAUSED, ICON_NEUTRAL = "✔", "✖", "॥", "•"
ICON_ROLLOUT, ICON_REVISION, ICON_REPLICA_SET, ICON_POD = "⟳", "#", "⧉", "□"
ICON_ANALYSIS = "\N{GREEK SMALL LETTER ALPHA}"

_GREEN, _YELLOW, _RED, _HI_BLUE = 32, 33, 31, 94
_COLOURS: Mapping[str, int] = {
    ICON_WAITING: _YELLOW, ICON_PROGRESSING: _HI_BLUE, ICON_WARNING: _RED,
    ICON_UNKNOWN: _YELLOW, ICON_OK: _GREEN, ICON_BAD: _RED,
    "canary": _YELLOW, "stable": _GREEN, "Pending": _HI_BLUE, "Running": _HI_BLUE,
}
_SUMMARY = "{:<17}{}"


@dataclass(frozen=True, slots=True)
class RolloutView:
    """Everything ``get rollout`` shows, as read from the API."""

    rollout: Obj
    replica_sets: Sequence[Obj] = ()  # those the Rollout controls
    pods: Sequence[Obj] = ()  # any pods; only those of the ReplicaSets above are shown
    analysis_runs: Sequence[Obj] = ()  # those the Rollout controls
    actual_weight: str = "-"  # what the VirtualService routes to the canary, or why unknown


def _paint(text: str, key: str, colour: bool) -> str:
    code = _COLOURS.get(key)
    if not colour or code is None or not text:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration``, as kubectl prints ages."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{hours // 24 // 365}y"


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    created = parse_time(str((obj.get("metadata") or {}).get("creationTimestamp") or ""))
    if created is None:
        return ""
    return human_duration((now - created).total_seconds())


def rollout_icon(phase: str) -> str:
    return {"Progressing": ICON_PROGRESSING, "Error": ICON_WARNING, "InvalidSpec": ICON_WARNING,
            "Paused": ICON_PAUSED, "Healthy": ICON_OK, "Degraded": ICON_BAD,
            "Unknown": ICON_UNKNOWN, "ScaledDown": ICON_NEUTRAL}.get(phase, " ")


# --- ReplicaSets, pods, AnalysisRuns -------------------------------------------------------------

def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int((_metadata(obj).get("annotations") or {}).get(REVISION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def _pod_hash(rs: Mapping[str, Any]) -> str:
    return str((_metadata(rs).get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL, ""))


def _spec_replicas(rs: Mapping[str, Any]) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def replica_set_health(rs: Mapping[str, Any]) -> str:
    """The plugin's ``getReplicaSetHealth``."""
    status = rs.get("status") or {}
    generation = int(_metadata(rs).get("generation") or 0)
    if generation > int(status.get("observedGeneration") or 0):
        return "Progressing"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return "ReplicaFailure"
    if int(status.get("availableReplicas") or 0) < _spec_replicas(rs):
        return "Progressing"
    if _spec_replicas(rs) == 0:
        return "ScaledDown"
    return "Healthy"


def _replica_set_icon(health: str) -> str:
    return {"Progressing": ICON_PROGRESSING, "Healthy": ICON_OK, "ReplicaFailure": ICON_BAD,
            "ScaledDown": ICON_NEUTRAL}.get(health, " ")


def _pod_state(pod: Mapping[str, Any]) -> tuple[str, str, int]:
    """``(status, "ready/total", restarts)`` as the plugin's ``newPodInfo`` computes them (init
    containers aside). A pod whose kubelet reports no container statuses counts its Ready
    condition for every container."""
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    ready = restarts = 0
    statuses = status.get("containerStatuses")
    if statuses is None:
        pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
        ready = len(containers) if pod_ready else 0
    else:
        for container in reversed(statuses):
            restarts += int(container.get("restartCount") or 0)
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated:
                signal = terminated.get("signal")
                reason = (f"Signal:{signal}" if signal
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif container.get("ready") and state.get("running") is not None:
                ready += 1
    if _metadata(pod).get("deletionTimestamp"):
        reason = "Terminating"
    return reason, f"{ready}/{len(containers)}", restarts


def pod_icon(status: str) -> str:
    """The plugin's ``podIcon``."""
    if status.startswith("Init:"):
        return ICON_PROGRESSING
    if status.startswith(("Signal:", "ExitCode:")):
        return ICON_BAD
    if status.endswith("Error") or status.startswith("Err"):
        return ICON_WARNING
    return {"Pending": ICON_PROGRESSING, "Terminating": ICON_PROGRESSING,
            "ContainerCreating": ICON_PROGRESSING, "Running": ICON_OK, "Completed": ICON_OK,
            "Failed": ICON_BAD, "InvalidImageName": ICON_BAD, "CrashLoopBackOff": ICON_BAD,
            "ImagePullBackOff": ICON_WARNING, "RegistryUnavailable": ICON_WARNING,
            "Unknown": ICON_UNKNOWN}.get(status, " ")


def analysis_icon(phase: str) -> str:
    return {"Successful": ICON_OK, "Inconclusive": ICON_UNKNOWN, "Failed": ICON_BAD,
            "Error": ICON_WARNING, "Running": ICON_PROGRESSING, "Pending": ICON_WAITING,
            }.get(phase, " ")


def _created(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("creationTimestamp") or "")


# --- the tree ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Row:
    name: str  # with its tree prefix and icon
    kind: str
    icon: str
    status: str
    age: str
    info: str
    name_colour: str = ""  # colour key for the object's name
    info_colours: tuple[str, ...] = ()


def _prefixes(is_last: bool, sub_prefix: str) -> tuple[str, str]:
    if is_last:
        return f"{sub_prefix}└──", f"{sub_prefix}   "
    return f"{sub_prefix}├──", f"{sub_prefix}│  "


def _rows(view: RolloutView, now: datetime) -> list[_Row]:
    rollout = view.rollout
    status = rollout.get("status") or {}
    phase, _ = rollout_phase(rollout)
    rows = [_Row(f"{ICON_ROLLOUT} {_metadata(rollout).get('name', '')}", "Rollout",
                 rollout_icon(phase), phase, _age(rollout, now), "")]
    by_revision: dict[int, tuple[list[Obj], list[Obj]]] = {}
    for rs in view.replica_sets:
        by_revision.setdefault(_revision(rs), ([], []))[0].append(rs)
    for run in view.analysis_runs:
        by_revision.setdefault(_revision(run), ([], []))[1].append(run)
    uid_of = {str(_metadata(rs).get("uid")): rs for rs in view.replica_sets}
    pods_of: dict[str, list[Obj]] = {}
    for pod in view.pods:
        for ref in _metadata(pod).get("ownerReferences") or []:
            if str(ref.get("uid")) in uid_of:
                pods_of.setdefault(str(ref.get("uid")), []).append(pod)
                break
    revisions = sorted(by_revision, reverse=True)
    for r_index, revision in enumerate(revisions):
        prefix, sub = _prefixes(r_index == len(revisions) - 1, "")
        rows.append(_Row(f"{prefix}{ICON_REVISION} revision:{revision}", "", "", "", "", ""))
        replica_sets = sorted(by_revision[revision][0], key=lambda rs: str(_metadata(rs)["name"]))
        runs = sorted(by_revision[revision][1], key=lambda run: (_created(run),
                                                                 str(_metadata(run)["name"])))
        children = len(replica_sets) + len(runs)
        for c_index, rs in enumerate(replica_sets):
            child_prefix, child_sub = _prefixes(c_index == children - 1, sub)
            rows.append(_replica_set_row(rs, status, child_prefix, now))
            pods = sorted(pods_of.get(str(_metadata(rs).get("uid")), []),
                          key=lambda pod: (_created(pod), str(_metadata(pod)["name"])))
            for p_index, pod in enumerate(pods):
                pod_prefix, _ = _prefixes(p_index == len(pods) - 1, child_sub)
                state, ready, restarts = _pod_state(pod)
                info = f"ready:{ready}" + (f",restarts:{restarts}" if restarts else "")
                rows.append(_Row(f"{pod_prefix}{ICON_POD} {_metadata(pod)['name']}", "Pod",
                                 pod_icon(state), state, _age(pod, now), info))
        for a_index, run in enumerate(runs):
            child_prefix, _ = _prefixes(len(replica_sets) + a_index == children - 1, sub)
            rows.append(_analysis_row(run, child_prefix, now))
    return rows


def _replica_set_row(rs: Obj, status: Mapping[str, Any], prefix: str, now: datetime) -> _Row:
    tags: list[str] = []
    pod_hash = _pod_hash(rs)
    if pod_hash and pod_hash == status.get("stableRS"):
        tags.append("stable")
    elif pod_hash and pod_hash == status.get("currentPodHash"):
        tags.append("canary")
    info = list(tags)
    deadline_text = (_metadata(rs).get("annotations") or {}).get(SCALE_DOWN_DEADLINE_ANNOTATION)
    deadline = parse_time(str(deadline_text)) if deadline_text else None
    if deadline is not None:
        delay = "passed" if deadline < now else human_duration((deadline - now).total_seconds())
        info.append(f"delay:{delay}")
    health = replica_set_health(rs)
    return _Row(f"{prefix}{ICON_REPLICA_SET} {_metadata(rs)['name']}", "ReplicaSet",
                _replica_set_icon(health), health, _age(rs, now), ",".join(info),
                name_colour=tags[0] if tags else "", info_colours=tuple(tags))


def _analysis_row(run: Obj, prefix: str, now: datetime) -> _Row:
    status = run.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    counts = {"Successful": 0, "Failed": 0, "Inconclusive": 0, "Error": 0}
    for result in status.get("metricResults") or []:
        for key, attribute in (("Successful", "successful"), ("Failed", "failed"),
                               ("Inconclusive", "inconclusive"), ("Error", "error")):
            counts[key] += int(result.get(attribute) or 0)
    info = [f"{analysis_icon(key)} {value}" for key, value in counts.items() if value]
    return _Row(f"{prefix}{ICON_ANALYSIS} {_metadata(run)['name']}", "AnalysisRun",
                analysis_icon(phase), phase, _age(run, now), ",".join(info), name_colour=phase)


def _table(rows: Sequence[_Row], *, colour: bool) -> list[str]:
    header = ("NAME", "KIND", "STATUS", "AGE", "INFO")
    cells = [header] + [(row.name, row.kind, f"{row.icon} {row.status}" if row.kind else "",
                         row.age, row.info) for row in rows]
    widths = [max(len(line[i]) for line in cells) + 2 for i in range(4)]
    lines = []
    for index, line in enumerate(cells):
        row = rows[index - 1] if index else None
        parts = []
        for column, plain in enumerate(line[:4]):
            padding = " " * (widths[column] - len(plain))
            text = plain
            if row is not None and column == 0 and row.name_colour:
                head, _, name = plain.rpartition(" ")
                text = f"{head} {_paint(name, row.name_colour, colour)}"
            elif row is not None and column == 2 and row.kind:
                text = f"{_paint(row.icon, row.icon, colour)} {row.status}"
            parts.append(text + padding)
        info = line[4]
        if row is not None and colour:
            info = ",".join(_paint(part, part, colour) for part in info.split(","))
        lines.append(("".join(parts) + info).rstrip())
    return lines


# --- the summary ---------------------------------------------------------------------------------

def images_with_roles(
    status: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> list[tuple[str, tuple[str, ...]]]:
    """Images of the ReplicaSets that have pods, tagged stable/canary, sorted by image."""
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    roles: dict[str, set[str]] = {}
    for rs in replica_sets:
        has_pods = _spec_replicas(rs) or int((rs.get("status") or {}).get("replicas") or 0)
        if not has_pods:
            continue
        pod_hash = _pod_hash(rs)
        pod_spec = (((rs.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for container in pod_spec.get("containers") or []:
            tags = roles.setdefault(str(container.get("image", "")), set())
            if pod_hash and pod_hash == stable:
                tags.add("stable")
            elif pod_hash and pod_hash == current:
                tags.add("canary")
    return [(image, tuple(sorted(tags))) for image, tags in sorted(roles.items())]


def render_summary(view: RolloutView, *, colour: bool = False) -> list[str]:
    rollout = view.rollout
    metadata, spec = _metadata(rollout), rollout.get("spec") or {}
    status = rollout.get("status") or {}
    phase, message = rollout_phase(rollout)
    icon = rollout_icon(phase)
    lines = [
        _SUMMARY.format("Name:", metadata.get("name", "")),
        _SUMMARY.format("Namespace:", metadata.get("namespace", "")),
        _SUMMARY.format("Status:", f"{_paint(icon, icon, colour)} {phase}"),
    ]
    if message:
        lines.append(_SUMMARY.format("Message:", message))
    if (spec.get("strategy") or {}).get("canary") is not None:
        lines.append(_SUMMARY.format("Strategy:", "Canary"))
        step = step_progress(rollout)
        if step is not None:
            lines.append(_SUMMARY.format("  Step:", step))
        lines.append(_SUMMARY.format("  SetWeight:", current_set_weight(rollout)))
        lines.append(_SUMMARY.format("  ActualWeight:", view.actual_weight))
    images = images_with_roles(status, view.replica_sets)
    for index, (image, tags) in enumerate(images):
        painted = ", ".join(_paint(tag, tag, colour) for tag in tags)
        text = f"{image} ({painted})" if tags else image
        lines.append(_SUMMARY.format("Images:" if index == 0 else "", text))
    if not images:
        lines.append(_SUMMARY.format("Images:", "-"))
    lines += [
        "Replicas:",
        _SUMMARY.format("  Desired:", spec.get("replicas", DEFAULT_REPLICAS)),
        _SUMMARY.format("  Current:", status.get("replicas", 0)),
        _SUMMARY.format("  Updated:", status.get("updatedReplicas", 0)),
        _SUMMARY.format("  Ready:", status.get("readyReplicas", 0)),
        _SUMMARY.format("  Available:", status.get("availableReplicas", 0)),
    ]
    return lines


def render_rollout(view: RolloutView, *, now: datetime, colour: bool = False) -> str:
    """The whole ``get rollout`` text: summary, a blank line, the tree."""
    lines = render_summary(view, colour=colour)
    lines.append("")
    lines += _table(_rows(view, now), colour=colour)
    return "\n".join(line.rstrip() for line in lines) + "\n"


# --- list rollouts -------------------------------------------------------------------------------

def render_list(rollouts: Sequence[Mapping[str, Any]], *, all_namespaces: bool) -> str:
    """``list rollouts``: the plugin's columns, aligned."""
    header = ["NAME", "STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "READY", "DESIRED",
              "UP-TO-DATE", "AVAILABLE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    table = [header]
    for rollout in sorted(rollouts, key=lambda r: (str(_metadata(r).get("namespace")),
                                                   str(_metadata(r).get("name")))):
        spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
        canary = (spec.get("strategy") or {}).get("canary") is not None
        phase, _ = rollout_phase(rollout)
        row = [
            str(_metadata(rollout).get("name", "")),
            "Canary" if canary else "unknown",
            phase,
            (step_progress(rollout) or "-") if canary else "-",
            str(current_set_weight(rollout)) if canary else "-",
            f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}",
            str(spec.get("replicas", DEFAULT_REPLICAS)),
            str(status.get("updatedReplicas", 0)),
            str(status.get("availableReplicas", 0)),
        ]
        if all_namespaces:
            row.insert(0, str(_metadata(rollout).get("namespace", "")))
        table.append(row)
    widths = [max(len(row[i]) for row in table) + 2 for i in range(len(header))]
    return "".join(
        "".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n"
        for row in table)
