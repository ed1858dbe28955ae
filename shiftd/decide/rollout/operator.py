"""What ``kubectl argo rollouts`` writes to a Rollout, and how it reads one back.

A human drives a Rollout with the Argo plugin or with ``shiftctl``; both must send exactly the
same patches so that either tool works against either controller. This module computes them,
purely, from the Rollout as the API returned it (a plain dict, never validated: the commands
must also work on a Rollout shiftd considers invalid). The shell (``shiftd.cli.ctl`` and the
integration harness) sends them.

Facts mirrored from the plugin (``pkg/kubectl-argo-rollouts/cmd/*``):

- Status changes go to the ``/status`` subresource as JSON merge patches; when that answers
  404 (CRDs of Argo v0.9, without the subresource) the plugin sends its *unified* patch to the
  main resource instead of the spec patch. ``OperatorPatch`` carries all three.
- ``set image`` is not a patch: the plugin GETs the object, edits every matching container
  (init, regular and ephemeral) and PUTs it back, guarded by its resourceVersion and retried
  on conflict. ``set_image`` returns the edited object.
- ``undo`` is a JSON patch replacing ``/spec/template`` with the template of an older
  ReplicaSet, minus its ``rollouts-pod-template-hash`` label.

It also mirrors how the plugin *reads* a Rollout (``GetRolloutPhase``,
``GetCurrentSetWeight``), which ``shiftctl status`` and ``get`` show.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.status import calculate_phase
from shiftd.model.argo.rollout import (
    MAX_WEIGHT,
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    InvalidSpecError,
    parse_rollout,
)
from shiftd.model.argo.workload import with_placeholder_template

__all__ = [
    "ABORT_PATCH",
    "PAUSE_PATCH",
    "PROMOTE_FULL_PATCH",
    "RETRY_PATCH",
    "UNPAUSE_PATCH",
    "OperatorError",
    "OperatorPatch",
    "Undo",
    "abort_patch",
    "current_set_weight",
    "owned_replica_sets",
    "pause_patch",
    "promote_patch",
    "restart_patch",
    "resume_patch",
    "retry_patch",
    "rollout_phase",
    "set_image",
    "step_progress",
    "undo_patch",
]

Obj = dict[str, Any]

# The plugin's patch constants, as JSON values.
UNPAUSE_PATCH: Obj = {"spec": {"paused": False}}
PAUSE_PATCH: Obj = {"spec": {"paused": True}}
ABORT_PATCH: Obj = {"status": {"abort": True}}
RETRY_PATCH: Obj = {"status": {"abort": False}}
PROMOTE_FULL_PATCH: Obj = {"status": {"promoteFull": True}}
_CLEAR_PAUSE_CONDITIONS: Obj = {"status": {"pauseConditions": None}}

# The plugin's error texts.
NO_STEPS_ERROR = "Cannot skip steps of a rollout without steps"
_INCONCLUSIVE = "Inconclusive"
_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


class OperatorError(ValueError):
    """The action does not apply to this Rollout; the message is the one to show the user."""


@dataclass(frozen=True, slots=True)
class OperatorPatch:
    """The JSON merge patches one operator action sends.

    ``status`` goes to ``/status`` first; ``spec`` to the Rollout itself after it. If ``/status``
    answers 404, ``unified`` is sent to the Rollout *instead of* ``spec`` (it is only set when
    ``status`` is). All ``None``: nothing needs sending (the action is already in effect).
    """

    spec: Obj | None = None
    status: Obj | None = None
    unified: Obj | None = None

    @property
    def empty(self) -> bool:
        return self.spec is None and self.status is None


@dataclass(frozen=True, slots=True)
class Undo:
    """The rollback ``undo`` computed: the revision it restores and how.

    ``json_patch`` is ``None`` when the current template already matches that revision (the
    plugin then prints "skipped rollback" and writes nothing).
    """

    revision: int
    template: Obj  # the restored pod template, without the pod-template-hash label
    json_patch: list[Obj] | None


# --- small readers ---------------------------------------------------------------------------

def _spec(rollout: Mapping[str, Any]) -> Mapping[str, Any]:
    return rollout.get("spec") or {}


def _status(rollout: Mapping[str, Any]) -> Mapping[str, Any]:
    return rollout.get("status") or {}


def _canary(rollout: Mapping[str, Any]) -> Mapping[str, Any] | None:
    canary = (_spec(rollout).get("strategy") or {}).get("canary")
    return canary if isinstance(canary, Mapping) else None


def _steps(rollout: Mapping[str, Any]) -> list[Any]:
    canary = _canary(rollout)
    return list((canary or {}).get("steps") or [])


def _step_index(rollout: Mapping[str, Any]) -> int | None:
    """Argo's ``GetCurrentCanaryStep`` index: ``None`` without canary steps, else
    ``status.currentStepIndex`` (0 when unset), which may equal ``len(steps)`` (all done)."""
    if not _steps(rollout):
        return None
    return int(_status(rollout).get("currentStepIndex") or 0)


def _next_step_index(rollout: Mapping[str, Any]) -> int | None:
    """The index one step on, never past ``len(steps)``; ``None`` without steps."""
    index = _step_index(rollout)
    if index is None:
        return None
    return index + 1 if index < len(_steps(rollout)) else index


def _is_inconclusive(rollout: Mapping[str, Any]) -> bool:
    if _canary(rollout) is None:
        return False
    run = (_status(rollout).get("canary") or {}).get("currentStepAnalysisRunStatus") or {}
    return bool(run.get("status") == _INCONCLUSIVE)


# --- the actions -----------------------------------------------------------------------------

def promote_patch(rollout: Mapping[str, Any], *, full: bool = False) -> OperatorPatch:
    """``promote`` (one step on) or ``promote --full`` (skip every remaining step).

    Default: unpause ``spec.paused``; then exactly one status change — after an inconclusive
    step analysis that paused the controller, clear the pause and step on; else clear pause
    conditions if any; else step on. ``--full``: unpause, and set ``promoteFull`` unless the
    Rollout is already fully promoted (an empty patch then: nothing to do).

    Raises ``OperatorError`` when a default promote has nothing to do: a Rollout without steps
    that is neither paused nor waiting on a pause condition.
    """
    spec, status = _spec(rollout), _status(rollout)
    unpause = copy.deepcopy(UNPAUSE_PATCH) if spec.get("paused") else None
    if full:
        promoted = (status.get("currentPodHash") or "") == (status.get("stableRS") or "")
        if promoted:
            return OperatorPatch(spec=unpause)
        return OperatorPatch(
            spec=unpause,
            status=copy.deepcopy(PROMOTE_FULL_PATCH),
            unified={"spec": {"paused": False}, "status": {"promoteFull": True}},
        )

    pause_conditions = status.get("pauseConditions") or []
    next_index = _next_step_index(rollout)
    status_patch: Obj | None = None
    unified: Obj = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    if _is_inconclusive(rollout) and pause_conditions and status.get("controllerPause"):
        if next_index is not None:
            status_patch = {"status": {"pauseConditions": None, "controllerPause": False,
                                       "currentStepIndex": next_index}}
    elif pause_conditions:
        status_patch = copy.deepcopy(_CLEAR_PAUSE_CONDITIONS)
    elif _canary(rollout) is not None and next_index is not None:
        # Only ever one of: clear the pause conditions, or step on (never both).
        status_patch = {"status": {"pauseConditions": None, "currentStepIndex": next_index}}
        unified = {"spec": {"paused": False},
                   "status": {"pauseConditions": None, "currentStepIndex": next_index}}
    if status_patch is None and unpause is None:
        raise OperatorError(NO_STEPS_ERROR)
    return OperatorPatch(spec=unpause, status=status_patch,
                         unified=unified if status_patch is not None else None)


def abort_patch() -> OperatorPatch:
    """``abort``: ``status.abort=true`` (the controller rolls traffic and scale back)."""
    return OperatorPatch(status=copy.deepcopy(ABORT_PATCH), unified=copy.deepcopy(ABORT_PATCH))


def retry_patch() -> OperatorPatch:
    """``retry rollout``: ``status.abort=false`` (the steps start again)."""
    return OperatorPatch(status=copy.deepcopy(RETRY_PATCH), unified=copy.deepcopy(RETRY_PATCH))


def pause_patch() -> OperatorPatch:
    """``pause``: ``spec.paused=true``."""
    return OperatorPatch(spec=copy.deepcopy(PAUSE_PATCH))


def resume_patch() -> OperatorPatch:
    """Undo a manual ``pause`` without promoting: ``spec.paused=false`` (the plugin's
    ``unpausePatch``; it has no command of its own there, ``promote`` sends it)."""
    return OperatorPatch(spec=copy.deepcopy(UNPAUSE_PATCH))


def restart_patch(*, at: datetime) -> OperatorPatch:
    """``restart``: ``spec.restartAt`` = ``at`` in RFC 3339, UTC, whole seconds (as Go
    formats ``time.RFC3339``). ``at`` must be timezone-aware."""
    if at.tzinfo is None:
        raise ValueError("restart time must be timezone-aware")
    stamp = at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return OperatorPatch(spec={"spec": {"restartAt": stamp}})


def set_image(obj: Mapping[str, Any], *, container: str, image: str) -> Obj:
    """``set image``: a copy of ``obj`` (a Rollout, or the Deployment of its workloadRef) with
    ``image`` in every container of ``spec.template`` named ``container`` (``*``: all), in
    initContainers, containers and ephemeralContainers alike.

    Send it back with a PUT (it keeps ``metadata.resourceVersion``). Raises ``OperatorError``
    when no container has that name.
    """
    edited = copy.deepcopy(dict(obj))
    pod_spec = ((edited.get("spec") or {}).get("template") or {}).get("spec") or {}
    found = False
    for field in _CONTAINER_FIELDS:
        for entry in pod_spec.get(field) or []:
            if isinstance(entry, dict) and (container == "*" or entry.get("name") == container):
                entry["image"] = image
                found = True
    if not found:
        raise OperatorError(f'unable to find container named "{container}"')
    return edited


def owned_replica_sets(
    rollout: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The ReplicaSets whose controller owner reference is this Rollout (by uid)."""
    uid = (rollout.get("metadata") or {}).get("uid")
    owned = []
    for rs in replica_sets:
        for ref in (rs.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("controller") and uid and ref.get("uid") == uid:
                owned.append(rs)
                break
    return owned


def _revision(rs: Mapping[str, Any]) -> int | None:
    """The ReplicaSet's revision annotation: 0 when absent, ``None`` when not a number."""
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _pick_revision(
    rollout: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]], to_revision: int
) -> tuple[int, Mapping[str, Any]]:
    revisions: list[tuple[int, Mapping[str, Any]]] = []
    for rs in owned_replica_sets(rollout, replica_sets):
        revision = _revision(rs)
        if revision is None:
            continue
        if to_revision > 0 and revision == to_revision:
            return revision, rs
        revisions.append((revision, rs))
    if to_revision > 0:
        raise OperatorError(f"unable to find specified revision {to_revision} in history")
    revisions.sort(key=lambda entry: entry[0], reverse=True)
    if len(revisions) < 2:
        name = (rollout.get("metadata") or {}).get("name", "")
        raise OperatorError(f'no revision found for rollout "{name}"')
    return revisions[1]


