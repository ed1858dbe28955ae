"""AnalysisRuns seen from the Rollout: building their specs, naming them, and what a Rollout
does with their phases. Pure.

``merge_run_spec`` turns a Rollout's ``analysis`` block (background, or a step's) and the
templates it names into one AnalysisRun spec: metrics of every template concatenated, args
merged (template defaults overridden by the Rollout's, ``fieldRef`` resolved from the
Rollout, ``secretKeyRef`` kept for the analysis task to read at measurement time), ``dryRun``
and ``measurementRetention`` carried over. It raises ``InvalidSpecError`` for a missing
template or a required arg without a value, naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shiftd.decide.analysis.expr import ExprSyntaxError, compile_condition
from shiftd.decide.rollout.hashing import pod_template_hash
from shiftd.model.argo.analysis import merge_args, missing_args, parse_metrics, substitute_all
from shiftd.model.argo.rollout import InvalidSpecError
from shiftd.model.argo.shapes import TEMPLATE_SPEC, check_shape

BACKGROUND = "Background"
STEP = "Step"
ROLLOUT_TYPE_LABEL = "rollout-type"
STEP_INDEX_LABEL = "step-index"
KEEP_SUCCESSFUL = 5
KEEP_UNSUCCESSFUL = 5

TemplateKey = tuple[str, str]  # ("AnalysisTemplate" | "ClusterAnalysisTemplate", name)


@dataclass(frozen=True, slots=True)
class AnalysisRunView:
    """What the planner needs of one AnalysisRun the Rollout owns."""

    name: str
    kind: str  # Background | Step
    pod_hash: str
    step_index: int | None
    phase: str  # "" until the analysis task first assesses it
    message: str
    terminated: bool
    created: str  # creationTimestamp, for garbage-collection order

    @property
    def completed(self) -> bool:
        return self.phase in ("Successful", "Failed", "Error", "Inconclusive")

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> AnalysisRunView:
        metadata = obj.get("metadata") or {}
        labels = metadata.get("labels") or {}
        status = obj.get("status") or {}
        step = labels.get(STEP_INDEX_LABEL)
        return cls(
            name=str(metadata.get("name")),
            kind=str(labels.get(ROLLOUT_TYPE_LABEL, "")),
            pod_hash=str(labels.get("rollouts-pod-template-hash", "")),
            step_index=int(step) if step is not None and str(step).isdigit() else None,
            phase=str(status.get("phase") or ""),
            message=str(status.get("message") or ""),
            terminated=bool((obj.get("spec") or {}).get("terminate")),
            created=str(metadata.get("creationTimestamp") or ""),
        )


def _field_ref(rollout_obj: Mapping[str, Any], path: str) -> str:
    metadata = rollout_obj.get("metadata") or {}
    if path == "metadata.name":
        return str(metadata.get("name", ""))
    if path == "metadata.namespace":
        return str(metadata.get("namespace", ""))
    for section in ("labels", "annotations"):
        prefix = f"metadata.{section}["
        if path.startswith(prefix) and path.endswith("]"):
            key = path[len(prefix):-1].strip("'\"")
            values = metadata.get(section) or {}
            if key not in values:
                raise InvalidSpecError(f"fieldRef {path}: the Rollout has no {section[:-1]} "
                                       f"{key!r}")
            return str(values[key])
    raise InvalidSpecError(f"fieldRef {path!r} is not supported (use metadata.name, "
                           "metadata.namespace, metadata.labels['k'], metadata.annotations['k'])")


def _pod_template_hash_value(rollout_obj: Mapping[str, Any], which: str) -> str:
    """Argo's ``valueFrom.podTemplateHashValue``: the Stable or Latest pod-template hash."""
    if which == "Stable":
        return str((rollout_obj.get("status") or {}).get("stableRS") or "")
    if which == "Latest":
        template = (rollout_obj.get("spec") or {}).get("template") or {}
        return pod_template_hash(template)
    raise InvalidSpecError(f"podTemplateHashValue must be Stable or Latest, got {which!r}")


