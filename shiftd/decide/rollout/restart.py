"""``spec.restartAt``: which pods to restart now, and when the restart is done (Argo Rollouts'
``RolloutPodRestarter``, as a pure decision).

Every pod of the Rollout created before ``restartAt`` is restarted (evicted, so disruption
budgets hold), a few at a time: at most ``maxUnavailable`` (at least one) below the larger of
``spec.replicas`` and the pods the ReplicaSets ask for, counting only pods available now. The
stable's pods go first, then the canary's, then older revisions'. Once no pod predates
``restartAt``, ``status.restartedAt`` records it and the restart is over. As in Argo, a new
template (or new steps) while a restart is under way ends it: ``restartedAt`` is recorded, and
the update replaces the pods (the canary planner checks this before asking for evictions).

The planner knows pods only when the runtime lists them (``Observed.pods``); the evictions
are an ``EvictPods`` write for the controller to carry out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shiftd.decide.rollout.observed import PodView, ReplicaSetView


@dataclass(frozen=True, slots=True)
class RestartDecision:
    evict: tuple[str, ...]  # pod names to evict now, in order
    waiting: int  # pods still older than restartAt after these evictions
    done: bool  # no pod is left to restart: status.restartedAt may record it


def needs_restart(*, restart_at: datetime | None, restarted_at: datetime | None,
                  now: datetime) -> bool:
    """Argo's ``NeedsRestart``: a restart asked for, not yet recorded, and its time passed."""
    if restart_at is None or restarted_at == restart_at:
        return False
    return now > restart_at


def plan_restart(
    *,
    restart_at: datetime,
    pods: tuple[PodView, ...],
    replica_sets: tuple[ReplicaSetView, ...],
    priority: tuple[str, ...],
    replicas: int,
    max_unavailable: int,
) -> RestartDecision:
    """The pods to evict now. ``priority`` names ReplicaSets whose pods go first (stable, new);
    ``max_unavailable`` is resolved already."""
    owned = {rs.name for rs in replica_sets}
    ours = [pod for pod in pods if pod.owner in owned]
    total = sum(rs.spec_replicas for rs in replica_sets)
    available = sum(1 for pod in ours if pod.available and not pod.deleting)
    concurrent = max(max_unavailable, 1)
    budget = available - (max(replicas, total) - concurrent)

    def rank(pod: PodView) -> tuple[int, datetime]:
        order = priority.index(pod.owner) if pod.owner in priority else len(priority)
        return order, pod.created

    stale = [pod for pod in sorted(ours, key=rank) if pod.created < restart_at]
    evict: list[str] = []
    for pod in stale:
        if budget <= 0:
            break
        if pod.deleting:
            continue
        evict.append(pod.name)
        budget -= 1
    waiting = len(stale) - len(evict)
    # as Argo: once every old pod is evicted (none left waiting), the restart is recorded
    return RestartDecision(evict=tuple(evict), waiting=waiting, done=waiting == 0)