def _derivative_equal(left: Any, right: Any) -> bool:
    """Kubernetes' ``Semantic.DeepDerivative``: fields unset (empty) on the left are ignored."""
    if left is None or left in ("", {}):
        return True
    if isinstance(left, Mapping):
        if not isinstance(right, Mapping):
            return False
        return all(_derivative_equal(value, right.get(key)) for key, value in left.items())
    if isinstance(left, list):
        if not isinstance(right, list) or len(left) != len(right):
            return False
        return all(_derivative_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def _without_hash_label(template: Mapping[str, Any]) -> Obj:
    result = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return result


def undo_patch(
    rollout: Mapping[str, Any],
    replica_sets: Iterable[Mapping[str, Any]],
    *,
    to_revision: int = 0,
) -> Undo:
    """``undo [--to-revision N]``: restore the template of revision N (default: the one
    before the newest) among the ReplicaSets this Rollout controls.

    Raises ``OperatorError`` with the plugin's texts when that revision is not in history.
    """
    if to_revision < 0:
        raise OperatorError(f"invalid revision {to_revision}: must not be negative")
    revision, rs = _pick_revision(rollout, replica_sets, to_revision)
    # less the canary/stable metadata shiftd injected: those belong to a role, not a revision
    template = _without_hash_label(ReplicaSetView.from_object(dict(rs), rollout_uid="")
                                   .own_template)
    current = _without_hash_label(_spec(rollout).get("template") or {})
    if current and _derivative_equal(current, template):
        return Undo(revision=revision, template=template, json_patch=None)
    return Undo(revision=revision, template=template,
                json_patch=[{"op": "replace", "path": "/spec/template", "value": template}])


# --- how the plugin reads a Rollout ----------------------------------------------------------

def _generation_observed(rollout: Mapping[str, Any]) -> bool:
    observed = _status(rollout).get("observedGeneration")
    try:
        observed_generation = int(str(observed))
    except ValueError:
        return True  # v0.9 wrote a hash here: nothing to compare
    generation = int((rollout.get("metadata") or {}).get("generation") or 0)
    return observed_generation >= generation


def rollout_phase(rollout: Mapping[str, Any]) -> tuple[str, str]:
    """Argo's client-side ``GetRolloutPhase``: ``(phase, message)``.

    Progressing while the controller has not yet seen the latest spec or a promotion; else the
    controller's ``status.phase``/``message``; else (no phase written yet) computed from the
    spec and status the way the controller would.
    """
    status = _status(rollout)
    if not _generation_observed(rollout):
        return "Progressing", "waiting for rollout spec update to be observed"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "Progressing", "waiting for rollout to unpause"
    if status.get("phase"):
        return str(status["phase"]), str(status.get("message") or "")
    try:
        parsed = parse_rollout(with_placeholder_template(dict(rollout)))
    except InvalidSpecError as error:
        return "Degraded", f"InvalidSpec: {error}"
    return calculate_phase(parsed, dict(status))


def _max_weight(rollout: Mapping[str, Any]) -> int:
    routing = (_canary(rollout) or {}).get("trafficRouting") or {}
    return int(routing.get("maxTrafficWeight") or MAX_WEIGHT)


def current_set_weight(rollout: Mapping[str, Any]) -> int:
    """Argo's ``GetCurrentSetWeight``: the weight the current step asks for (the last
    ``setWeight`` at or before it), 0 when aborted, the maximum once the steps are done."""
    if _status(rollout).get("abort"):
        return 0
    index = _step_index(rollout)
    steps = _steps(rollout)
    if index is None or index >= len(steps):
        return _max_weight(rollout)
    for step in reversed(steps[: index + 1]):
        if isinstance(step, Mapping) and step.get("setWeight") is not None:
            return int(step["setWeight"])
    return 0


def step_progress(rollout: Mapping[str, Any]) -> str | None:
    """``"<currentStepIndex>/<steps>"`` as the plugin shows it; ``None`` before the first
    status or without steps."""
    index = _status(rollout).get("currentStepIndex")
    steps = _steps(rollout)
    if index is None or not steps:
        return None
    return f"{int(index)}/{len(steps)}"
