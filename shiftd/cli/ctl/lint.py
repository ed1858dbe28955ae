"""``shiftctl lint``: check Rollouts and AnalysisTemplates offline against what shiftd runs.

Pure (no I/O but reading the CRD schemas once, which the caller may pass in): the manifests
go in, a list of ``Problem`` comes out, each with the file, the object and the path of the
field, each reported once. The checks reuse the code the daemon runs, so lint and the daemon
cannot disagree:

- **unknown fields**: every field must be in the Argo Rollouts CRD schema (``openAPIV3Schema``
  of ``shared/crds/argo-rollouts``; free-form parts such as the pod template's containers are
  left to Kubernetes). Fields Argo knows but shiftd ignores are not problems;
- **what shiftd cannot act on**: ``model.rollout.parse_rollout`` (impossible steps, bad
  durations, unsupported strategies), run step by step so every bad step is
  reported, and ``model.analysis.parse_metric`` for each metric of a template;
- **references among the given files**: a ``workloadRef``'s Deployment (its template is
  the one checked, as the daemon resolves it), the canary and stable Services (not managed by
  another Rollout), the VirtualServices and their routes and destinations
  (``traffic.istio.routes.observe_weight``), the DestinationRule and its subsets (and that
  each role's pods carry the labels its subset selects on), and the analysis templates and
  args (``decide.analysis.runs.merge_run_spec``). As with ``kubectl argo rollouts lint``, a
  lone valid Rollout passes: a reference missing from the given files is a note (it may live
  in another file or in the cluster); one that contradicts a given file is a problem;
- **condition syntax**: ``successCondition``/``failureCondition`` through the condition
  compiler the analysis task uses, ``decide.expr.compile_condition`` (a condition holding
  ``{{args...}}`` is left alone: it only parses once substituted).

Kinds other than Rollout, AnalysisTemplate and ClusterAnalysisTemplate are only read as
references (Service, VirtualService, DestinationRule) or skipped with a note (e.g. Flagger's
``Canary``).

This module sits outside the layers (it reads ``mesh`` and ``decide`` alike); it imports
nothing that does I/O.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shiftd.decide.analysis.expr import ExprSyntaxError, compile_condition
from shiftd.decide.analysis.runs import merge_run_spec
from shiftd.model.argo.analysis import UndefinedArgument, parse_metric, substitute_all
from shiftd.model.argo.rollout import (
    MANAGED_BY_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL,
    InvalidSpecError,
    Rollout,
    parse_rollout,
)
from shiftd.model.argo.workload import inline_workload, workload_ref_of
from shiftd.traffic.istio.routes import Destinations, RouteError, observe_subsets, observe_weight

__all__ = ["LINTED_KINDS", "LintInput", "LintReport", "Problem", "find_crd_dir",
           "lint", "load_schemas"]

Obj = dict[str, Any]
LINTED_KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")
REFERENCE_KINDS = ("Service", "VirtualService", "DestinationRule", "Gateway", "Namespace",
                   "Deployment", "ConfigMap", "Secret")
TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
SHARED_DIR_ENV = "SHIFTD_SHARED_DIR"
_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata", "status"})
_PATH_AND_MESSAGE = re.compile(r"^((?:spec|metadata)(?:\.[\w-]+|\[\d+\])*)(?::\s*|\s+)(.*)$",
                               re.DOTALL)
_STRATEGY = "spec.strategy.canary"


@dataclass(frozen=True, slots=True)
class LintInput:
    source: str  # the file it came from
    obj: Obj

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    source: str
    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}: {self.kind} {self.name}: {where}{self.message}"


@dataclass
class LintReport:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, item: LintInput, path: str, message: str) -> None:
        problem = Problem(item.source, item.kind, item.name, path, message)
        if problem not in self.problems:
            self.problems.append(problem)

    def note(self, item: LintInput, path: str, message: str) -> None:
        """Something lint could not check (a reference outside the given files)."""
        text = str(Problem(item.source, item.kind, item.name, path, message))
        if text not in self.notes:
            self.notes.append(text)

    def add_error(self, item: LintInput, error: Exception, *, default_path: str = "") -> None:
        path, message = split_message(str(error), default_path=default_path)
        self.add(item, path, message)


def split_message(text: str, *, default_path: str = "") -> tuple[str, str]:
    """``"spec.x.y: bad"`` or ``"spec.x.y must ..."`` into ``(path, message)``."""
    match = _PATH_AND_MESSAGE.match(text)
    if match is None:
        return default_path, text
    return match.group(1), match.group(2)


# --- CRD schemas -------------------------------------------------------------------------------

def find_crd_dir(start: Path | None = None) -> Path | None:
    """``$SHIFTD_SHARED_DIR/crds/argo-rollouts``, else the first ``shared/crds/argo-rollouts``
    walking up from ``start`` (default: the working directory) or from this file."""
    configured = os.environ.get(SHARED_DIR_ENV)
    if configured:
        candidate = Path(configured) / "crds" / "argo-rollouts"
        return candidate if candidate.is_dir() else None
    for origin in (start or Path.cwd(), Path(__file__).resolve().parent):
        for directory in (origin.resolve(), *origin.resolve().parents):
            candidate = directory / "shared" / "crds" / "argo-rollouts"
            if candidate.is_dir():
                return candidate
    return None


@functools.cache
def load_schemas(crd_dir: Path) -> dict[str, Obj]:
    """kind -> the ``openAPIV3Schema`` of its served v1alpha1 version, for the kinds lint
    checks (read once per process: the Argo CRDs are megabytes of YAML)."""
    schemas: dict[str, Obj] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        if "template" not in path.name and "rollout" not in path.name:
            continue
        for document in yaml.load_all(path.read_text(encoding="utf-8"),
                                      Loader=yaml.CSafeLoader):
            if not isinstance(document, dict) or document.get("kind") != \
                    "CustomResourceDefinition":
                continue
            spec = document.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            for version in spec.get("versions") or []:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if kind in LINTED_KINDS and schema and version.get("served", True):
                    schemas[str(kind)] = schema
    return schemas


def _unknown_fields(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields") or \
            schema.get("x-kubernetes-int-or-string"):
        return
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        if properties is None and additional is None:
            return  # a free-form object
        for key, sub in value.items():
            child = f"{path}.{key}" if path else str(key)
            if properties is not None and key in properties:
                yield from _unknown_fields(sub, properties[key], child)
            elif isinstance(additional, Mapping):
                yield from _unknown_fields(sub, additional, child)
            elif additional is not True and not (not path and key in _ROOT_FIELDS):
                yield child
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _unknown_fields(item, schema["items"], f"{path}[{index}]")


def _check_fields(item: LintInput, schemas: Mapping[str, Obj], report: LintReport) -> None:
    schema = schemas.get(item.kind)
    if schema is None:
        return
    body = {key: value for key, value in item.obj.items() if key not in _ROOT_FIELDS}
    for path in _unknown_fields(body, schema, ""):
        report.add(item, path, "unknown field (not in the Argo Rollouts CRD schema)")


# --- Rollouts ----------------------------------------------------------------------------------

_PLACEHOLDER_LABELS = {"shiftd.io/lint": "placeholder"}


def _step_probe(canary: Mapping[str, Any], step: Any, routing_ok: bool) -> Obj:
    """A minimal valid Rollout around one step, to validate it on its own."""
    probe_canary: Obj = {"steps": [copy.deepcopy(step)]}
    if routing_ok:
        for key in ("trafficRouting", "canaryService", "stableService"):
            if key in canary:
                probe_canary[key] = copy.deepcopy(canary[key])
    return {"metadata": {"name": "probe"}, "spec": {
        "selector": {"matchLabels": dict(_PLACEHOLDER_LABELS)},
        "template": {"metadata": {"labels": dict(_PLACEHOLDER_LABELS)},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}},
        "strategy": {"canary": probe_canary}}}


def _inline_workload(item: LintInput, items: Sequence[LintInput] | None,
                     report: LintReport) -> Obj:
    """The Rollout with a workloadRef's Deployment template written in, as the daemon resolves
    it: checked against the Deployment when it is among ``items`` (None: references are not
    followed), else with a placeholder template matching the selector."""
    obj = copy.deepcopy(item.obj)
    spec = obj.setdefault("spec", {})
    try:
        named = workload_ref_of(spec)
    except InvalidSpecError as error:
        report.add_error(item, error, default_path="spec.workloadRef")
        named = None
    if not spec.get("workloadRef"):
        return obj
    found = _among(items, "Deployment", named[0]) if items is not None and named else None
    if found is not None:
        try:
            return inline_workload(obj, found.obj)
        except InvalidSpecError as error:
            report.add_error(item, error, default_path="spec.workloadRef")
    elif items is not None and named:
        report.add(item, "spec.workloadRef.name", f"Deployment {named[0]!r} is not among the "
                   "given files")
    spec.pop("workloadRef")
    spec.pop("template", None)
    labels = dict((spec.get("selector") or {}).get("matchLabels") or {})
    spec["template"] = {"metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "c", "image": "i"}]}}
    return obj


def _parse_rollout(item: LintInput, report: LintReport,
                   items: Sequence[LintInput] | None = None) -> Rollout | None:
    """Every reason the daemon would refuse the Rollout; the Rollout parsed without its steps
    (``None`` if even that fails), to follow its references."""
    obj = _inline_workload(item, items, report)
    spec = obj["spec"]
    canary = (spec.get("strategy") or {}).get("canary")
    steps = canary.get("steps") if isinstance(canary, dict) else None
    without_steps = copy.deepcopy(obj)
    if isinstance(steps, list):
        without_steps["spec"]["strategy"]["canary"]["steps"] = []
    parsed: Rollout | None = None
    try:
        parsed = parse_rollout(without_steps)
    except InvalidSpecError as error:
        report.add_error(item, error, default_path="spec")
    if isinstance(steps, list) and isinstance(canary, dict):
        routing_ok = parsed is not None
        for index, step in enumerate(steps):
            try:
                parse_rollout(_step_probe(canary, step, routing_ok))
            except InvalidSpecError as error:
                text = str(error).replace("steps[0]", f"steps[{index}]")
                report.add_error(item, InvalidSpecError(text), default_path=f"{_STRATEGY}.steps")
    return parsed  # without its steps: enough to follow its references


def _among(items: Sequence[LintInput], kind: str, name: str) -> LintInput | None:
    return next((i for i in items if i.kind == kind and i.name == name), None)


_UNCHECKED = "(not checked)"


def _check_services(item: LintInput, rollout: Rollout, items: Sequence[LintInput],
                    report: LintReport) -> None:
    """The canary and stable Services: a note when not given; a problem when a given one is
    managed by another Rollout (Argo's "Service is managed by another Rollout")."""
    for key, name in (("canaryService", rollout.canary.canary_service),
                      ("stableService", rollout.canary.stable_service)):
        if not name:
            continue
        found = _among(items, "Service", name)
        if found is None:
            report.note(item, f"{_STRATEGY}.{key}", f"Service {name!r} is not among the given "
                        f"files {_UNCHECKED}")
            continue
        owner = ((found.obj.get("metadata") or {}).get("annotations") or {}).get(
            MANAGED_BY_ANNOTATION)
        if owner and owner != rollout.name:
            report.add(item, f"{_STRATEGY}.{key}", f"Service {name!r} is managed by another "
                       f"Rollout ({owner!r}, {found.source})")


def _check_references(item: LintInput, rollout: Rollout, items: Sequence[LintInput],
                      report: LintReport) -> None:
    canary = rollout.canary
    _check_services(item, rollout, items, report)
    istio = canary.istio
    if istio is None:
        return
    raw_istio = ((((item.obj.get("spec") or {}).get("strategy") or {}).get("canary") or {})
                 .get("trafficRouting") or {}).get("istio") or {}
    base = f"{_STRATEGY}.trafficRouting.istio"
    rule = istio.destination_rule
    destinations = Destinations(
        canary_service=canary.canary_service, stable_service=canary.stable_service,
        canary_subset=rule["canarySubsetName"] if rule else None,
        stable_subset=rule["stableSubsetName"] if rule else None)
    for index, ref in enumerate(istio.virtual_services):
        path = f"{base}.virtualService" if "virtualService" in raw_istio else \
            f"{base}.virtualServices[{index}]"
        found = _among(items, "VirtualService", ref.name)
        if found is None:
            report.note(item, f"{path}.name", f"VirtualService {ref.name!r} is not among the "
                        f"given files {_UNCHECKED}")
            continue
        try:
            observe_weight(found.obj, ref, destinations, canary.managed_routes)
        except RouteError as error:
            report.add(item, f"{path}.routes", str(error))
    if rule is not None:
        name = rule["name"].partition(".")[0]
        found = _among(items, "DestinationRule", name)
        if found is None:
            report.note(item, f"{base}.destinationRule.name", f"DestinationRule {name!r} is not "
                        f"among the given files {_UNCHECKED}")
        else:
            try:
                observe_subsets(found.obj, destinations)
            except RouteError as error:
                report.add(item, f"{base}.destinationRule", str(error))


def _check_subset_labels(item: LintInput, rollout: Rollout, items: Sequence[LintInput],
                         report: LintReport) -> None:
    """Each role's pods must carry the labels its DestinationRule subset selects on besides
    the hash (from the template or that role's canary/stableMetadata): the daemon never
    points a subset at pods without them, so the update would wait forever."""
    rule = rollout.canary.istio.destination_rule if rollout.canary.istio else None
    found = _among(items, "DestinationRule", rule["name"].partition(".")[0]) if rule else None
    if rule is None or found is None:
        return
    template = dict((rollout.template.get("metadata") or {}).get("labels") or {})
    subsets = {str(s.get("name")): s.get("labels") or {}
               for s in (found.obj.get("spec") or {}).get("subsets") or []}
    for role, metadata in (("canary", rollout.canary.canary_metadata),
                           ("stable", rollout.canary.stable_metadata)):
        subset = rule[f"{role}SubsetName"]
        carried = {**template, **(metadata.labels if metadata is not None else {})}
        missing = {key: value for key, value in (subsets.get(subset) or {}).items()
                   if key != POD_TEMPLATE_HASH_LABEL and carried.get(key) != value}
        if missing:
            wanted = ", ".join(f"{key}={value}" for key, value in sorted(missing.items()))
            report.add(item, f"{_STRATEGY}.{role}Metadata.labels",
                       f"DestinationRule {found.name!r} subset {subset!r} selects {wanted}, "
                       f"which the {role} pods would not carry")


def _check_analysis(item: LintInput, rollout: Rollout, items: Sequence[LintInput],
                    troubled: set[tuple[str, str]], report: LintReport) -> None:
    templates = {(i.kind, i.name): i.obj for i in items if i.kind in TEMPLATE_KINDS}
    raw_steps = (((item.obj.get("spec") or {}).get("strategy") or {}).get("canary")
                 or {}).get("steps") or []
    blocks: list[tuple[str, Mapping[str, Any]]] = []
    if rollout.canary.background_analysis:
        blocks.append((f"{_STRATEGY}.analysis", rollout.canary.background_analysis))
    for index, raw in enumerate(raw_steps):
        if isinstance(raw, Mapping) and isinstance(raw.get("analysis"), Mapping):
            blocks.append((f"{_STRATEGY}.steps[{index}].analysis", raw["analysis"]))
    for path, block in blocks:
        named = {("ClusterAnalysisTemplate" if ref.get("clusterScope") else "AnalysisTemplate",
                  str(ref.get("templateName", "")))
                 for ref in block.get("templates") or [] if isinstance(ref, Mapping)}
        if named & troubled:
            continue  # the template's own problems are reported on the template
        missing = sorted(named - set(templates))
        if missing:
            for kind, name in missing:
                report.note(item, path, f"{kind} {name!r} is not among the given files "
                            f"{_UNCHECKED}")
            continue
        try:
            merge_run_spec(block, templates=templates, rollout_obj=item.obj, path=path)
        except InvalidSpecError as error:
            report.add_error(item, error, default_path=path)


# --- AnalysisTemplates -------------------------------------------------------------------------

def _check_template(item: LintInput, report: LintReport) -> None:
    spec = item.obj.get("spec") or {}
    metrics = spec.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        report.add(item, "spec.metrics", "at least one metric is required")
        return
    declared = {str(arg.get("name")): "x" for arg in spec.get("args") or []
                if isinstance(arg, Mapping)}
    names: set[str] = set()
    for index, metric in enumerate(metrics):
        path = f"spec.metrics[{index}]"
        if not isinstance(metric, Mapping):
            report.add(item, path, "must be an object")
            continue
        name = str(metric.get("name", ""))
        if name in names:
            report.add(item, f"{path}.name", f"duplicate metric name {name!r}")
        names.add(name)
        try:
            substitute_all(dict(metric), declared)
        except UndefinedArgument as error:
            report.add(item, path, f"{error} in spec.args")
        except InvalidSpecError as error:
            report.add(item, path, str(error))
        try:
            parse_metric(metric, path=path)
        except InvalidSpecError as error:
            report.add_error(item, error, default_path=path)
        for key in ("successCondition", "failureCondition"):
            source = metric.get(key)
            if not isinstance(source, str) or "{{" in source:
                continue
            try:
                compile_condition(source)
            except ExprSyntaxError as error:
                report.add(item, f"{path}.{key}", f"invalid condition {source!r}: {error}")


# --- the whole run -----------------------------------------------------------------------------

def lint(items: Sequence[LintInput], *, schemas: Mapping[str, Obj] | None,
         check_references: bool = True) -> LintReport:
    """Lint every Rollout and analysis template in ``items`` (the other objects are what
    references may point to). ``schemas=None``: unknown fields are not checked (noted)."""
    report = LintReport()
    if schemas is None:
        report.notes.append("unknown fields not checked: the Argo Rollouts CRDs were not found "
                            f"(set {SHARED_DIR_ENV})")
    skipped: dict[str, int] = {}
    for item in items:
        if item.kind in TEMPLATE_KINDS:
            if schemas is not None:
                _check_fields(item, schemas, report)
            _check_template(item, report)
        elif item.kind not in LINTED_KINDS and item.kind not in REFERENCE_KINDS:
            skipped[item.kind or "(no kind)"] = skipped.get(item.kind or "(no kind)", 0) + 1
    troubled = {(p.kind, p.name) for p in report.problems if p.kind in TEMPLATE_KINDS}
    for item in items:
        if item.kind != "Rollout":
            continue
        if schemas is not None:
            _check_fields(item, schemas, report)
        rollout = _parse_rollout(item, report, items if check_references else None)
        if rollout is not None and check_references:
            _check_references(item, rollout, items, report)
            _check_subset_labels(item, rollout, items, report)
            _check_analysis(item, rollout, items, troubled, report)
    for kind, count in sorted(skipped.items()):
        report.notes.append(f"skipped {count} {kind} object{'s' if count != 1 else ''}: "
                            "shiftd does not lint that kind")
    return report
