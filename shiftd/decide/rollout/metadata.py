"""Ephemeral pod metadata: ``canaryMetadata`` on the canary's pods, ``stableMetadata`` on the
stable's, switched when a role changes at promotion, as Argo Rollouts does it.

The labels and annotations go into each ReplicaSet's pod template (so its new pods carry them)
and what was injected is remembered in the ReplicaSet's ``rollout.argoproj.io/ephemeral-metadata``
annotation, so a later change removes exactly what shiftd put there and nothing that a mesh's
injector or a human added. The pod-template hash comes from the Rollout's template, so none of
this changes a ReplicaSet's hash nor restarts a pod.

Existing pods are the controller's job (this module does no I/O): every ``PatchReplicaSet``
carrying ``pod_metadata`` asks it to merge-patch that same ``metadata`` onto each pod the
ReplicaSet owns (the controller does it before and after patching the ReplicaSet, so neither a
restart in between nor a pod made from the old template meanwhile is left behind).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import orjson

from shiftd.decide.rollout.actions import Action, PatchReplicaSet
from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.revisions import Revisions
from shiftd.model.argo.rollout import EPHEMERAL_METADATA_ANNOTATION, PodMetadata, Rollout

Metadata = dict[str, dict[str, str]]  # {"labels": {...}, "annotations": {...}}


def metadata_patch(
    current: dict[str, Any], *, existing: PodMetadata | None, desired: PodMetadata | None
) -> dict[str, Any]:
    """Argo's ``SyncEphemeralPodMetadata`` as a JSON merge patch on ``current`` (an object's
    ``metadata``): the desired labels and annotations set, the ones injected before and no
    longer desired removed; ``{}`` when nothing changes."""
    patch: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        present: dict[str, str] = current.get(key) or {}
        wanted: dict[str, str] = getattr(desired, key) if desired is not None else {}
        before: dict[str, str] = getattr(existing, key) if existing is not None else {}
        changes: dict[str, str | None] = {k: v for k, v in wanted.items() if present.get(k) != v}
        changes.update({k: None for k in before if k not in wanted and k in present})
        if changes:
            patch[key] = changes
    return patch


def annotation_value(desired: PodMetadata | None) -> str | None:
    """What the ephemeral-metadata annotation records (None: remove it), labels first, empty
    maps left out, each map's keys sorted, as Go's encoder writes the struct (so the record
    does not depend on the order the spec's keys come in, and matches what Argo wrote)."""
    if desired is None:
        return None
    body: dict[str, Any] = {}
    if desired.labels:
        body["labels"] = dict(sorted(desired.labels.items()))
    if desired.annotations:
        body["annotations"] = dict(sorted(desired.annotations.items()))
    return orjson.dumps(body).decode()


def for_new_replica_set(rollout: Rollout, revisions: Revisions) -> PodMetadata | None:
    """The metadata a new ReplicaSet is created with: the canary's while a distinct stable
    serves, else (a first revision, which becomes stable) the stable's."""
    canary = rollout.canary
    if revisions.stable_rs is not None and not revisions.fully_promoted:
        return canary.canary_metadata
    return canary.stable_metadata


def inject(body: dict[str, Any], desired: PodMetadata | None) -> None:
    """Put ``desired`` into a new ReplicaSet ``body``'s pod template, and record it."""
    if desired is None or not (desired.labels or desired.annotations):
        return
    template_metadata = body["spec"]["template"].setdefault("metadata", {})
    for key in ("labels", "annotations"):
        values = getattr(desired, key)
        if values:
            template_metadata[key] = {**(template_metadata.get(key) or {}), **values}
    value = annotation_value(desired)
    assert value is not None
    body["metadata"].setdefault("annotations", {})[EPHEMERAL_METADATA_ANNOTATION] = value


def sync_metadata(rollout: Rollout, revisions: Revisions, *,
                  serving: Mapping[str, Mapping[str, str]] | None = None) -> list[Action]:
    """Argo's ``reconcileEphemeralMetadata``: each ReplicaSet's template carries its role's
    metadata (older ones none), and its pods are to follow; except that a ReplicaSet keeps
    the labels a subset with traffic selects it by (``serving``, by pod-template hash) until
    traffic has left that subset: a role switched at promotion must not take pods out of the
    subset that still routes to them."""
    canary = rollout.canary
    if canary.canary_metadata is None and canary.stable_metadata is None:
        return []
    wanted: list[tuple[ReplicaSetView | None, PodMetadata | None]] = []
    if revisions.fully_promoted:
        wanted.append((revisions.new_rs, canary.stable_metadata))
    else:
        wanted += [(revisions.new_rs, canary.canary_metadata),
                   (revisions.stable_rs, canary.stable_metadata)]
    wanted += [(rs, None) for rs in revisions.older]
    actions: list[Action] = []
    for rs, desired in wanted:
        if rs is None or _would_leave_subset(rs, desired, (serving or {}).get(rs.pod_hash)):
            continue
        if (action := _sync_one(rs, desired)) is not None:
            actions.append(action)
    return actions


def _would_leave_subset(rs: ReplicaSetView, desired: PodMetadata | None,
                        selected_by: Mapping[str, str] | None) -> bool:
    """The switch would change or drop a label a subset with traffic selects this
    ReplicaSet's pods by."""
    if not selected_by:
        return False
    labels = dict((rs.template.get("metadata") or {}).get("labels") or {})
    existing = rs.injected_metadata
    for key in existing.labels if existing is not None else {}:
        labels.pop(key, None)
    labels.update(desired.labels if desired is not None else {})
    return any(labels.get(key) != value for key, value in selected_by.items())


def _sync_one(rs: ReplicaSetView, desired: PodMetadata | None) -> PatchReplicaSet | None:
    existing = rs.injected_metadata
    if desired is not None and not (desired.labels or desired.annotations):
        desired = None
    template_metadata = copy.deepcopy(rs.template.get("metadata") or {})
    template_patch = metadata_patch(template_metadata, existing=existing, desired=desired)
    record = annotation_value(desired)
    recorded = rs.annotations.get(EPHEMERAL_METADATA_ANNOTATION)
    if not template_patch and (record == recorded or (record is None and recorded is None)):
        return None
    patch: dict[str, Any] = {}
    if record != recorded:
        patch["metadata"] = {"annotations": {EPHEMERAL_METADATA_ANNOTATION: record}}
    if template_patch:
        patch["spec"] = {"template": {"metadata": template_patch}}
    return PatchReplicaSet(name=rs.name, patch=patch,
                           pod_metadata=_pod_patch(existing=existing, desired=desired) or None)


def _pod_patch(*, existing: PodMetadata | None, desired: PodMetadata | None) -> dict[str, Any]:
    """The merge patch for a pod's metadata: the desired values set, the ones injected before
    and no longer desired removed (a pod may lag its ReplicaSet, so nothing is assumed)."""
    patch: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        wanted: dict[str, str] = getattr(desired, key) if desired is not None else {}
        before: dict[str, str] = getattr(existing, key) if existing is not None else {}
        changes: dict[str, str | None] = dict(wanted)
        changes.update({k: None for k in before if k not in wanted})
        if changes:
            patch[key] = changes
    return patch
