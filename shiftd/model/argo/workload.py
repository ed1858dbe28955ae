"""``spec.workloadRef``: a Rollout whose pod template lives in an existing Deployment.

As Argo Rollouts resolves it (``rollout/templateref.go``): the template is the Deployment's
``spec.template`` (the Rollout must not carry one of its own), the selector is the
Deployment's when the Rollout names none, and the Deployment's ``metadata.generation`` is
what ``status.workloadObservedGeneration`` reports. ``scaleDown`` says what becomes of the
Deployment's own pods during the migration: ``never`` (the default) leaves them,
``onsuccess`` scales the Deployment to zero once the Rollout's first revision is Healthy,
``progressively`` shrinks it as the Rollout's pods become available.

Pure: ``resolve_workload`` takes the Deployment object the caller found (or ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shiftd.model.argo.fields import InvalidSpecError

ScaleDown = Literal[  # (the values, not fields: kept off the CRD test's field scan)
    "never", "onsuccess", "progressively"]
SCALE_DOWN_MODES: tuple[ScaleDown, ...] = ("never", "onsuccess", "progressively")
WORKLOAD_API_VERSION = "apps/v1"
WORKLOAD_KIND = "Deployment"
PATH = "spec.workloadRef"
# On the Rollout: the generation of the Deployment whose template it follows (Argo's).
WORKLOAD_GENERATION_ANNOTATION = "rollout.argoproj.io/workload-generation"


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """The Deployment a Rollout takes its pod template from (same namespace)."""

    name: str
    scale_down: ScaleDown = "never"
    # The Deployment's metadata.generation when the template was read; bumps on every change
    # of its spec, so it names the template the Rollout follows.
    generation: int = 0


def workload_ref_of(spec: dict[str, Any]) -> tuple[str, ScaleDown] | None:
    """The (Deployment name, scaleDown) ``spec.workloadRef`` names, validated; None without
    one. Only ``apps/v1`` Deployments are supported (Argo also reads ReplicaSets and
    PodTemplates)."""
    raw = spec.get("workloadRef")
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise InvalidSpecError(f"{PATH} must be an object")
    if raw.get("apiVersion") != WORKLOAD_API_VERSION or raw.get("kind") != WORKLOAD_KIND:
        raise InvalidSpecError(
            f"{PATH}: workload of type {raw.get('apiVersion')}/{raw.get('kind')} is not "
            f"supported by shiftd; only {WORKLOAD_API_VERSION} {WORKLOAD_KIND} is")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSpecError(f"{PATH}.name is required")
    scale_down = raw.get("scaleDown") or "never"
    if scale_down not in SCALE_DOWN_MODES:
        raise InvalidSpecError(f"{PATH}.scaleDown must be one of never, onsuccess, "
                               f"progressively, got {scale_down!r}")
    return name, scale_down


def resolve_workload(spec: dict[str, Any], workload: dict[str, Any] | None
                     ) -> tuple[dict[str, Any], WorkloadRef | None]:
    """The spec with its template (and, when it has none, selector) taken from the
    Deployment ``workload``, and the reference; the spec itself without a workloadRef.
    Raises ``InvalidSpecError`` when the Deployment is missing or the Rollout also has a
    template (Argo: "template must be empty for workload reference rollout")."""
    named = workload_ref_of(spec)
    if named is None:
        return spec, None
    name, scale_down = named
    if _has_template(spec.get("template")):
        raise InvalidSpecError(f"{PATH}: template must be empty for workload reference "
                               "rollout")
    if workload is None:
        raise InvalidSpecError(f'{PATH}: deployments.apps "{name}" not found')
    deployment_spec = workload.get("spec") or {}
    resolved = dict(spec)
    resolved["template"] = deployment_spec.get("template") or {}
    if not spec.get("selector") and deployment_spec.get("selector"):
        resolved["selector"] = deployment_spec["selector"]
    generation = int((workload.get("metadata") or {}).get("generation") or 0)
    return resolved, WorkloadRef(name=name, scale_down=scale_down, generation=generation)


def _has_template(template: Any) -> bool:
    """Argo's ``EmptyTemplate``: a template with neither labels, annotations nor a spec."""
    if not isinstance(template, dict):
        return False
    metadata = template.get("metadata") or {}
    return bool(metadata.get("labels") or metadata.get("annotations")
                or template.get("spec"))


def inline_workload(obj: dict[str, Any], workload: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the Rollout ``obj`` with the Deployment's template written into it and the
    workloadRef dropped (for offline tools that plan from a template); ``obj`` itself when
    it has no workloadRef. Raises ``InvalidSpecError`` as ``resolve_workload`` does."""
    spec, ref = resolve_workload(obj.get("spec") or {}, workload)
    if ref is None:
        return obj
    spec = {key: value for key, value in spec.items() if key != "workloadRef"}
    return {**obj, "spec": spec}


def template_source(obj: dict[str, Any]) -> str | None:
    """Where the Rollout's pod template comes from: ``Deployment/<name>`` with a
    workloadRef, None when it is inline (or the reference is invalid)."""
    try:
        named = workload_ref_of(obj.get("spec") or {})
    except InvalidSpecError:
        return None
    return None if named is None else f"{WORKLOAD_KIND}/{named[0]}"


def with_placeholder_template(obj: dict[str, Any]) -> dict[str, Any]:
    """The Rollout with a workloadRef's template stood in for by a placeholder matching its
    selector: for readers that look at its strategy only (routing, steps) and have no
    Deployment at hand. ``obj`` itself without a workloadRef."""
    spec = obj.get("spec") or {}
    if not spec.get("workloadRef"):
        return obj
    labels = dict((spec.get("selector") or {}).get("matchLabels") or {})
    placeholder = {"metadata": {"generation": 0}, "spec": {"template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    return inline_workload(obj, placeholder)
