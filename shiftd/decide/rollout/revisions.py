"""The revisions of a Rollout: which ReplicaSet is new, which is stable, and the new one's body.

The new ReplicaSet runs the current pod template; one found by its pod-template-hash label
wins, else one whose template equals the Rollout's (an orphan is adopted, as in Argo). The
stable ReplicaSet is the one ``status.stableRS`` names. When no stable revision survives (a
first rollout, or the stable ReplicaSet was deleted) the current revision goes straight to
stable. A rollback to an older template becomes the newest revision number, as in Argo.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from shiftd.decide.rollout.hashing import rollout_template_hash, templates_equal
from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout


@dataclass(frozen=True, slots=True)
class Revisions:
    """The ReplicaSets one plan works with, by role."""

    pod_hash: str  # the current template's hash (an adopted ReplicaSet's label wins)
    stable_hash: str  # equals pod_hash once the current revision is fully promoted
    revision: int  # the revision number the new ReplicaSet has or gets
    new_rs: ReplicaSetView | None  # None until it is created
    stable_rs: ReplicaSetView | None  # new_rs once fully promoted; None when it is gone
    older: tuple[ReplicaSetView, ...]  # every ReplicaSet that is neither new nor stable
    first_stable: bool  # no stable revision survived: the current one became stable at once

    @property
    def fully_promoted(self) -> bool:
        return self.stable_hash == self.pod_hash

    def promoted(self, replica_sets: tuple[ReplicaSetView, ...]) -> Revisions:
        """The current revision becomes stable; the previous stable joins the older ones."""
        return replace(self, stable_hash=self.pod_hash, stable_rs=self.new_rs,
                       older=tuple(rs for rs in replica_sets if rs is not self.new_rs))


def find_revisions(
    rollout: Rollout, replica_sets: tuple[ReplicaSetView, ...], *, recorded_stable: str | None
) -> Revisions:
    """Sort ``replica_sets`` by role; ``recorded_stable`` is ``status.stableRS``."""
    pod_hash = rollout_template_hash(rollout)
    new_rs = _find_new_replica_set(rollout, replica_sets, pod_hash=pod_hash)
    if new_rs is not None:
        pod_hash = new_rs.pod_hash or pod_hash
    stable_hash = recorded_stable or None
    stable_rs = next((rs for rs in replica_sets if stable_hash and rs.pod_hash == stable_hash
                      and rs is not new_rs and rs.owned), None)
    if stable_hash and stable_hash != pod_hash and stable_rs is None:
        stable_hash = None  # the stable ReplicaSet is gone: nothing to keep traffic on
    max_revision = max((rs.revision for rs in replica_sets), default=0)
    revision = new_rs.revision if new_rs is not None else max_revision + 1
    if new_rs is not None and new_rs.revision < max_revision and stable_hash != pod_hash:
        revision = max_revision + 1  # a rollback becomes the newest revision, as in Argo
    if stable_hash is None or stable_hash == pod_hash:
        return Revisions(pod_hash=pod_hash, stable_hash=pod_hash, revision=revision,
                         new_rs=new_rs, stable_rs=new_rs,
                         older=tuple(rs for rs in replica_sets if rs is not new_rs),
                         first_stable=stable_hash is None)
    return Revisions(pod_hash=pod_hash, stable_hash=stable_hash, revision=revision,
                     new_rs=new_rs, stable_rs=stable_rs,
                     older=tuple(rs for rs in replica_sets
                                 if rs is not new_rs and rs is not stable_rs),
                     first_stable=False)


def _find_new_replica_set(
    rollout: Rollout, replica_sets: tuple[ReplicaSetView, ...], *, pod_hash: str
) -> ReplicaSetView | None:
    owned = [rs for rs in replica_sets if rs.owned]
    for rs in owned:
        if rs.pod_hash == pod_hash:
            return rs
    for rs in replica_sets:  # Argo falls back to comparing templates; orphans get adopted
        if templates_equal(rs.own_template, rollout.template):
            return rs
    return None


def new_replica_set_body(
    rollout: Rollout, *, pod_hash: str, revision: int, replicas: int
) -> dict[str, Any]:
    """The ReplicaSet of the current revision, owned by the Rollout."""
    template = copy.deepcopy(rollout.template)
    template_metadata = template.setdefault("metadata", {})
    labels = dict(template_metadata.get("labels") or {})
    labels[POD_TEMPLATE_HASH_LABEL] = pod_hash
    template_metadata["labels"] = labels
    selector = copy.deepcopy(rollout.selector)
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                               POD_TEMPLATE_HASH_LABEL: pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{rollout.name}-{pod_hash}",
            "namespace": rollout.namespace,
            "labels": labels,
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": rollout.min_ready_seconds,
            "selector": selector,
            "template": template,
        },
    }


def owner_reference(rollout: Rollout) -> dict[str, Any]:
    """The controller reference a ReplicaSet of ``rollout`` carries (and an adopted one gets)."""
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": rollout.name,
            "uid": rollout.uid, "controller": True, "blockOwnerDeletion": True}
