"""Which managed routes (``setHeaderRoute`` / ``setMirrorRoute``) a canary has now.

The routes follow from the completed steps alone, so every plan computes the same set from
the same status: each completed route step sets its route (or, without ``match``, removes
it), and the routes sit in ``managedRoutes`` order. None is wanted while the canary has no
available pod (a header route sends all of its requests there), nor once the update is being
aborted or promoted (Argo's ``RemoveManagedRoutes``).
"""

from __future__ import annotations

from shiftd.decide.rollout.decision import Decision, Draft
from shiftd.decide.traffic import ManagedRoute
from shiftd.model.argo.rollout import SetHeaderRouteStep, SetMirrorRouteStep

NO_MATCH = "[]"


def desired_routes(draft: Draft, decision: Decision) -> tuple[ManagedRoute, ...]:
    """The managed routes this plan wants in the mesh, in ``managedRoutes`` order."""
    canary, revisions = draft.rollout.canary, decision.revisions
    if (not canary.managed_routes or decision.leaving_canary
            or draft.status.get("promoteFull") or decision.index >= len(canary.steps)
            or revisions.new_rs is None or revisions.new_rs.available <= 0):
        return ()
    active: dict[str, ManagedRoute] = {}
    for step in canary.steps[:decision.index]:
        if not isinstance(step, SetHeaderRouteStep | SetMirrorRouteStep):
            continue
        if step.match == NO_MATCH:
            active.pop(step.name, None)
        elif isinstance(step, SetHeaderRouteStep):
            active[step.name] = ManagedRoute(name=step.name, kind="header", match=step.match)
        else:
            active[step.name] = ManagedRoute(name=step.name, kind="mirror", match=step.match,
                                             percentage=step.percentage)
    return tuple(active[name] for name in canary.managed_routes if name in active)


def routes_due(draft: Draft, routes: tuple[ManagedRoute, ...]) -> bool:
    """The mesh's managed routes differ from ``routes``: a traffic write is due."""
    observation = draft.observed.traffic
    if not draft.rollout.canary.managed_routes or observation is None:
        return False
    return observation.managed_routes != routes or not observation.managed_routes_intact


def describe_routes(routes: tuple[ManagedRoute, ...]) -> str:
    """The routes for an Event: ``header-route (header), mirror-route (mirror 35%)``."""
    if not routes:
        return "none (every managed route removed)"
    return ", ".join(f"{r.name} (header)" if r.kind == "header"
                     else f"{r.name} (mirror {r.percentage}%)" for r in routes)
