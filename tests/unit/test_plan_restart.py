"""spec.restartAt: pods older than it restarted in batches within maxUnavailable, stable first;
status.restartedAt once none is left (Argo Rollouts' RolloutPodRestarter, decided purely)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shiftd.decide.rollout.actions import EvictPods
from shiftd.decide.rollout.observed import PodView, ReplicaSetView
from shiftd.decide.rollout.restart import needs_restart, plan_restart
from tests.support.world import World

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RESTART_AT = T0 + timedelta(hours=1)
OLD, NEW = T0, RESTART_AT + timedelta(minutes=1)


def pod(name: str, owner: str = "stable", *, created: datetime = OLD, available: bool = True,
        deleting: bool = False) -> PodView:
    return PodView(name=name, owner=owner, created=created, available=available,
                   deleting=deleting)


def rs(name: str, replicas: int) -> ReplicaSetView:
    return ReplicaSetView(name=name, pod_hash=name, revision=1, spec_replicas=replicas,
                          replicas=replicas, ready=replicas, available=replicas, template={})


@pytest.mark.parametrize(
    ("pods", "replica_sets", "max_unavailable", "evict", "waiting"),
    [
        pytest.param((pod("a"), pod("b"), pod("c"), pod("d")), (rs("stable", 4),), 1,
                     ("a",), 3, id="one at a time with maxUnavailable 1"),
        pytest.param((pod("a"), pod("b"), pod("c"), pod("d")), (rs("stable", 4),), 0,
                     ("a",), 3, id="maxUnavailable 0 still restarts one"),
        pytest.param((pod("a"), pod("b"), pod("c"), pod("d")), (rs("stable", 4),), 2,
                     ("a", "b"), 2, id="two at a time with maxUnavailable 2"),
        pytest.param((pod("a"), pod("b", available=False), pod("c"), pod("d")),
                     (rs("stable", 4),), 1, (), 4, id="an unavailable pod uses the budget"),
        pytest.param((pod("a", deleting=True), pod("b"), pod("c"), pod("d"), pod("e")),
                     (rs("stable", 4),), 1, ("b",), 4,
                     id="a pod being deleted is not evicted again"),
        pytest.param((pod("a", created=NEW), pod("b"), pod("c"), pod("d")), (rs("stable", 4),),
                     1, ("b",), 2, id="pods newer than restartAt stay"),
        pytest.param((pod("a", "canary"), pod("b"), pod("c"), pod("d")),
                     (rs("canary", 1), rs("stable", 3)), 1, ("b",), 3,
                     id="the stable's pods go first"),
        pytest.param((pod("x", "someone-else"), pod("b", created=NEW)), (rs("stable", 1),), 1,
                     (), 0, id="pods of other owners are not the Rollout's"),
    ],
)
def test_restart_batches_follow_argos_pod_restarter(
    pods: tuple[PodView, ...], replica_sets: tuple[ReplicaSetView, ...], max_unavailable: int,
    evict: tuple[str, ...], waiting: int,
) -> None:
    decision = plan_restart(restart_at=RESTART_AT, pods=pods, replica_sets=replica_sets,
                            priority=("stable", "canary"), replicas=4,
                            max_unavailable=max_unavailable)
    assert (decision.evict, decision.waiting) == (evict, waiting)
    assert decision.done is (waiting == 0)


@pytest.mark.parametrize(
    ("restart_at", "restarted_at", "now", "expected"),
    [
        pytest.param(None, None, NEW, False, id="not asked"),
        pytest.param(RESTART_AT, None, OLD, False, id="not yet time"),
        pytest.param(RESTART_AT, None, NEW, True, id="time has come"),
        pytest.param(RESTART_AT, RESTART_AT, NEW, False, id="already done"),
        pytest.param(RESTART_AT, OLD, NEW, True, id="a previous restart was done"),
    ],
)
def test_a_restart_is_needed_as_argo_says(
    restart_at: datetime | None, restarted_at: datetime | None, now: datetime, expected: bool
) -> None:
    assert needs_restart(restart_at=restart_at, restarted_at=restarted_at, now=now) is expected


def restartable_world() -> World:
    world = World.from_example("asm-host-split")
    world.rollout["spec"]["replicas"] = 4
    world.settle()
    world.track_pods()
    world.advance(3600)
    world.edit_spec(restartAt=world.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    world.advance(1)
    return world


def test_restart_at_restarts_every_pod_in_batches_and_records_it() -> None:
    world = restartable_world()
    restart_at = world.rollout["spec"]["restartAt"]
    assert world.pods is not None
    original = set(world.pods)
    for _ in range(40):
        plan = world.plan()
        if not plan.actions:
            if plan.requeue_at is None:
                break
            world.now = plan.requeue_at  # waiting for the next batch
            continue
        evictions = [a for a in plan.actions if isinstance(a, EvictPods)]
        assert all(len(a.names) <= 1 for a in evictions)  # maxUnavailable 25% of 4
        assert not evictions or plan.actions == tuple(evictions)  # nothing else that pass
        world.apply(plan)
    assert sorted(world.evicted) == sorted(original)
    assert not original & set(world.pods)
    assert len(world.pods) == 4
    assert world.status["restartedAt"] == restart_at
    assert world.status["phase"] == "Healthy"
    world.advance(3600)
    assert world.plan().actions == ()


def test_without_the_pods_the_restart_waits_and_says_so() -> None:
    world = restartable_world()
    world.pods = None  # a runtime that does not list pods
    world.settle()
    assert world.status["phase"] == "Progressing"
    assert world.status["message"] == "rollout is restarting"
    assert "restartedAt" not in world.status


def test_a_restart_at_in_the_future_wakes_the_planner_then() -> None:
    world = World.from_example("asm-host-split")
    world.settle()
    when = world.now + timedelta(minutes=5)
    world.edit_spec(restartAt=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    world.settle()
    assert world.plan().requeue_at == when + timedelta(seconds=1)


def test_a_malformed_restart_at_is_an_invalid_spec() -> None:
    world = World.from_example("asm-host-split")
    world.edit_spec(restartAt="yesterday")
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "spec.restartAt must be an RFC 3339 time" in world.status["message"]


def test_a_new_template_mid_restart_ends_the_restart_as_argo_does() -> None:
    world = restartable_world()
    restart_at = world.rollout["spec"]["restartAt"]
    first = world.plan()
    assert [type(a) for a in first.actions] == [EvictPods]  # the restart is under way
    world.apply(first)
    evicted = set(world.evicted)
    world.set_image("example/app:v2")
    plan = world.plan()
    assert not [a for a in plan.actions if isinstance(a, EvictPods)]
    assert plan.status is not None and plan.status["restartedAt"] == restart_at
    world.settle()
    assert set(world.evicted) == evicted  # no pod of the old template restarted after it
    assert world.status["restartedAt"] == restart_at
