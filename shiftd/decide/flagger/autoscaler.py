"""A Canary's HorizontalPodAutoscaler, as Flagger's HPA reconciler and deployment controller do it.

``spec.autoscalerRef`` names the HPA the user wrote for the target Deployment (autoscaling/v2,
or v2beta2: Flagger reads either through the v2 API, and so does shiftd). Flagger leaves that
HPA alone, scaling the canary Deployment it points at, and gives the primary its own:

- named ``<autoscalerRef.name>-primary``, owned by the Canary (controller reference);
- ``scaleTargetRef`` to ``<targetRef.name>-primary`` (kind and apiVersion copied);
- ``minReplicas``, ``maxReplicas``, ``metrics`` and ``behavior`` copied, min and max replaced
  by ``autoscalerRef.primaryScalerReplicas`` where given;
- created (labels copied, minus Flux's ``toolkit.fluxcd.io`` ones; no annotations) during
  initialisation; updated only at promotion (Flagger's ``init == false``), when metrics,
  behavior, min, max, labels or annotations differ. An update copies labels and annotations
  only by the ``-include-label-prefix`` list (empty by default: none are kept).

One deliberate difference: Flagger compares the source HPA's labels and annotations before
filtering them, so with labels it rewrites the primary HPA at every promotion; shiftd compares
what it would write, so a second plan finds nothing to do.

The canary's own HPA min/max matter in one place: the canary Deployment sits at zero replicas
between analyses (the HPA then stops scaling it) and, when a new revision is detected, is
scaled from zero to its own ``replicas`` if above zero, else to the HPA's ``minReplicas`` if
above one, else to one (:func:`scale_from_zero_replicas`). With an autoscaler, promotion
leaves the primary's replica count to its HPA.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HPA_API_VERSION",
    "AutoscalerRef",
    "AutoscalerRefError",
    "CreatePrimaryHpa",
    "UpdatePrimaryHpa",
    "parse_autoscaler_ref",
    "primary_hpa_name",
    "primary_hpa_spec",
    "reconcile_primary_hpa",
    "scale_from_zero_replicas",
]

HPA_API_VERSION = "autoscaling/v2"
HPA_API_VERSIONS = ("autoscaling/v2", "autoscaling/v2beta2")
HPA_KIND = "HorizontalPodAutoscaler"
_FLUX_MARKER = "toolkit.fluxcd.io"


class AutoscalerRefError(ValueError):
    """``spec.autoscalerRef`` names something shiftd cannot reconcile."""


@dataclass(frozen=True, slots=True)
class AutoscalerRef:
    api_version: str
    kind: str
    name: str
    # autoscalerRef.primaryScalerReplicas: overrides for the primary HPA (None: copy).
    primary_min_replicas: int | None = None
    primary_max_replicas: int | None = None


def parse_autoscaler_ref(raw: Mapping[str, Any] | None) -> AutoscalerRef | None:
    """``spec.autoscalerRef``; None when the Canary has none. Only HPAs are supported
    (Flagger also knows KEDA's ScaledObject)."""
    if not raw:
        return None
    kind = str(raw.get("kind") or "")
    api_version = str(raw.get("apiVersion") or "")
    name = str(raw.get("name") or "")
    if kind != HPA_KIND:
        raise AutoscalerRefError(f"spec.autoscalerRef.kind {kind!r} is not supported "
                                 f"(only {HPA_KIND})")
    if api_version not in HPA_API_VERSIONS:
        raise AutoscalerRefError(f"spec.autoscalerRef.apiVersion {api_version!r} is not "
                                 f"supported (use {' or '.join(HPA_API_VERSIONS)})")
    if not name:
        raise AutoscalerRefError("spec.autoscalerRef.name is required")
    overrides = raw.get("primaryScalerReplicas") or {}
    return AutoscalerRef(
        api_version=api_version, kind=kind, name=name,
        primary_min_replicas=_replicas(overrides, "minReplicas"),
        primary_max_replicas=_replicas(overrides, "maxReplicas"),
    )


def _replicas(overrides: Mapping[str, Any], key: str) -> int | None:
    value = overrides.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AutoscalerRefError(
            f"spec.autoscalerRef.primaryScalerReplicas.{key} must be a non-negative integer")
    return value


def primary_hpa_name(ref: AutoscalerRef) -> str:
    return f"{ref.name}-primary"


def primary_hpa_spec(
    *, canary_hpa: Mapping[str, Any], target_name: str, ref: AutoscalerRef
) -> dict[str, Any]:
    """The primary HPA's spec, from the user's HPA (``canary_hpa``)."""
    source = canary_hpa.get("spec") or {}
    target = source.get("scaleTargetRef") or {}
    spec: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": target.get("apiVersion", "apps/v1"),
            "kind": target.get("kind", "Deployment"),
            "name": f"{target_name}-primary",
        },
        "maxReplicas": source.get("maxReplicas"),
    }
    minimum = source.get("minReplicas")
    if ref.primary_min_replicas is not None:
        minimum = ref.primary_min_replicas
    if minimum is not None:
        spec["minReplicas"] = minimum
    if ref.primary_max_replicas is not None:
        spec["maxReplicas"] = ref.primary_max_replicas
    for key in ("metrics", "behavior"):
        if source.get(key) is not None:
            spec[key] = copy.deepcopy(source[key])
    return spec


