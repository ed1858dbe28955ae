"""What a Rollout does with its AnalysisRuns: create them, read their verdict, clean up. Pure.

Background analysis (``strategy.canary.analysis``) runs from ``startingStep`` until promotion;
a step's analysis must succeed before the step completes. A Failed or Error run aborts the
Rollout; an Inconclusive one pauses it for a human (reason ``InconclusiveAnalysisRun``).

The verdict a Rollout has acted on is recorded in its status
(``canary.currentBackgroundAnalysisRunStatus`` / ``currentStepAnalysisRunStatus``). When the
recorded verdict is a failure but the Rollout is no longer aborted or paused, a human retried
or promoted: a fresh run (``<name>.<n>``) starts. Runs that are no longer current are
terminated; completed ones beyond Argo's limits (5 successful, 5 unsuccessful) are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shiftd.decide.analysis.runs import (
    BACKGROUND,
    ROLLOUT_TYPE_LABEL,
    STEP,
    STEP_INDEX_LABEL,
    AnalysisRunView,
    run_name,
    runs_to_delete,
)
from shiftd.decide.rollout.actions import (
    Action,
    CreateAnalysisRun,
    DeleteAnalysisRun,
    PatchAnalysisRun,
)
from shiftd.model.argo.rollout import POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout

INCONCLUSIVE_PAUSE_REASON = "InconclusiveAnalysisRun"
BACKGROUND_STATUS = "currentBackgroundAnalysisRunStatus"
STEP_STATUS = "currentStepAnalysisRunStatus"
FAILING = ("Failed", "Error")


@dataclass
class Verdict:
    """What one run means for the Rollout now."""

    outcome: str  # "wait" | "done" | "abort" | "pause"
    message: str = ""
    actions: list[Action] = field(default_factory=list)


def background_key() -> str:
    return "background"


def step_key(index: int) -> str:
    return f"step-{index}"


def _latest(runs: Sequence[AnalysisRunView], *, kind: str, pod_hash: str,
            step_index: int | None) -> tuple[AnalysisRunView | None, int]:
    """The newest run of this kind for this revision, and how many attempts there were."""
    matching = [r for r in runs if r.kind == kind and r.pod_hash == pod_hash
                and r.step_index == step_index]
    if not matching:
        return None, 0

    def attempt(run: AnalysisRunView) -> int:
        _, _, suffix = run.name.rpartition(".")
        return int(suffix) if suffix.isdigit() else 0

    newest = max(matching, key=attempt)
    return newest, attempt(newest) + 1


def _body(rollout: Rollout, *, spec: Mapping[str, Any], name: str, kind: str, pod_hash: str,
          revision: int, step_index: int | None,
          metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    extra = metadata or {}
    labels = {**(extra.get("labels") or {}), ROLLOUT_TYPE_LABEL: kind,
              POD_TEMPLATE_HASH_LABEL: pod_hash}
    if step_index is not None:
        labels[STEP_INDEX_LABEL] = str(step_index)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": rollout.namespace,
            "labels": labels,
            "annotations": {**(extra.get("annotations") or {}),
                            REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                 "name": rollout.name, "uid": rollout.uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": dict(spec),
    }


def follow_run(
    rollout: Rollout,
    *,
    status: dict[str, Any],
    runs: Sequence[AnalysisRunView],
    spec: Mapping[str, Any],
    pod_hash: str,
    revision: int,
    step_index: int | None,
) -> Verdict:
    """Create, or read the verdict of, the current run of one kind; records it in ``status``."""
    kind = BACKGROUND if step_index is None else STEP
    status_key = BACKGROUND_STATUS if step_index is None else STEP_STATUS
    canary_status = status.setdefault("canary", {})
    recorded = canary_status.get(status_key) or {}
    run, attempts = _latest(runs, kind=kind, pod_hash=pod_hash, step_index=step_index)
    acted_on = (run is not None and recorded.get("name") == run.name
                and recorded.get("status") in (*FAILING, "Inconclusive"))
    human_overrode = acted_on and not status.get("abort") and not any(
        c.get("reason") == INCONCLUSIVE_PAUSE_REASON for c in status.get("pauseConditions") or [])
    if run is None or (run.completed and run.phase != "Successful" and human_overrode):
        name = run_name(rollout.name, pod_hash, revision, step_index, attempts)
        canary_status[status_key] = {"name": name, "status": "Pending"}
        body = _body(rollout, spec=spec, name=name, kind=kind, pod_hash=pod_hash,
                     revision=revision, step_index=step_index,
                     metadata=rollout.canary.analysis_run_metadata)
        return Verdict("wait", actions=[CreateAnalysisRun(body=body)])
    entry = {"name": run.name, "status": run.phase or "Pending"}
    if run.message:
        entry["message"] = run.message
    canary_status[status_key] = entry
    if run.phase == "Successful":
        return Verdict("done")
    if run.phase in FAILING:
        return Verdict("abort", message=run.message or f"AnalysisRun {run.name} {run.phase}")
    if run.phase == "Inconclusive":
        return Verdict("pause", message=run.message)
    return Verdict("wait")


def housekeeping(runs: Sequence[AnalysisRunView], *, current: set[str]) -> list[Action]:
    """Terminate runs that are no longer current; delete old completed ones."""
    actions: list[Action] = [
        PatchAnalysisRun(name=run.name, patch={"spec": {"terminate": True}})
        for run in runs
        if run.name not in current and not run.completed and not run.terminated
    ]
    actions.extend(DeleteAnalysisRun(name=name) for name in runs_to_delete(runs, keep=current))
    return actions
