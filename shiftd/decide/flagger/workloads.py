"""The primary Deployment Flagger makes from the target, and Flagger's readiness checks.

``selector_label`` finds the label Flagger routes by (the first of ``app``, ``name``,
``app.kubernetes.io/name`` in the target's ``matchLabels``); the primary's copy of it reads
``<value>-primary``. ``primary_deployment`` builds ``<target>-primary`` as Flagger's
createPrimaryDeployment does (labels rewritten, a ``flagger-id`` template annotation — Flagger
draws a random UUID, shiftd derives one from the Canary and the template, so planning twice
gives the same object and a new template still rolls the primary —
the kubectl/Flux bookkeeping annotations dropped, owned by the Canary); ``promoted`` copies the
target's template onto an existing primary as Flagger's Promote does. ``not_ready`` is
Flagger's isDeploymentReady, word for word in its messages.
"""

from __future__ import annotations

import copy
import struct
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shiftd.decide.flagger.hashing import template_hash
from shiftd.model.flagger.canary import Canary, InvalidCanaryError

JsonObject = dict[str, Any]
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
ID_ANNOTATION = "flagger-id"
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_DROPPED_PREFIXES = ("kustomize.toolkit.fluxcd.io/", "fluxcd.io/")
_SPEC_COPIED = ("minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit",
                "strategy")


def primary_name(canary: Canary) -> str:
    return f"{canary.spec.target_ref.name}-primary"


def owner_reference(canary: Canary) -> JsonObject:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": canary.name,
            "uid": canary.uid, "controller": True, "blockOwnerDeletion": True}


def selector_label(target: Mapping[str, Any]) -> tuple[str, str]:
    """(label, value) the target's pods are selected by, as Flagger's GetMetadata."""
    meta = target.get("metadata") or {}
    match = ((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in SELECTOR_LABELS:
        if label in match:
            return label, str(match[label])
    raise InvalidCanaryError(
        f"deployment {meta.get('name')}.{meta.get('namespace')} spec.selector.matchLabels "
        f"must contain one of {list(SELECTOR_LABELS)}")


def _primary_labels(labels: Mapping[str, str] | None, *, label: str, value: str
                    ) -> dict[str, str]:
    rewritten = dict(labels or {})
    rewritten[label] = f"{value}-primary"
    return rewritten


def _kept_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    return {key: text for key, text in (annotations or {}).items()
            if key not in _DROPPED_ANNOTATIONS and not key.startswith(_DROPPED_PREFIXES)}


def _primary_template(target: Mapping[str, Any], *, label: str, value: str, uid: str
                      ) -> JsonObject:
    template = copy.deepcopy((target.get("spec") or {}).get("template") or {})
    meta = template.setdefault("metadata", {})
    meta["labels"] = _primary_labels(meta.get("labels"), label=label, value=value)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != ID_ANNOTATION}
    revision = template_hash(template)
    annotations[ID_ANNOTATION] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{uid}/{revision}"))
    meta["annotations"] = annotations
    return template


def primary_deployment(canary: Canary, target: Mapping[str, Any]) -> JsonObject:
    """``<target>-primary``, made from the target Deployment."""
    label, value = selector_label(target)
    meta, spec = target.get("metadata") or {}, target.get("spec") or {}
    replicas = int(spec.get("replicas") or 0) or 1
    primary_spec: JsonObject = {key: copy.deepcopy(spec[key]) for key in _SPEC_COPIED
                                if key in spec}
    primary_spec.update(replicas=replicas,
                        selector={"matchLabels": {label: f"{value}-primary"}},
                        template=_primary_template(target, label=label, value=value,
                                                   uid=canary.uid))
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": primary_name(canary), "namespace": canary.namespace,
                     "labels": _primary_labels(meta.get("labels"), label=label, value=value),
                     "annotations": _kept_annotations(meta.get("annotations")),
                     "ownerReferences": [owner_reference(canary)]},
        "spec": primary_spec,
    }


def promoted(canary: Canary, primary: Mapping[str, Any], target: Mapping[str, Any]
             ) -> JsonObject:
    """The primary with the target's template and rollout settings (Flagger's Promote)."""
    label, value = selector_label(target)
    updated = copy.deepcopy(dict(primary))
    spec, source = updated.setdefault("spec", {}), target.get("spec") or {}
    for key in _SPEC_COPIED:
        if key in source:
            spec[key] = copy.deepcopy(source[key])
    spec["template"] = _primary_template(target, label=label, value=value, uid=canary.uid)
    meta, source_meta = updated.setdefault("metadata", {}), target.get("metadata") or {}
    meta["labels"] = _primary_labels(source_meta.get("labels"), label=label, value=value)
    meta["annotations"] = _kept_annotations(source_meta.get("annotations"))
    return updated


def replicas(deployment: Mapping[str, Any] | None) -> int:
    if deployment is None:
        return 0
    value = (deployment.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _condition(deployment: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in (deployment.get("status") or {}).get("conditions") or []
                 if c.get("type") == kind), None)


def past_deadline(deployment: Mapping[str, Any], *, deadline_seconds: int, now: datetime
                  ) -> str | None:
    """Flagger's non-retriable readiness: the Deployment controller says its progress
    deadline passed, or it has lacked minimum availability for ``deadline_seconds``. Returns
    the reason (the Deployment's own message when it names the deadline), else None."""
    progressing = _condition(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        name = (deployment.get("metadata") or {}).get("name")
        return f'deployment "{name}" exceeded its progress deadline'
    available = _condition(deployment, "Available")
    if (progressing is not None and available is not None
            and available.get("status") == "False"
            and available.get("reason") == "MinimumReplicasUnavailable"):
        since = _parse_time(available.get("lastUpdateTime"))
        if since is not None and since + timedelta(seconds=deadline_seconds) < now:
            return not_ready(deployment, threshold_percent=100) or "unavailable"
    return None


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def ready_replicas_needed(updated: int, threshold_percent: int) -> int:
    """Flagger's readyThresholdUpdatedReplicas: the updated replicas times the threshold as a
    ratio, computed in float32 and truncated, as Go does (so 21 % of 300 needs 62, not 63)."""
    ratio = _float32(threshold_percent / 100)
    return int(_float32(_float32(updated) * ratio))


def not_ready(deployment: Mapping[str, Any], *, threshold_percent: int) -> str | None:
    """Why a Deployment is not ready, in Flagger's words; ``None`` when it is."""
    meta, status = deployment.get("metadata") or {}, deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return ("waiting for rollout to finish: observed deployment generation less than "
                "desired generation")
    desired = replicas(deployment)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    needed = ready_replicas_needed(updated, threshold_percent)
    if updated < desired:
        return (f"waiting for rollout to finish: {updated} out of {desired} new replicas "
                f"have been updated")
    if total > updated:
        return (f"waiting for rollout to finish: {total - updated} old replicas are pending "
                f"termination")
    if available < needed:
        return (f"waiting for rollout to finish: {available} of {needed} "
                f"(readyThreshold {threshold_percent}%) updated replicas are available")
    return None