@dataclass(frozen=True, slots=True)
class CreatePrimaryHpa:
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UpdatePrimaryHpa:
    body: dict[str, Any]  # the existing object changed, resourceVersion kept (a guarded PUT)


def reconcile_primary_hpa(
    *,
    canary: Mapping[str, Any],
    canary_hpa: Mapping[str, Any],
    existing_primary: Mapping[str, Any] | None,
    init: bool,
    include_label_prefixes: Sequence[str] = (),
) -> CreatePrimaryHpa | UpdatePrimaryHpa | None:
    """What the primary HPA needs: created if missing; updated (when not ``init``) if it
    differs from the user's HPA; None when nothing is to be written.

    ``canary`` is the Canary object (name, namespace, uid, ``spec.targetRef``,
    ``spec.autoscalerRef``); ``canary_hpa`` the HPA ``autoscalerRef`` names.
    """
    spec_of_canary = canary.get("spec") or {}
    ref = parse_autoscaler_ref(spec_of_canary.get("autoscalerRef"))
    if ref is None:
        return None
    target_name = str((spec_of_canary.get("targetRef") or {}).get("name") or "")
    desired = primary_hpa_spec(canary_hpa=canary_hpa, target_name=target_name, ref=ref)
    hpa_meta = canary_hpa.get("metadata") or {}
    if existing_primary is None:
        return CreatePrimaryHpa(_new_primary(canary, ref, desired, hpa_meta.get("labels")))
    if init:
        return None
    labels = _include_by_prefix(hpa_meta.get("labels"), include_label_prefixes)
    annotations = _include_by_prefix(hpa_meta.get("annotations"), include_label_prefixes)
    if not _differs(existing_primary, desired, labels, annotations):
        return None
    body = copy.deepcopy(dict(existing_primary))
    body["spec"] = {**(body.get("spec") or {}), **_fields_compared(desired)}
    for key in ("minReplicas", "metrics", "behavior"):
        if key not in desired:
            body["spec"].pop(key, None)
    metadata = body.setdefault("metadata", {})
    for key, values in (("labels", labels), ("annotations", annotations)):
        if values:
            metadata[key] = values
        else:
            metadata.pop(key, None)
    return UpdatePrimaryHpa(body)


def _fields_compared(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {key: spec[key] for key in ("minReplicas", "maxReplicas", "metrics", "behavior")
            if key in spec}


def _differs(
    existing: Mapping[str, Any],
    desired: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> bool:
    spec = existing.get("spec") or {}
    meta = existing.get("metadata") or {}
    return (
        (spec.get("metrics") or None) != (desired.get("metrics") or None)
        or spec.get("behavior") != desired.get("behavior")
        or (spec.get("minReplicas") or 0) != (desired.get("minReplicas") or 0)
        or spec.get("maxReplicas") != desired.get("maxReplicas")
        or dict(meta.get("labels") or {}) != dict(labels)
        or dict(meta.get("annotations") or {}) != dict(annotations)
    )


def _new_primary(
    canary: Mapping[str, Any],
    ref: AutoscalerRef,
    spec: dict[str, Any],
    labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    meta = canary.get("metadata") or {}
    metadata: dict[str, Any] = {
        "name": primary_hpa_name(ref),
        "namespace": meta.get("namespace"),
        "ownerReferences": [{
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "name": meta.get("name"), "uid": meta.get("uid"),
            "controller": True, "blockOwnerDeletion": True,
        }],
    }
    kept = {k: v for k, v in (labels or {}).items() if _FLUX_MARKER not in k}
    if kept:
        metadata["labels"] = kept
    return {"apiVersion": HPA_API_VERSION, "kind": HPA_KIND, "metadata": metadata, "spec": spec}


def _include_by_prefix(
    values: Mapping[str, str] | None, prefixes: Sequence[str]
) -> dict[str, str]:
    """Flagger's includeLabelsByPrefix: ``*`` keeps all, an empty prefix keeps nothing."""
    return {
        key: value for key, value in (values or {}).items()
        if _FLUX_MARKER not in key
        and any(p == "*" or (p and key.startswith(p)) for p in prefixes)
    }


def scale_from_zero_replicas(
    *,
    deployment_replicas: int | None,
    autoscaler_kind: str | None,
    hpa_min_replicas: int | None,
    primary_replicas: int | None,
) -> int:
    """The canary Deployment's replicas when Flagger scales it up for a new revision.

    Its own ``replicas`` if above zero; else, without an autoscaler, the primary's (if above
    zero); with an HPA, the HPA's ``minReplicas`` if above one; else one.
    """
    if deployment_replicas is not None and deployment_replicas > 0:
        return deployment_replicas
    if autoscaler_kind is None:
        return primary_replicas if primary_replicas is not None and primary_replicas > 0 else 1
    if autoscaler_kind == HPA_KIND and hpa_min_replicas is not None and hpa_min_replicas > 1:
        return hpa_min_replicas
    return 1