def resolve_field_refs(args: Sequence[Mapping[str, Any]],
                       rollout_obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    resolved: list[dict[str, Any]] = []
    for arg in args:
        value_from = arg.get("valueFrom") or {}
        if "podTemplateHashValue" in value_from:
            resolved.append({"name": arg["name"], "value": _pod_template_hash_value(
                rollout_obj, str(value_from["podTemplateHashValue"]))})
        elif "fieldRef" in value_from:
            path = str((value_from.get("fieldRef") or {}).get("fieldPath", ""))
            resolved.append({"name": arg["name"], "value": _field_ref(rollout_obj, path)})
        else:
            resolved.append(dict(arg))
    return resolved


def _template_spec(ref: Mapping[str, Any], *, templates: Mapping[TemplateKey, Mapping[str, Any]],
                   path: str) -> Mapping[str, Any]:
    """The spec of the template ``ref`` names, its shape checked."""
    kind = "ClusterAnalysisTemplate" if ref.get("clusterScope") else "AnalysisTemplate"
    name = str(ref.get("templateName", ""))
    template = templates.get((kind, name))
    if template is None:
        raise InvalidSpecError(f"{path}: {kind} {name!r} not found")
    template_spec: Mapping[str, Any] = template.get("spec") or {}
    check_shape(template_spec, TEMPLATE_SPEC, path=f"{path}: {kind} {name!r}: spec")
    return template_spec


def merge_run_spec(
    analysis: Mapping[str, Any],
    *,
    templates: Mapping[TemplateKey, Mapping[str, Any]],
    rollout_obj: Mapping[str, Any],
    path: str,
) -> dict[str, Any]:
    """One AnalysisRun spec from a Rollout's analysis block and the templates it names."""
    refs = analysis.get("templates") or []
    if not refs:
        raise InvalidSpecError(f"{path}.templates must name at least one template")
    metrics: list[dict[str, Any]] = []
    template_args: list[dict[str, Any]] = []
    dry_run: list[dict[str, Any]] = []
    retention: list[dict[str, Any]] = []
    for index, ref in enumerate(refs):
        template_spec = _template_spec(ref, templates=templates,
                                       path=f"{path}.templates[{index}]")
        metrics.extend(copy.deepcopy(template_spec.get("metrics") or []))
        for arg in template_spec.get("args") or []:
            if all(a["name"] != arg.get("name") for a in template_args):
                template_args.append(dict(arg))
        dry_run.extend(template_spec.get("dryRun") or [])
        retention.extend(template_spec.get("measurementRetention") or [])
    # the Rollout's own dryRun / measurementRetention rules come after the templates'
    dry_run.extend(analysis.get("dryRun") or [])
    retention.extend(analysis.get("measurementRetention") or [])
    args = merge_args(template_args, analysis.get("args") or [])
    try:
        args = resolve_field_refs(args, rollout_obj)
    except InvalidSpecError as error:
        raise InvalidSpecError(f"{path}.args: {error}") from None
    missing = missing_args(args)
    if missing:
        raise InvalidSpecError(f"{path}: args.{missing[0]} has no value (the template requires "
                               "it and the Rollout does not set it)")
    # secretKeyRef args have no value here: the analysis task reads them when it measures
    values = {str(a["name"]): str(a["value"]) for a in args if "value" in a}
    try:
        rendered = [m if _uses_secret(m, args) else substitute_all(m, values) for m in metrics]
    except InvalidSpecError as error:
        raise InvalidSpecError(f"{path}: {error}") from None
    for metric in parse_metrics(rendered, path=f"{path} metrics"):
        for which, condition in (("successCondition", metric.success_condition),
                                 ("failureCondition", metric.failure_condition)):
            if condition:
                try:
                    compile_condition(condition)
                except ExprSyntaxError as error:
                    raise InvalidSpecError(f"{path}: metric {metric.name!r} {which}: "
                                           f"{error}") from None
    spec: dict[str, Any] = {"metrics": rendered, "args": args}
    if dry_run:
        spec["dryRun"] = dry_run
    if retention:
        spec["measurementRetention"] = retention
    return spec


def _uses_secret(metric: Mapping[str, Any], args: Sequence[Mapping[str, Any]]) -> bool:
    secret_names = [a["name"] for a in args if "value" not in a]
    text = repr(metric)
    return any(f"args.{name}" in text for name in secret_names)


def run_name(rollout: str, pod_hash: str, revision: int, step_index: int | None,
             attempt: int) -> str:
    """Argo's names: ``<rollout>-<hash>-<revision>[-<step>]``, ``.<n>`` for a retry."""
    name = f"{rollout}-{pod_hash}-{revision}"
    if step_index is not None:
        name += f"-{step_index}"
    return f"{name}.{attempt}" if attempt else name


def runs_to_delete(runs: Sequence[AnalysisRunView], *, keep: set[str]) -> list[str]:
    """Completed runs past the newest 5 successful and 5 unsuccessful (Argo's limits)."""
    done = sorted((r for r in runs if r.completed and r.name not in keep),
                  key=lambda r: (r.created, r.name), reverse=True)
    successful = [r for r in done if r.phase == "Successful"]
    unsuccessful = [r for r in done if r.phase != "Successful"]
    return sorted(r.name for r in successful[KEEP_SUCCESSFUL:] + unsuccessful[KEEP_UNSUCCESSFUL:])
