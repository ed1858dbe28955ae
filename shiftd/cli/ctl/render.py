"""``get rollout`` and ``list rollouts`` as text: the plugin's summary and tree.

Pure: the text is drawn from the read models of :mod:`shiftd.views` (built from the objects
as the API returned them) and an explicit ``now`` (ages are relative to it), so the output is
deterministic and golden-testable. The
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

from shiftd.views import (
    AnalysisRunNode,
    ReplicaSetNode,
    RolloutObjects,
    RolloutSummary,
    RolloutTree,
    rollout_list,
    rollout_tree,
)

__all__ = ["human_duration", "pod_icon", "render_list", "render_rollout", "rollout_icon"]

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


def _age(created: datetime | None, now: datetime) -> str:
    return "" if created is None else human_duration((now - created).total_seconds())


def rollout_icon(phase: str) -> str:
    return {"Progressing": ICON_PROGRESSING, "Error": ICON_WARNING, "InvalidSpec": ICON_WARNING,
            "Paused": ICON_PAUSED, "Healthy": ICON_OK, "Degraded": ICON_BAD,
            "Unknown": ICON_UNKNOWN, "ScaledDown": ICON_NEUTRAL}.get(phase, " ")


# --- icons ----------------------------------------------------------------------------------

def _replica_set_icon(health: str) -> str:
    return {"Progressing": ICON_PROGRESSING, "Healthy": ICON_OK, "ReplicaFailure": ICON_BAD,
            "ScaledDown": ICON_NEUTRAL}.get(health, " ")


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


def _rows(tree: RolloutTree, now: datetime) -> list[_Row]:
    summary = tree.summary
    rows = [_Row(f"{ICON_ROLLOUT} {summary.name}", "Rollout", rollout_icon(summary.phase),
                 summary.phase, _age(summary.created, now), "")]
    for r_index, revision in enumerate(tree.revisions):
        prefix, sub = _prefixes(r_index == len(tree.revisions) - 1, "")
        rows.append(_Row(f"{prefix}{ICON_REVISION} revision:{revision.revision}",
                         "", "", "", "", ""))
        children = len(revision.replica_sets) + len(revision.analysis_runs)
        for c_index, rs in enumerate(revision.replica_sets):
            child_prefix, child_sub = _prefixes(c_index == children - 1, sub)
            rows.append(_replica_set_row(rs, child_prefix, now))
            for p_index, pod in enumerate(rs.pods):
                pod_prefix, _ = _prefixes(p_index == len(rs.pods) - 1, child_sub)
                info = f"ready:{pod.ready}" + (f",restarts:{pod.restarts}" if pod.restarts
                                               else "")
                rows.append(_Row(f"{pod_prefix}{ICON_POD} {pod.name}", "Pod",
                                 pod_icon(pod.status), pod.status, _age(pod.created, now), info))
        for a_index, run in enumerate(revision.analysis_runs):
            last = len(revision.replica_sets) + a_index == children - 1
            child_prefix, _ = _prefixes(last, sub)
            rows.append(_analysis_row(run, child_prefix, now))
    return rows


def _replica_set_row(rs: ReplicaSetNode, prefix: str, now: datetime) -> _Row:
    tags = [rs.role] if rs.role else []
    info = list(tags)
    if rs.scale_down_deadline is not None:
        deadline = rs.scale_down_deadline
        delay = "passed" if deadline < now else human_duration((deadline - now).total_seconds())
        info.append(f"delay:{delay}")
    return _Row(f"{prefix}{ICON_REPLICA_SET} {rs.name}", "ReplicaSet",
                _replica_set_icon(rs.health), rs.health, _age(rs.created, now), ",".join(info),
                name_colour=tags[0] if tags else "", info_colours=tuple(tags))


def _analysis_row(run: AnalysisRunNode, prefix: str, now: datetime) -> _Row:
    info = [f"{analysis_icon(key)} {value}" for key, value in run.counts]
    return _Row(f"{prefix}{ICON_ANALYSIS} {run.name}", "AnalysisRun", analysis_icon(run.phase),
                run.phase, _age(run.created, now), ",".join(info), name_colour=run.phase)


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

def render_summary(summary: RolloutSummary, *, colour: bool = False) -> list[str]:
    icon = rollout_icon(summary.phase)
    lines = [
        _SUMMARY.format("Name:", summary.name),
        _SUMMARY.format("Namespace:", summary.namespace),
        _SUMMARY.format("Status:", f"{_paint(icon, icon, colour)} {summary.phase}"),
    ]
    if summary.message:
        lines.append(_SUMMARY.format("Message:", summary.message))
    if summary.canary:
        lines.append(_SUMMARY.format("Strategy:", "Canary"))
        if summary.step is not None:
            lines.append(_SUMMARY.format("  Step:", summary.step))
        lines.append(_SUMMARY.format("  SetWeight:", summary.set_weight))
        lines.append(_SUMMARY.format("  ActualWeight:", summary.actual_weight))
    for index, image in enumerate(summary.images):
        painted = ", ".join(_paint(role, role, colour) for role in image.roles)
        text = f"{image.image} ({painted})" if image.roles else image.image
        lines.append(_SUMMARY.format("Images:" if index == 0 else "", text))
    if not summary.images:
        lines.append(_SUMMARY.format("Images:", "-"))
    replicas = summary.replicas
    lines += [
        "Replicas:",
        _SUMMARY.format("  Desired:", replicas.desired),
        _SUMMARY.format("  Current:", replicas.current),
        _SUMMARY.format("  Updated:", replicas.updated),
        _SUMMARY.format("  Ready:", replicas.ready),
        _SUMMARY.format("  Available:", replicas.available),
    ]
    return lines


def render_rollout(objects: RolloutObjects, *, now: datetime, colour: bool = False) -> str:
    """The whole ``get rollout`` text: summary, a blank line, the tree."""
    tree = rollout_tree(objects)
    lines = render_summary(tree.summary, colour=colour)
    lines.append("")
    lines += _table(_rows(tree, now), colour=colour)
    return "\n".join(line.rstrip() for line in lines) + "\n"


# --- list rollouts -------------------------------------------------------------------------------

def _list_row(summary: RolloutSummary, *, all_namespaces: bool) -> list[str]:
    replicas = summary.replicas
    row = [
        summary.name,
        "Canary" if summary.canary else "unknown",
        summary.phase,
        (summary.step or "-") if summary.canary else "-",
        "-" if summary.set_weight is None else str(summary.set_weight),
        f"{replicas.ready}/{replicas.current}",
        str(replicas.desired),
        str(replicas.updated),
        str(replicas.available),
    ]
    return [summary.namespace, *row] if all_namespaces else row


def render_list(rollouts: Sequence[Mapping[str, Any]], *, all_namespaces: bool) -> str:
    """``list rollouts``: the plugin's columns, aligned."""
    header = ["NAME", "STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "READY", "DESIRED",
              "UP-TO-DATE", "AVAILABLE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    table = [header] + [_list_row(summary, all_namespaces=all_namespaces)
                        for summary in rollout_list(rollouts)]
    widths = [max(len(row[i]) for row in table) + 2 for i in range(len(header))]
    return "".join(
        "".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n"
        for row in table)
