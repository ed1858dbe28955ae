"""The Deployment a ``workloadRef`` names: what the status says of it, and how far it is scaled
down while the Rollout takes over its traffic.

As Argo Rollouts: ``status.workloadObservedGeneration`` is the Deployment's generation whose
template the Rollout follows (cleared without a workloadRef), and the Rollout's annotation
``rollout.argoproj.io/workload-generation`` says the same. The Deployment is scaled only
during the migration, i.e. while the Rollout's first revision is current: ``onsuccess`` sets
it to 0 once the Rollout is Healthy; ``progressively`` sets it to ``spec.replicas`` less the
Rollout's available replicas (0 once Healthy), so the two together never serve with fewer
pods than asked for, and a Rollout losing pods gives them back to the Deployment. Argo
subtracts the ready replicas; available ones (ready for minReadySeconds) are what a Service
may route to, so shiftd waits for those. ``never`` leaves the Deployment alone.
"""

from __future__ import annotations

from shiftd.decide.rollout.actions import Action, AnnotateRollout, ScaleDeployment
from shiftd.decide.rollout.decision import Draft
from shiftd.decide.rollout.revisions import Revisions
from shiftd.model.argo.workload import WORKLOAD_GENERATION_ANNOTATION

WORKLOAD_OBSERVED_GENERATION = "workloadObservedGeneration"


def record_workload(draft: Draft) -> tuple[Action, ...]:
    """Set (or clear) ``status.workloadObservedGeneration``; returns the annotation write
    that keeps ``rollout.argoproj.io/workload-generation`` equal to it (tools such as Argo
    CD's health check compare the two)."""
    ref = draft.rollout.workload_ref
    wanted = None if ref is None else str(ref.generation)
    if wanted is None:
        draft.status.pop(WORKLOAD_OBSERVED_GENERATION, None)
    else:
        draft.status[WORKLOAD_OBSERVED_GENERATION] = wanted
    if draft.rollout.annotations.get(WORKLOAD_GENERATION_ANNOTATION) == wanted:
        return ()
    return (AnnotateRollout(annotations={WORKLOAD_GENERATION_ANNOTATION: wanted}),)


def scale_workload(draft: Draft, revisions: Revisions) -> tuple[Action, ...]:
    """The Deployment's scale-down, planned from the status this pass computed (phase and
    available replicas); nothing once the migration (revision 1) is over."""
    ref, view = draft.rollout.workload_ref, draft.observed.workload
    if ref is None or view is None or ref.scale_down == "never" or revisions.revision != 1:
        return ()
    if draft.status.get("phase") == "Healthy":
        target = 0
    elif ref.scale_down == "progressively":
        available = int(draft.status.get("availableReplicas") or 0)
        target = max(0, draft.rollout.replicas - available)
        if available == 0 and target > view.spec_replicas:
            return ()  # as Argo: nothing to give back before the Rollout had pods
    else:
        return ()
    if target == view.spec_replicas:
        return ()
    draft.event("ScalingDeployment", f"Scaled Deployment {view.name} to {target} "
                f"(workloadRef.scaleDown: {ref.scale_down})")
    return (ScaleDeployment(name=view.name, replicas=target,
                            resource_version=view.resource_version),)
