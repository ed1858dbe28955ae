"""A deleted Canary with ``revertOnDeletion``: Flagger's finalize, decided purely.

While the Canary carries Flagger's finalizer: the phase goes to Terminating (Event
"Terminating canary"), the target Deployment is scaled back to the primary's replicas and
waited for, a VirtualService that existed before the Canary gets its original spec back (it
was never owned by the Canary, so garbage collection keeps it), an apex Service that existed
before selects the target's pods again, and the finalizer is removed;
the objects the Canary created then go with it by garbage collection. Without
``revertOnDeletion`` the finalizer is added or removed so it matches the spec.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.actions import Action, CanaryEvent, Put, ScaleTarget, Step
from shiftd.decide.flagger.observed import Observed
from shiftd.decide.flagger.routes import original_spec, service_names
from shiftd.decide.flagger.scaling import scale_up_replicas
from shiftd.decide.flagger.workloads import not_ready, replicas, selector_label
from shiftd.model.flagger.canary import FINALIZER, Canary

JsonObject = dict[str, Any]


def finalizer_change(canary: Canary) -> Step:
    """Add or remove the finalizer so it follows ``revertOnDeletion`` (a live Canary)."""
    has = FINALIZER in canary.finalizers
    if canary.spec.revert_on_deletion and not has:
        return Step(finalizer="add")
    if not canary.spec.revert_on_deletion and has:
        return Step(finalizer="remove")
    return Step()


def finalize(canary: Canary, observed: Observed, *, now: datetime) -> Step:
    """One reconcile of a Canary being deleted."""
    if FINALIZER not in canary.finalizers:
        return Step()
    if canary.phase != st.TERMINATING:
        return Step(status=st.with_phase(canary, st.TERMINATING, now),
                    events=(CanaryEvent(f"Terminating canary {canary.path}"),), again=True)
    retry = now + timedelta(seconds=canary.spec.analysis.interval_seconds)
    target = observed.target
    actions: list[Action] = []
    if target is not None:
        wanted = (replicas(observed.primary) if observed.primary is not None
                  else scale_up_replicas(canary, observed))
        if replicas(target) != wanted:
            return Step(actions=(ScaleTarget(wanted),), requeue_at=retry)
        if not_ready(target, threshold_percent=100) is not None:
            return Step(requeue_at=retry)  # Flagger waits for the target before the routes
        actions.extend(_apex_reverted(canary, observed, target))
    found = observed.virtual_service
    restored = original_spec(found) if found is not None else None
    if found is not None and restored is not None and found.get("spec") != restored:
        vs = copy.deepcopy(found)
        vs["spec"] = restored
        actions.append(Put("VirtualService", vs))
    return Step(actions=tuple(actions), finalizer="remove")


def _apex_reverted(canary: Canary, observed: Observed, target: JsonObject) -> list[Action]:
    """An apex Service the Canary did not create selects the target's pods again (one it
    created goes with it)."""
    apex_name = service_names(canary)[0]
    apex = observed.services.get(apex_name)
    if apex is None or any(ref.get("uid") == canary.uid for ref in
                           (apex.get("metadata") or {}).get("ownerReferences") or []):
        return []
    label, value = selector_label(target)
    if (apex.get("spec") or {}).get("selector") == {label: value}:
        return []
    reverted = copy.deepcopy(apex)
    reverted.setdefault("spec", {})["selector"] = {label: value}
    return [Put("Service", reverted)]
